//! Invite tokens: `wop1://` + base64url (no padding) of a token signed by its issuer.
//!
//! A token says: *issuer* grants *subject* (the only key allowed to claim it) these capabilities on these
//! sessions until *expiry*, once (the nonce), and here is how to reach me (address hints). The subject
//! claims it over a direct connection; the issuer runs [`verify_claim`] with the key the handshake
//! authenticated, then records the nonce as used through [`VerifiedClaim::consume`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thiserror::Error;
use wopr_identity::{Identity, PublicId, Signature, verify};

use crate::ErrorCode;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// The URI scheme of an invite.
pub const INVITE_PREFIX: &str = "wop1://";
/// Signature domain of invite tokens.
pub const INVITE_DOMAIN: &str = "invite";
/// Default lifetime of an invite: 7 days.
pub const DEFAULT_INVITE_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Most sessions one invite may name.
pub const MAX_SESSIONS: usize = 32;
/// Longest session name, in bytes.
pub const MAX_SESSION_NAME: usize = 255;
/// Most address hints one invite may carry.
pub const MAX_HINTS: usize = 8;
/// Longest address hint, in bytes.
pub const MAX_HINT_LEN: usize = 256;
/// Longest `wop1://` string accepted (a maximal token is about 14 000 characters).
pub const MAX_TOKEN_CHARS: usize = 16 * 1024;

/// What a peer may do with a session. There are exactly two capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    /// `message`: log text to the conversation; no AI answer.
    pub const MESSAGE: Capabilities = Capabilities(1);
    /// `inject`: send to the AI (in the sandbox) and get its answer.
    pub const INJECT: Capabilities = Capabilities(2);
    const ALL_BITS: u8 = 3;

    /// The wire byte: bit 0 `message`, bit 1 `inject`.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// From the wire byte; `None` if an undefined bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::ALL_BITS == 0).then_some(Capabilities(bits))
    }

    /// Both sets together.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// Whether every capability in `other` is in `self`.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in the set: `message`, `inject`.
    pub fn names(self) -> Vec<&'static str> {
        [(Self::MESSAGE, "message"), (Self::INJECT, "inject")]
            .into_iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| n)
            .collect()
    }

    /// Parses one name (`message` or `inject`).
    pub fn parse(name: &str) -> Option<Capabilities> {
        match name {
            "message" => Some(Self::MESSAGE),
            "inject" => Some(Self::INJECT),
            _ => None,
        }
    }
}

/// Why an invite could not be parsed, issued or claimed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InviteError {
    /// The string does not start with `wop1://`.
    #[error("not an invite: it must start with wop1://")]
    BadPrefix,
    /// The part after `wop1://` is not base64url without padding.
    #[error("invite is not valid base64url; was it copied completely?")]
    BadBase64,
    /// The token is longer than any valid token.
    #[error("invite is longer than {MAX_TOKEN_CHARS} characters")]
    TooLong,
    /// The token ended early.
    #[error("invite is truncated; was it copied completely?")]
    Truncated,
    /// The token's fields are malformed or out of bounds.
    #[error("invite is malformed: {0}")]
    Invalid(CodecError),
    /// The issuer's signature does not verify.
    #[error("invite signature does not verify (forged or altered)")]
    BadSignature,
    /// The token is past its expiry.
    #[error("invite expired at {expires_ms} (now {now_ms}); ask the issuer for a new one")]
    Expired {
        /// Expiry, ms since the Unix epoch.
        expires_ms: u64,
        /// The clock used.
        now_ms: u64,
    },
    /// The token was issued by someone else than the node checking the claim.
    #[error("invite was issued by {issuer:?}, not by this node")]
    WrongIssuer {
        /// Who issued it.
        issuer: PublicId,
    },
    /// The claimant is not the key the invite is bound to.
    #[error("invite is bound to {subject:?}; {claimant:?} cannot claim it")]
    WrongClaimant {
        /// The key the invite names.
        subject: PublicId,
        /// The key that tried to claim it.
        claimant: PublicId,
    },
    /// The invite was already claimed.
    #[error("invite was already used")]
    NonceUsed,
}

impl InviteError {
    /// The error code to report (see [`ErrorCode`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            InviteError::WrongClaimant { .. } => ErrorCode::Unauthorized,
            _ => ErrorCode::Invalid,
        }
    }
}

impl From<CodecError> for InviteError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Truncated { .. } => InviteError::Truncated,
            e => InviteError::Invalid(e),
        }
    }
}

