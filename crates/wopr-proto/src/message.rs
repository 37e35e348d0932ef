//! Application messages: the plaintext inside sealed frames.
//!
//! Every message travels in an [`Envelope`] carrying a 128-bit random nonce and a timestamp, which the
//! receiver runs through its [`crate::replay::ReplayWindow`]. Requests that act on a session or a grant
//! (`Inject`, `Log`, `Claim`) are also signed by their author over the recipient's key and the envelope,
//! so the receiver can keep a self-contained, verifiable audit record of who asked what; `Rotation`
//! carries a record signed by both the old and the new key.

use thiserror::Error;
use wopr_identity::{Identity, PublicId, RotationReason, RotationRecord, Signature, verify};

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::discovery::{MAX_PROFILE_BYTES, MAX_TOPIC_NAME, Profile, ProfileError};
use crate::frame::MAX_PAYLOAD;
use crate::friend::{FriendAccept, FriendError, FriendRequest, MAX_FRIEND_BYTES};
use crate::invite::{Capabilities, InviteToken, MAX_SESSION_NAME, MAX_SESSIONS};

/// Signature domain of author-signed messages.
pub const MESSAGE_DOMAIN: &str = "message";
/// Longest error message text, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 4096;
/// Longest tool name, in bytes.
pub const MAX_TOOL_NAME: usize = 255;

/// Why a request was refused. The numbers are the CLI's exit codes for P2P commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The peer refused (for example, no grant for that session). Exit code 2.
    Rejected,
    /// Invalid token, signature or argument. Exit code 3.
    Invalid,
    /// A rate limit was hit; see `retry_after_ms`. Exit code 4.
    RateLimited,
    /// No protocol version in common, or a downgrade was attempted. Exit code 5.
    VersionMismatch,
    /// The key is not allowed to do this. Exit code 7.
    Unauthorized,
}

impl ErrorCode {
    /// The wire byte, equal to the CLI exit code.
    pub fn as_u8(self) -> u8 {
        match self {
            ErrorCode::Rejected => 2,
            ErrorCode::Invalid => 3,
            ErrorCode::RateLimited => 4,
            ErrorCode::VersionMismatch => 5,
            ErrorCode::Unauthorized => 7,
        }
    }

    /// The code for a wire byte.
    pub fn from_u8(v: u8) -> Result<Self, CodecError> {
        Ok(match v {
            2 => ErrorCode::Rejected,
            3 => ErrorCode::Invalid,
            4 => ErrorCode::RateLimited,
            5 => ErrorCode::VersionMismatch,
            7 => ErrorCode::Unauthorized,
            v => return Err(CodecError::UnknownTag { what: "error code", value: u64::from(v) }),
        })
    }
}

/// Ask the peer's AI (capability `inject`). Author-signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    /// Who asks; must be the connection's authenticated key.
    pub author: PublicId,
    /// Target session.
    pub session: String,
    /// The text for the AI.
    pub text: String,
    /// How many P2P hops the work has already travelled (0 for a person's own request).
    pub hop_count: u8,
    /// Author's signature (see [`Envelope::signed_bytes`]).
    pub signature: Signature,
}

/// Log text to the conversation with no AI answer (capability `message`). Author-signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Who logs; must be the connection's authenticated key.
    pub author: PublicId,
    /// Target session.
    pub session: String,
    /// The text.
    pub text: String,
    /// Author's signature.
    pub signature: Signature,
}

/// Claim an invite. Author-signed by the claimant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claimant; must be the connection's authenticated key and the token's subject.
    pub author: PublicId,
    /// The invite being claimed.
    pub token: InviteToken,
    /// Claimant's signature.
    pub signature: Signature,
}

/// Longest note a connect-request carries ("why I ask") or a connect-response's reason, in bytes.
pub const MAX_CONNECT_NOTE: usize = 1024;

/// Ask a peer met in a topic for mutual trust (discovery's `connect-request`). Author-signed by the
/// requester; sent over a direct connection to the profile's key, not in the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The requester; must be the connection's authenticated key and its profile's author.
    pub author: PublicId,
    /// The topic where the two met (the requester's profile must name it).
    pub topic: String,
    /// The requester's current signed profile for that topic.
    pub profile: Profile,
    /// The session the requester would like (the accepter's policy decides).
    pub session: Option<String>,
    /// Why it asks, for the accepter (its owner or its AI).
    pub note: String,
    /// Requester's signature.
    pub signature: Signature,
}

