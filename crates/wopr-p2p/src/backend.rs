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

/// A question about content a stranger wrote, for the owner's AI (discovery's layers 3 and 4). The text
/// is the stranger's: the judging call gets no tools and only its yes/no answer is used.
#[derive(Debug, Clone, Copy)]
pub enum Judgement<'a> {
    /// Layer 3: is this profile, seen in `topic`, a legitimate agent or junk?
    Profile {
        /// The topic it was announced in.
        topic: &'a str,
        /// The profile's free-form content.
        content: &'a str,
    },
    /// Layer 4 with `discover.accept = ai`: should this connect-request be accepted?
    Connect {
        /// Where the two met.
        topic: &'a str,
        /// The requester's profile content.
        content: &'a str,
        /// The requester's note ("why").
        note: &'a str,
    },
}

/// A judge's answer: yes or no, and why (in a few words, shown to the owner or sent to the requester).
pub type Ruling = (bool, String);

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

    /// Asks the owner's AI to rule on `question`, with no tools. With `capable_only`, only a capable
    /// provider may judge (not the small embedded model, whose yes/no would be noise). `Ok(None)` when no
    /// AI is set up to judge (the default): the caller then treats the layer as off.
    fn judge<'a>(
        &'a self,
        question: Judgement<'a>,
        capable_only: bool,
    ) -> BoxFuture<'a, Result<Option<Ruling>, String>> {
        let _ = (question, capable_only);
        Box::pin(async { Ok(None) })
    }
}
