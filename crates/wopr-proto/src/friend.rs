//! The friend protocol of seed 004: `FRIEND_REQUEST` and `FRIEND_ACCEPT`, signed, sans-IO.
//!
//! A request says "I, *from* (a display name, my Ed25519 and X25519 keys, how to reach me), would like to be
//! friends with the key *to*". The target answers with an accept carrying the request's signature
//! (`requestSig`), which binds the answer to the one request the requester sent. Both are signed by their
//! author over the canonical bytes (§1 of `docs/PROTOCOL.md`) of every other field, in their own domains
//! ([`FRIEND_REQUEST_DOMAIN`], [`FRIEND_ACCEPT_DOMAIN`]), so one is never taken for the other, and both
//! carry a timestamp checked against the receiver's clock ([`crate::MAX_SKEW_MS`] either way).
//!
//! `to` is the target's full key, not a name: a name is whatever its owner says it is, a key is the one
//! thing a forger cannot claim. `from` is the author's display name, limited by [`validate_friend_name`]
//! so that `friend:p2p:<name>(<shortid>)` is a valid session name on the other side. The name is
//! self-asserted: anyone can call themselves `alice`, which is why a friend's session name carries the
//! short id of the key and why auto-accept rules that name a name (not a key) are a convenience only.
//!
//! They travel as binary (the canonical encoding: in wopr/3 messages, in gossip) or as one pasteable
//! text line for any other channel ([`FriendRequest::to_line`], in [`mod@line`]). Decoding checks the
//! shape; [`FriendRequest::verify`] and [`FriendAccept::verify`] check the rest, with the caller's clock
//! and key. A request replayed within the clock window changes nothing a receiver keeps per sender key;
//! an accept replayed after the pending request was settled finds no pending request.

use thiserror::Error;
use wopr_identity::{Identity, PublicId, SIGNATURE_LEN, Signature, verify};

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
pub use crate::invite::{MAX_HINT_LEN, MAX_HINTS};
use crate::{ErrorCode, MAX_SKEW_MS};

pub mod line;

/// The signature domain of friend requests.
pub const FRIEND_REQUEST_DOMAIN: &str = "friend request";
/// The signature domain of friend accepts.
pub const FRIEND_ACCEPT_DOMAIN: &str = "friend accept";
/// Longest display name, in bytes (see [`validate_friend_name`]).
pub const MAX_FRIEND_NAME: usize = 32;
/// Largest encoded request or accept; the largest valid accept takes 2,350 bytes, so either fits one
/// gossip message (4,096 bytes) with the transport's framing around it.
pub const MAX_FRIEND_BYTES: usize = 2400;

/// Why a friend request or accept was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FriendError {
    /// The author's signature does not verify (forged, or a field altered after signing).
    #[error("the friend message's signature does not verify (forged or altered)")]
    BadSignature,
    /// The timestamp is more than 5 minutes away from this node's clock, either way.
    #[error(
        "the friend message is dated {ts_ms}, more than 5 minutes from this node's clock ({now_ms}); check both clocks or send a new one"
    )]
    Stale {
        /// Its timestamp, ms since the Unix epoch.
        ts_ms: u64,
        /// The clock it was checked against.
        now_ms: u64,
    },
    /// It is addressed to another key.
    #[error("the friend message is addressed to {to:?}, not to this node")]
    NotForMe {
        /// The key it names.
        to: PublicId,
    },
    /// An accept whose `requestSig` matches none of our pending requests (never sent, expired, or already
    /// settled).
    #[error("the friend accept answers no pending request of ours (expired, already settled, or never sent)")]
    UnknownRequest,
    /// An accept whose `requestSig` is not the signature of the pending request it was checked against,
    /// or a "pending request" that this node did not write.
    #[error("the friend accept does not answer this pending request")]
    RequestMismatch,
    /// An accept that answers our request but comes from another key than the one we asked.
    #[error("we asked {asked:?} to be friends, but {answered:?} accepted")]
    WrongAccepter {
        /// The key our request was addressed to.
        asked: PublicId,
        /// The key that signed the accept.
        answered: PublicId,
    },
    /// The display name breaks the rules of [`validate_friend_name`].
    #[error("invalid friend name {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The encoding is larger than [`MAX_FRIEND_BYTES`].
    #[error("the friend message takes {len} bytes, more than the {MAX_FRIEND_BYTES} allowed")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The bytes are not a request or accept (truncated, trailing bytes, over-long or invalid field).
    #[error("malformed friend message: {0}")]
    Malformed(CodecError),
    /// The text line is longer than [`line::MAX_LINE_BYTES`].
    #[error("the friend line is {len} bytes, more than the {} allowed", line::MAX_LINE_BYTES)]
    LineTooLong {
        /// Its length (after trimming).
        len: usize,
    },
    /// The text does not start with `FRIEND_REQUEST` or `FRIEND_ACCEPT`.
    #[error("not a friend line: it must start with FRIEND_REQUEST or FRIEND_ACCEPT")]
    NotAFriendLine,
    /// A request line where an accept was expected, or the other way round.
    #[error("this is a {found} line, not a {expected} line")]
    WrongKind {
        /// The tag the caller asked for.
        expected: &'static str,
        /// The tag the line has.
        found: &'static str,
    },
    /// A field of the text line is missing, misnamed, out of order, or holds a malformed value.
    #[error("friend line field `{field}`: {reason}; was the line copied completely?")]
    BadField {
        /// The field's name in the line.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl FriendError {
    /// The error code to report (§10): [`ErrorCode::Unauthorized`] when a key answers for another
    /// ([`FriendError::NotForMe`], [`FriendError::WrongAccepter`]), else [`ErrorCode::Invalid`].
    pub fn code(&self) -> ErrorCode {
        match self {
            FriendError::NotForMe { .. } | FriendError::WrongAccepter { .. } => ErrorCode::Unauthorized,
            _ => ErrorCode::Invalid,
        }
    }
}