impl ConnectRequest {
    /// An unsigned request; [`Envelope::sign`] fills the author and signature.
    pub fn new(topic: &str, profile: Profile, session: Option<String>, note: impl Into<String>) -> Self {
        ConnectRequest {
            author: PublicId([0; 32]),
            topic: topic.to_string(),
            profile,
            session,
            note: note.into(),
            signature: [0; 64],
        }
    }

    /// Checks that the profile is the author's own, verifies for the topic, and is not from the future.
    pub fn check_profile(&self, now_ms: u64) -> Result<(), ProfileError> {
        if self.profile.author != self.author {
            return Err(ProfileError::BadSignature);
        }
        self.profile.verify_for(&self.topic, now_ms)
    }
}

/// How an inject ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneStatus {
    /// The AI answered completely.
    Completed,
    /// The text was logged without an AI answer (capability `message`).
    Logged,
    /// The turn failed after it started.
    Failed,
    /// The turn was cancelled.
    Cancelled,
}

impl DoneStatus {
    fn as_u8(self) -> u8 {
        match self {
            DoneStatus::Completed => 0,
            DoneStatus::Logged => 1,
            DoneStatus::Failed => 2,
            DoneStatus::Cancelled => 3,
        }
    }

    fn from_u8(v: u8) -> Result<Self, CodecError> {
        Ok(match v {
            0 => DoneStatus::Completed,
            1 => DoneStatus::Logged,
            2 => DoneStatus::Failed,
            3 => DoneStatus::Cancelled,
            v => return Err(CodecError::UnknownTag { what: "inject status", value: u64::from(v) }),
        })
    }
}

/// A refusal or failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// When to retry, for rate limits.
    pub retry_after_ms: Option<u64>,
}

/// An application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 1: ask the AI.
    Inject(Inject),
    /// Type 2: log without AI.
    Log(Log),
    /// Type 3: a piece of the AI's streamed answer.
    InjectDelta {
        /// Text generated since the last delta.
        text: String,
    },
    /// Type 4: the end of an inject's answer.
    InjectDone {
        /// How it ended.
        status: DoneStatus,
    },
    /// Type 5: a tool call made during the answer (reserved for the sandbox work).
    ToolEvent {
        /// Tool name.
        name: String,
        /// Free-form detail (arguments or result summary).
        detail: String,
    },
    /// Type 6: claim an invite.
    Claim(Claim),
    /// Type 7: the issuer accepted a claim.
    ClaimAccepted {
        /// Sessions granted.
        sessions: Vec<String>,
        /// Capabilities granted.
        capabilities: Capabilities,
    },
    /// Type 8: a key rotation, signed by the old and the new key.
    Rotation(RotationRecord),
    /// Type 9: a refusal or failure.
    Error(ErrorMessage),
    /// Type 10: ask for mutual trust after meeting in a topic.
    ConnectRequest(ConnectRequest),
    /// Type 12: a friend request, signed by its author over all its fields (its `pubkey` must be the
    /// connection's key). Answered by a `FriendAccept` (an auto-accept rule matched) or a
    /// `ConnectResponse` saying it waits for the owner.
    FriendRequest(FriendRequest),
    /// Type 13: a friend accept, signed by the accepter; as a request it is answered by a
    /// `ConnectResponse` naming the session the accepter got in return.
    FriendAccept(FriendAccept),
    /// Type 11: the answer to a connect-request. Accepted, it carries the grant just stored.
    ConnectResponse {
        /// Whether the accepter granted anything.
        accepted: bool,
        /// Sessions granted (empty when refused).
        sessions: Vec<String>,
        /// Capabilities granted (empty when refused).
        capabilities: Capabilities,
        /// Why, for the requester.
        reason: String,
    },
}

