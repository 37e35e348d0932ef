//! The canonical binary encoding used for every signed byte string and every message body.
//!
//! The rules are few, so two implementations cannot disagree on them:
//! - integers are big-endian and fixed width (`u8`, `u16`, `u32`, `u64`);
//! - fixed-size values (keys, nonces, signatures) are written as their raw bytes, with no length;
//! - variable-length byte strings and UTF-8 strings are a `u32` length followed by the bytes;
//! - lists are a `u16` item count followed by the items;
//! - optional values are a `u8` flag (0 absent, 1 present) followed by the value when present;
//! - a decoder must consume its input exactly: trailing bytes are an error.
//!
//! Decoding never trusts a length or count from the input further than the input itself: a length is
//! checked against the bytes remaining before anything is sliced, and a list's capacity is only reserved
//! when `count * smallest item size` fits in what remains. Every failure is a [`CodecError`], never a panic.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before the value did.
    #[error("truncated input: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the decoder needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes were left after the value was complete.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A string field was not valid UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A tag (message type, enum discriminant, flag) had a value this version does not define.
    #[error("unknown {what} {value}")]
    UnknownTag {
        /// What the tag selects.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A field is longer than the protocol allows.
    #[error("{what} is {len} bytes or items, the limit is {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a value the protocol forbids (for example an empty list where one item is required).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Appends canonical encodings to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Writes a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes fixed-size bytes with no length prefix.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Writes a `u32` length and the bytes. Lengths above `u32::MAX` cannot occur: callers encode values
    /// bounded by the frame size, and this saturates rather than wrapping if that is ever violated.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(v)
    }

    /// Writes a UTF-8 string as length-prefixed bytes.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Writes a `u16` item count, then each item with `item`.
    pub fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.u16(u16::try_from(items.len()).unwrap_or(u16::MAX));
        for it in items.iter().take(usize::from(u16::MAX)) {
            item(self, it);
        }
        self
    }

    /// Writes a presence flag and, if present, the value.
    pub fn option<T>(&mut self, v: Option<&T>, item: impl FnOnce(&mut Self, &T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                item(self, v);
                self
            }
        }
    }
}

/// Reads canonical encodings from a byte slice without copying more than each field needs.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), CodecError> {
        match self.input.len() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.input.len() {
            return Err(CodecError::Truncated { needed: n, remaining: self.input.len() });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads `u32`-length-prefixed bytes of at most `max` bytes, borrowing them from the input.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(CodecError::TooLong { what, len, max });
        }
        self.take(len)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, CodecError> {
        let raw = self.bytes(what, max)?;
        std::str::from_utf8(raw).map(str::to_owned).map_err(|_| CodecError::InvalidUtf8)
    }

    /// Reads a `u16` item count (at most `max`) and that many items. `min_item_len` is the smallest
    /// encoding an item can have; the count is rejected up front if the input cannot hold that many.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        max: usize,
        min_item_len: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let count = usize::from(self.u16()?);
        if count > max {
            return Err(CodecError::TooLong { what, len: count, max });
        }
        let needed = count.saturating_mul(min_item_len.max(1));
        if needed > self.remaining() {
            return Err(CodecError::Truncated { needed, remaining: self.remaining() });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads a presence flag and, if present, the value.
    pub fn option<T>(
        &mut self,
        item: impl FnOnce(&mut Self) -> Result<T, CodecError>,
    ) -> Result<Option<T>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => item(self).map(Some),
            v => Err(CodecError::UnknownTag { what: "option flag", value: u64::from(v) }),
        }
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the encoding to `w`.
    fn encode(&self, w: &mut Writer);

    /// The encoding as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }
}

/// A value that can be decoded from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`, leaving any following bytes unread.
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;

    /// Decodes a value that must span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_strings_u32_length_prefixed() {
        let mut w = Writer::new();
        w.u16(0x0102).u32(0x03040506).u64(7).str("hi");
        assert_eq!(w.as_bytes(), [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn a_huge_length_prefix_is_rejected_without_allocating() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert!(matches!(r.bytes("text", usize::MAX), Err(CodecError::Truncated { .. })));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert!(matches!(r.bytes("text", 10), Err(CodecError::TooLong { max: 10, .. })));
    }

    #[test]
    fn a_list_count_larger_than_the_input_is_rejected_before_reserving() {
        let mut r = Reader::new(&[0xff, 0xff, 0]);
        let res = r.list("items", usize::MAX, 32, |r| r.array::<32>());
        assert!(matches!(res, Err(CodecError::Truncated { needed, .. }) if needed == 0xffff * 32));
    }

    #[test]
    fn trailing_bytes_and_bad_utf8_and_bad_flags_are_errors() {
        assert_eq!(Reader::new(&[1]).finish(), Err(CodecError::TrailingBytes(1)));
        let mut r = Reader::new(&[0, 0, 0, 1, 0xff]);
        assert_eq!(r.string("s", 10), Err(CodecError::InvalidUtf8));
        let mut r = Reader::new(&[2]);
        assert!(matches!(r.option(|r| r.u8()), Err(CodecError::UnknownTag { .. })));
    }
}
