//! One DHT value: a few member entries, sealed with the slot's key so DHT nodes learn nothing from it,
//! and the merge a member runs before writing it back.
//!
//! Stored bytes: `nonce (12) || AES-256-GCM(seal key, nonce, aad = bucket salt, plaintext)`, with
//! plaintext `u16 count || entries`. Nothing in them is constant from one value to the next, so a DHT
//! node cannot even tell a WOPR value from random bytes. A BEP44 value is at most [`MAX_VALUE_BYTES`].

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce, Tag};
use wopr_proto::codec::{Reader, Writer};

use crate::entry::{MAX_HINT_LEN, MAX_HINTS, MIN_ENTRY_LEN, MemberEntry};
use crate::{RecordError, SlotKeys, TopicKeys};

/// Largest BEP44 value (DHT nodes refuse bigger ones).
pub const MAX_VALUE_BYTES: usize = 1000;

/// Length of the random nonce in front of each value.
pub const NONCE_LEN: usize = 12;

/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;

/// Largest plaintext that still seals into [`MAX_VALUE_BYTES`].
pub const MAX_PLAINTEXT: usize = MAX_VALUE_BYTES - NONCE_LEN - TAG_LEN;

/// Most entries one value holds (as many minimal entries as fit).
pub const MAX_ENTRIES: usize = (MAX_PLAINTEXT - 2) / MIN_ENTRY_LEN;

// One entry with every hint at its longest must always fit alone, or a member could be unable to
// announce at all.
const _: () = assert!(2 + MIN_ENTRY_LEN + MAX_HINTS * (4 + MAX_HINT_LEN) <= MAX_PLAINTEXT);

fn cipher(keys: &SlotKeys) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*keys.seal_key()))
}

fn plaintext_len(entries: &[MemberEntry]) -> usize {
    2 + entries.iter().map(MemberEntry::encoded_len).sum::<usize>()
}

/// Seals `entries` as the value of `bucket` in the slot of `keys`. `nonce` must be fresh random bytes
/// for every value written (the caller supplies randomness).
pub fn seal(
    keys: &SlotKeys,
    bucket: usize,
    entries: &[MemberEntry],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, RecordError> {
    if entries.len() > MAX_ENTRIES {
        return Err(RecordError::TooManyEntries { count: entries.len() });
    }
    let len = NONCE_LEN + plaintext_len(entries) + TAG_LEN;
    if len > MAX_VALUE_BYTES {
        return Err(RecordError::TooLarge { len });
    }
    let mut w = Writer::new();
    w.list(entries, |w, e| e.encode(w));
    let mut buf = w.into_bytes();
    let tag = cipher(keys)
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(nonce),
            keys.salt(bucket),
            buf.as_mut_slice().into(),
        )
        // AES-GCM only refuses inputs over 64 GiB; this one is under 1,000 bytes.
        .map_err(|_| RecordError::TooLarge { len })?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens the value of `bucket` in the slot of `keys` and reads its entries (their member signatures are
/// not checked here: see [`MemberEntry::verify`]). Anything too big, tampered with or malformed is
/// refused as a whole.
pub fn open(keys: &SlotKeys, bucket: usize, value: &[u8]) -> Result<Vec<MemberEntry>, RecordError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(RecordError::TooLarge { len: value.len() });
    }
    if value.len() < NONCE_LEN + TAG_LEN {
        return Err(RecordError::Unsealed);
    }
    let (nonce, rest) = value.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| RecordError::Unsealed)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| RecordError::Unsealed)?;
    let mut buf = ciphertext.to_vec();
    cipher(keys)
        .decrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(nonce),
            keys.salt(bucket),
            buf.as_mut_slice().into(),
            &Tag::<Aes256Gcm>::from(tag),
        )
        .map_err(|_| RecordError::Unsealed)?;
    let mut r = Reader::new(&buf);
    let count = usize::from(r.u16()?);
    if count > MAX_ENTRIES {
        return Err(RecordError::TooManyEntries { count });
    }
    // The count is checked against the bytes left before anything is reserved.
    let needed = count * MIN_ENTRY_LEN;
    if needed > r.remaining() {
        return Err(wopr_proto::CodecError::Truncated { needed, remaining: r.remaining() }.into());
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(MemberEntry::decode(&mut r)?);
    }
    r.finish()?;
    Ok(entries)
}