impl From<CodecError> for FriendError {
    fn from(e: CodecError) -> Self {
        FriendError::Malformed(e)
    }
}

/// Checks a display name: 1 to [`MAX_FRIEND_NAME`] bytes of `A-Z a-z 0-9 . _ -` (ASCII, case kept and
/// significant), not starting with `.` or `-`, and without `..`. Embedded as `friend:p2p:<name>(<shortid>)`
/// it is a valid session name (at most 53 characters), and it is a valid peer name of the store.
pub fn validate_friend_name(name: &str) -> Result<(), FriendError> {
    let refuse = |reason| Err(FriendError::BadName { name: name.to_string(), reason });
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_FRIEND_NAME {
        return refuse("it is longer than 32 bytes");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return refuse("only letters, digits and . _ - are allowed");
    }
    if name.starts_with(['.', '-']) {
        return refuse("it may not start with '.' or '-'");
    }
    if name.contains("..") {
        return refuse("it may not contain '..'");
    }
    Ok(())
}

/// Who the author of a request or accept is and how to reach them: the part both messages share, and what
/// the other side records about a new friend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendCard {
    /// Display name (`from`), checked by [`validate_friend_name`]; self-asserted.
    pub name: String,
    /// The author's Ed25519 key (`pubkey`), which signs the message.
    pub key: PublicId,
    /// The author's X25519 key (`encryptPub`).
    pub encrypt_pub: [u8; 32],
    /// Address hints (`hints`): 0 to [`MAX_HINTS`] socket addresses or relay URLs of 1 to [`MAX_HINT_LEN`]
    /// bytes, so the other side can dial back.
    pub hints: Vec<String>,
}

impl FriendCard {
    fn of(identity: &Identity, name: &str, hints: Vec<String>) -> Result<FriendCard, FriendError> {
        validate_friend_name(name)?;
        let card = FriendCard {
            name: name.to_string(),
            key: identity.public_id(),
            encrypt_pub: identity.encrypt_pub(),
            hints,
        };
        card.validate()?;
        Ok(card)
    }

    fn encode(&self, w: &mut Writer) {
        w.str(&self.name).raw(self.key.as_bytes()).raw(&self.encrypt_pub);
        w.list(&self.hints, |w, h| {
            w.str(h);
        });
    }

    fn decode(r: &mut Reader<'_>) -> Result<FriendCard, CodecError> {
        Ok(FriendCard {
            name: r.string("friend name", MAX_FRIEND_NAME)?,
            key: PublicId(r.array()?),
            encrypt_pub: r.array()?,
            hints: r.list("hint list", MAX_HINTS, 4, |r| r.string("address hint", MAX_HINT_LEN))?,
        })
    }

