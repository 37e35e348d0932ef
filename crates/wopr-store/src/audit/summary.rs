//! What an audit record keeps of a payload: its SHA-256 and a short printable excerpt, never the whole.

use sha2::{Digest, Sha256};

/// Longest excerpt kept of a payload, in bytes (the excerpt is cut at a character boundary).
pub const EXCERPT_MAX: usize = 200;

/// A payload as the audit log keeps it: enough to recognise it, too little to store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadSummary {
    /// SHA-256 of the whole payload.
    pub digest: [u8; 32],
    /// The start of the payload as printable text: control characters are written as escapes (`\u{1b}`),
    /// at most [`EXCERPT_MAX`] bytes, with `…` when cut.
    pub excerpt: String,
}

impl PayloadSummary {
    /// The summary of `payload`. Reads all of it for the digest, at most a few hundred bytes for the
    /// excerpt.
    pub fn of(payload: &[u8]) -> Self {
        PayloadSummary { digest: Sha256::digest(payload).into(), excerpt: excerpt(payload) }
    }
}

fn excerpt(payload: &[u8]) -> String {
    // A character takes at most 4 bytes, so this much input fills the excerpt whatever it holds.
    let head = &payload[..payload.len().min(EXCERPT_MAX * 4)];
    let mut out = String::new();
    for c in String::from_utf8_lossy(head).chars() {
        let piece: String = if c.is_control() { c.escape_default().collect() } else { c.to_string() };
        if out.len() + piece.len() > EXCERPT_MAX - '…'.len_utf8() {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
    }
    if head.len() < payload.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_is_short_printable_and_the_digest_covers_everything() {
        let mut payload = b"\x1b]0;owned\x07 hello\n".to_vec();
        payload.extend(std::iter::repeat_n(b'x', 1 << 20));
        let s = PayloadSummary::of(&payload);
        assert!(s.excerpt.len() <= EXCERPT_MAX, "{} bytes", s.excerpt.len());
        assert!(s.excerpt.starts_with("\\u{1b}]0;owned\\u{7} hello\\nxxx"), "{}", s.excerpt);
        assert!(s.excerpt.ends_with('…'));
        assert!(!s.excerpt.chars().any(char::is_control));
        assert_eq!(hex::encode(s.digest), hex::encode(Sha256::digest(&payload)));
        payload.push(b'y');
        assert_ne!(PayloadSummary::of(&payload).digest, s.digest);
    }

    #[test]
    fn a_short_payload_is_kept_whole_and_multibyte_text_is_cut_at_a_boundary() {
        assert_eq!(PayloadSummary::of(b"hi").excerpt, "hi");
        assert_eq!(PayloadSummary::of(b"").excerpt, "");
        let s = PayloadSummary::of("é".repeat(500).as_bytes());
        assert!(s.excerpt.len() <= EXCERPT_MAX && s.excerpt.ends_with('…'));
        assert!(PayloadSummary::of(&[0xff, 0xfe, b'a']).excerpt.ends_with('a'));
    }
}
