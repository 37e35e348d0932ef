//! One member's entry: its WOPR key, a few address hints and a timestamp, signed by that key.
//!
//! Everyone who knows a topic's name can write the topic's DHT values, so the value's BEP44 signature
//! says nothing about who is in the topic. Each entry therefore carries its member's own signature
//! (domain [`MEMBER_DOMAIN`]) over the topic binding ([`crate::TopicKeys::binding`]), the key, the time
//! and the hints: a joiner trusts an entry only for the key that signed it, only in the topic it was
//! signed for, and only while it is recent.

use wopr_identity::{Identity, PublicId, SIGNATURE_LEN, Signature, verify};
use wopr_proto::MAX_SKEW_MS;
use wopr_proto::codec::{Reader, Writer};

use crate::{EntryRejected, MEMBER_TTL_MS, RecordError, TopicKeys};

/// The signature domain of member entries.
pub const MEMBER_DOMAIN: &str = "rendezvous-member";

/// Most address hints one entry carries.
pub const MAX_HINTS: usize = 4;

/// Longest address hint (an `ip:port`, or a relay URL), in bytes.
pub const MAX_HINT_LEN: usize = 96;

/// The smallest encoded entry: key, time, an empty hint list and the signature.
pub const MIN_ENTRY_LEN: usize = 32 + 8 + 2 + SIGNATURE_LEN;

/// A member entry as stored, not yet trusted: [`MemberEntry::verify`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    /// The member's WOPR key (also its iroh endpoint id).
    pub key: PublicId,
    /// When the member wrote the entry, in milliseconds since the Unix epoch.
    pub seen_ms: u64,
    /// Where the member says it can be reached (untrusted hints; the transport authenticates the key).
    pub hints: Vec<String>,
    /// The member's signature over [`MemberEntry::signed_bytes`].
    pub signature: Signature,
}

/// A member found in a topic: an entry whose signature verified and that was recent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's WOPR key (its iroh endpoint id).
    pub key: PublicId,
    /// Its address hints, as it wrote them.
    pub hints: Vec<String>,
    /// When it last announced itself, in milliseconds since the Unix epoch.
    pub seen_ms: u64,
}

fn check_hints(hints: &[String]) -> Result<(), RecordError> {
    if hints.len() > MAX_HINTS {
        return Err(RecordError::TooManyHints { count: hints.len() });
    }
    let printable = |h: &String| h.bytes().all(|b| b.is_ascii_graphic());
    if hints.iter().any(|h| h.is_empty() || h.len() > MAX_HINT_LEN || !printable(h)) {
        return Err(RecordError::BadHint);
    }
    Ok(())
}

/// The hints of `hints` an entry can carry, in their order: those within the limits, at most
/// [`MAX_HINTS`]. A node with more addresses than that (or a longer relay URL) announces the rest through
/// gossip, whose profiles carry more.
pub fn select_hints(hints: &[String]) -> Vec<String> {
    hints.iter().filter(|h| check_hints(std::slice::from_ref(*h)).is_ok()).take(MAX_HINTS).cloned().collect()
}

impl MemberEntry {
    /// `identity`'s entry in `topic` at `seen_ms`, signed.
    pub fn sign(
        identity: &Identity,
        topic: &TopicKeys,
        hints: &[String],
        seen_ms: u64,
    ) -> Result<MemberEntry, RecordError> {
        check_hints(hints)?;
        let mut entry = MemberEntry {
            key: identity.public_id(),
            seen_ms,
            hints: hints.to_vec(),
            signature: [0; SIGNATURE_LEN],
        };
        entry.signature = identity.sign(MEMBER_DOMAIN, &entry.signed_bytes(&topic.binding()));
        Ok(entry)
    }