impl Message {
    /// The wire type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::Inject(_) => 1,
            Message::Log(_) => 2,
            Message::InjectDelta { .. } => 3,
            Message::InjectDone { .. } => 4,
            Message::ToolEvent { .. } => 5,
            Message::Claim(_) => 6,
            Message::ClaimAccepted { .. } => 7,
            Message::Rotation(_) => 8,
            Message::Error(_) => 9,
            Message::ConnectRequest(_) => 10,
            Message::ConnectResponse { .. } => 11,
            Message::FriendRequest(_) => 12,
            Message::FriendAccept(_) => 13,
        }
    }

    /// Whether the type is author-signed ([`Envelope::sign`] signs it).
    pub fn is_author_signed(&self) -> bool {
        self.author_signature().is_some()
    }

    /// The author key and signature of author-signed messages.
    fn author_signature(&self) -> Option<(&PublicId, &Signature)> {
        match self {
            Message::Inject(m) => Some((&m.author, &m.signature)),
            Message::Log(m) => Some((&m.author, &m.signature)),
            Message::Claim(m) => Some((&m.author, &m.signature)),
            Message::ConnectRequest(m) => Some((&m.author, &m.signature)),
            _ => None,
        }
    }

    fn encode_body(&self, w: &mut Writer, with_signature: bool) {
        let sig = |w: &mut Writer, s: &Signature| {
            if with_signature {
                w.raw(s);
            }
        };
        match self {
            Message::Inject(m) => {
                w.raw(m.author.as_bytes()).str(&m.session).str(&m.text).u8(m.hop_count);
                sig(w, &m.signature);
            }
            Message::Log(m) => {
                w.raw(m.author.as_bytes()).str(&m.session).str(&m.text);
                sig(w, &m.signature);
            }
            Message::InjectDelta { text } => {
                w.str(text);
            }
            Message::InjectDone { status } => {
                w.u8(status.as_u8());
            }
            Message::ToolEvent { name, detail } => {
                w.str(name).str(detail);
            }
            Message::Claim(m) => {
                w.raw(m.author.as_bytes()).bytes(&m.token.to_bytes());
                sig(w, &m.signature);
            }
            Message::ClaimAccepted { sessions, capabilities } => {
                w.list(sessions, |w, s| {
                    w.str(s);
                });
                w.u8(capabilities.bits());
            }
            Message::Rotation(r) => {
                w.raw(&r.signed_bytes()).raw(&r.old_sig).raw(&r.new_sig);
            }
            Message::Error(e) => {
                w.u8(e.code.as_u8()).str(&e.message).option(e.retry_after_ms.as_ref(), |w, v| {
                    w.u64(*v);
                });
            }
            Message::ConnectRequest(m) => {
                w.raw(m.author.as_bytes()).str(&m.topic).bytes(&m.profile.to_bytes());
                w.option(m.session.as_ref(), |w, s| {
                    w.str(s);
                });
                w.str(&m.note);
                sig(w, &m.signature);
            }
            Message::FriendRequest(m) => {
                w.bytes(&m.to_bytes());
            }
            Message::FriendAccept(m) => {
                w.bytes(&m.to_bytes());
            }
            Message::ConnectResponse { accepted, sessions, capabilities, reason } => {
                w.u8(u8::from(*accepted));
                w.list(sessions, |w, s| {
                    w.str(s);
                });
                w.u8(capabilities.bits()).str(reason);
            }
        }
    }

    fn decode_body(kind: u8, r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let session = |r: &mut Reader<'_>| r.string("session name", MAX_SESSION_NAME);
        let text = |r: &mut Reader<'_>| r.string("text", MAX_PAYLOAD);
        Ok(match kind {
            1 => Message::Inject(Inject {
                author: PublicId(r.array()?),
                session: session(r)?,
                text: text(r)?,
                hop_count: r.u8()?,
                signature: r.array()?,
            }),
            2 => Message::Log(Log {
                author: PublicId(r.array()?),
                session: session(r)?,
                text: text(r)?,
                signature: r.array()?,
            }),
            3 => Message::InjectDelta { text: text(r)? },
            4 => Message::InjectDone { status: DoneStatus::from_u8(r.u8()?)? },
            5 => Message::ToolEvent { name: r.string("tool name", MAX_TOOL_NAME)?, detail: text(r)? },
            6 => Message::Claim(Claim {
                author: PublicId(r.array()?),
                token: InviteToken::from_bytes(r.bytes("invite token", MAX_PAYLOAD)?)?,
                signature: r.array()?,
            }),
            7 => Message::ClaimAccepted {
                sessions: r.list("session list", MAX_SESSIONS, 4, session)?,
                capabilities: capabilities(r)?,
            },
            8 => Message::Rotation(decode_rotation(r)?),
            9 => Message::Error(ErrorMessage {
                code: ErrorCode::from_u8(r.u8()?)?,
                message: r.string("error message", MAX_ERROR_MESSAGE)?,
                retry_after_ms: r.option(|r| r.u64())?,
            }),
            10 => Message::ConnectRequest(ConnectRequest {
                author: PublicId(r.array()?),
                topic: r.string("topic name", MAX_TOPIC_NAME)?,
                profile: Profile::parse(r.bytes("profile", MAX_PROFILE_BYTES)?).map_err(|e| match e {
                    ProfileError::Codec(c) => c,
                    _ => CodecError::Invalid("the profile breaks its limits"),
                })?,
                session: r.option(session)?,
                note: r.string("connect note", MAX_CONNECT_NOTE)?,
                signature: r.array()?,
            }),
            11 => Message::ConnectResponse {
                accepted: match r.u8()? {
                    0 => false,
                    1 => true,
                    v => return Err(CodecError::UnknownTag { what: "accepted flag", value: u64::from(v) }),
                },
                sessions: r.list("session list", MAX_SESSIONS, 4, session)?,
                capabilities: capabilities(r)?,
                reason: r.string("connect reason", MAX_CONNECT_NOTE)?,
            },
            12 => Message::FriendRequest(
                FriendRequest::parse(r.bytes("friend request", MAX_FRIEND_BYTES)?).map_err(friend_codec)?,
            ),
            13 => Message::FriendAccept(
                FriendAccept::parse(r.bytes("friend accept", MAX_FRIEND_BYTES)?).map_err(friend_codec)?,
            ),
            v => return Err(CodecError::UnknownTag { what: "message type", value: u64::from(v) }),
        })
    }
}

