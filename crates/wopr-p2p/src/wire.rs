//! Frames on QUIC streams, and sealed envelopes on top of them.
//!
//! A frame is a 4-byte length and a body (`wopr_proto::frame`). The length is checked against the limit
//! before a byte of the body is read, so an oversized frame costs the receiver nothing. After the
//! handshake every frame on a stream is sealed with that stream's keys and holds one
//! [`Envelope`].

use iroh::endpoint::{ReadError, ReadExactError, RecvStream, SendStream, WriteError};
use thiserror::Error;
use wopr_proto::channel::{ChannelError, OpeningKey, SealingKey};
use wopr_proto::frame::{self, FrameError, HEADER_LEN, MAX_FRAME};
use wopr_proto::message::{Envelope, Message};
use wopr_proto::{CodecError, Decode, Encode, ErrorCode};

/// Why a frame could not be read or written.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// The header announced a body over the limit; nothing of it was read.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The sealed frame did not open (forged, replayed, reordered or garbage).
    #[error("{0}")]
    Channel(#[from] ChannelError),
    /// The frame's plaintext is not a valid message.
    #[error("malformed message: {0}")]
    Decode(#[from] CodecError),
    /// Reading failed (stream reset, connection lost).
    #[error("{0}")]
    Read(#[from] ReadError),
    /// Writing failed (stream stopped, connection lost).
    #[error("{0}")]
    Write(#[from] WriteError),
}

impl WireError {
    /// The error code to send back, for errors caused by what the peer sent.
    pub(crate) fn code(&self) -> ErrorCode {
        ErrorCode::Invalid
    }

    /// Whether the peer sent something bad (as opposed to the transport failing).
    pub(crate) fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            WireError::TooLarge { .. } | WireError::Truncated | WireError::Channel(_) | WireError::Decode(_)
        )
    }

    /// Whether the peer stopped reading our stream: it may still have sent why, on its side.
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self, WireError::Write(WriteError::Stopped(_)))
    }

    /// The underlying connection error, if the connection went away.
    pub(crate) fn connection_error(&self) -> Option<&iroh::endpoint::ConnectionError> {
        match self {
            WireError::Read(ReadError::ConnectionLost(e))
            | WireError::Write(WriteError::ConnectionLost(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<FrameError> for WireError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge { len, max } => WireError::TooLarge { len, max },
            _ => WireError::Truncated,
        }
    }
}

/// Reads one frame body of at most `max` bytes. `Ok(None)` if the stream ended cleanly before a frame.
pub(crate) async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Option<Vec<u8>>, WireError> {
    let mut header = [0u8; HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(WireError::Truncated),
        Err(ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    let len = frame::decode_header(header, max)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| match e {
        ReadExactError::FinishedEarly(_) => WireError::Truncated,
        ReadExactError::ReadError(e) => e.into(),
    })?;
    Ok(Some(body))
}

/// Writes `body` as one frame.
pub(crate) async fn write_frame(send: &mut SendStream, body: &[u8]) -> Result<(), WireError> {
    let framed = frame::encode_frame(body)?;
    send.write_all(&framed).await?;
    Ok(())
}

/// A fresh envelope around `message`: a random nonce and the current time.
pub(crate) fn envelope(message: Message) -> Envelope {
    Envelope::new(wopr_identity::random_bytes(), wopr_store::now_ms(), message)
}

/// One request stream after the handshake: envelopes in and out, sealed with the stream's keys.
pub(crate) struct SealedStream {
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    seal: SealingKey,
    open: OpeningKey,
}

impl SealedStream {
    pub(crate) fn new(send: SendStream, recv: RecvStream, (seal, open): (SealingKey, OpeningKey)) -> Self {
        SealedStream { send, recv, seal, open }
    }

    /// Seals and writes one envelope.
    pub(crate) async fn send(&mut self, envelope: &Envelope) -> Result<(), WireError> {
        let framed = self.seal.seal_frame(&envelope.to_bytes())?;
        self.send.write_all(&framed).await?;
        Ok(())
    }

    /// Sends `message` in a fresh envelope.
    pub(crate) async fn send_message(&mut self, message: Message) -> Result<(), WireError> {
        self.send(&envelope(message)).await
    }

    /// Reads, opens and decodes the next envelope. `Ok(None)` at a clean end of stream.
    pub(crate) async fn recv(&mut self) -> Result<Option<Envelope>, WireError> {
        self.recv_within(MAX_FRAME).await
    }

    /// [`SealedStream::recv`] of a frame of at most `max` bytes (a stranger's requests are small).
    pub(crate) async fn recv_within(&mut self, max: usize) -> Result<Option<Envelope>, WireError> {
        let Some(sealed) = read_frame(&mut self.recv, max).await? else {
            return Ok(None);
        };
        let plain = self.open.open(&sealed)?;
        Ok(Some(Envelope::from_bytes(&plain)?))
    }

    /// Ends our side of the stream (the peer reads a clean end after our last frame).
    pub(crate) fn finish(&mut self) {
        // Finishing an already finished or reset stream is harmless.
        let _ = self.send.finish();
    }
}
