//! Signed profiles: what a peer says about itself in a topic.
//!
//! In a topic each peer announces a [`Profile`]. Gossip hands a message on from
//! neighbour to neighbour (its `delivered_from` is the last relay, not the author), so a profile carries
//! its author's signature (domain `profile`) over its canonical bytes, and names the topics it is
//! meant for: a profile replayed into a topic it does not name is refused by [`Profile::verify_for`].
//! A node lists in an announce only the topic it is sent to, so a secret topic's name never reaches
//! another topic. The whole encoding fits one gossip message ([`MAX_PROFILE_BYTES`]).

use thiserror::Error;
use wopr_identity::{Identity, PublicId, SIGNATURE_LEN, Signature, verify};

use crate::MAX_SKEW_MS;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::invite::{MAX_HINT_LEN, MAX_HINTS};

/// The signature domain of profiles.
pub const PROFILE_DOMAIN: &str = "profile";

/// Longest topic name, in bytes.
pub const MAX_TOPIC_NAME: usize = 128;

/// Most topics one profile names.
pub const MAX_TOPICS: usize = 8;

/// Longest profile content (free-form JSON text, chosen by the owner or their AI), in bytes.
pub const MAX_CONTENT: usize = 2048;

/// Largest encoded profile: inside iroh-gossip's default 4,096-byte message with the announce's own
/// framing around it. The field limits together allow more, so the whole is checked too: a profile with
/// the longest content and topics leaves room for a few address hints.
pub const MAX_PROFILE_BYTES: usize = 3968;

/// Why a profile was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProfileError {
    /// The signature does not verify for the profile's key.
    #[error("the profile's signature does not verify")]
    BadSignature,
    /// The profile does not name the topic it arrived in.
    #[error("the profile is not meant for this topic")]
    WrongTopic,
    /// The profile is dated more than 5 minutes ahead of this node's clock.
    #[error("the profile is dated {ahead_ms} ms ahead of this node's clock")]
    FromTheFuture {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// A topic name is empty or longer than [`MAX_TOPIC_NAME`].
    #[error("a topic name must be 1 to {MAX_TOPIC_NAME} bytes")]
    BadTopicName,
    /// More than [`MAX_HINTS`] address hints, or one empty or longer than [`MAX_HINT_LEN`].
    #[error("a profile carries at most {MAX_HINTS} address hints of 1 to {MAX_HINT_LEN} bytes")]
    BadHints,
    /// More than [`MAX_TOPICS`] topics, or none.
    #[error("a profile names 1 to {MAX_TOPICS} topics, not {count}")]
    TopicCount {
        /// How many it named.
        count: usize,
    },
    /// The content is longer than [`MAX_CONTENT`].
    #[error("the profile content takes {len} bytes; at most {MAX_CONTENT} fit in an announce")]
    ContentTooLarge {
        /// Its size.
        len: usize,
    },
    /// The encoding is larger than [`MAX_PROFILE_BYTES`].
    #[error("the profile takes {len} bytes, more than the {MAX_PROFILE_BYTES} one gossip message holds")]
    TooLarge {
        /// Its encoded size.
        len: usize,
    },
    /// The bytes are not a profile.
    #[error("malformed profile: {0}")]
    Codec(#[from] CodecError),
    /// A friend message posted in the topic does not decode (see [`crate::friend`]).
    #[error("{0}")]
    Friend(crate::friend::FriendError),
}

/// What a peer says about itself in a topic, signed by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The author's key (the profile's `publicKey`; its short id is the `id`).
    pub author: PublicId,
    /// The author's X25519 key (`encryptPub`).
    pub encrypt_pub: [u8; 32],
    /// Free-form JSON text; public to everyone in the topic.
    pub content: String,
    /// The topics this profile is announced in.
    pub topics: Vec<String>,
    /// How to reach the author directly (socket addresses or a relay URL, as in invites), so a
    /// connect-request can go to it without the topic.
    pub hints: Vec<String>,
    /// When it was written, in milliseconds since the Unix epoch (`updated`).
    pub updated_ms: u64,
    /// The author's signature over [`Profile::signed_bytes`] (`sig`).
    pub signature: Signature,
}

