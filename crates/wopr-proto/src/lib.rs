//! WOPR protocol v3, sans-IO.
//!
//! Everything two WOPR nodes say to each other, as pure code: the canonical encoding ([`codec`]), length-
//! prefixed frames ([`frame`]), the authenticated key exchange ([`handshake`]), the AES-256-GCM channel
//! ([`channel`]), application messages ([`message`]), invite tokens ([`invite`]), discovery's topic ids
//! and signed profiles ([`discovery`]), friend requests and accepts ([`friend`]), the replay window ([`replay`]) and rate limits ([`ratelimit`]). There are no sockets, tasks or clocks here: the caller
//! (the `wopr-p2p` transport) passes bytes in, takes bytes out, and supplies the time (`now_ms`,
//! milliseconds since the Unix epoch) and randomness. `docs/PROTOCOL.md` specifies the bytes, and
//! `docs/vectors/v3.json` pins them.
//!
//! A connection, in order:
//! 1. initiator: [`handshake::Initiator::start`], send the [`handshake::Hello`] in a frame;
//! 2. responder: [`handshake::respond`] with the transport-authenticated remote key, send the
//!    [`handshake::HelloAck`] (or [`handshake::Reject`]);
//! 3. initiator: [`handshake::Initiator::finish`]; both now hold a [`handshake::Session`];
//! 4. each side takes a [`channel::SealingKey`] / [`channel::OpeningKey`] pair from the session and
//!    exchanges sealed frames whose plaintext is a [`message::Envelope`]; the receiver runs
//!    [`message::Envelope::verify_from`], its [`replay::ReplayWindow`] and its [`ratelimit::RateLimiter`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod codec;
pub mod discovery;
pub mod frame;
pub mod friend;
pub mod handshake;
pub mod invite;
pub mod message;
pub mod ratelimit;
pub mod replay;

pub use codec::{CodecError, Decode, Encode};
pub use message::ErrorCode;

/// Largest accepted distance between a peer's timestamp and the local clock: 5 minutes.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// The QUIC ALPN of protocol v3.
pub const ALPN: &[u8] = b"wopr/3";
