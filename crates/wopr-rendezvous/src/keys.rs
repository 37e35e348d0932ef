//! Everything derived from a topic name: the per-topic binding and, per time slot, the BEP44 signing
//! key, the value encryption key and the salts of the slot's buckets.
//!
//! All of it comes from one HKDF-SHA-256 extract of the name, so two nodes that know the name agree
//! without talking, and the DHT sees only outputs of HKDF (a public key, salts, ciphertext), never the
//! name. Keys change every slot ([`crate::SLOT_MS`]), so the DHT cannot link one minute's values to the
//! next minute's.

use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{BUCKETS, RecordError, SLOT_MS};

/// The HKDF-Extract salt: versions and separates this use of a topic name from every other.
pub const KDF_SALT: &[u8] = b"wopr/v3 rendezvous";

/// Length of each bucket's BEP44 salt.
pub const SALT_LEN: usize = 16;

/// The time slot `now_ms` falls in (minutes since the Unix epoch).
pub fn slot_of(now_ms: u64) -> u64 {
    now_ms / SLOT_MS
}

/// The secret root of one topic, from its name. Zeroized on drop.
pub struct TopicKeys {
    prk: Zeroizing<[u8; 32]>,
}

impl TopicKeys {
    /// Derives the topic's root key. The name obeys discovery's limits (1 to 128 bytes).
    pub fn derive(name: &str) -> Result<TopicKeys, RecordError> {
        if name.is_empty() || name.len() > wopr_proto::discovery::MAX_TOPIC_NAME {
            return Err(RecordError::BadTopicName);
        }
        let (prk, _) = Hkdf::<Sha256>::extract(Some(KDF_SALT), name.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&prk);
        Ok(TopicKeys { prk: out })
    }

    fn expand<const N: usize>(&self, info: &[u8]) -> Zeroizing<[u8; N]> {
        let mut okm = Zeroizing::new([0u8; N]);
        // Invariants, not input checks: a 32-byte PRK is SHA-256's output size, and N is at most 32
        // bytes here, far below HKDF's 8,160-byte limit.
        Hkdf::<Sha256>::from_prk(&*self.prk)
            .expect("PRK is 32 bytes")
            .expand(info, &mut *okm)
            .expect("short HKDF output is within limits");
        okm
    }

    /// The 32 bytes every member signs along with its entry (info `"bind"`), so an entry signed for one
    /// topic is refused in another. Never published: a verifier derives it from the name.
    pub fn binding(&self) -> [u8; 32] {
        *self.expand::<32>(b"bind")
    }

    /// The keys of time slot `slot`.
    pub fn slot(&self, slot: u64) -> SlotKeys {
        let info = |label: &[u8]| [label, &slot.to_be_bytes()].concat();
        let seed = self.expand::<32>(&info(b"sign"));
        let mut salts = [[0u8; SALT_LEN]; BUCKETS];
        for (bucket, salt) in salts.iter_mut().enumerate() {
            // BUCKETS is a small constant; the cast cannot truncate.
            let b = bucket as u8;
            *salt = *self.expand::<SALT_LEN>(&[info(b"salt").as_slice(), &[b]].concat());
        }
        SlotKeys {
            slot,
            signing: SigningKey::from_bytes(&seed),
            seal: self.expand::<32>(&info(b"seal")),
            salts,
        }
    }
}

/// One slot's keys: who may write the BEP44 items (everyone who knows the name) and how their values
/// are sealed. The secret parts zeroize on drop.
pub struct SlotKeys {
    slot: u64,
    signing: SigningKey,
    seal: Zeroizing<[u8; 32]>,
    salts: [[u8; SALT_LEN]; BUCKETS],
}

impl SlotKeys {
    /// The slot these keys belong to.
    pub fn slot(&self) -> u64 {
        self.slot
    }

    /// The BEP44 public key the slot's items are stored under (what the DHT sees).
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The BEP44 signing key (shared by everyone who knows the name; it authorises nothing in WOPR).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The BEP44 salt of `bucket` (`bucket < BUCKETS`; larger values wrap around).
    pub fn salt(&self, bucket: usize) -> &[u8; SALT_LEN] {
        &self.salts[bucket % BUCKETS]
    }

    /// The AES-256-GCM key of the slot's values (secret from everyone who does not know the name).
    pub fn seal_key(&self) -> &[u8; 32] {
        &self.seal
    }

    /// The bucket a member tries first in this slot: spreads members over the buckets, and puts a
    /// member back in the same bucket when it refreshes within the slot.
    pub fn home_bucket(&self, member: &wopr_identity::PublicId) -> usize {
        let mut h = Sha256::new();
        h.update(b"wopr/v3 rendezvous bucket");
        h.update(self.slot.to_be_bytes());
        h.update(member.as_bytes());
        usize::from(h.finalize()[0]) % BUCKETS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_and_slot_give_the_same_keys() {
        let a = TopicKeys::derive("t").unwrap().slot(7);
        let b = TopicKeys::derive("t").unwrap().slot(7);
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.seal_key(), b.seal_key());
        assert_eq!(a.salts, b.salts);
        assert_eq!(TopicKeys::derive("t").unwrap().binding(), TopicKeys::derive("t").unwrap().binding());
    }

    #[test]
    fn keys_differ_per_name_and_per_slot_and_per_bucket() {
        let t = TopicKeys::derive("t").unwrap();
        let u = TopicKeys::derive("u").unwrap();
        let (t7, t8, u7) = (t.slot(7), t.slot(8), u.slot(7));
        for other in [&t8, &u7] {
            assert_ne!(t7.public_key(), other.public_key());
            assert_ne!(t7.seal_key(), other.seal_key());
            for b in 0..BUCKETS {
                assert_ne!(t7.salt(b), other.salt(b));
            }
        }
        assert_ne!(t.binding(), u.binding());
        for a in 0..BUCKETS {
            for b in a + 1..BUCKETS {
                assert_ne!(t7.salt(a), t7.salt(b));
            }
        }
        // No output doubles as another (the labels separate them).
        assert_ne!(t7.seal_key(), &t.binding());
        assert_ne!(&t7.signing_key().to_bytes(), t7.seal_key());
    }

    #[test]
    fn topic_names_outside_discovery_limits_are_refused() {
        assert_eq!(TopicKeys::derive("").err(), Some(RecordError::BadTopicName));
        let long = "x".repeat(wopr_proto::discovery::MAX_TOPIC_NAME + 1);
        assert_eq!(TopicKeys::derive(&long).err(), Some(RecordError::BadTopicName));
        assert!(TopicKeys::derive(&long[1..]).is_ok());
    }

    #[test]
    fn slots_are_whole_minutes() {
        assert_eq!(slot_of(0), 0);
        assert_eq!(slot_of(59_999), 0);
        assert_eq!(slot_of(60_000), 1);
        assert_eq!(slot_of(1_700_000_000_000), 28_333_333);
    }

    #[test]
    fn home_buckets_spread_members() {
        let keys = TopicKeys::derive("t").unwrap().slot(1);
        let mut seen = [false; BUCKETS];
        for i in 0..64u8 {
            seen[keys.home_bucket(&wopr_identity::PublicId([i; 32]))] = true;
        }
        assert!(seen.iter().all(|s| *s), "64 keys should land in every one of {BUCKETS} buckets");
    }
}