impl Profile {
    /// A profile of `identity` for `topics`, signed, with no address hints.
    pub fn new(
        identity: &Identity,
        content: impl Into<String>,
        topics: Vec<String>,
        updated_ms: u64,
    ) -> Result<Profile, ProfileError> {
        Profile::with_hints(identity, content, topics, Vec::new(), updated_ms)
    }

    /// A profile of `identity` for `topics` with address `hints`, signed.
    pub fn with_hints(
        identity: &Identity,
        content: impl Into<String>,
        topics: Vec<String>,
        hints: Vec<String>,
        updated_ms: u64,
    ) -> Result<Profile, ProfileError> {
        let mut profile = Profile {
            author: identity.public_id(),
            encrypt_pub: identity.encrypt_pub(),
            content: content.into(),
            topics,
            hints,
            updated_ms,
            signature: [0; SIGNATURE_LEN],
        };
        profile.check_fields()?;
        let signed = profile.signed_bytes();
        let len = signed.len() + SIGNATURE_LEN;
        if len > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge { len });
        }
        profile.signature = identity.sign(PROFILE_DOMAIN, &signed);
        Ok(profile)
    }

    /// The canonical bytes the author signs: everything but the signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(self.author.as_bytes()).raw(&self.encrypt_pub).str(&self.content);
        w.list(&self.topics, |w, t| {
            w.str(t);
        });
        w.list(&self.hints, |w, h| {
            w.str(h);
        });
        w.u64(self.updated_ms);
    }

    /// The limits of every field (a decoder checks the fields' lengths as it reads). The limit of the
    /// whole is checked on the encoding, once: by `new` on the bytes it signs, by `parse` on its input.
    pub(crate) fn check_fields(&self) -> Result<(), ProfileError> {
        if self.content.len() > MAX_CONTENT {
            return Err(ProfileError::ContentTooLarge { len: self.content.len() });
        }
        if self.topics.is_empty() || self.topics.len() > MAX_TOPICS {
            return Err(ProfileError::TopicCount { count: self.topics.len() });
        }
        if self.topics.iter().any(|t| t.is_empty() || t.len() > MAX_TOPIC_NAME) {
            return Err(ProfileError::BadTopicName);
        }
        if self.hints.len() > MAX_HINTS || self.hints.iter().any(|h| h.is_empty() || h.len() > MAX_HINT_LEN) {
            return Err(ProfileError::BadHints);
        }
        Ok(())
    }

    /// Checks that the author signed this profile for `topic` (a name this node joined) and that it is
    /// not dated ahead of `now_ms` by more than the clock window. How old a profile may be is the
    /// caller's choice (it expires peers that fall silent).
    pub fn verify_for(&self, topic: &str, now_ms: u64) -> Result<(), ProfileError> {
        verify(&self.author, PROFILE_DOMAIN, &self.signed_bytes(), &self.signature)
            .map_err(|_| ProfileError::BadSignature)?;
        if !self.topics.iter().any(|t| t == topic) {
            return Err(ProfileError::WrongTopic);
        }
        let ahead_ms = self.updated_ms.saturating_sub(now_ms);
        if ahead_ms > MAX_SKEW_MS {
            return Err(ProfileError::FromTheFuture { ahead_ms });
        }
        Ok(())
    }

    /// Decodes a profile and checks its shape (not its signature: see [`Profile::verify_for`]).
    pub fn parse(bytes: &[u8]) -> Result<Profile, ProfileError> {
        if bytes.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge { len: bytes.len() });
        }
        // The decoder refuses trailing bytes, so `bytes` is the whole canonical encoding and its length
        // (checked above) is the profile's: no need to encode it again.
        let profile = Profile::from_bytes(bytes)?;
        profile.check_fields()?;
        Ok(profile)
    }
}

