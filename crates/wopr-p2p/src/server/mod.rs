//! The accepting side: connections, request streams, and the checks every request passes.
//!
//! Per connection: admission (connections per key and per kind, known peer or stranger, are capped), the
//! request budget, the v3 handshake on the first stream (signer = TLS-authenticated key), then one task
//! per request stream, keyed for that stream. Per stream, in order: the peer's request budget, opening
//! and decoding the sealed frame (a stranger's at most [`STRANGER_MAX_FRAME`]), `verify_from` (author =
//! connection key, signatures), the replay window, then the handler of the message type (the grant in
//! `access.json`, its own rate limit, the work). Every accepted or refused request is written to the
//! audit log, with the author's signature when there is one. A refusal is answered with an `Error`
//! naming the code and, for limits, when to retry.
//!
//! Budgets follow the peer, not the key it connects with: [`Inner::standing`] maps a key to the peer
//! whose grant or `peers.json` record answers to it (old keys within their grace period included).

pub(crate) mod limits;

mod claim;
mod connect;
pub(crate) mod friend;
mod inject;
mod rotation;

use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use tokio::task::JoinSet;
use wopr_identity::PublicId;
use wopr_proto::message::{Envelope, Message};
use wopr_store::{Decision, PayloadSummary};

use crate::endpoint::{self, remote_id};
use crate::handshake;
use crate::inner::{Audited, Inner, lock};
use crate::wire::{SealedStream, WireError};
use limits::{Refusal, Standing};

pub(crate) use connect::ASK_WAIT;
pub(crate) use inject::MAX_HOPS;
pub(crate) use rotation::ROTATION_GRACE_MS;

/// How long a client has to finish the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request stream may stay silent before its request arrives.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame a stranger may send. All it can ask for is a claim (an invite token of at most 32
/// sessions and 8 address hints: under 11 KiB), a connect-request (a profile of at most 3,968 bytes and
/// a short note) or a rotation (a few hundred bytes); a bigger frame from a key with no grant is refused
/// from its header, before its body is read.
pub(crate) const STRANGER_MAX_FRAME: usize = 16 * 1024;
/// How long a stranger's connection may stay open without its key becoming known (by claiming an
/// invite, or by a rotation into a grant), so strangers cannot sit on the few places they have.
const STRANGER_LIFETIME: Duration = Duration::from_secs(60);

/// The `wopr/3` protocol handler given to iroh's router.
#[derive(Debug, Clone)]
pub(crate) struct Handler(pub(crate) Arc<Inner>);

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        self.0.clone().serve_connection(conn).await;
        Ok(())
    }
}

/// The audit description of an envelope: its action, session, author signature with signed bytes, and
/// the digest and excerpt of its payload (the text of an inject or log, else the signed bytes).
pub(crate) fn audited(env: &Envelope, me: &PublicId) -> Audited {
    let (action, session, signature, text) = match &env.message {
        Message::Inject(m) => ("inject", Some(m.session.clone()), Some(m.signature.to_vec()), Some(&m.text)),
        Message::Log(m) => ("log", Some(m.session.clone()), Some(m.signature.to_vec()), Some(&m.text)),
        Message::Claim(m) => ("claim", None, Some(m.signature.to_vec()), None),
        Message::ConnectRequest(m) => ("connect-request", None, Some(m.signature.to_vec()), Some(&m.note)),
        Message::Rotation(r) => {
            let both = [r.old_sig.as_slice(), r.new_sig.as_slice()].concat();
            let signed = r.signed_bytes();
            return Audited {
                action: "rotation",
                session: None,
                signature: Some(both),
                payload: Some(PayloadSummary::of(&signed)),
                signed: Some(signed),
            };
        }
        other => (message_name(other), None, None, None),
    };
    let signed = env.signed_bytes(me);
    let payload = text.map(|t| t.as_bytes()).or(signed.as_deref()).map(PayloadSummary::of);
    Audited { action, session, signature, signed, payload }
}

fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Inject(_) => "inject",
        Message::Log(_) => "log",
        Message::InjectDelta { .. } => "inject-delta",
        Message::InjectDone { .. } => "inject-done",
        Message::ToolEvent { .. } => "tool-event",
        Message::Claim(_) => "claim",
        Message::ClaimAccepted { .. } => "claim-accepted",
        Message::Rotation(_) => "rotation",
        Message::Error(_) => "error",
        Message::ConnectRequest(_) => "connect-request",
        Message::ConnectResponse { .. } => "connect-response",
        Message::FriendRequest(_) => "friend-request",
        Message::FriendAccept(_) => "friend-accept",
    }
}

/// Sends a refusal on a stream and ends our side of it.
pub(crate) async fn send_refusal(stream: &mut SealedStream, refusal: &Refusal) {
    let _ = stream.send_message(Message::Error(refusal.to_message())).await;
    stream.finish();
}