    /// The field rules a decoder applies once every field is read.
    fn validate(&self) -> Result<(), CodecError> {
        if validate_friend_name(&self.name).is_err() {
            return Err(CodecError::Invalid("friend name"));
        }
        if self.hints.len() > MAX_HINTS {
            return Err(CodecError::TooLong { what: "hint list", len: self.hints.len(), max: MAX_HINTS });
        }
        if let Some(h) = self.hints.iter().find(|h| h.len() > MAX_HINT_LEN) {
            return Err(CodecError::TooLong { what: "address hint", len: h.len(), max: MAX_HINT_LEN });
        }
        if self.hints.iter().any(String::is_empty) {
            return Err(CodecError::Invalid("empty address hint"));
        }
        Ok(())
    }
}

/// Fails unless `ts_ms` is within [`MAX_SKEW_MS`] of `now_ms`, either way.
fn check_fresh(ts_ms: u64, now_ms: u64) -> Result<(), FriendError> {
    if ts_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(FriendError::Stale { ts_ms, now_ms });
    }
    Ok(())
}

fn check_addressed(to: &PublicId, me: &PublicId) -> Result<(), FriendError> {
    if to != me {
        return Err(FriendError::NotForMe { to: *to });
    }
    Ok(())
}

fn check_size(len: usize) -> Result<(), FriendError> {
    if len > MAX_FRIEND_BYTES {
        return Err(FriendError::TooLarge { len });
    }
    Ok(())
}

/// `FRIEND_REQUEST`: `from` asks the key `to` to become friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    /// The target's key.
    pub to: PublicId,
    /// The requester.
    pub from: FriendCard,
    /// When it was written, ms since the Unix epoch (`ts`).
    pub ts_ms: u64,
    /// The requester's signature over [`FriendRequest::signed_bytes`] in [`FRIEND_REQUEST_DOMAIN`] (`sig`).
    pub signature: Signature,
}

impl FriendRequest {
    /// A request from `identity`, calling itself `name`, to `to`, dated `now_ms`, signed. Fails if the
    /// name or a hint breaks the field rules, or `to` is `identity` itself.
    pub fn new(
        identity: &Identity,
        name: &str,
        hints: Vec<String>,
        to: PublicId,
        now_ms: u64,
    ) -> Result<FriendRequest, FriendError> {
        let from = FriendCard::of(identity, name, hints)?;
        let mut request = FriendRequest { to, from, ts_ms: now_ms, signature: [0; SIGNATURE_LEN] };
        request.validate()?;
        request.signature = identity.sign(FRIEND_REQUEST_DOMAIN, &request.signed_bytes());
        Ok(request)
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(self.to.as_bytes());
        self.from.encode(w);
        w.u64(self.ts_ms);
    }

    /// The canonical bytes the requester signs: every field but the signature, in order.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn validate(&self) -> Result<(), CodecError> {
        self.from.validate()?;
        if self.to == self.from.key {
            return Err(CodecError::Invalid("friend request addressed to its own sender"));
        }
        Ok(())
    }

    /// Decodes a request and checks its shape (not its signature: see [`FriendRequest::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<FriendRequest, FriendError> {
        check_size(bytes.len())?;
        Ok(FriendRequest::from_bytes(bytes)?)
    }

    /// The target's check, in order: the requester's signature, the timestamp within 5 minutes of
    /// `now_ms` either way, and that the request is addressed to `me`.
    pub fn verify(&self, me: &PublicId, now_ms: u64) -> Result<(), FriendError> {
        verify(&self.from.key, FRIEND_REQUEST_DOMAIN, &self.signed_bytes(), &self.signature)
            .map_err(|_| FriendError::BadSignature)?;
        check_fresh(self.ts_ms, now_ms)?;
        check_addressed(&self.to, me)
    }
}

impl Encode for FriendRequest {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for FriendRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let request = FriendRequest {
            to: PublicId(r.array()?),
            from: FriendCard::decode(r)?,
            ts_ms: r.u64()?,
            signature: r.array()?,
        };
        request.validate()?;
        Ok(request)
    }
}

/// `FRIEND_ACCEPT`: `from` (the target of a request) accepts the request whose signature is `request_sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendAccept {
    /// The requester's key.
    pub to: PublicId,
    /// The accepter.
    pub from: FriendCard,
    /// The signature of the request this answers (`requestSig`).
    pub request_sig: Signature,
    /// When it was written, ms since the Unix epoch (`ts`).
    pub ts_ms: u64,
    /// The accepter's signature over [`FriendAccept::signed_bytes`] in [`FRIEND_ACCEPT_DOMAIN`] (`sig`).
    pub signature: Signature,
}

