//! Length-prefixed frames: the unit every stream carries.
//!
//! A frame is a 4-byte big-endian body length followed by the body. Handshake messages travel as plain
//! frames; everything after the handshake is a sealed frame (see [`crate::channel`]). A body longer than
//! [`MAX_FRAME`] is refused as soon as its header is seen, before a byte of it is buffered.

use thiserror::Error;

/// Largest frame body accepted: 1 MiB of payload plus 4 KiB for the envelope, signature and AEAD tag.
pub const MAX_FRAME: usize = 1024 * 1024 + 4 * 1024;

/// Largest application payload (for example an inject's text) a message may carry: 1 MiB.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Bytes in the length header.
pub const HEADER_LEN: usize = 4;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The header announced a body larger than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced (or attempted) body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The input ended in the middle of a frame.
    #[error("stream ended inside a frame ({missing} bytes missing)")]
    Truncated {
        /// Bytes still expected.
        missing: usize,
    },
    /// Bytes followed a frame that had to stand alone.
    #[error("{0} bytes after the frame")]
    TrailingBytes(usize),
    /// The decoder already failed; the stream must be dropped.
    #[error("frame decoder already failed")]
    Failed,
}

/// Prefixes `body` with its length. Fails if the body is over [`MAX_FRAME`].
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = check_len(body.len(), MAX_FRAME)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Reads a header and checks the announced length against `max` (at most [`MAX_FRAME`]). Callers that
/// read streams directly use this, then read exactly the returned number of bytes.
pub fn decode_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    check_len(len, max.min(MAX_FRAME)).map(|_| len)
}

/// Decodes a buffer that holds exactly one frame and returns its body.
pub fn decode_frame(buf: &[u8]) -> Result<&[u8], FrameError> {
    let Some((header, body)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated { missing: HEADER_LEN - buf.len() });
    };
    let len = decode_header(*header, MAX_FRAME)?;
    match body.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated { missing: len - body.len() }),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes(body.len() - len)),
        std::cmp::Ordering::Equal => Ok(body),
    }
}

fn check_len(len: usize, max: usize) -> Result<u32, FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })
}

/// Incremental frame decoder for bytes arriving in arbitrary pieces.
///
/// Feed it with [`FrameDecoder::decode`]; it returns how much input it consumed and, when a frame is
/// complete, its body. The body buffer grows only as body bytes arrive, and only after the header's
/// length passed the limit, so a hostile header costs nothing. After an error the decoder stays failed.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    header: [u8; HEADER_LEN],
    header_len: usize,
    body: Option<(usize, Vec<u8>)>,
    failed: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder enforcing [`MAX_FRAME`].
    pub fn new() -> Self {
        Self::with_max(MAX_FRAME)
    }

    /// A decoder enforcing a smaller limit (values above [`MAX_FRAME`] are clamped to it).
    pub fn with_max(max: usize) -> Self {
        FrameDecoder {
            max: max.min(MAX_FRAME),
            header: [0; HEADER_LEN],
            header_len: 0,
            body: None,
            failed: false,
        }
    }

    /// Consumes bytes from `input` up to the end of the next frame. Returns the number of bytes consumed
    /// and the frame body if one was completed; call again with the rest of the input.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Vec<u8>>), FrameError> {
        if self.failed {
            return Err(FrameError::Failed);
        }
        let mut used = 0;
        if self.body.is_none() {
            let take = (HEADER_LEN - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            used += take;
            if self.header_len < HEADER_LEN {
                return Ok((used, None));
            }
            match decode_header(self.header, self.max) {
                Ok(len) => self.body = Some((len, Vec::new())),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        let Some((len, body)) = self.body.as_mut() else {
            return Ok((used, None));
        };
        let take = (*len - body.len()).min(input.len() - used);
        body.extend_from_slice(&input[used..used + take]);
        used += take;
        if body.len() < *len {
            return Ok((used, None));
        }
        let done = self.body.take().map(|(_, b)| b);
        self.header_len = 0;
        Ok((used, done))
    }

    /// Decodes every complete frame in `input`, keeping a trailing partial frame for the next call.
    pub fn decode_all(&mut self, mut input: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        while !input.is_empty() {
            let (used, frame) = self.decode(input)?;
            input = &input[used..];
            frames.extend(frame);
        }
        Ok(frames)
    }

    /// Bytes still needed to complete the header or body in progress (4 when idle).
    pub fn wanted(&self) -> usize {
        match &self.body {
            Some((len, body)) => len - body.len(),
            None => HEADER_LEN - self.header_len,
        }
    }

    /// Call at end of stream: fails if a frame was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.failed {
            return Err(FrameError::Failed);
        }
        match (&self.body, self.header_len) {
            (None, 0) => Ok(()),
            _ => Err(FrameError::Truncated { missing: self.wanted() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_frame_is_rejected_from_its_header_before_any_body_is_buffered() {
        let mut d = FrameDecoder::new();
        let header = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
        let err = d.decode(&header).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: MAX_FRAME + 1, max: MAX_FRAME });
        // Nothing was allocated for the body, and the decoder stays failed.
        assert!(d.body.is_none());
        assert_eq!(d.decode(&[0; 16]), Err(FrameError::Failed));
        let huge = u32::MAX.to_be_bytes();
        assert!(matches!(FrameDecoder::new().decode(&huge), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn a_frame_at_the_limit_is_accepted_and_one_byte_more_is_not() {
        assert!(encode_frame(&vec![0; MAX_FRAME]).is_ok());
        assert!(matches!(encode_frame(&vec![0; MAX_FRAME + 1]), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn frames_split_at_every_byte_boundary_reassemble() {
        let mut wire = encode_frame(b"hello").unwrap();
        wire.extend(encode_frame(b"").unwrap());
        wire.extend(encode_frame(b"world!").unwrap());
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for b in &wire {
            out.extend(d.decode_all(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(out, vec![b"hello".to_vec(), vec![], b"world!".to_vec()]);
        assert!(d.finish().is_ok());
    }

    #[test]
    fn a_stream_ending_mid_frame_is_truncated() {
        let wire = encode_frame(b"hello").unwrap();
        let mut d = FrameDecoder::new();
        assert!(d.decode_all(&wire[..6]).unwrap().is_empty());
        assert_eq!(d.finish(), Err(FrameError::Truncated { missing: 3 }));
        assert_eq!(decode_frame(&wire[..6]), Err(FrameError::Truncated { missing: 3 }));
        assert_eq!(decode_frame(&wire[..2]), Err(FrameError::Truncated { missing: 2 }));
    }

    #[test]
    fn a_smaller_limit_is_enforced() {
        let mut d = FrameDecoder::with_max(4);
        assert!(matches!(d.decode(&encode_frame(b"12345").unwrap()), Err(FrameError::TooLarge { .. })));
    }
}
