//! Running the v3 handshake over a QUIC connection.
//!
//! The initiator opens the connection's first bidirectional stream, sends a `Hello` in a plain frame and
//! reads the `HelloAck` (or `Reject`); both then hold a [`Session`]. That stream carries nothing else:
//! every request afterwards opens its own stream, sealed with keys derived for that stream's id
//! (`Session::stream_channel`). Both sides check the handshake signer against the key the QUIC/TLS layer
//! authenticated.

use iroh::endpoint::Connection;
use wopr_identity::{Identity, PublicId};
use wopr_proto::handshake::{self, HandshakeError, HandshakeMessage, HandshakeRandom, Initiator, Session};
use wopr_proto::{Decode, Encode, ErrorCode};

use crate::endpoint::remote_id;
use crate::server::limits::truncate;
use crate::wire::{WireError, read_frame, write_frame};

/// Largest handshake frame accepted (a Hello with 16 versions is under 200 bytes; a Reject under 1.1 KiB).
const MAX_HANDSHAKE_FRAME: usize = 2048;

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeFailure {
    /// The protocol said no (bad signature, version, signer...).
    #[error("{0}")]
    Refused(#[from] HandshakeError),
    /// The bytes or the stream were wrong.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The connection failed while opening or accepting the stream.
    #[error("{0}")]
    Connection(#[from] iroh::endpoint::ConnectionError),
    /// The stream ended before the handshake did.
    #[error("stream ended during the handshake")]
    Ended,
}

impl HandshakeFailure {
    /// The code to report (the refusal's, or `Invalid` for garbage).
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            HandshakeFailure::Refused(e) => e.code(),
            _ => ErrorCode::Invalid,
        }
    }
}

/// Dials side: runs the handshake with `remote` on `conn` and returns the session.
pub(crate) async fn initiate(
    conn: &Connection,
    identity: &Identity,
    remote: PublicId,
) -> Result<Session, HandshakeFailure> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let (initiator, hello) =
        Initiator::start(identity, remote, HandshakeRandom::generate(), wopr_store::now_ms());
    write_frame(&mut send, &HandshakeMessage::Hello(hello).to_bytes()).await?;
    let _ = send.finish();
    let reply = read_frame(&mut recv, MAX_HANDSHAKE_FRAME).await?.ok_or(HandshakeFailure::Ended)?;
    let reply = HandshakeMessage::from_bytes(&reply).map_err(HandshakeError::from)?;
    Ok(finish(initiator, &reply)?)
}

fn finish(initiator: Initiator, reply: &HandshakeMessage) -> Result<Session, HandshakeError> {
    initiator.finish(reply, wopr_store::now_ms())
}

/// Accepting side: reads the Hello on the connection's first stream and answers it, with the clock
/// reading `now_ms`. On failure a `Reject` is sent (when the stream still works) before the error is
/// returned.
pub(crate) async fn respond(
    conn: &Connection,
    identity: &Identity,
    now_ms: u64,
) -> Result<Session, HandshakeFailure> {
    let remote = remote_id(conn);
    let (mut send, mut recv) = conn.accept_bi().await?;
    let outcome = async {
        let hello = read_frame(&mut recv, MAX_HANDSHAKE_FRAME).await?.ok_or(HandshakeFailure::Ended)?;
        let hello = match HandshakeMessage::from_bytes(&hello).map_err(HandshakeError::from)? {
            HandshakeMessage::Hello(h) => h,
            _ => return Err(HandshakeError::Unexpected { expected: "Hello" }.into()),
        };
        let random = HandshakeRandom::generate();
        Ok(handshake::respond(identity, &remote, &hello, random, now_ms)?)
    }
    .await;
    match outcome {
        Ok((ack, session)) => {
            write_frame(&mut send, &HandshakeMessage::HelloAck(ack).to_bytes()).await?;
            let _ = send.finish();
            Ok(session)
        }
        Err(e) => {
            let reject = match &e {
                HandshakeFailure::Refused(r) => r.to_reject(),
                other => handshake::Reject {
                    code: other.code(),
                    message: truncate(&other.to_string(), handshake::MAX_REJECT_MESSAGE),
                },
            };
            let _ = write_frame(&mut send, &HandshakeMessage::Reject(reject).to_bytes()).await;
            let _ = send.finish();
            Err(e)
        }
    }
}

/// Accepting side, refusing before any handshake work (the peer is over its request budget): answers
/// the Hello's stream with `reject` without reading or checking the Hello.
pub(crate) async fn refuse(conn: &Connection, reject: handshake::Reject) {
    let Ok((mut send, _recv)) = conn.accept_bi().await else { return };
    let _ = write_frame(&mut send, &HandshakeMessage::Reject(reject).to_bytes()).await;
    let _ = send.finish();
}
