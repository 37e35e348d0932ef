//! The encrypted channel: AES-256-GCM with per-direction counters as nonces.
//!
//! Each direction of a connection (or stream) has its own key and its own 96-bit counter, starting at 0
//! and increasing by one per frame. The counter is the nonce and is never sent: both ends know which frame
//! comes next, so a replayed, dropped or reordered frame is opened with the wrong nonce and fails.
//! The associated data names the direction (and stream), so a frame cannot be reflected back to its sender.
//! After one failure an [`OpeningKey`] refuses everything: the caller must drop the stream.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce};
use thiserror::Error;

use crate::frame::{self, MAX_FRAME};

/// Bytes of AES-GCM authentication tag appended to every sealed frame.
pub const TAG_LEN: usize = 16;

/// Largest plaintext that fits a sealed frame.
pub const MAX_PLAINTEXT: usize = MAX_FRAME - TAG_LEN;

/// The last usable counter value: 2^96 - 1.
pub const MAX_COUNTER: u128 = (1u128 << 96) - 1;

/// Which way a key protects traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the handshake initiator to the responder.
    InitiatorToResponder,
    /// From the responder to the initiator.
    ResponderToInitiator,
}

impl Direction {
    /// The HKDF label and associated data of this direction: `wopr/v3 i2r` or `wopr/v3 r2i`.
    pub fn label(self) -> &'static [u8] {
        match self {
            Direction::InitiatorToResponder => b"wopr/v3 i2r",
            Direction::ResponderToInitiator => b"wopr/v3 r2i",
        }
    }

    /// Label for one QUIC stream's key: the direction label followed by the stream id (`u64`, big-endian).
    pub fn stream_label(self, stream_id: u64) -> Vec<u8> {
        let mut v = self.label().to_vec();
        v.extend_from_slice(&stream_id.to_be_bytes());
        v
    }
}

/// Why a frame could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    /// Authentication failed: the frame was forged, corrupted, replayed, reordered or for another direction.
    #[error("frame failed to open (forged, corrupted, replayed or out of order)")]
    OpenFailed,
    /// An earlier frame failed to open; this key accepts nothing more.
    #[error("channel already failed; the stream must be closed")]
    Failed,
    /// The 96-bit counter is used up; a new handshake is needed.
    #[error("frame counter exhausted; reconnect")]
    CounterExhausted,
    /// The plaintext or sealed frame is larger than a frame may be.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Attempted length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Keys for this stream (or the connection) were already handed out once; reusing them would reuse nonces.
    #[error("keys for stream {0} were already derived")]
    KeysAlreadyTaken(u64),
}

fn nonce(counter: u128) -> Nonce<Aes256Gcm> {
    let bytes = counter.to_be_bytes();
    let mut n = [0u8; 12];
    n.copy_from_slice(&bytes[4..]);
    Nonce::<Aes256Gcm>::from(n)
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

/// Seals outgoing frames of one direction.
pub struct SealingKey {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u128,
}

impl SealingKey {
    /// A sealing key from raw key bytes and the associated data every frame is bound to. The session
    /// derives these; use this directly only for test vectors and test peers.
    pub fn new(key: &[u8; 32], aad: &[u8]) -> Self {
        SealingKey { cipher: cipher(key), aad: aad.to_vec(), counter: 0 }
    }

    /// Encrypts `plaintext` as the next frame body (ciphertext followed by the 16-byte tag).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(ChannelError::TooLarge { len: plaintext.len(), max: MAX_PLAINTEXT });
        }
        if self.counter > MAX_COUNTER {
            return Err(ChannelError::CounterExhausted);
        }
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce(self.counter), &self.aad, buf.as_mut_slice().into())
            // AES-GCM only refuses inputs over 64 GiB, far beyond MAX_PLAINTEXT.
            .map_err(|_| ChannelError::TooLarge { len: plaintext.len(), max: MAX_PLAINTEXT })?;
        buf.extend_from_slice(&tag);
        self.counter += 1;
        Ok(buf)
    }

    /// Seals `plaintext` and prefixes the frame length: the bytes to write to the stream.
    pub fn seal_frame(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let body = self.seal(plaintext)?;
        frame::encode_frame(&body).map_err(|_| ChannelError::TooLarge { len: body.len(), max: MAX_FRAME })
    }

    /// The counter the next frame will use.
    pub fn counter(&self) -> u128 {
        self.counter
    }

    #[cfg(test)]
    pub(crate) fn set_counter(&mut self, counter: u128) {
        self.counter = counter;
    }
}

/// Opens incoming frames of one direction, strictly in order.
pub struct OpeningKey {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u128,
    failed: bool,
}

