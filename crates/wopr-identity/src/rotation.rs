//! Key rotation records: proof that the holder of an old key moved to a new one.
//!
//! A record is signed by the old key (so peers know the owner agreed) and by the new key (so nobody can
//! rotate someone onto a key they do not hold). Signed bytes are canonical, not JSON:
//! `old(32) || new(32) || new_encrypt_pub(32) || timestamp_ms(u64 BE) || reason(u8)`.

use serde::{Deserialize, Serialize};

use crate::{Identity, IdentityError, PublicId, Signature, verify};

/// Signature domain of rotation records.
pub const ROTATION_DOMAIN: &str = "rotation";

/// Why the keys were rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationReason {
    /// Routine rotation.
    Scheduled,
    /// The old key may be known to someone else.
    Compromise,
    /// Moving to a new key format or algorithm.
    Upgrade,
}

impl RotationReason {
    /// The byte that stands for this reason in signed bytes and on the wire: 1, 2 or 3.
    pub fn code(self) -> u8 {
        match self {
            RotationReason::Scheduled => 1,
            RotationReason::Compromise => 2,
            RotationReason::Upgrade => 3,
        }
    }

    /// The reason for a wire code (see [`RotationReason::code`]).
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Scheduled),
            2 => Some(Self::Compromise),
            3 => Some(Self::Upgrade),
            _ => None,
        }
    }

    /// Parses `scheduled`, `compromise` or `upgrade`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(Self::Scheduled),
            "compromise" => Some(Self::Compromise),
            "upgrade" => Some(Self::Upgrade),
            _ => None,
        }
    }
}

/// A key rotation, signed by both keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationRecord {
    /// The key being retired.
    pub old_key: PublicId,
    /// The key taking over.
    pub new_key: PublicId,
    /// The new X25519 key, hex.
    #[serde(with = "hex32")]
    pub new_encrypt_pub: [u8; 32],
    /// Why.
    pub reason: RotationReason,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Signature by the old key.
    #[serde(with = "hex64")]
    pub old_sig: Signature,
    /// Signature by the new key.
    #[serde(with = "hex64")]
    pub new_sig: Signature,
}

impl RotationRecord {
    /// A record of moving from `old` to `new`, signed by both. [`Identity::rotate`] is the usual way to get
    /// one; this form takes an existing new identity (test vectors use fixed seeds).
    pub fn new(old: &Identity, new: &Identity, reason: RotationReason, now_ms: u64) -> Self {
        let mut r = RotationRecord {
            old_key: old.public_id(),
            new_key: new.public_id(),
            new_encrypt_pub: new.encrypt_pub(),
            reason,
            timestamp: now_ms,
            old_sig: [0; 64],
            new_sig: [0; 64],
        };
        let bytes = r.signed_bytes();
        r.old_sig = old.sign(ROTATION_DOMAIN, &bytes);
        r.new_sig = new.sign(ROTATION_DOMAIN, &bytes);
        r
    }

    /// The canonical bytes both signatures cover.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 * 3 + 9);
        b.extend_from_slice(self.old_key.as_bytes());
        b.extend_from_slice(self.new_key.as_bytes());
        b.extend_from_slice(&self.new_encrypt_pub);
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.push(self.reason.code());
        b
    }

    /// Checks both signatures.
    pub fn verify(&self) -> Result<(), IdentityError> {
        let bytes = self.signed_bytes();
        verify(&self.old_key, ROTATION_DOMAIN, &bytes, &self.old_sig)?;
        verify(&self.new_key, ROTATION_DOMAIN, &bytes, &self.new_sig)
    }
}

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(v))
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                hex::decode(&s)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| serde::de::Error::custom(concat!("expected ", $n, " hex bytes")))
            }
        }
    };
}
hex_array!(hex32, 32);
hex_array!(hex64, 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_record_is_signed_by_old_and_new_key() {
        let old = Identity::generate();
        let (new, rec) = old.rotate(RotationReason::Scheduled, 1_700_000_000_000);
        assert_eq!(rec.old_key, old.public_id());
        assert_eq!(rec.new_key, new.public_id());
        assert!(rec.verify().is_ok());
    }

    #[test]
    fn tampered_rotation_record_fails() {
        let old = Identity::generate();
        let (_, rec) = old.rotate(RotationReason::Compromise, 5);
        let mut forged = rec.clone();
        forged.new_key = Identity::generate().public_id();
        assert!(forged.verify().is_err());
        let mut later = rec.clone();
        later.timestamp += 1;
        assert!(later.verify().is_err());
        let mut reason = rec;
        reason.reason = RotationReason::Upgrade;
        assert!(reason.verify().is_err());
    }

    #[test]
    fn rotation_record_json_round_trip() {
        let (_, rec) = Identity::generate().rotate(RotationReason::Upgrade, 9);
        let json = serde_json::to_string(&rec).unwrap();
        let back: RotationRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
        assert!(back.verify().is_ok());
    }
}
