//! The dialing side: connections to peers (reused), and one request per stream with its replies.

use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::ConnectionError;
use wopr_identity::PublicId;
use wopr_proto::ErrorCode;
use wopr_proto::message::{Envelope, Message};

use crate::P2pError;
use crate::conns::{OpenError, PeerConn, crowded_code, revoked_code};
use crate::endpoint::endpoint_addr;
use crate::handshake::{self, HandshakeFailure};
use crate::inner::Inner;
use crate::server::HANDSHAKE_TIMEOUT;
use crate::wire::{SealedStream, WireError, envelope};

/// How long connecting to a peer may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer to a claim, log or rotation.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an inject's answer may pause between two pieces (a local model can be slow to start).
pub(crate) const INJECT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How a request ended well: the final message (`InjectDone` or `ClaimAccepted`).
pub(crate) type Reply = Message;

fn lost(peer: &PublicId, e: &ConnectionError) -> P2pError {
    match e {
        ConnectionError::ApplicationClosed(close) if close.error_code == revoked_code() => P2pError::refused(
            ErrorCode::Unauthorized,
            format!("{} closed the connection: access revoked", peer.short()),
        ),
        ConnectionError::ApplicationClosed(close) if close.error_code == crowded_code() => P2pError::refused(
            ErrorCode::RateLimited,
            format!("{} has too many connections open; retry later", peer.short()),
        ),
        other => P2pError::ConnectionLost { peer: peer.short(), reason: other.to_string() },
    }
}

fn wire_error(peer: &PublicId, e: WireError) -> P2pError {
    match e.connection_error() {
        Some(c) => lost(peer, c),
        None if e.is_peer_fault() => P2pError::Protocol { peer: peer.short(), reason: e.to_string() },
        None => P2pError::ConnectionLost { peer: peer.short(), reason: e.to_string() },
    }
}

fn handshake_error(peer: &PublicId, e: HandshakeFailure) -> P2pError {
    match e {
        HandshakeFailure::Refused(r) => {
            P2pError::refused(r.code(), format!("handshake with {}: {r}", peer.short()))
        }
        HandshakeFailure::Connection(c) => lost(peer, &c),
        other => P2pError::Protocol { peer: peer.short(), reason: format!("handshake: {other}") },
    }
}

impl Inner {
    /// The connection to `peer`, reusing an open one, else dialing with `hints` (added to the address
    /// lookup) and running the handshake. A fresh connection first delivers what the outbox owes the peer.
    pub(crate) async fn connection(
        self: &Arc<Self>,
        peer: &PublicId,
        hints: &[String],
    ) -> Result<Arc<PeerConn>, P2pError> {
        let fresh = {
            let slot = self.pool.slot(peer);
            let mut slot = slot.lock().await;
            if let Some(pc) = slot.as_ref().filter(|pc| pc.is_open()) {
                return Ok(pc.clone());
            }
            let addr = endpoint_addr(peer, hints)?;
            if !addr.is_empty() {
                self.lookup.add_endpoint_info(addr.clone());
            }
            let offline = |reason: String| P2pError::PeerOffline { peer: peer.short(), reason };
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.endpoint.connect(addr, wopr_proto::ALPN))
                .await
                .map_err(|_| offline(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
                .map_err(|e| offline(e.to_string()))?;
            let session =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake::initiate(&conn, &self.identity, *peer))
                    .await
                    .map_err(|_| offline("handshake timed out".into()))?
                    .map_err(|e| handshake_error(peer, e))?;
            let pc = Arc::new(PeerConn::new(conn, session));
            self.pool.mark_live(peer, &pc.conn);
            *slot = Some(pc.clone());
            pc
        };
        match self.deliver_on(peer, &fresh).await {
            Ok(d) => tracing::debug!(peer = %peer.short(), ?d, "delivered owed messages"),
            Err(e) => tracing::debug!(peer = %peer.short(), %e, "owed messages stay queued"),
        }
        Ok(fresh)
    }