fn friend_codec(e: FriendError) -> CodecError {
    match e {
        FriendError::Malformed(c) => c,
        _ => CodecError::Invalid("the friend message breaks its limits"),
    }
}

fn capabilities(r: &mut Reader<'_>) -> Result<Capabilities, CodecError> {
    let bits = r.u8()?;
    Capabilities::from_bits(bits)
        .ok_or(CodecError::UnknownTag { what: "capability bits", value: u64::from(bits) })
}

fn decode_rotation(r: &mut Reader<'_>) -> Result<RotationRecord, CodecError> {
    let old_key = PublicId(r.array()?);
    let new_key = PublicId(r.array()?);
    let new_encrypt_pub = r.array()?;
    let timestamp = r.u64()?;
    let code = r.u8()?;
    let reason = RotationReason::from_code(code)
        .ok_or(CodecError::UnknownTag { what: "rotation reason", value: u64::from(code) })?;
    Ok(RotationRecord {
        old_key,
        new_key,
        new_encrypt_pub,
        reason,
        timestamp,
        old_sig: r.array()?,
        new_sig: r.array()?,
    })
}

/// Why a message was refused before it reached the application.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[from] CodecError),
    /// An author or rotation signature does not verify.
    #[error("message signature does not verify")]
    BadSignature,
    /// The message type is not author-signed, so it cannot be signed.
    #[error("message type {0} is not author-signed")]
    NotSigned(u8),
    /// A signed message's author is not the connection's authenticated peer.
    #[error("message authored by {author:?} arrived from {remote:?}")]
    AuthorMismatch {
        /// The author named in the message.
        author: PublicId,
        /// The connection's peer.
        remote: PublicId,
    },
}

impl MessageError {
    /// The error code to report (see [`ErrorCode`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            MessageError::AuthorMismatch { .. } => ErrorCode::Unauthorized,
            _ => ErrorCode::Invalid,
        }
    }
}

/// A message with its replay-protection header.
///
/// Wire form: `nonce (16) || timestamp_ms (u64) || type (u8) || body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// 128 random bits, unique per message.
    pub nonce: [u8; 16],
    /// The sender's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The message.
    pub message: Message,
}

impl Envelope {
    /// An envelope around `message`.
    pub fn new(nonce: [u8; 16], timestamp_ms: u64, message: Message) -> Self {
        Envelope { nonce, timestamp_ms, message }
    }

    fn encode_inner(&self, w: &mut Writer, with_signature: bool) {
        w.raw(&self.nonce).u64(self.timestamp_ms).u8(self.message.type_byte());
        self.message.encode_body(w, with_signature);
    }