impl OpeningKey {
    /// An opening key from raw key bytes and associated data (see [`SealingKey::new`]).
    pub fn new(key: &[u8; 32], aad: &[u8]) -> Self {
        OpeningKey { cipher: cipher(key), aad: aad.to_vec(), counter: 0, failed: false }
    }

    /// Decrypts the next frame body. Any failure is final for this key.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if self.failed {
            return Err(ChannelError::Failed);
        }
        if self.counter > MAX_COUNTER {
            return Err(ChannelError::CounterExhausted);
        }
        if sealed.len() > MAX_FRAME {
            self.failed = true;
            return Err(ChannelError::TooLarge { len: sealed.len(), max: MAX_FRAME });
        }
        let Some(split) = sealed.len().checked_sub(TAG_LEN) else {
            self.failed = true;
            return Err(ChannelError::OpenFailed);
        };
        let (ciphertext, tag) = sealed.split_at(split);
        let mut buf = ciphertext.to_vec();
        let opened = self.cipher.decrypt_inout_detached(
            &nonce(self.counter),
            &self.aad,
            buf.as_mut_slice().into(),
            tag.try_into().map_err(|_| ChannelError::OpenFailed)?,
        );
        match opened {
            Ok(()) => {
                self.counter += 1;
                Ok(buf)
            }
            Err(_) => {
                self.failed = true;
                Err(ChannelError::OpenFailed)
            }
        }
    }

    /// The counter the next frame must have been sealed with.
    pub fn counter(&self) -> u128 {
        self.counter
    }

    #[cfg(test)]
    pub(crate) fn set_counter(&mut self, counter: u128) {
        self.counter = counter;
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningKey")
            .field("counter", &self.counter)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SealingKey, OpeningKey) {
        let key = [7u8; 32];
        let aad = Direction::InitiatorToResponder.label();
        (SealingKey::new(&key, aad), OpeningKey::new(&key, aad))
    }

    #[test]
    fn frames_open_in_order() {
        let (mut s, mut o) = pair();
        for msg in [&b"one"[..], b"", b"three"] {
            let sealed = s.seal(msg).unwrap();
            assert_eq!(sealed.len(), msg.len() + TAG_LEN);
            assert_eq!(o.open(&sealed).unwrap(), msg);
        }
    }

    #[test]
    fn replayed_frame_fails_to_open() {
        let (mut s, mut o) = pair();
        let first = s.seal(b"pay alice").unwrap();
        assert!(o.open(&first).is_ok());
        assert_eq!(o.open(&first), Err(ChannelError::OpenFailed));
        // The channel is dead after a failure, even for the genuine next frame.
        let second = s.seal(b"next").unwrap();
        assert_eq!(o.open(&second), Err(ChannelError::Failed));
    }

    #[test]
    fn reordered_frame_fails_to_open() {
        let (mut s, mut o) = pair();
        let first = s.seal(b"1").unwrap();
        let second = s.seal(b"2").unwrap();
        assert_eq!(o.open(&second), Err(ChannelError::OpenFailed));
        assert_eq!(o.open(&first), Err(ChannelError::Failed));
    }

    #[test]
    fn a_frame_for_the_other_direction_fails_to_open() {
        let key = [7u8; 32];
        let mut s = SealingKey::new(&key, Direction::InitiatorToResponder.label());
        let mut o = OpeningKey::new(&key, Direction::ResponderToInitiator.label());
        assert_eq!(o.open(&s.seal(b"reflected").unwrap()), Err(ChannelError::OpenFailed));
    }

    #[test]
    fn tampered_and_short_frames_fail_to_open() {
        let (mut s, _) = pair();
        let mut sealed = s.seal(b"hello").unwrap();
        sealed[0] ^= 1;
        assert_eq!(pair().1.open(&sealed), Err(ChannelError::OpenFailed));
        assert_eq!(pair().1.open(&[0u8; 15]), Err(ChannelError::OpenFailed));
    }

    #[test]
    fn counter_exhaustion_is_an_error_not_a_wrap() {
        let (mut s, mut o) = pair();
        s.set_counter(MAX_COUNTER);
        o.set_counter(MAX_COUNTER);
        let last = s.seal(b"last").unwrap();
        assert_eq!(o.open(&last).unwrap(), b"last");
        assert_eq!(s.seal(b"more"), Err(ChannelError::CounterExhausted));
        assert_eq!(o.open(&last), Err(ChannelError::CounterExhausted));
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let (mut s, _) = pair();
        let big = vec![0u8; MAX_PLAINTEXT + 1];
        assert!(matches!(s.seal(&big), Err(ChannelError::TooLarge { .. })));
        assert!(s.seal_frame(&big[1..]).is_ok());
    }

    #[test]
    fn debug_does_not_print_keys() {
        let (s, o) = pair();
        assert!(!format!("{s:?}{o:?}").contains("7, 7"));
    }
}
