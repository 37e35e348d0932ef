//! The pasteable text form of friend requests and accepts: the seed's own line, one field after another.
//!
//! ```text
//! FRIEND_REQUEST | to:<64 hex> | from:<name> | pubkey:<64 hex> | encryptPub:<64 hex> | hints:<h,...> | ts:<ms> | sig:<128 hex>
//! FRIEND_ACCEPT | to:<64 hex> | from:<name> | pubkey:<64 hex> | encryptPub:<64 hex> | hints:<h,...> | requestSig:<128 hex> | ts:<ms> | sig:<128 hex>
//! ```
//!
//! A human sees who it is from and whom it is for; the signature is over the binary encoding of the same
//! fields, so the text carries every field exactly. Keys and signatures are lowercase hex; `ts` is
//! decimal with no leading zero; hints are separated by `,` and %-escaped (uppercase hex) for every
//! byte outside the printable ASCII range and for `%`, `,` and `|`, and only for those, so each value
//! has one spelling. Parsing tolerates whitespace around the line and around each `|`, and nothing else.

use std::fmt::Write as _;

use super::{FriendAccept, FriendCard, FriendError, FriendRequest, validate_friend_name};

/// Longest accepted line, in bytes after trimming (the largest valid accept takes about 6,800).
pub const MAX_LINE_BYTES: usize = 8192;
/// The first field of a request line.
pub const REQUEST_TAG: &str = "FRIEND_REQUEST";
/// The first field of an accept line.
pub const ACCEPT_TAG: &str = "FRIEND_ACCEPT";

/// A line of either kind, for a receiver that does not know which one it was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FriendLine {
    /// A `FRIEND_REQUEST` line.
    Request(FriendRequest),
    /// A `FRIEND_ACCEPT` line.
    Accept(FriendAccept),
}

impl FriendLine {
    /// Parses a line of either kind (shape only; the signature is checked by `verify`).
    pub fn parse(s: &str) -> Result<FriendLine, FriendError> {
        let (tag, mut fields) = Fields::split(s)?;
        let parsed = if tag == REQUEST_TAG {
            FriendLine::Request(request_fields(&mut fields)?)
        } else {
            FriendLine::Accept(accept_fields(&mut fields)?)
        };
        fields.finish()?;
        match &parsed {
            FriendLine::Request(r) => r.validate()?,
            FriendLine::Accept(a) => a.validate()?,
        }
        Ok(parsed)
    }
}

impl FriendRequest {
    /// The `FRIEND_REQUEST | ...` line.
    pub fn to_line(&self) -> String {
        let mut out = format!("{REQUEST_TAG} | to:{}", self.to.to_hex());
        write_card(&mut out, &self.from);
        let _ = write!(out, " | ts:{} | sig:{}", self.ts_ms, hex::encode(self.signature));
        out
    }

    /// Parses a `FRIEND_REQUEST` line and checks its shape, not its signature (see
    /// [`FriendRequest::verify`]).
    pub fn parse_line(s: &str) -> Result<FriendRequest, FriendError> {
        match FriendLine::parse(s)? {
            FriendLine::Request(r) => Ok(r),
            FriendLine::Accept(_) => Err(FriendError::WrongKind { expected: REQUEST_TAG, found: ACCEPT_TAG }),
        }
    }
}

impl FriendAccept {
    /// The `FRIEND_ACCEPT | ...` line.
    pub fn to_line(&self) -> String {
        let mut out = format!("{ACCEPT_TAG} | to:{}", self.to.to_hex());
        write_card(&mut out, &self.from);
        let _ = write!(
            out,
            " | requestSig:{} | ts:{} | sig:{}",
            hex::encode(self.request_sig),
            self.ts_ms,
            hex::encode(self.signature)
        );
        out
    }

    /// Parses a `FRIEND_ACCEPT` line and checks its shape, not its signature (see
    /// [`FriendAccept::verify`]).
    pub fn parse_line(s: &str) -> Result<FriendAccept, FriendError> {
        match FriendLine::parse(s)? {
            FriendLine::Accept(a) => Ok(a),
            FriendLine::Request(_) => {
                Err(FriendError::WrongKind { expected: ACCEPT_TAG, found: REQUEST_TAG })
            }
        }
    }
}

fn write_card(out: &mut String, card: &FriendCard) {
    let _ = write!(
        out,
        " | from:{} | pubkey:{} | encryptPub:{} | hints:",
        card.name,
        card.key.to_hex(),
        hex::encode(card.encrypt_pub)
    );
    for (i, hint) in card.hints.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_hint(hint, out);
    }
}

fn request_fields(f: &mut Fields<'_>) -> Result<FriendRequest, FriendError> {
    let to = wopr_identity::PublicId(f.hex("to")?);
    let from = card_fields(f)?;
    Ok(FriendRequest { to, from, ts_ms: f.ts()?, signature: f.hex("sig")? })
}