impl Encode for Profile {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for Profile {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Profile {
            author: PublicId(r.array()?),
            encrypt_pub: r.array()?,
            content: r.string("profile content", MAX_CONTENT)?,
            topics: r.list("topic list", MAX_TOPICS, 4, |r| r.string("topic name", MAX_TOPIC_NAME))?,
            hints: r.list("address hints", MAX_HINTS, 4, |r| r.string("address hint", MAX_HINT_LEN))?,
            updated_ms: r.u64()?,
            signature: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn alice() -> Identity {
        Identity::from_seeds([7; 32], [9; 32], 0)
    }

    fn profile(topics: &[&str]) -> Profile {
        let topics = topics.iter().map(|t| t.to_string()).collect();
        Profile::new(&alice(), r#"{"name":"Alice","skills":["review"]}"#, topics, NOW).unwrap()
    }

    #[test]
    fn a_topic_id_is_the_sha256_of_the_prefixed_name() {
        use crate::discovery::topic_id;
        // Computed independently: python3 -c "import hashlib; print(hashlib.sha256(b'wopr:topic:coffee').hexdigest())"
        assert_eq!(
            hex(&topic_id("coffee")),
            "2fa096a34c45ef8daf121c3c065059a8c06ef5740b7327ff85e2ca2ce596c0de"
        );
        assert_ne!(topic_id("coffee"), topic_id("Coffee"));
        assert_ne!(topic_id("coffee"), topic_id("coffee "));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn a_profile_round_trips_and_verifies_for_its_topic() {
        let p = profile(&["coffee"]);
        let back = Profile::parse(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
        back.verify_for("coffee", NOW).unwrap();
        assert_eq!(back.author, alice().public_id());
        assert_eq!(back.encrypt_pub, alice().encrypt_pub());
    }

    #[test]
    fn a_forged_or_altered_profile_is_refused() {
        let mut p = profile(&["coffee"]);
        p.content = r#"{"name":"Mallory"}"#.into();
        assert_eq!(p.verify_for("coffee", NOW), Err(ProfileError::BadSignature));
        let mut p = profile(&["coffee"]);
        p.author = Identity::from_seeds([8; 32], [9; 32], 0).public_id();
        assert_eq!(p.verify_for("coffee", NOW), Err(ProfileError::BadSignature));
        let mut p = profile(&["coffee"]);
        p.signature[10] ^= 1;
        assert_eq!(p.verify_for("coffee", NOW), Err(ProfileError::BadSignature));
        let mut p = profile(&["coffee"]);
        p.updated_ms += 1;
        assert_eq!(p.verify_for("coffee", NOW), Err(ProfileError::BadSignature));
    }

    #[test]
    fn a_profile_replayed_into_another_topic_is_refused() {
        let p = profile(&["coffee"]);
        assert_eq!(p.verify_for("tea", NOW), Err(ProfileError::WrongTopic));
        // Adding the topic breaks the signature.
        let mut moved = p.clone();
        moved.topics.push("tea".into());
        assert_eq!(moved.verify_for("tea", NOW), Err(ProfileError::BadSignature));
    }

    #[test]
    fn a_profile_from_the_future_is_refused_but_an_old_one_is_the_callers_call() {
        let p = profile(&["coffee"]);
        p.verify_for("coffee", NOW - MAX_SKEW_MS).unwrap();
        p.verify_for("coffee", NOW + 365 * 24 * 3_600_000).unwrap();
        assert_eq!(
            p.verify_for("coffee", NOW - MAX_SKEW_MS - 1),
            Err(ProfileError::FromTheFuture { ahead_ms: MAX_SKEW_MS + 1 })
        );
    }

    #[test]
    fn the_largest_profile_fits_one_gossip_message_and_one_byte_more_content_does_not_decode() {
        let topics: Vec<String> = (0..MAX_TOPICS).map(|i| format!("{i}").repeat(MAX_TOPIC_NAME)).collect();
        let hints = vec!["203.0.113.7:40123".to_string(), "[2001:db8::7]:40123".to_string()];
        let big = Profile::with_hints(&alice(), "x".repeat(MAX_CONTENT), topics.clone(), hints.clone(), NOW)
            .unwrap();
        let bytes = big.to_bytes();
        assert!(bytes.len() <= MAX_PROFILE_BYTES, "{}", bytes.len());
        Profile::parse(&bytes).unwrap().verify_for(&topics[0], NOW).unwrap();
        // The author cannot make a profile the others would not decode.
        let over = Profile::new(&alice(), "x".repeat(MAX_CONTENT + 1), topics.clone(), NOW);
        assert_eq!(over.unwrap_err(), ProfileError::ContentTooLarge { len: MAX_CONTENT + 1 });
        let mut nine = topics.clone();
        nine.push("one more".into());
        assert_eq!(
            Profile::new(&alice(), "{}", nine, NOW).unwrap_err(),
            ProfileError::TopicCount { count: 9 }
        );
        assert_eq!(
            Profile::new(&alice(), "{}", vec![], NOW).unwrap_err(),
            ProfileError::TopicCount { count: 0 }
        );
        let hints = (0..MAX_HINTS).map(|i| format!("{i}").repeat(MAX_HINT_LEN)).collect();
        let crowded = Profile::with_hints(&alice(), "x".repeat(MAX_CONTENT), topics.clone(), hints, NOW);
        assert!(matches!(crowded, Err(ProfileError::TooLarge { .. })), "{crowded:?}");
        let fits = Profile::new(&alice(), "x".repeat(MAX_CONTENT), vec!["coffee".into()], NOW).unwrap();
        let mut bytes = fits.to_bytes();
        // Announce one more byte of content than allowed: the decoder refuses it before reading it.
        let at = 64;
        bytes[at..at + 4].copy_from_slice(&u32::try_from(MAX_CONTENT + 1).unwrap().to_be_bytes());
        assert!(matches!(Profile::parse(&bytes), Err(ProfileError::Codec(CodecError::TooLong { .. }))));
        assert!(matches!(
            Profile::parse(&vec![0; MAX_PROFILE_BYTES + 1]),
            Err(ProfileError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_or_overlong_topic_names_are_refused() {
        let bad = |t: String| Profile::new(&alice(), "{}", vec![t], NOW).unwrap_err();
        assert_eq!(bad(String::new()), ProfileError::BadTopicName);
        assert_eq!(bad("t".repeat(MAX_TOPIC_NAME + 1)), ProfileError::BadTopicName);
    }

    #[test]
    fn a_profile_built_by_hand_from_the_layout_verifies() {
        // Written by a few lines of Python with PyNaCl from the layout in PROTOCOL.md (also a fuzz seed).
        let p = Profile::parse(include_bytes!("../../../../fuzz/corpus/profile/coffee")).unwrap();
        p.verify_for("coffee", 1_700_000_000_000).unwrap();
        assert_eq!((p.author, p.encrypt_pub), (alice().public_id(), [9; 32]));
        assert_eq!(p.hints, ["192.0.2.10:4433"]);
    }

    #[test]
    fn a_topic_count_the_input_cannot_hold_is_truncated_before_any_name_is_read() {
        // Each name takes at least its 4-byte length (PROTOCOL.md §1): 8 names need 32 bytes, so with
        // 20 left the count is refused at once, before the over-long first name could be noticed.
        let mut w = Writer::new();
        w.raw(&[1; 32]).raw(&[2; 32]).str("{}").u16(8).u32(129).raw(&[0; 16]);
        let err = Profile::parse(&w.into_bytes()).unwrap_err();
        assert!(matches!(err, ProfileError::Codec(CodecError::Truncated { .. })), "{err:?}");
    }

    #[test]
    fn trailing_or_truncated_bytes_are_refused() {
        let bytes = profile(&["coffee"]).to_bytes();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(Profile::parse(&longer), Err(ProfileError::Codec(_))));
        for cut in [1, 10, bytes.len() - 1] {
            assert!(matches!(Profile::parse(&bytes[..cut]), Err(ProfileError::Codec(_))), "cut at {cut}");
        }
    }
}