    /// For author-signed types, the bytes the author signs: the recipient's key followed by the envelope's
    /// encoding without the trailing signature. `None` for other types.
    pub fn signed_bytes(&self, recipient: &PublicId) -> Option<Vec<u8>> {
        self.message.author_signature()?;
        let mut w = Writer::new();
        w.raw(recipient.as_bytes());
        self.encode_inner(&mut w, false);
        Some(w.into_bytes())
    }

    /// Sets the author to `author`'s key and signs for `recipient`. Fails for types that are not
    /// author-signed.
    pub fn sign(&mut self, author: &Identity, recipient: &PublicId) -> Result<(), MessageError> {
        let me = author.public_id();
        match &mut self.message {
            Message::Inject(m) => m.author = me,
            Message::Log(m) => m.author = me,
            Message::Claim(m) => m.author = me,
            Message::ConnectRequest(m) => m.author = me,
            other => return Err(MessageError::NotSigned(other.type_byte())),
        }
        let bytes = self.signed_bytes(recipient).ok_or(MessageError::NotSigned(0))?;
        let signature = author.sign(MESSAGE_DOMAIN, &bytes);
        match &mut self.message {
            Message::Inject(m) => m.signature = signature,
            Message::Log(m) => m.signature = signature,
            Message::Claim(m) => m.signature = signature,
            Message::ConnectRequest(m) => m.signature = signature,
            other => return Err(MessageError::NotSigned(other.type_byte())),
        }
        Ok(())
    }

    /// Verifies the author signature (or, for `Rotation`, both record signatures) as received by
    /// `recipient`. Returns the author (for `Rotation`, the old key), or `None` for unsigned types. Use
    /// this to re-check a stored audit record.
    pub fn verify(&self, recipient: &PublicId) -> Result<Option<PublicId>, MessageError> {
        if let Message::Rotation(r) = &self.message {
            r.verify().map_err(|_| MessageError::BadSignature)?;
            return Ok(Some(r.old_key));
        }
        let Some((author, signature)) = self.message.author_signature() else {
            return Ok(None);
        };
        let bytes = self.signed_bytes(recipient).ok_or(MessageError::BadSignature)?;
        verify(author, MESSAGE_DOMAIN, &bytes, signature).map_err(|_| MessageError::BadSignature)?;
        Ok(Some(*author))
    }

    /// What a receiver runs on every incoming envelope: [`Envelope::verify`], plus the author of a signed
    /// message must be `remote`, the connection's authenticated key. A `Rotation` is the exception: its
    /// record is signed by both keys and so authenticates itself, whoever delivers it. That lets a node
    /// that rotated twice while a peer was offline deliver both records over its newest key's connection.
    pub fn verify_from(&self, recipient: &PublicId, remote: &PublicId) -> Result<(), MessageError> {
        let author = self.verify(recipient)?;
        let allowed = match &self.message {
            Message::Rotation(_) => true,
            _ => author.is_none_or(|a| a == *remote),
        };
        match author {
            Some(author) if !allowed => Err(MessageError::AuthorMismatch { author, remote: *remote }),
            _ => Ok(()),
        }
    }
}

impl Encode for Envelope {
    fn encode(&self, w: &mut Writer) {
        self.encode_inner(w, true);
    }
}

impl Decode for Envelope {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let nonce = r.array()?;
        let timestamp_ms = r.u64()?;
        let kind = r.u8()?;
        Ok(Envelope { nonce, timestamp_ms, message: Message::decode_body(kind, r)? })
    }
}

impl Inject {
    /// An unsigned inject; [`Envelope::sign`] fills the author and signature.
    pub fn new(session: impl Into<String>, text: impl Into<String>, hop_count: u8) -> Self {
        Inject {
            author: PublicId([0; 32]),
            session: session.into(),
            text: text.into(),
            hop_count,
            signature: [0; 64],
        }
    }
}

impl Log {
    /// An unsigned log message; [`Envelope::sign`] fills the author and signature.
    pub fn new(session: impl Into<String>, text: impl Into<String>) -> Self {
        Log { author: PublicId([0; 32]), session: session.into(), text: text.into(), signature: [0; 64] }
    }
}

impl Claim {
    /// An unsigned claim; [`Envelope::sign`] fills the author and signature.
    pub fn new(token: InviteToken) -> Self {
        Claim { author: PublicId([0; 32]), token, signature: [0; 64] }
    }
}

#[cfg(test)]
mod tests;
