//! The accepting side: connections, request streams, and the checks every request passes.
//!
//! Per connection: the v3 handshake on the first stream (signer = TLS-authenticated key), then one task
//! per request stream, keyed for that stream. Per stream, in order: the peer's request budget, opening
//! and decoding the sealed frame, `verify_from` (author = connection key, signatures), the replay window,
//! then the handler of the message type (its own rate limit, the grant in `access.json`, the work). Every
//! accepted or refused request is written to the audit log, with the author's signature when there is
//! one. A refusal is answered with an `Error` naming the code and, for limits, when to retry.

pub(crate) mod limits;

mod claim;
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

use crate::endpoint::remote_id;
use crate::handshake;
use crate::inner::{Audited, Inner, lock};
use crate::wire::SealedStream;
use limits::Refusal;

pub(crate) use inject::MAX_HOPS;
pub(crate) use rotation::ROTATION_GRACE_MS;

/// How long a client has to finish the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request stream may stay silent before its request arrives.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
        // A handshake counts against the peer's request budget, so reconnect floods stop here too.
        let budget = lock(&self.limits).request(&remote, wopr_store::now_ms());
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
        let session =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake::respond(&conn, &self.identity)).await {
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
        let _registered = self.registry.add(remote, &conn);
        self.clone().deliver_owed_to(remote);
        let mut session = session;
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = conn.accept_bi() => {
                    let Ok((send, recv)) = accepted else { break };
                    match session.stream_channel(u64::from(send.id())) {
                        Ok(keys) => {
                            let stream = SealedStream::new(send, recv, keys);
                            tasks.spawn(self.clone().serve_stream(remote, conn.clone(), stream));
                        }
                        Err(e) => tracing::debug!(%e, "refusing a stream whose keys were already used"),
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        // The connection is gone (closed, revoked or lost): stop its work, including AI turns.
        tasks.abort_all();
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

    async fn serve_stream(self: Arc<Self>, remote: PublicId, conn: Connection, mut stream: SealedStream) {
        let now = wopr_store::now_ms();
        let budget = lock(&self.limits).request(&remote, now);
        if let Err(refusal) = budget {
            self.record_flood(&remote, &refusal).await;
            let _ = stream.recv.stop(VarInt::from_u32(4));
            send_refusal(&mut stream, &refusal).await;
            return;
        }
        let env = match tokio::time::timeout(REQUEST_TIMEOUT, stream.recv()).await {
            Ok(Ok(Some(env))) => env,
            Ok(Ok(None)) => return stream.finish(),
            Ok(Err(e)) if e.is_peer_fault() => {
                let refusal = Refusal::new(e.code(), format!("bad frame: {e}"));
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
        if let Err(refusal) = self.handle(remote, &conn, &env, &what, &mut stream).await {
            self.record(&remote, &what, Decision::Refused, Some(refusal.message.clone())).await;
            send_refusal(&mut stream, &refusal).await;
        }
    }

    /// A flood refusal is audited once per minute and peer, not once per stream.
    async fn record_flood(&self, remote: &PublicId, refusal: &Refusal) {
        if lock(&self.limits).audit_flood(remote, wopr_store::now_ms()) {
            let what = Audited { action: "request", ..Audited::default() };
            self.record(remote, &what, Decision::Refused, Some(refusal.message.clone())).await;
        }
    }

    async fn handle(
        self: &Arc<Self>,
        remote: PublicId,
        conn: &Connection,
        env: &Envelope,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        env.verify_from(&self.me, &remote).map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        lock(&self.limits).replay(&remote, &env.nonce, env.timestamp_ms, wopr_store::now_ms())?;
        match &env.message {
            Message::Inject(m) => self.inject(remote, conn, m, what, stream).await,
            Message::Log(m) => self.log(remote, conn, m, what, stream).await,
            Message::Claim(m) => self.claim(remote, conn, m, what, stream).await,
            Message::Rotation(r) => self.rotation(remote, conn, r, what, stream).await,
            other => Err(Refusal::invalid(format!("a {} is not a request", message_name(other)))),
        }
    }
}
