use thiserror::Error;

/// What can go wrong with keys, ids and signatures.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    /// A public key or id string could not be parsed.
    #[error("invalid public key {0:?}: expected 64 hex characters or wopr://<64 hex>")]
    InvalidPublicKey(String),
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The identity file holds something we cannot use.
    #[error("identity file is malformed: {0}")]
    Malformed(String),
}
