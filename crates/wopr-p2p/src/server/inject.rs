//! Inbound `Inject` and `Log`: the grant check, the peer's limit, then the AI turn (streamed back) or the
//! log entry.

use std::sync::Arc;

use iroh::endpoint::Connection;
use tokio::sync::mpsc;
use wopr_identity::PublicId;
use wopr_proto::ErrorCode;
use wopr_proto::frame::MAX_PAYLOAD;
use wopr_proto::message::{DoneStatus, ErrorMessage, Inject, Log, Message};
use wopr_store::{Capability, Decision};

use super::limits::{Kind, Refusal, Standing, truncate};
use crate::inner::{Audited, Inner, lock};
use crate::wire::SealedStream;

/// Most P2P hops a piece of work may have travelled before it is refused.
pub const MAX_HOPS: u8 = 8;

/// Largest piece of answer sent in one `InjectDelta` (longer deltas are split).
const MAX_DELTA: usize = 64 * 1024;

/// Deltas buffered between the AI turn and the stream.
const DELTA_BUFFER: usize = 64;

impl Inner {
    pub(super) async fn inject(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &Inject,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        if m.hop_count > MAX_HOPS {
            return Err(Refusal::rejected(format!(
                "this request already travelled {} P2P hops; at most {MAX_HOPS} are allowed",
                m.hop_count
            )));
        }
        // The grant first: a key without one gets no inject counter (see `limits`).
        let caps = self.capabilities(&remote, &m.session).await.map_err(Refusal::rejected)?;
        if caps.is_empty() {
            return Err(no_grant(&m.session));
        }
        lock(&self.limits).check(Kind::Inject, standing, self.now())?;
        check_payload(&m.text)?;
        self.touch_grant(&remote, conn);
        if !caps.contains(&Capability::Inject) {
            let note = Some("message capability only: logged without AI".into());
            self.record_soon(&remote, what, Decision::Accepted, note);
            return self.run_log(remote, &m.session, &m.text, stream).await;
        }
        self.record_soon(&remote, what, Decision::Accepted, None);
        self.run_turn(remote, m, stream).await;
        Ok(())
    }

    pub(super) async fn log(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &Log,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        // Either capability lets a peer add to the conversation; `inject` only adds the AI answer.
        if self.capabilities(&remote, &m.session).await.map_err(Refusal::rejected)?.is_empty() {
            return Err(no_grant(&m.session));
        }
        lock(&self.limits).check(Kind::Log, standing, self.now())?;
        check_payload(&m.text)?;
        self.touch_grant(&remote, conn);
        self.record_soon(&remote, what, Decision::Accepted, None);
        self.run_log(remote, &m.session, &m.text, stream).await
    }

    async fn run_log(
        &self,
        remote: PublicId,
        session: &str,
        text: &str,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        let logged = self.backend.log(remote, session, text).await;
        match logged {
            Ok(()) => {
                let _ = stream.send_message(Message::InjectDone { status: DoneStatus::Logged }).await;
                stream.finish();
            }
            Err(e) => failed(stream, &e).await,
        }
        Ok(())
    }

    /// Runs the AI turn, forwarding its deltas in order as they come. If the peer goes away the turn's
    /// future is dropped, which cancels it.
    async fn run_turn(&self, remote: PublicId, m: &Inject, stream: &mut SealedStream) {
        let (tx, mut rx) = mpsc::channel::<String>(DELTA_BUFFER);
        let mut turn = self.backend.inject(remote, &m.session, &m.text, m.hop_count, tx);
        let mut open = true;
        let outcome = loop {
            tokio::select! {
                biased;
                delta = rx.recv(), if open => match delta {
                    Some(text) => {
                        if send_delta(stream, &text).await.is_err() {
                            return; // The peer is gone; dropping `turn` cancels it.
                        }
                    }
                    None => open = false,
                },
                outcome = &mut turn => break outcome,
            }
        };
        // Deltas sent just before the turn ended.
        while let Ok(text) = rx.try_recv() {
            if send_delta(stream, &text).await.is_err() {
                return;
            }
        }
        match outcome {
            Ok(()) => {
                let _ = stream.send_message(Message::InjectDone { status: DoneStatus::Completed }).await;
                stream.finish();
            }
            Err(e) => failed(stream, &e).await,
        }
    }
}

fn no_grant(session: &str) -> Refusal {
    Refusal::unauthorized(format!(
        "no grant for session {session:?}: ask its owner for an invite (`wopr invite <your key> {session}`)"
    ))
}

fn check_payload(text: &str) -> Result<(), Refusal> {
    if text.len() > MAX_PAYLOAD {
        return Err(Refusal::invalid(format!("payload of {} bytes exceeds the 1 MiB limit", text.len())));
    }
    Ok(())
}

async fn send_delta(stream: &mut SealedStream, text: &str) -> Result<(), crate::wire::WireError> {
    let mut rest = text;
    while !rest.is_empty() {
        let piece = truncate(rest, MAX_DELTA);
        // A single character is never longer than MAX_DELTA, so every piece makes progress.
        rest = &rest[piece.len()..];
        stream.send_message(Message::InjectDelta { text: piece }).await?;
    }
    Ok(())
}

async fn failed(stream: &mut SealedStream, error: &str) {
    let message = truncate(&format!("the session failed: {error}"), wopr_proto::message::MAX_ERROR_MESSAGE);
    let error = ErrorMessage { code: ErrorCode::Rejected, message, retry_after_ms: None };
    let _ = stream.send_message(Message::Error(error)).await;
    stream.finish();
}
