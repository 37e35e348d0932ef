//! Incremental UTF-8 decoding of token pieces.
//!
//! A token is a byte string, and one character may be split across two or more tokens (emoji, CJK,
//! accented letters in byte-level BPE vocabularies). [`Utf8Stream`] keeps an incomplete tail until the
//! next piece completes it, so every emitted delta is valid text.

/// Turns a stream of byte pieces into a stream of complete UTF-8 strings.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Appends a piece; returns the text that is now complete (possibly empty).
    pub(crate) fn push(&mut self, piece: &[u8]) -> String {
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Invalid bytes can never become valid: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        // An incomplete character at the end: wait for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Whether no partial character is held back.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Ends the stream: an incomplete trailing character becomes U+FFFD.
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_passes_through_piece_by_piece() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"Hel"), "Hel");
        assert_eq!(s.push(b"lo"), "lo");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn a_character_split_across_pieces_is_emitted_once_complete() {
        let crab = "🦀".as_bytes();
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'a', crab[0]]), "a");
        assert_eq!(s.push(&crab[1..3]), "");
        assert_eq!(s.push(&[crab[3], b'!']), "🦀!");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn an_unfinished_character_at_the_end_is_not_lost_silently() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&"é".as_bytes()[..1]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }
}
