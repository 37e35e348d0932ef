//! The v3 handshake: `Hello` / `HelloAck`, version negotiation, and the session key schedule.
//!
//! The initiator sends [`Hello`]; the responder checks it and answers [`HelloAck`] (or [`Reject`]).
//! Both carry the supported versions, the static Ed25519 key, a fresh ephemeral X25519 key, a timestamp
//! and a 32-byte random nonce, and are signed:
//!
//! - the `Hello` signature (domain `handshake hello`) covers the Hello's fields and the key of the
//!   responder it is meant for, so it cannot be presented to anyone else;
//! - the `HelloAck` signature (domain `handshake ack`) covers the whole transcript: the complete Hello
//!   (with its signature), then the Ack's fields: both messages, both ephemerals, the versions offered
//!   and the version chosen.
//!
//! Each side checks that the signer is the key the transport authenticated (iroh's endpoint key *is* the
//! WOPR id), that the timestamp is within [`MAX_SKEW_MS`], and that the version was not downgraded.
//! Keys come from [`derive_keys`]: HKDF-SHA256 over X25519(ephemeral, ephemeral) salted with the
//! transcript hash. The ephemeral secrets are consumed by the Diffie-Hellman and zeroized on drop.
//!
//! No I/O and no ambient clock or RNG: the caller passes `now_ms` and a [`HandshakeRandom`].

mod messages;
mod session;
#[cfg(test)]
mod tests;

pub use messages::{ACK_DOMAIN, HELLO_DOMAIN, HandshakeMessage, Hello, HelloAck, MAX_REJECT_MESSAGE, Reject};
pub use session::{Role, Session, SessionKeys, derive_keys, transcript_hash};

use thiserror::Error;
use wopr_identity::{Identity, PublicId};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::CodecError;
use crate::{ErrorCode, MAX_SKEW_MS};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 3;

/// Every version this crate accepts, best first. There is deliberately no fallback to older versions.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Most versions a Hello or HelloAck may list.
pub const MAX_VERSIONS: usize = 16;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The Hello offered no version we speak.
    #[error("peer offers protocol versions {offered:?}; this node speaks only {SUPPORTED_VERSIONS:?}")]
    NoCommonVersion {
        /// Versions the peer offered.
        offered: Vec<u16>,
    },
    /// The HelloAck chose a version that was not offered, or not the best one both sides speak.
    #[error(
        "peer chose protocol version {chosen}, but the best version both sides offered is {expected:?} (downgrade refused)"
    )]
    Downgrade {
        /// The version the peer chose.
        chosen: u16,
        /// The version it should have chosen (`None` if the lists have nothing in common).
        expected: Option<u16>,
    },
    /// The message's timestamp is more than five minutes from our clock.
    #[error("handshake timestamp {timestamp_ms} is more than 5 minutes from local time {now_ms}")]
    ClockSkew {
        /// The peer's timestamp.
        timestamp_ms: u64,
        /// Our clock.
        now_ms: u64,
    },
    /// The handshake was signed by a key other than the one the transport authenticated.
    #[error("handshake signed by {signer:?} but the connection is from {expected:?}")]
    SignerMismatch {
        /// The transport-authenticated key.
        expected: PublicId,
        /// The key in the message.
        signer: PublicId,
    },
    /// The signature does not verify.
    #[error("handshake signature does not verify")]
    BadSignature,
    /// The peer's ephemeral key is a low-order point (the shared secret would be all zeros).
    #[error("peer's ephemeral key is invalid")]
    WeakEphemeral,
    /// A message arrived that this step of the handshake does not expect.
    #[error("unexpected handshake message: expected {expected}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
    },
    /// The peer refused the handshake.
    #[error("peer refused the handshake ({code:?}): {message}")]
    Rejected {
        /// The peer's reason.
        code: ErrorCode,
        /// The peer's explanation.
        message: String,
    },
    /// The message could not be decoded.
    #[error("malformed handshake message: {0}")]
    Malformed(#[from] CodecError),
}

impl HandshakeError {
    /// The error code to report to the peer and the CLI (see [`ErrorCode`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            HandshakeError::NoCommonVersion { .. } | HandshakeError::Downgrade { .. } => {
                ErrorCode::VersionMismatch
            }
            HandshakeError::SignerMismatch { .. } => ErrorCode::Unauthorized,
            HandshakeError::Rejected { code, .. } => *code,
            _ => ErrorCode::Invalid,
        }
    }

    /// The [`Reject`] a responder sends back before closing.
    pub fn to_reject(&self) -> Reject {
        Reject { code: self.code(), message: self.to_string() }
    }
}

/// The randomness one handshake consumes: the ephemeral X25519 secret and the 32-byte nonce.
/// The secret is zeroized when this value (or the handshake state holding it) is dropped.
pub struct HandshakeRandom {
    ephemeral_secret: Zeroizing<[u8; 32]>,
    nonce: [u8; 32],
}