/// How long a refused peer is given to read its Reject and close the connection itself.
const REJECT_GRACE: Duration = Duration::from_secs(1);

/// Lets `answer` (a Reject on its way) reach an honest peer, which then closes the connection itself;
/// after at most [`REJECT_GRACE`], closes it with `code`.
async fn close_after(conn: &Connection, answer: impl Future<Output = ()>, code: u32, reason: &[u8]) {
    let answered = async {
        answer.await;
        conn.closed().await;
    };
    let _ = tokio::time::timeout(REJECT_GRACE, answered).await;
    conn.close(VarInt::from_u32(code), reason);
}

impl Inner {
    async fn serve_connection(self: Arc<Self>, conn: Connection) {
        let remote = remote_id(&conn);
        let mut standing = self.standing(&remote).await;
        // Over the connection caps, close at once: a refused connection holds nothing here.
        let registered = match self.registry.admit(remote, standing.is_known(), &conn) {
            Ok(registered) => registered,
            Err(crowded) => {
                let whose = if standing.is_known() { "peers" } else { "unknown peers" };
                let refusal = Refusal::new(
                    wopr_proto::ErrorCode::RateLimited,
                    format!("{} connections of {whose} are open; retry later", crowded.open),
                );
                self.record_flood(&remote, &refusal).await;
                conn.close(crate::conns::crowded_code(), b"too many connections");
                return;
            }
        };
        if standing.is_known() {
            endpoint::widen(&conn);
        }
        // A handshake counts against the peer's request budget, so reconnect floods stop here too.
        let budget = lock(&self.limits).request(&standing, self.now());
        if let Err(refusal) = budget {
            self.record_flood(&remote, &refusal).await;
            // Say which limit and when to retry in a Reject, then close; an honest peer closes first.
            let reject = wopr_proto::handshake::Reject {
                code: refusal.code,
                message: limits::truncate(&refusal.message, wopr_proto::handshake::MAX_REJECT_MESSAGE),
            };
            let code = u32::from(refusal.code.as_u8());
            close_after(&conn, handshake::refuse(&conn, reject), code, b"rate limited").await;
            return;
        }
        let answer = handshake::respond(&conn, &self.identity, self.now());
        let session = match tokio::time::timeout(HANDSHAKE_TIMEOUT, answer).await {
            Ok(Ok(session)) => session,
            outcome => {
                let reason = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "handshake timed out".to_string(),
                };
                let what = Audited { action: "handshake", ..Audited::default() };
                self.record(&remote, &what, Decision::Refused, Some(reason)).await;
                // `respond` already sent the Reject.
                close_after(&conn, async {}, 3, b"handshake failed").await;
                return;
            }
        };
        registered.ready();
        let _ = self.connected.send(remote);
        self.clone().deliver_owed_to(remote);
        let mut session = session;
        let mut tasks = JoinSet::new();
        let strangers_end = tokio::time::sleep(STRANGER_LIFETIME);
        tokio::pin!(strangers_end);
        loop {
            tokio::select! {
                accepted = conn.accept_bi() => {
                    let Ok((send, recv)) = accepted else { break };
                    // Grants change while a connection is open: a claim or a rotation makes a stranger
                    // known, a revoke or the end of a grace period makes it a stranger again.
                    standing = self.standing(&remote).await;
                    self.promote(&remote, &conn, &standing);
                    match session.stream_channel(u64::from(send.id())) {
                        Ok(keys) => {
                            let stream = SealedStream::new(send, recv, keys);
                            tasks.spawn(self.clone().serve_stream(remote, standing, conn.clone(), stream));
                        }
                        Err(e) => tracing::debug!(%e, "refusing a stream whose keys were already used"),
                    }
                }
                () = &mut strangers_end, if !standing.is_known() => {
                    standing = self.standing(&remote).await;
                    if !self.promote(&remote, &conn, &standing) {
                        conn.close(VarInt::from_u32(0), b"unknown peers' connections are short-lived");
                        break;
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        // The connection is gone (closed, revoked or lost): stop its work, including AI turns.
        tasks.abort_all();
    }

    /// Gives a connection whose key became known a known peer's budget. Returns whether it is known.
    fn promote(&self, remote: &PublicId, conn: &Connection, standing: &Standing) -> bool {
        standing.is_known() && self.registry.promote(remote, conn)
    }

    /// Starts delivering owed rotation records to `peer`, if any, now that it is reachable.
    fn deliver_owed_to(self: Arc<Self>, peer: PublicId) {
        if !self.may_owe.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        tokio::spawn(async move {
            if self.with_outbox(move |o| o.pending(Some(&peer)).is_ok_and(|p| !p.is_empty())).await {
                let _ = self.deliver_to(&peer).await;
            }
        });
    }

    async fn serve_stream(
        self: Arc<Self>,
        remote: PublicId,
        standing: Standing,
        conn: Connection,
        mut stream: SealedStream,
    ) {
        let budget = lock(&self.limits).request(&standing, self.now());
        if let Err(refusal) = budget {
            self.record_flood(&remote, &refusal).await;
            let _ = stream.recv.stop(VarInt::from_u32(4));
            send_refusal(&mut stream, &refusal).await;
            return;
        }
        let max = if standing.is_known() { wopr_proto::frame::MAX_FRAME } else { STRANGER_MAX_FRAME };
        let env = match tokio::time::timeout(REQUEST_TIMEOUT, stream.recv_within(max)).await {
            Ok(Ok(Some(env))) => env,
            Ok(Ok(None)) => return stream.finish(),
            Ok(Err(e)) if e.is_peer_fault() => {
                let hint = match e {
                    WireError::TooLarge { .. } if !standing.is_known() => {
                        " (a key with no grant may only claim an invite or deliver a rotation)"
                    }
                    _ => "",
                };
                let refusal = Refusal::new(e.code(), format!("bad frame: {e}{hint}"));
                let what = Audited { action: "frame", ..Audited::default() };
                self.record(&remote, &what, Decision::Refused, Some(refusal.message.clone())).await;
                let _ = stream.recv.stop(VarInt::from_u32(3));
                return send_refusal(&mut stream, &refusal).await;
            }
            Ok(Err(_)) => return,
            Err(_) => {
                let refusal = Refusal::invalid("no request arrived within 30 s");
                return send_refusal(&mut stream, &refusal).await;
            }
        };
        let what = audited(&env, &self.me);
        if let Err(refusal) = self.handle(remote, standing, &conn, &env, &what, &mut stream).await {
            self.record(&remote, &what, Decision::Refused, Some(refusal.message.clone())).await;
            send_refusal(&mut stream, &refusal).await;
        }
    }

    /// A flood refusal is audited once per minute and peer, not once per stream.
    async fn record_flood(&self, remote: &PublicId, refusal: &Refusal) {
        if lock(&self.limits).audit_flood(remote, self.now()) {
            let what = Audited { action: "request", ..Audited::default() };
            self.record(remote, &what, Decision::Refused, Some(refusal.message.clone())).await;
        }
    }

    async fn handle(
        self: &Arc<Self>,
        remote: PublicId,
        standing: Standing,
        conn: &Connection,
        env: &Envelope,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        env.verify_from(&self.me, &remote).map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        lock(&self.limits).replay(&standing, &env.nonce, env.timestamp_ms, self.now())?;
        match &env.message {
            Message::Inject(m) => self.inject(remote, &standing, conn, m, what, stream).await,
            Message::Log(m) => self.log(remote, &standing, conn, m, what, stream).await,
            Message::Claim(m) => self.claim(remote, &standing, conn, m, what, stream).await,
            Message::ConnectRequest(m) => {
                self.connect_request(remote, &standing, conn, m, what, stream).await
            }
            Message::FriendRequest(m) => self.friend_request(remote, &standing, conn, m, stream).await,
            Message::FriendAccept(m) => self.friend_accept(remote, &standing, conn, m, stream).await,
            Message::Rotation(r) => self.rotation(remote, conn, r, what, stream).await,
            other => Err(Refusal::invalid(format!("a {} is not a request", message_name(other)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use wopr_identity::Identity;
    use wopr_proto::Encode;
    use wopr_proto::channel::TAG_LEN;
    use wopr_proto::frame::HEADER_LEN;
    use wopr_proto::invite::{Capabilities, MAX_HINT_LEN, MAX_HINTS, MAX_SESSIONS, NewInvite};
    use wopr_proto::message::{Claim, Envelope, Message};

    use super::STRANGER_MAX_FRAME;
    use crate::endpoint::STRANGER_WINDOW;

    #[test]
    fn the_largest_claim_fits_a_strangers_frame_and_window() {
        let (issuer, subject) = (Identity::generate(), Identity::generate());
        let sessions = (0..MAX_SESSIONS).map(|i| format!("{i:0>255}")).collect();
        let mut invite = NewInvite::new(subject.public_id(), sessions, Capabilities::INJECT, 0, [7; 16]);
        invite.hints = (0..MAX_HINTS).map(|i| format!("{i:0>width$}", width = MAX_HINT_LEN)).collect();
        let token = invite.sign(&issuer).unwrap();
        let mut env = Envelope::new([1; 16], 0, Message::Claim(Claim::new(token)));
        env.sign(&subject, &issuer.public_id()).unwrap();
        let sealed = HEADER_LEN + env.to_bytes().len() + TAG_LEN;
        assert!(sealed <= STRANGER_MAX_FRAME, "a claim of {sealed} bytes");
        // The connection window holds it with the Hello (a frame of at most 2 KiB) before anything is read.
        let hello = HEADER_LEN + 2048;
        assert!(sealed + hello <= STRANGER_WINDOW as usize, "{sealed} + {hello} bytes");
    }
}
