//! WOPR identity: who an installation is.
//!
//! An identity is an Ed25519 signing key (the WOPR id, also the P2P endpoint key) and an X25519 encryption
//! key (`encryptPub`). This crate owns the keys, their public forms, the short id, domain-separated
//! signatures, and key-rotation records. It does no I/O: `wopr-store` reads and writes `identity.json`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod keys;
mod public;
mod rotation;
mod signing;

pub use error::IdentityError;
pub use keys::{Identity, IdentityFile};
pub use public::{PublicId, short_id};
pub use rotation::{RotationReason, RotationRecord};
pub use signing::{SIGNATURE_LEN, Signature, domain_bytes, verify};

/// Fills `buf` with bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not recoverable for a crypto tool; getrandom only fails on broken platforms.
    getrandom::fill(&mut buf).expect("operating system random number generator failed");
    buf
}
