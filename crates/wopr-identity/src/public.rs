//! Public identity: the 32-byte Ed25519 key, its text forms, and the short id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// A WOPR id: an Ed25519 public key. Printed as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicId(pub [u8; 32]);

impl PublicId {
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `wopr://<64 hex>`, the full id as the seeds print it.
    pub fn to_url(&self) -> String {
        format!("wopr://{}", self.to_hex())
    }

    /// First 8 hex characters of SHA-256 of the key.
    pub fn short(&self) -> String {
        short_id(&self.0)
    }

    /// Parses `<64 hex>` or `wopr://<64 hex>`; the key must be a valid Ed25519 point.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let t = s.trim();
        let hexpart = t.strip_prefix("wopr://").unwrap_or(t);
        let bytes: [u8; 32] = hex::decode(hexpart)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| IdentityError::InvalidPublicKey(s.to_string()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| IdentityError::InvalidPublicKey(s.to_string()))?;
        Ok(PublicId(bytes))
    }

    /// Whether `s` looks like a full id (so callers can tell it from a short id or a name).
    pub fn looks_like_full_id(s: &str) -> bool {
        let h = s.strip_prefix("wopr://").unwrap_or(s);
        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// Short id of a public key: first 8 hex characters of SHA-256(key).
pub fn short_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(&digest[..4])
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicId({})", self.short())
    }
}

impl FromStr for PublicId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for PublicId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PublicId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PublicId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for PublicId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[0-9a-f]{64}$"))
            .description(Some("A WOPR id: an Ed25519 public key, 64 lowercase hex characters"))
            .into()
    }
}

impl utoipa::ToSchema for PublicId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_id_is_first_8_hex_of_sha256() {
        // SHA-256 of 32 zero bytes starts with 66687aad.
        assert_eq!(short_id(&[0u8; 32]), "66687aad");
    }

    #[test]
    fn parse_accepts_hex_and_url_and_rejects_garbage() {
        let id = crate::Identity::generate().public_id();
        assert_eq!(PublicId::parse(&id.to_hex()).unwrap(), id);
        assert_eq!(PublicId::parse(&id.to_url()).unwrap(), id);
        assert!(PublicId::parse("wopr://xyz").is_err());
        assert!(PublicId::parse(&"a".repeat(63)).is_err());
        assert!(PublicId::parse("").is_err());
    }
}