/// What an issuer wants to grant, before signing. [`NewInvite::new`] fills the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    /// The only key that may claim the invite.
    pub subject: PublicId,
    /// Sessions the grant covers.
    pub sessions: Vec<String>,
    /// What the subject may do there.
    pub capabilities: Capabilities,
    /// Expiry, ms since the Unix epoch.
    pub expires_ms: u64,
    /// 16 random bytes making the invite single-use.
    pub nonce: [u8; 16],
    /// How to reach the issuer: socket addresses, relay URLs.
    pub hints: Vec<String>,
}

impl NewInvite {
    /// An invite expiring [`DEFAULT_INVITE_TTL_MS`] after `now_ms`, with no address hints.
    pub fn new(
        subject: PublicId,
        sessions: Vec<String>,
        capabilities: Capabilities,
        now_ms: u64,
        nonce: [u8; 16],
    ) -> Self {
        NewInvite {
            subject,
            sessions,
            capabilities,
            expires_ms: now_ms.saturating_add(DEFAULT_INVITE_TTL_MS),
            nonce,
            hints: Vec::new(),
        }
    }

    /// Signs as `issuer`. Fails if a field is out of bounds (no sessions, empty capabilities, too many or
    /// too long names or hints).
    pub fn sign(self, issuer: &Identity) -> Result<InviteToken, InviteError> {
        let mut token = InviteToken {
            issuer: issuer.public_id(),
            issuer_encrypt_pub: issuer.encrypt_pub(),
            subject: self.subject,
            sessions: self.sessions,
            capabilities: self.capabilities,
            expires_ms: self.expires_ms,
            nonce: self.nonce,
            hints: self.hints,
            signature: [0; 64],
        };
        token.validate()?;
        token.signature = issuer.sign(INVITE_DOMAIN, &token.signed_bytes());
        Ok(token)
    }
}

/// A signed invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteToken {
    /// Who grants access (and signs).
    pub issuer: PublicId,
    /// The issuer's X25519 key.
    pub issuer_encrypt_pub: [u8; 32],
    /// The only key that may claim it.
    pub subject: PublicId,
    /// Sessions granted (1 to [`MAX_SESSIONS`] names).
    pub sessions: Vec<String>,
    /// Capabilities granted (not empty).
    pub capabilities: Capabilities,
    /// Expiry, ms since the Unix epoch; valid while `now < expires_ms`.
    pub expires_ms: u64,
    /// Single-use nonce.
    pub nonce: [u8; 16],
    /// The issuer's address hints.
    pub hints: Vec<String>,
    /// Ed25519 signature by `issuer` over [`InviteToken::signed_bytes`] in domain [`INVITE_DOMAIN`].
    pub signature: Signature,
}

impl InviteToken {
    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(self.issuer.as_bytes()).raw(&self.issuer_encrypt_pub).raw(self.subject.as_bytes());
        w.list(&self.sessions, |w, s| {
            w.str(s);
        });
        w.u8(self.capabilities.bits()).u64(self.expires_ms).raw(&self.nonce);
        w.list(&self.hints, |w, h| {
            w.str(h);
        });
    }

    /// The bytes the issuer signs: the token's encoding without the signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn validate(&self) -> Result<(), CodecError> {
        let too_long = |what, len, max| CodecError::TooLong { what, len, max };
        if self.sessions.is_empty() {
            return Err(CodecError::Invalid("invite with no sessions"));
        }
        if self.sessions.len() > MAX_SESSIONS {
            return Err(too_long("session list", self.sessions.len(), MAX_SESSIONS));
        }
        if let Some(s) = self.sessions.iter().find(|s| s.is_empty() || s.len() > MAX_SESSION_NAME) {
            return Err(match s.len() {
                0 => CodecError::Invalid("empty session name"),
                n => too_long("session name", n, MAX_SESSION_NAME),
            });
        }
        if self.capabilities.is_empty() {
            return Err(CodecError::Invalid("invite with no capabilities"));
        }
        if self.hints.len() > MAX_HINTS {
            return Err(too_long("hint list", self.hints.len(), MAX_HINTS));
        }
        if let Some(h) = self.hints.iter().find(|h| h.len() > MAX_HINT_LEN) {
            return Err(too_long("address hint", h.len(), MAX_HINT_LEN));
        }
        Ok(())
    }

    /// Checks the issuer's signature.
    pub fn verify_signature(&self) -> Result<(), InviteError> {
        verify(&self.issuer, INVITE_DOMAIN, &self.signed_bytes(), &self.signature)
            .map_err(|_| InviteError::BadSignature)
    }

    /// Fails if the token has expired at `now_ms`.
    pub fn check_expiry(&self, now_ms: u64) -> Result<(), InviteError> {
        if now_ms >= self.expires_ms {
            return Err(InviteError::Expired { expires_ms: self.expires_ms, now_ms });
        }
        Ok(())
    }

    /// The `wop1://...` string.
    pub fn to_uri(&self) -> String {
        format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }

    /// Decodes a `wop1://` string without checking signature or expiry (see [`InviteToken::parse`]).
    pub fn decode_uri(s: &str) -> Result<InviteToken, InviteError> {
        let s = s.trim();
        let body = s.strip_prefix(INVITE_PREFIX).ok_or(InviteError::BadPrefix)?;
        if body.len() > MAX_TOKEN_CHARS {
            return Err(InviteError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| InviteError::BadBase64)?;
        Ok(InviteToken::from_bytes(&bytes)?)
    }

    /// Parses a `wop1://` string and checks the issuer's signature and the expiry.
    pub fn parse(s: &str, now_ms: u64) -> Result<InviteToken, InviteError> {
        let token = Self::decode_uri(s)?;
        token.verify_signature()?;
        token.check_expiry(now_ms)?;
        Ok(token)
    }
}