/// The entries to write back after `ours` joins `existing` (what was read from the DHT) at `now_ms`:
/// ours first, then every other entry that still verifies in `topic`, newest first, one per key. Ours
/// replaces an older entry of the same key. If they do not all fit in one value, `evict` drops the
/// oldest until they do; without it the answer is `None` (try another bucket).
pub fn merge(
    existing: &[MemberEntry],
    ours: MemberEntry,
    topic: &TopicKeys,
    now_ms: u64,
    evict: bool,
) -> Option<Vec<MemberEntry>> {
    let mut others: Vec<&MemberEntry> =
        existing.iter().filter(|e| e.key != ours.key && e.verify(topic, now_ms).is_ok()).collect();
    // Newest first; then drop later duplicates of a key, which are its older entries.
    others.sort_by(|a, b| b.seen_ms.cmp(&a.seen_ms).then(a.key.cmp(&b.key)));
    let mut seen = std::collections::HashSet::new();
    others.retain(|e| seen.insert(e.key));

    let mut out = Vec::with_capacity(others.len() + 1);
    out.push(ours);
    out.extend(others.into_iter().cloned());
    while out.len() > MAX_ENTRIES || NONCE_LEN + plaintext_len(&out) + TAG_LEN > MAX_VALUE_BYTES {
        if !evict {
            return None;
        }
        out.pop();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use wopr_identity::Identity;

    use super::*;
    use crate::{EntryRejected, MEMBER_TTL_MS};

    const NOW: u64 = 1_700_000_000_000;
    const NAME: &str = "our-very-secret-topic-name";

    fn entry(id: &Identity, topic: &TopicKeys, seen_ms: u64) -> MemberEntry {
        MemberEntry::sign(id, topic, &["192.0.2.7:4433".into()], seen_ms).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_the_same_entries() {
        let t = TopicKeys::derive(NAME).unwrap();
        let keys = t.slot(5);
        let entries: Vec<_> = (0..3).map(|_| entry(&Identity::generate(), &t, NOW)).collect();
        let value = seal(&keys, 2, &entries, [9; NONCE_LEN]).unwrap();
        assert!(value.len() <= MAX_VALUE_BYTES);
        assert_eq!(open(&keys, 2, &value).unwrap(), entries);
        assert_eq!(open(&keys, 2, &seal(&keys, 0, &[], [1; NONCE_LEN]).unwrap()), Err(RecordError::Unsealed));
        assert_eq!(open(&keys, 0, &seal(&keys, 0, &[], [1; NONCE_LEN]).unwrap()).unwrap(), vec![]);
    }

    #[cfg(feature = "dht")]
    #[test]
    fn nothing_published_contains_the_topic_name() {
        let contains = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
        let t = TopicKeys::derive(NAME).unwrap();
        let keys = t.slot(5);
        let entries = vec![entry(&Identity::generate(), &t, NOW)];
        let value = seal(&keys, 1, &entries, [0; NONCE_LEN]).unwrap();
        // Everything a DHT node sees of a put: the BEP44 key, the salt, the value and the item signature.
        let item = mainline::MutableItem::new(keys.signing_key().clone(), &value, 1, Some(keys.salt(1)));
        let published = [
            item.key().as_slice(),
            item.salt().unwrap_or_default(),
            item.value(),
            item.signature().as_slice(),
            item.target().as_bytes().as_slice(),
        ]
        .concat();
        assert!(!contains(&published, NAME.as_bytes()));
        // Not the name's hashes either: neither the topic id gossip uses nor a plain SHA-256.
        assert!(!contains(&published, &wopr_proto::discovery::topic_id(NAME)));
        assert!(!contains(&published, &<sha2::Sha256 as sha2::Digest>::digest(NAME.as_bytes())));
        // The plaintext entries do not leak through either (the hint is there before sealing, not after).
        assert!(!contains(&value, b"192.0.2.7:4433"));
        assert!(!contains(&value, entries[0].key.as_bytes()));
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let t = TopicKeys::derive(NAME).unwrap();
        let keys = t.slot(5);
        let value = seal(&keys, 0, &[entry(&Identity::generate(), &t, NOW)], [3; NONCE_LEN]).unwrap();
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&keys, 0, &bad), Err(RecordError::Unsealed), "byte {i}");
        }
        assert_eq!(open(&keys, 0, &value[..value.len() - 1]), Err(RecordError::Unsealed));
        assert_eq!(open(&keys, 0, &value[..NONCE_LEN + TAG_LEN - 1]), Err(RecordError::Unsealed));
        // Another bucket, slot or topic does not open it.
        assert_eq!(open(&keys, 1, &value), Err(RecordError::Unsealed));
        assert_eq!(open(&t.slot(6), 0, &value), Err(RecordError::Unsealed));
        assert_eq!(open(&TopicKeys::derive("other").unwrap().slot(5), 0, &value), Err(RecordError::Unsealed));
    }

    /// Seals raw plaintext the way `seal` does, to feed `open` what an honest sealer would never write.
    fn seal_raw(keys: &SlotKeys, bucket: usize, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let nonce = [4; NONCE_LEN];
        let tag = cipher(keys)
            .encrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(nonce),
                keys.salt(bucket),
                buf.as_mut_slice().into(),
            )
            .unwrap();
        [nonce.as_slice(), &buf, &tag].concat()
    }

    #[test]
    fn malformed_plaintexts_are_refused() {
        let t = TopicKeys::derive(NAME).unwrap();
        let keys = t.slot(5);
        let mut w = Writer::new();
        w.list(&[entry(&Identity::generate(), &t, NOW)], |w, e| e.encode(w));
        let good = w.into_bytes();
        assert_eq!(open(&keys, 0, &seal_raw(&keys, 0, &good)).unwrap().len(), 1);
        // Trailing bytes, a truncated entry, a count beyond the input, a count beyond the limit.
        let trailing = [good.as_slice(), &[0]].concat();
        assert!(matches!(open(&keys, 0, &seal_raw(&keys, 0, &trailing)), Err(RecordError::Codec(_))));
        assert!(matches!(
            open(&keys, 0, &seal_raw(&keys, 0, &good[..good.len() - 1])),
            Err(RecordError::Codec(_))
        ));
        let mut overcount = good.clone();
        overcount[1] = 2;
        assert!(matches!(open(&keys, 0, &seal_raw(&keys, 0, &overcount)), Err(RecordError::Codec(_))));
        let too_many = u16::try_from(MAX_ENTRIES + 1).unwrap().to_be_bytes();
        let plain = [too_many.as_slice(), &vec![0; MAX_PLAINTEXT - 2]].concat();
        assert_eq!(
            open(&keys, 0, &seal_raw(&keys, 0, &plain)),
            Err(RecordError::TooManyEntries { count: MAX_ENTRIES + 1 })
        );
        assert_eq!(open(&keys, 0, &[]), Err(RecordError::Unsealed));
    }

    #[test]
    fn values_over_the_bep44_limit_are_refused_both_ways() {
        let t = TopicKeys::derive(NAME).unwrap();
        let keys = t.slot(5);
        let hints: Vec<String> =
            (0..MAX_HINTS).map(|i| format!("{i}{}", "h".repeat(MAX_HINT_LEN - 1))).collect();
        let big: Vec<_> =
            (0..3).map(|_| MemberEntry::sign(&Identity::generate(), &t, &hints, NOW).unwrap()).collect();
        assert!(seal(&keys, 0, &big[..1], [0; NONCE_LEN]).is_ok());
        assert!(matches!(seal(&keys, 0, &big, [0; NONCE_LEN]), Err(RecordError::TooLarge { .. })));
        let many: Vec<_> = (0..MAX_ENTRIES + 1).map(|_| entry(&Identity::generate(), &t, NOW)).collect();
        assert_eq!(
            seal(&keys, 0, &many, [0; NONCE_LEN]),
            Err(RecordError::TooManyEntries { count: MAX_ENTRIES + 1 })
        );
        assert_eq!(
            open(&keys, 0, &vec![0; MAX_VALUE_BYTES + 1]),
            Err(RecordError::TooLarge { len: MAX_VALUE_BYTES + 1 })
        );
    }

    #[test]
    fn merge_refreshes_ours_and_drops_stale_forged_and_duplicate_entries() {
        let t = TopicKeys::derive(NAME).unwrap();
        let (me, a, b, c) =
            (Identity::generate(), Identity::generate(), Identity::generate(), Identity::generate());
        let mut forged = entry(&c, &t, NOW);
        forged.key = Identity::generate().public_id();
        let existing = vec![
            entry(&me, &t, NOW - 30_000),
            entry(&a, &t, NOW - 40_000),
            entry(&a, &t, NOW - 10_000),
            entry(&b, &t, NOW - MEMBER_TTL_MS - 1),
            forged.clone(),
            entry(&c, &TopicKeys::derive("elsewhere").unwrap(), NOW),
        ];
        let ours = entry(&me, &t, NOW);
        let merged = merge(&existing, ours.clone(), &t, NOW, false).unwrap();
        assert_eq!(merged, vec![ours, entry(&a, &t, NOW - 10_000)]);
        assert_eq!(forged.verify(&t, NOW), Err(EntryRejected::BadSignature));
    }

    #[test]
    fn a_full_value_is_refused_or_loses_its_oldest_entries() {
        let t = TopicKeys::derive(NAME).unwrap();
        // Hint-less entries are the smallest, so MAX_ENTRIES of them fill a value exactly.
        let bare = |seen_ms| MemberEntry::sign(&Identity::generate(), &t, &[], seen_ms).unwrap();
        let full: Vec<_> = (0..MAX_ENTRIES as u64).map(|i| bare(NOW - 1_000 * i)).collect();
        let ours = bare(NOW);
        assert_eq!(merge(&full, ours.clone(), &t, NOW, false), None);
        let merged = merge(&full, ours.clone(), &t, NOW, true).unwrap();
        assert_eq!(merged.len(), MAX_ENTRIES);
        assert_eq!(merged[0], ours);
        assert_eq!(&merged[1..], &full[..MAX_ENTRIES - 1], "the oldest entry is the one dropped");
        assert!(seal(&t.slot(1), 0, &merged, [0; NONCE_LEN]).is_ok());
    }
}