fn accept_fields(f: &mut Fields<'_>) -> Result<FriendAccept, FriendError> {
    let to = wopr_identity::PublicId(f.hex("to")?);
    let from = card_fields(f)?;
    Ok(FriendAccept { to, from, request_sig: f.hex("requestSig")?, ts_ms: f.ts()?, signature: f.hex("sig")? })
}

fn card_fields(f: &mut Fields<'_>) -> Result<FriendCard, FriendError> {
    let name = f.next("from")?;
    validate_friend_name(name)?;
    Ok(FriendCard {
        name: name.to_string(),
        key: wopr_identity::PublicId(f.hex("pubkey")?),
        encrypt_pub: f.hex("encryptPub")?,
        hints: f.hints()?,
    })
}

/// The `|`-separated fields after the tag, read strictly in order.
struct Fields<'a> {
    parts: std::str::Split<'a, char>,
    last: &'static str,
}

impl<'a> Fields<'a> {
    /// Trims the line, checks its length and reads its tag.
    fn split(s: &'a str) -> Result<(&'static str, Fields<'a>), FriendError> {
        let s = s.trim();
        if s.len() > MAX_LINE_BYTES {
            return Err(FriendError::LineTooLong { len: s.len() });
        }
        let mut parts = s.split('|');
        let tag = match parts.next().map(str::trim) {
            Some(REQUEST_TAG) => REQUEST_TAG,
            Some(ACCEPT_TAG) => ACCEPT_TAG,
            _ => return Err(FriendError::NotAFriendLine),
        };
        Ok((tag, Fields { parts, last: tag }))
    }

    /// The value of the next field, which must be `name`.
    fn next(&mut self, name: &'static str) -> Result<&'a str, FriendError> {
        let bad = |reason| FriendError::BadField { field: name, reason };
        let part = self.parts.next().ok_or(bad("missing"))?.trim();
        self.last = name;
        part.strip_prefix(name).and_then(|v| v.strip_prefix(':')).ok_or(bad("expected here, in this order"))
    }

    /// A fixed-size field in lowercase hex.
    fn hex<const N: usize>(&mut self, name: &'static str) -> Result<[u8; N], FriendError> {
        let v = self.next(name)?;
        let lower_hex = v.len() == 2 * N && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let reason =
            if N == 32 { "expected 64 lowercase hex digits" } else { "expected 128 lowercase hex digits" };
        let bytes = hex::decode(v).ok().filter(|_| lower_hex);
        bytes.and_then(|b| b.try_into().ok()).ok_or(FriendError::BadField { field: name, reason })
    }

    fn ts(&mut self) -> Result<u64, FriendError> {
        let v = self.next("ts")?;
        let canonical =
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
        canonical.then(|| v.parse().ok()).flatten().ok_or(FriendError::BadField {
            field: "ts",
            reason: "expected milliseconds since the Unix epoch, in decimal without leading zeros",
        })
    }

    fn hints(&mut self) -> Result<Vec<String>, FriendError> {
        let v = self.next("hints")?;
        if v.is_empty() {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(unescape_hint)
            .collect::<Result<_, _>>()
            .map_err(|reason| FriendError::BadField { field: "hints", reason })
    }

    /// Fails if a field follows the last one.
    fn finish(mut self) -> Result<(), FriendError> {
        match self.parts.next() {
            None => Ok(()),
            Some(_) => Err(FriendError::BadField { field: self.last, reason: "unexpected field after it" }),
        }
    }
}

/// A byte a hint carries as itself: printable ASCII but `%`, `,` and `|`.
fn is_plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'%' | b',' | b'|')
}

fn escape_hint(hint: &str, out: &mut String) {
    for b in hint.bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn unescape_hint(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_plain(b) {
            out.push(b);
            i += 1;
            continue;
        }
        if b != b'%' {
            return Err("a space, comma, bar, % or non-ASCII character must be %-escaped");
        }
        let digits = bytes.get(i + 1..i + 3).ok_or("a % must be followed by two uppercase hex digits")?;
        let upper = digits.iter().all(|d| matches!(d, b'0'..=b'9' | b'A'..=b'F'));
        let value = std::str::from_utf8(digits).ok().and_then(|d| u8::from_str_radix(d, 16).ok());
        match value {
            Some(v) if upper && !is_plain(v) => out.push(v),
            Some(_) if upper => return Err("a printable character is %-escaped; write it as itself"),
            _ => return Err("a % must be followed by two uppercase hex digits"),
        }
        i += 3;
    }
    if out.is_empty() {
        return Err("an empty hint");
    }
    String::from_utf8(out).map_err(|_| "a hint is not UTF-8 once unescaped")
}