impl FriendAccept {
    /// `identity`'s accept of `request`, calling itself `name`, dated `now_ms`, signed. The caller has
    /// verified the request (or kept it since it did); a request addressed to another key is refused
    /// with [`FriendError::NotForMe`].
    pub fn new(
        identity: &Identity,
        name: &str,
        hints: Vec<String>,
        request: &FriendRequest,
        now_ms: u64,
    ) -> Result<FriendAccept, FriendError> {
        check_addressed(&request.to, &identity.public_id())?;
        let from = FriendCard::of(identity, name, hints)?;
        let mut accept = FriendAccept {
            to: request.from.key,
            from,
            request_sig: request.signature,
            ts_ms: now_ms,
            signature: [0; SIGNATURE_LEN],
        };
        accept.validate()?;
        accept.signature = identity.sign(FRIEND_ACCEPT_DOMAIN, &accept.signed_bytes());
        Ok(accept)
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(self.to.as_bytes());
        self.from.encode(w);
        w.raw(&self.request_sig).u64(self.ts_ms);
    }

    /// The canonical bytes the accepter signs: every field but the signature, in order.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn validate(&self) -> Result<(), CodecError> {
        self.from.validate()?;
        if self.to == self.from.key {
            return Err(CodecError::Invalid("friend accept addressed to its own sender"));
        }
        Ok(())
    }

    /// Decodes an accept and checks its shape (not its signature: see [`FriendAccept::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<FriendAccept, FriendError> {
        check_size(bytes.len())?;
        Ok(FriendAccept::from_bytes(bytes)?)
    }

    /// Steps 1 to 3 of the requester's check: signature, freshness, addressed to `me` (whether it
    /// answers a pending request is [`FriendAccept::verify_among`]'s part).
    pub fn verify_signed_for(&self, me: &PublicId, now_ms: u64) -> Result<(), FriendError> {
        verify(&self.from.key, FRIEND_ACCEPT_DOMAIN, &self.signed_bytes(), &self.signature)
            .map_err(|_| FriendError::BadSignature)?;
        check_fresh(self.ts_ms, now_ms)?;
        check_addressed(&self.to, me)
    }

    /// Step 5: the accept comes from the key `pending` (a request of ours it answers) was sent to.
    fn check_accepter(&self, pending: &FriendRequest) -> Result<(), FriendError> {
        if self.from.key != pending.to {
            return Err(FriendError::WrongAccepter { asked: pending.to, answered: self.from.key });
        }
        Ok(())
    }

    /// The requester's check against its pending outgoing request `pending`, in order: the accepter's
    /// signature, the timestamp within 5 minutes of `now_ms` either way, that the accept is addressed to
    /// `me`, that `requestSig` is `pending`'s signature and `pending` was written by `me`
    /// ([`FriendError::RequestMismatch`]), and that the accepter is the key `pending` asked
    /// ([`FriendError::WrongAccepter`]: a request seen in a topic cannot be accepted by a bystander).
    pub fn verify(&self, me: &PublicId, now_ms: u64, pending: &FriendRequest) -> Result<(), FriendError> {
        self.verify_signed_for(me, now_ms)?;
        if self.request_sig != pending.signature || pending.from.key != *me {
            return Err(FriendError::RequestMismatch);
        }
        self.check_accepter(pending)
    }

    /// [`FriendAccept::verify`] against every pending outgoing request at once: the one whose signature
    /// is `requestSig` is checked, and returned; if none is, [`FriendError::UnknownRequest`].
    pub fn verify_among<'a>(
        &self,
        me: &PublicId,
        now_ms: u64,
        pending: impl IntoIterator<Item = &'a FriendRequest>,
    ) -> Result<&'a FriendRequest, FriendError> {
        self.verify_signed_for(me, now_ms)?;
        let ours = pending
            .into_iter()
            .find(|p| p.signature == self.request_sig && p.from.key == *me)
            .ok_or(FriendError::UnknownRequest)?;
        self.check_accepter(ours)?;
        Ok(ours)
    }
}

impl Encode for FriendAccept {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for FriendAccept {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let accept = FriendAccept {
            to: PublicId(r.array()?),
            from: FriendCard::decode(r)?,
            request_sig: r.array()?,
            ts_ms: r.u64()?,
            signature: r.array()?,
        };
        accept.validate()?;
        Ok(accept)
    }
}

#[cfg(test)]
mod tests;
