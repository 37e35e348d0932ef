//! Domain-separated Ed25519 signatures.
//!
//! Every WOPR signature is over `"wopr/v3" 0x00 <domain> 0x00 <message>`, so a signature made for one
//! purpose (an invite, a frame transcript, a rotation) can never be replayed as another.

use crate::{IdentityError, PublicId};

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signature.
pub type Signature = [u8; SIGNATURE_LEN];

/// The exact bytes that get signed for `domain` and `message`.
pub fn domain_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + domain.len() + message.len());
    out.extend_from_slice(b"wopr/v3\0");
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// Verifies a domain-separated signature by `signer` (strict verification: no malleable signatures).
pub fn verify(
    signer: &PublicId,
    domain: &str,
    message: &[u8],
    signature: &Signature,
) -> Result<(), IdentityError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(signer.as_bytes())
        .map_err(|_| IdentityError::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&domain_bytes(domain, message), &sig).map_err(|_| IdentityError::BadSignature)
}