    /// Sends `message` (signed for `peer` if it is an author-signed type) on a new stream and reads the
    /// replies: `InjectDelta`s go to `on_delta`, an `Error` becomes [`P2pError::Refused`], and the final
    /// message is returned. `idle` bounds the wait for each reply.
    pub(crate) async fn request(
        self: &Arc<Self>,
        peer: &PublicId,
        hints: &[String],
        message: Message,
        idle: Duration,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, P2pError> {
        let mut stream = self.open_stream(peer, hints).await?;
        let reply = self.exchange(peer, &mut stream, message, idle, on_delta).await;
        stream.finish();
        if reply.is_ok() {
            self.touch_peer(peer);
        }
        reply
    }

    /// A request stream on the pooled connection; a stale pooled connection is replaced once.
    pub(crate) async fn open_stream(
        self: &Arc<Self>,
        peer: &PublicId,
        hints: &[String],
    ) -> Result<SealedStream, P2pError> {
        let mut retried = false;
        loop {
            let pc = self.connection(peer, hints).await?;
            match pc.open().await {
                Ok(stream) => return Ok(stream),
                Err(OpenError::Connection(e))
                    if !retried
                        && !matches!(&e, ConnectionError::ApplicationClosed(c) if c.error_code == revoked_code()) =>
                {
                    tracing::debug!(%e, peer = %peer.short(), "pooled connection is gone; reconnecting");
                    self.pool.forget(peer, iroh::endpoint::VarInt::from_u32(0), b"stale");
                    retried = true;
                }
                Err(OpenError::Connection(e)) => return Err(lost(peer, &e)),
                Err(OpenError::Keys(e)) => {
                    return Err(P2pError::Protocol { peer: peer.short(), reason: e.to_string() });
                }
            }
        }
    }

    /// One request and its replies on an open stream.
    pub(crate) async fn exchange(
        &self,
        peer: &PublicId,
        stream: &mut SealedStream,
        message: Message,
        idle: Duration,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, P2pError> {
        let mut env = envelope(message);
        if env.message.is_author_signed() {
            env.sign(&self.identity, peer).map_err(|e| P2pError::Invalid(e.to_string()))?;
        }
        if let Err(e) = stream.send(&env).await {
            // A peer that stops reading a request (too large for what this key may send) answers why.
            if e.is_stopped()
                && let Ok(Ok(Some(Envelope { message: Message::Error(refusal), .. }))) =
                    tokio::time::timeout(idle, stream.recv()).await
            {
                return Err(P2pError::Refused {
                    code: refusal.code,
                    message: refusal.message,
                    retry_after_ms: refusal.retry_after_ms,
                });
            }
            return Err(wire_error(peer, e));
        }
        // Our request is complete; the peer reads a clean end after it.
        stream.finish();
        loop {
            let next = tokio::time::timeout(idle, stream.recv())
                .await
                .map_err(|_| P2pError::ConnectionLost {
                    peer: peer.short(),
                    reason: format!("no answer for {} s", idle.as_secs()),
                })?
                .map_err(|e| wire_error(peer, e))?;
            let Some(reply) = next else {
                return Err(P2pError::Protocol {
                    peer: peer.short(),
                    reason: "the stream ended without an answer".into(),
                });
            };
            match reply.message {
                Message::InjectDelta { text } => on_delta(&text),
                Message::ToolEvent { .. } => {}
                Message::Error(e) => {
                    return Err(P2pError::Refused {
                        code: e.code,
                        message: e.message,
                        retry_after_ms: e.retry_after_ms,
                    });
                }
                done @ (Message::InjectDone { .. }
                | Message::ClaimAccepted { .. }
                | Message::ConnectResponse { .. }
                | Message::FriendAccept(_)) => return Ok(done),
                other => {
                    return Err(P2pError::Protocol {
                        peer: peer.short(),
                        reason: format!("unexpected reply of type {}", other.type_byte()),
                    });
                }
            }
        }
    }
}
