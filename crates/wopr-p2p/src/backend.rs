//! The session side of inbound work: what the node calls when a peer's request is accepted.
//!
//! The daemon implements [`SessionBackend`] with the real agent. Everything arriving here came from a
//! P2P peer, so the turn must run at trust level `untrusted` (sandboxed tools, no host access), and
//! a turn with `hop_count > 0` must not start another outgoing P2P inject.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use wopr_identity::PublicId;

/// A boxed, sendable future (keeps [`SessionBackend`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The trust level every P2P peer's turn runs at.
pub const PEER_TRUST: &str = "untrusted";

/// Runs accepted peer requests against local sessions.
pub trait SessionBackend: Send + Sync + 'static {
    /// Runs one AI turn in `session` with `text` from peer `from`, as trust [`PEER_TRUST`]. Each piece of
    /// the answer goes to `deltas` as it is generated (the node streams them to the peer in order); the
    /// turn ends when the future resolves. `Err` carries a message for the peer, so it must not reveal
    /// local secrets. If the peer goes away the future is dropped, which should cancel the turn.
    fn inject<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
        hop_count: u8,
        deltas: mpsc::Sender<String>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Appends `text` from peer `from` to `session`'s conversation with no AI answer (capability
    /// `message`).
    fn log<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}