impl Encode for InviteToken {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
}

impl Decode for InviteToken {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let token = InviteToken {
            issuer: PublicId(r.array()?),
            issuer_encrypt_pub: r.array()?,
            subject: PublicId(r.array()?),
            sessions: r
                .list("session list", MAX_SESSIONS, 4, |r| r.string("session name", MAX_SESSION_NAME))?,
            capabilities: {
                let bits = r.u8()?;
                Capabilities::from_bits(bits)
                    .ok_or(CodecError::UnknownTag { what: "capability bits", value: u64::from(bits) })?
            },
            expires_ms: r.u64()?,
            nonce: r.array()?,
            hints: r.list("hint list", MAX_HINTS, 4, |r| r.string("address hint", MAX_HINT_LEN))?,
            signature: r.array()?,
        };
        token.validate()?;
        Ok(token)
    }
}

/// The issuer's check of a claim: its own signature, the expiry, and that the claimant (the key the
/// handshake authenticated) is the subject. The nonce is checked next, with [`VerifiedClaim::consume`].
pub fn verify_claim(
    token: &InviteToken,
    issuer: &PublicId,
    claimant: &PublicId,
    now_ms: u64,
) -> Result<VerifiedClaim, InviteError> {
    if token.issuer != *issuer {
        return Err(InviteError::WrongIssuer { issuer: token.issuer });
    }
    token.verify_signature()?;
    token.check_expiry(now_ms)?;
    if token.subject != *claimant {
        return Err(InviteError::WrongClaimant { subject: token.subject, claimant: *claimant });
    }
    Ok(VerifiedClaim { token: token.clone() })
}

/// Where an issuer remembers which invite nonces were claimed (the store keeps them in `wopr.db`).
pub trait UsedNonces {
    /// Records `nonce` as used; it need only be kept until `expires_ms`, after which the token is refused as
    /// expired anyway. Returns `false` if it was already recorded. A store that cannot record must return
    /// `false`, so a failure refuses the claim rather than allowing a second one.
    fn mark_used(&mut self, nonce: &[u8; 16], expires_ms: u64) -> bool;
}

impl UsedNonces for std::collections::HashSet<[u8; 16]> {
    fn mark_used(&mut self, nonce: &[u8; 16], _expires_ms: u64) -> bool {
        self.insert(*nonce)
    }
}

/// A claim that passed [`verify_claim`] and still needs its nonce checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaim {
    token: InviteToken,
}

impl VerifiedClaim {
    /// The token's single-use nonce.
    pub fn nonce(&self) -> &[u8; 16] {
        &self.token.nonce
    }

    /// Records the nonce in `store`; returns the token (the grant to record) if it was unused.
    pub fn consume(self, store: &mut impl UsedNonces) -> Result<InviteToken, InviteError> {
        if store.mark_used(&self.token.nonce, self.token.expires_ms) {
            Ok(self.token)
        } else {
            Err(InviteError::NonceUsed)
        }
    }
}

#[cfg(test)]
mod tests;