    /// The bytes the member signs: the topic binding, then the entry without its signature.
    pub fn signed_bytes(&self, binding: &[u8; 32]) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(binding);
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(self.key.as_bytes()).u64(self.seen_ms);
        w.list(&self.hints, |w, h| {
            w.str(h);
        });
    }

    /// Appends the stored form: the unsigned fields, then the signature.
    pub fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }

    /// Reads one stored entry, refusing hints outside the limits. The signature is not checked here.
    pub fn decode(r: &mut Reader<'_>) -> Result<MemberEntry, RecordError> {
        let key = PublicId(r.array()?);
        let seen_ms = r.u64()?;
        // 4 is a string's smallest encoding (§1's rule); empty hints are refused just after.
        let hints = r.list("address hints", MAX_HINTS, 4, |r| r.string("address hint", MAX_HINT_LEN))?;
        check_hints(&hints)?;
        let signature = r.array::<SIGNATURE_LEN>()?;
        Ok(MemberEntry { key, seen_ms, hints, signature })
    }

    /// The encoded length.
    pub fn encoded_len(&self) -> usize {
        MIN_ENTRY_LEN + self.hints.iter().map(|h| 4 + h.len()).sum::<usize>()
    }

    /// Trusts the entry if its member signed it for `topic` and it is neither stale nor from the
    /// future at `now_ms`.
    pub fn verify(&self, topic: &TopicKeys, now_ms: u64) -> Result<Member, EntryRejected> {
        if self.seen_ms > now_ms.saturating_add(MAX_SKEW_MS) {
            return Err(EntryRejected::FromTheFuture { ahead_ms: self.seen_ms - now_ms });
        }
        let age_ms = now_ms.saturating_sub(self.seen_ms);
        if age_ms > MEMBER_TTL_MS {
            return Err(EntryRejected::Stale { age_ms });
        }
        verify(&self.key, MEMBER_DOMAIN, &self.signed_bytes(&topic.binding()), &self.signature)
            .map_err(|_| EntryRejected::BadSignature)?;
        Ok(Member { key: self.key, hints: self.hints.clone(), seen_ms: self.seen_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wopr_proto::codec::CodecError;

    const NOW: u64 = 1_700_000_000_000;

    fn topic(name: &str) -> TopicKeys {
        TopicKeys::derive(name).unwrap()
    }

    fn hints() -> Vec<String> {
        vec!["127.0.0.1:4433".into(), "https://relay.example/".into()]
    }

    #[test]
    fn a_signed_entry_verifies_and_round_trips() {
        let id = Identity::generate();
        let t = topic("t");
        let entry = MemberEntry::sign(&id, &t, &hints(), NOW).unwrap();
        let mut w = Writer::new();
        entry.encode(&mut w);
        assert_eq!(w.as_bytes().len(), entry.encoded_len());
        let mut r = Reader::new(w.as_bytes());
        let back = MemberEntry::decode(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(back, entry);
        let member = back.verify(&t, NOW + 1_000).unwrap();
        assert_eq!(member, Member { key: id.public_id(), hints: hints(), seen_ms: NOW });
    }

    #[test]
    fn an_entry_claiming_another_key_is_refused() {
        let (victim, forger) = (Identity::generate(), Identity::generate());
        let t = topic("t");
        let mut entry = MemberEntry::sign(&forger, &t, &hints(), NOW).unwrap();
        entry.key = victim.public_id();
        assert_eq!(entry.verify(&t, NOW), Err(EntryRejected::BadSignature));
    }

    #[test]
    fn an_entry_with_changed_hints_or_time_is_refused() {
        let t = topic("t");
        let good = MemberEntry::sign(&Identity::generate(), &t, &hints(), NOW).unwrap();
        let mut moved = good.clone();
        moved.hints[0] = "10.6.6.6:4433".into();
        assert_eq!(moved.verify(&t, NOW), Err(EntryRejected::BadSignature));
        let mut later = good.clone();
        later.seen_ms += 1;
        assert_eq!(later.verify(&t, NOW), Err(EntryRejected::BadSignature));
    }

    #[test]
    fn an_entry_signed_for_another_topic_is_refused() {
        let entry = MemberEntry::sign(&Identity::generate(), &topic("a"), &hints(), NOW).unwrap();
        assert!(entry.verify(&topic("a"), NOW).is_ok());
        assert_eq!(entry.verify(&topic("b"), NOW), Err(EntryRejected::BadSignature));
    }

    #[test]
    fn stale_and_future_entries_are_refused() {
        let t = topic("t");
        let entry = MemberEntry::sign(&Identity::generate(), &t, &hints(), NOW).unwrap();
        assert!(entry.verify(&t, NOW + MEMBER_TTL_MS).is_ok());
        assert_eq!(
            entry.verify(&t, NOW + MEMBER_TTL_MS + 1),
            Err(EntryRejected::Stale { age_ms: MEMBER_TTL_MS + 1 })
        );
        assert!(entry.verify(&t, NOW - MAX_SKEW_MS).is_ok());
        assert_eq!(
            entry.verify(&t, NOW - MAX_SKEW_MS - 1),
            Err(EntryRejected::FromTheFuture { ahead_ms: MAX_SKEW_MS + 1 })
        );
    }

    #[test]
    fn select_hints_keeps_the_first_hints_that_fit() {
        let long = "h".repeat(MAX_HINT_LEN + 1);
        let given: Vec<String> =
            ["", "10.0.0.1:1", long.as_str(), "a b", "10.0.0.2:1", "[::1]:3", "10.0.0.3:1", "10.0.0.4:1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let chosen = select_hints(&given);
        assert_eq!(chosen, ["10.0.0.1:1", "10.0.0.2:1", "[::1]:3", "10.0.0.3:1"]);
        assert!(MemberEntry::sign(&Identity::generate(), &topic("t"), &chosen, NOW).is_ok());
    }

    #[test]
    fn hints_outside_the_limits_are_refused_when_signing_and_reading() {
        let (id, t) = (Identity::generate(), topic("t"));
        let five: Vec<String> = (0..5).map(|i| format!("10.0.0.{i}:1")).collect();
        assert_eq!(MemberEntry::sign(&id, &t, &five, NOW), Err(RecordError::TooManyHints { count: 5 }));
        for bad in ["", "a b", "x\n", &"h".repeat(MAX_HINT_LEN + 1)] {
            assert_eq!(
                MemberEntry::sign(&id, &t, &[bad.to_string()], NOW),
                Err(RecordError::BadHint),
                "{bad:?}"
            );
        }
        assert!(MemberEntry::sign(&id, &t, &["h".repeat(MAX_HINT_LEN)], NOW).is_ok());

        // The same limits on the reading side, for entries someone else encoded.
        let mut entry = MemberEntry::sign(&id, &t, &hints(), NOW).unwrap();
        entry.hints = vec!["a\u{7f}b".into()];
        let mut w = Writer::new();
        entry.encode(&mut w);
        assert_eq!(MemberEntry::decode(&mut Reader::new(w.as_bytes())), Err(RecordError::BadHint));
        entry.hints = five;
        let mut w = Writer::new();
        entry.encode(&mut w);
        assert!(matches!(
            MemberEntry::decode(&mut Reader::new(w.as_bytes())),
            Err(RecordError::Codec(CodecError::TooLong { max: MAX_HINTS, .. }))
        ));
    }
}
