//! The secret half of an identity, and its on-disk form.

use std::fmt;

use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::rotation::{RotationReason, RotationRecord};
use crate::{IdentityError, PublicId, Signature, domain_bytes, random_bytes};

/// An installation's keys. Secret keys are zeroized on drop and never printed.
pub struct Identity {
    signing: ed25519_dalek::SigningKey,
    encryption: x25519_dalek::StaticSecret,
    created_ms: u64,
}

impl Identity {
    /// Fresh random keys.
    pub fn generate() -> Self {
        Self::from_seeds(random_bytes::<32>(), random_bytes::<32>(), 0)
    }

    /// Keys from fixed seeds (test vectors use this). The seed arrays are consumed and zeroized.
    pub fn from_seeds(mut sign_seed: [u8; 32], mut enc_seed: [u8; 32], created_ms: u64) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&sign_seed);
        let encryption = x25519_dalek::StaticSecret::from(enc_seed);
        sign_seed.zeroize();
        enc_seed.zeroize();
        Identity { signing, encryption, created_ms }
    }

    /// Sets the creation time (milliseconds since the Unix epoch).
    pub fn with_created(mut self, created_ms: u64) -> Self {
        self.created_ms = created_ms;
        self
    }

    /// The public signing key: the WOPR id.
    pub fn public_id(&self) -> PublicId {
        PublicId(self.signing.verifying_key().to_bytes())
    }

    /// The public X25519 key (`encryptPub`).
    pub fn encrypt_pub(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.encryption).to_bytes()
    }

    /// Creation time in milliseconds since the Unix epoch.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// The Ed25519 secret seed, for handing to a transport that uses the same key (iroh).
    pub fn signing_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.signing.to_bytes())
    }

    /// Signs `message` under `domain` (see [`domain_bytes`]).
    pub fn sign(&self, domain: &str, message: &[u8]) -> Signature {
        self.signing.sign(&domain_bytes(domain, message)).to_bytes()
    }

    /// An Ed25519 JWS signature (RFC 7515, `alg: EdDSA`) over `<protected>.<payload>`, both base64url,
    /// for documents other tools verify (the A2A agent card). `None` unless both parts are base64url:
    /// the signed bytes then hold no `/` or NUL, so they can never be a WOPR message, whose signed
    /// bytes all start `wopr/v3\0` (see [`domain_bytes`]).
    pub fn sign_jws(&self, protected: &str, payload: &str) -> Option<Signature> {
        let b64url =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !b64url(protected) || !b64url(payload) {
            return None;
        }
        Some(self.signing.sign(format!("{protected}.{payload}").as_bytes()).to_bytes())
    }

    /// X25519 Diffie-Hellman with our static encryption key.
    pub fn diffie_hellman(&self, their_public: &[u8; 32]) -> zeroize::Zeroizing<[u8; 32]> {
        let shared = self.encryption.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        zeroize::Zeroizing::new(shared.to_bytes())
    }

    /// Makes a new identity and a rotation record signed by both the old (`self`) and the new key.
    pub fn rotate(&self, reason: RotationReason, now_ms: u64) -> (Identity, RotationRecord) {
        let next = Identity::generate().with_created(now_ms);
        let record = RotationRecord::new(self, &next, reason, now_ms);
        (next, record)
    }

    /// The on-disk form, with `rotations` carried over from the previous file.
    pub fn to_file(&self, rotations: Vec<RotationRecord>) -> IdentityFile {
        IdentityFile {
            version: 3,
            public_key: self.public_id().to_hex(),
            private_key: hex::encode(self.signing.to_bytes()),
            encrypt_pub: hex::encode(self.encrypt_pub()),
            encrypt_priv: hex::encode(self.encryption.to_bytes()),
            created: self.created_ms,
            rotations,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.public_id().short())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `identity.json`: the keys as hex, the creation time, and every rotation this identity went through.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityFile {
    /// Format version (3).
    pub version: u32,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Ed25519 secret seed, hex.
    pub private_key: String,
    /// X25519 public key, hex.
    pub encrypt_pub: String,
    /// X25519 secret key, hex.
    pub encrypt_priv: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created: u64,
    /// Rotation records, oldest first; the last one's `new_key` is this file's key.
    #[serde(default)]
    pub rotations: Vec<RotationRecord>,
}

impl IdentityFile {
    /// Rebuilds the keys, checking that the public halves match the secret ones.
    pub fn to_identity(&self) -> Result<Identity, IdentityError> {
        let sign_seed = decode32(&self.private_key, "privateKey")?;
        let enc_seed = decode32(&self.encrypt_priv, "encryptPriv")?;
        let id = Identity::from_seeds(sign_seed, enc_seed, self.created);
        if id.public_id().to_hex() != self.public_key.to_ascii_lowercase() {
            return Err(IdentityError::Malformed("publicKey does not match privateKey".into()));
        }
        if hex::encode(id.encrypt_pub()) != self.encrypt_pub.to_ascii_lowercase() {
            return Err(IdentityError::Malformed("encryptPub does not match encryptPriv".into()));
        }
        Ok(id)
    }
}

fn decode32(s: &str, field: &str) -> Result<[u8; 32], IdentityError> {
    let mut v = hex::decode(s).map_err(|_| IdentityError::Malformed(format!("{field} is not hex")))?;
    let out: Result<[u8; 32], _> = v.as_slice().try_into();
    v.zeroize();
    out.map_err(|_| IdentityError::Malformed(format!("{field} is not 32 bytes")))
}

impl Drop for IdentityFile {
    fn drop(&mut self) {
        self.private_key.zeroize();
        self.encrypt_priv.zeroize();
    }
}

impl fmt::Debug for IdentityFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityFile")
            .field("public_key", &self.public_key)
            .field("encrypt_pub", &self.encrypt_pub)
            .field("private_key", &"<redacted>")
            .field("encrypt_priv", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_secret_material() {
        let id = Identity::generate();
        let file = id.to_file(vec![]);
        let secret = file.private_key.clone();
        let enc_secret = file.encrypt_priv.clone();
        for shown in [format!("{id:?}"), format!("{file:?}")] {
            assert!(!shown.contains(&secret), "{shown}");
            assert!(!shown.contains(&enc_secret), "{shown}");
            assert!(shown.contains("redacted"));
        }
    }

    #[test]
    fn file_round_trip_keeps_keys() {
        let id = Identity::generate().with_created(42);
        let json = serde_json::to_string(&id.to_file(vec![])).unwrap();
        let back: IdentityFile = serde_json::from_str(&json).unwrap();
        let id2 = back.to_identity().unwrap();
        assert_eq!(id.public_id(), id2.public_id());
        assert_eq!(id.encrypt_pub(), id2.encrypt_pub());
        assert_eq!(id2.created_ms(), 42);
    }

    #[test]
    fn mismatched_public_key_is_rejected() {
        let a = Identity::generate().to_file(vec![]);
        let mut b = Identity::generate().to_file(vec![]);
        b.public_key = a.public_key.clone();
        assert!(matches!(b.to_identity(), Err(IdentityError::Malformed(_))));
    }

    #[test]
    fn signatures_are_domain_separated() {
        let id = Identity::generate();
        let sig = id.sign("invite", b"hello");
        assert!(crate::verify(&id.public_id(), "invite", b"hello", &sig).is_ok());
        assert!(crate::verify(&id.public_id(), "rotation", b"hello", &sig).is_err());
        assert!(crate::verify(&id.public_id(), "invite", b"hellO", &sig).is_err());
        let other = Identity::generate();
        assert!(crate::verify(&other.public_id(), "invite", b"hello", &sig).is_err());
    }

    #[test]
    fn dh_agrees_both_ways() {
        let a = Identity::generate();
        let b = Identity::generate();
        assert_eq!(*a.diffie_hellman(&b.encrypt_pub()), *b.diffie_hellman(&a.encrypt_pub()));
    }
}