impl HandshakeRandom {
    /// Explicit randomness (tests and vectors use fixed values; real callers use [`Self::generate`]).
    pub fn new(ephemeral_secret: [u8; 32], nonce: [u8; 32]) -> Self {
        HandshakeRandom { ephemeral_secret: Zeroizing::new(ephemeral_secret), nonce }
    }

    /// Fresh randomness from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::new(wopr_identity::random_bytes(), wopr_identity::random_bytes())
    }

    fn into_parts(self) -> (StaticSecret, [u8; 32], [u8; 32]) {
        let secret = StaticSecret::from(*self.ephemeral_secret);
        let public = PublicKey::from(&secret).to_bytes();
        (secret, public, self.nonce)
    }
}

impl std::fmt::Debug for HandshakeRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandshakeRandom(<redacted>)")
    }
}

fn check_clock(timestamp_ms: u64, now_ms: u64) -> Result<(), HandshakeError> {
    if timestamp_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(HandshakeError::ClockSkew { timestamp_ms, now_ms });
    }
    Ok(())
}

/// The best version in both `ours` and `theirs` (`ours` is ordered best first).
fn best_common(ours: &[u16], theirs: &[u16]) -> Option<u16> {
    ours.iter().copied().find(|v| theirs.contains(v))
}

/// The initiator after sending its Hello, waiting for the HelloAck.
pub struct Initiator {
    responder: PublicId,
    ephemeral: StaticSecret,
    hello: Hello,
}

impl Initiator {
    /// Starts a handshake with `responder` (the key the transport is dialing). Returns the state to keep
    /// and the Hello to send.
    pub fn start(
        identity: &Identity,
        responder: PublicId,
        random: HandshakeRandom,
        now_ms: u64,
    ) -> (Self, Hello) {
        let (ephemeral, ephemeral_pub, nonce) = random.into_parts();
        let mut hello = Hello {
            versions: SUPPORTED_VERSIONS.to_vec(),
            static_key: identity.public_id(),
            ephemeral: ephemeral_pub,
            timestamp_ms: now_ms,
            nonce,
            signature: [0; 64],
        };
        hello.sign(identity, &responder);
        (Initiator { responder, ephemeral, hello: hello.clone() }, hello)
    }

    /// The Hello this initiator sent.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Checks the responder's answer and derives the session. A [`Reject`] becomes
    /// [`HandshakeError::Rejected`]. Consumes the state, so the ephemeral secret is dropped either way.
    pub fn finish(self, reply: &HandshakeMessage, now_ms: u64) -> Result<Session, HandshakeError> {
        let ack = match reply {
            HandshakeMessage::HelloAck(ack) => ack,
            HandshakeMessage::Reject(r) => {
                return Err(HandshakeError::Rejected { code: r.code, message: r.message.clone() });
            }
            HandshakeMessage::Hello(_) => return Err(HandshakeError::Unexpected { expected: "HelloAck" }),
        };
        if ack.static_key != self.responder {
            return Err(HandshakeError::SignerMismatch { expected: self.responder, signer: ack.static_key });
        }
        // Downgrade protection: the choice must be the best version both sides list, and one we offered.
        let expected = best_common(&self.hello.versions, &ack.versions);
        if expected != Some(ack.version) {
            return Err(HandshakeError::Downgrade { chosen: ack.version, expected });
        }
        check_clock(ack.timestamp_ms, now_ms)?;
        ack.verify(&self.hello)?;
        Session::establish(Role::Initiator, ack.version, self.responder, self.ephemeral, &self.hello, ack)
    }
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator").field("responder", &self.responder).finish_non_exhaustive()
    }
}

/// Answers a Hello. `remote` is the key the transport authenticated for this connection; the Hello must be
/// signed by it and addressed to `identity`. On success returns the HelloAck to send and the session; on
/// failure the caller should send [`HandshakeError::to_reject`] and close.
pub fn respond(
    identity: &Identity,
    remote: &PublicId,
    hello: &Hello,
    random: HandshakeRandom,
    now_ms: u64,
) -> Result<(HelloAck, Session), HandshakeError> {
    let version = best_common(SUPPORTED_VERSIONS, &hello.versions)
        .ok_or_else(|| HandshakeError::NoCommonVersion { offered: hello.versions.clone() })?;
    if hello.static_key != *remote {
        return Err(HandshakeError::SignerMismatch { expected: *remote, signer: hello.static_key });
    }
    check_clock(hello.timestamp_ms, now_ms)?;
    hello.verify(&identity.public_id())?;
    let (ephemeral, ephemeral_pub, nonce) = random.into_parts();
    let mut ack = HelloAck {
        version,
        versions: SUPPORTED_VERSIONS.to_vec(),
        static_key: identity.public_id(),
        ephemeral: ephemeral_pub,
        timestamp_ms: now_ms,
        nonce,
        signature: [0; 64],
    };
    ack.sign(identity, hello);
    let session = Session::establish(Role::Responder, version, *remote, ephemeral, hello, &ack)?;
    Ok((ack, session))
}
