//! Wire forms of the handshake messages and the bytes their signatures cover.

use wopr_identity::{Identity, PublicId, Signature, verify};

use super::{HandshakeError, MAX_VERSIONS};
use crate::ErrorCode;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// Signature domain of a Hello.
pub const HELLO_DOMAIN: &str = "handshake hello";
/// Signature domain of a HelloAck.
pub const ACK_DOMAIN: &str = "handshake ack";

const TAG_HELLO: u8 = 1;
const TAG_ACK: u8 = 2;
const TAG_REJECT: u8 = 3;

/// Longest reason text a [`Reject`] may carry.
pub const MAX_REJECT_MESSAGE: usize = 1024;

/// The initiator's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Versions the initiator speaks, best first.
    pub versions: Vec<u16>,
    /// The initiator's Ed25519 key (its WOPR id).
    pub static_key: PublicId,
    /// A fresh X25519 public key for this handshake only.
    pub ephemeral: [u8; 32],
    /// The initiator's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// 32 random bytes.
    pub nonce: [u8; 32],
    /// Ed25519 signature by `static_key` over [`Hello::signed_bytes`] in domain [`HELLO_DOMAIN`].
    pub signature: Signature,
}

/// The responder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloAck {
    /// The version chosen: the best one both sides list.
    pub version: u16,
    /// Versions the responder speaks, best first.
    pub versions: Vec<u16>,
    /// The responder's Ed25519 key.
    pub static_key: PublicId,
    /// A fresh X25519 public key for this handshake only.
    pub ephemeral: [u8; 32],
    /// The responder's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// 32 random bytes.
    pub nonce: [u8; 32],
    /// Ed25519 signature by `static_key` over [`HelloAck::signed_bytes`] in domain [`ACK_DOMAIN`].
    pub signature: Signature,
}

/// A refusal sent instead of a HelloAck. It is not signed: it only tells an honest initiator why, and the
/// initiator treats it as a failure in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why (version mismatch, unauthorized, invalid...).
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

/// Any handshake message, as decoded from a plain frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeMessage {
    /// Initiator to responder.
    Hello(Hello),
    /// Responder to initiator, on success.
    HelloAck(HelloAck),
    /// Responder to initiator, on failure.
    Reject(Reject),
}

fn versions(w: &mut Writer, v: &[u16]) {
    w.list(v, |w, v| {
        w.u16(*v);
    });
}

fn read_versions(r: &mut Reader<'_>) -> Result<Vec<u16>, CodecError> {
    r.list("version list", MAX_VERSIONS, 2, |r| r.u16())
}

fn expect_tag(r: &mut Reader<'_>, tag: u8) -> Result<(), CodecError> {
    match r.u8()? {
        t if t == tag => Ok(()),
        t => Err(CodecError::UnknownTag { what: "handshake message type", value: u64::from(t) }),
    }
}

impl Hello {
    fn encode_unsigned(&self, w: &mut Writer) {
        w.u8(TAG_HELLO);
        versions(w, &self.versions);
        w.raw(self.static_key.as_bytes()).raw(&self.ephemeral).u64(self.timestamp_ms).raw(&self.nonce);
    }

    /// What the initiator signs: the Hello without its signature, then the intended responder's key.
    pub fn signed_bytes(&self, responder: &PublicId) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.raw(responder.as_bytes());
        w.into_bytes()
    }

    /// Signs for `responder` with `identity` (which should be `static_key`'s owner).
    pub fn sign(&mut self, identity: &Identity, responder: &PublicId) {
        self.signature = identity.sign(HELLO_DOMAIN, &self.signed_bytes(responder));
    }

    /// Checks the signature, as the responder `me`.
    pub fn verify(&self, me: &PublicId) -> Result<(), HandshakeError> {
        verify(&self.static_key, HELLO_DOMAIN, &self.signed_bytes(me), &self.signature)
            .map_err(|_| HandshakeError::BadSignature)
    }
}

impl Encode for Hello {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for Hello {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        expect_tag(r, TAG_HELLO)?;
        Ok(Hello {
            versions: read_versions(r)?,
            static_key: PublicId(r.array()?),
            ephemeral: r.array()?,
            timestamp_ms: r.u64()?,
            nonce: r.array()?,
            signature: r.array()?,
        })
    }
}

impl HelloAck {
    fn encode_unsigned(&self, w: &mut Writer) {
        w.u8(TAG_ACK).u16(self.version);
        versions(w, &self.versions);
        w.raw(self.static_key.as_bytes()).raw(&self.ephemeral).u64(self.timestamp_ms).raw(&self.nonce);
    }

    /// What the responder signs: the transcript so far. That is the complete Hello (with its signature) as
    /// length-prefixed bytes, then this Ack without its signature.
    pub fn signed_bytes(&self, hello: &Hello) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&hello.to_bytes());
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    /// Signs the transcript with `identity`.
    pub fn sign(&mut self, identity: &Identity, hello: &Hello) {
        self.signature = identity.sign(ACK_DOMAIN, &self.signed_bytes(hello));
    }

    /// Checks the signature against the Hello this Ack answers.
    pub fn verify(&self, hello: &Hello) -> Result<(), HandshakeError> {
        verify(&self.static_key, ACK_DOMAIN, &self.signed_bytes(hello), &self.signature)
            .map_err(|_| HandshakeError::BadSignature)
    }
}

impl Encode for HelloAck {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for HelloAck {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        expect_tag(r, TAG_ACK)?;
        Ok(HelloAck {
            version: r.u16()?,
            versions: read_versions(r)?,
            static_key: PublicId(r.array()?),
            ephemeral: r.array()?,
            timestamp_ms: r.u64()?,
            nonce: r.array()?,
            signature: r.array()?,
        })
    }
}

impl Encode for Reject {
    fn encode(&self, w: &mut Writer) {
        w.u8(TAG_REJECT).u8(self.code.as_u8()).str(&self.message);
    }
}

impl Decode for Reject {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        expect_tag(r, TAG_REJECT)?;
        Ok(Reject {
            code: ErrorCode::from_u8(r.u8()?)?,
            message: r.string("reject message", MAX_REJECT_MESSAGE)?,
        })
    }
}

impl Encode for HandshakeMessage {
    fn encode(&self, w: &mut Writer) {
        match self {
            HandshakeMessage::Hello(m) => m.encode(w),
            HandshakeMessage::HelloAck(m) => m.encode(w),
            HandshakeMessage::Reject(m) => m.encode(w),
        }
    }
}

impl Decode for HandshakeMessage {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut peek = r.clone();
        match peek.u8()? {
            TAG_HELLO => Hello::decode(r).map(HandshakeMessage::Hello),
            TAG_ACK => HelloAck::decode(r).map(HandshakeMessage::HelloAck),
            TAG_REJECT => Reject::decode(r).map(HandshakeMessage::Reject),
            t => Err(CodecError::UnknownTag { what: "handshake message type", value: u64::from(t) }),
        }
    }
}

impl From<Hello> for HandshakeMessage {
    fn from(m: Hello) -> Self {
        HandshakeMessage::Hello(m)
    }
}

impl From<HelloAck> for HandshakeMessage {
    fn from(m: HelloAck) -> Self {
        HandshakeMessage::HelloAck(m)
    }
}

impl From<Reject> for HandshakeMessage {
    fn from(m: Reject) -> Self {
        HandshakeMessage::Reject(m)
    }
}
