//! What travels in a topic: announces (a signed profile) and withdrawals (a signed goodbye).

use wopr_identity::{Identity, PublicId, SIGNATURE_LEN, Signature, verify};

use super::profile::{MAX_TOPIC_NAME, Profile, ProfileError};
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// The signature domain of withdrawals.
pub const WITHDRAW_DOMAIN: &str = "withdraw";

/// Largest topic message: iroh-gossip's default maximum message size.
pub const MAX_TOPIC_MESSAGE: usize = 4096;

/// One gossip message of a topic: a type byte, then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicMessage {
    /// Type 1: "here I am", the author's current profile (sent on joining and repeated while it stays).
    Announce(Profile),
    /// Type 2: "I left", so the others drop the author's profile now rather than when it expires.
    Withdraw(Withdraw),
}

/// The author leaves a topic. Signed, so only the author can withdraw itself; dated, so it removes
/// only profiles written before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdraw {
    /// Who leaves.
    pub author: PublicId,
    /// The topic it leaves (a withdrawal replayed into another topic does not verify).
    pub topic: String,
    /// When, in milliseconds since the Unix epoch.
    pub withdrawn_ms: u64,
    /// The author's signature (domain `withdraw`) over the fields above.
    pub signature: Signature,
}

impl Withdraw {
    /// `identity` leaves `topic` at `now_ms`.
    pub fn new(identity: &Identity, topic: &str, now_ms: u64) -> Withdraw {
        let mut w = Withdraw {
            author: identity.public_id(),
            topic: topic.to_string(),
            withdrawn_ms: now_ms,
            signature: [0; SIGNATURE_LEN],
        };
        w.signature = identity.sign(WITHDRAW_DOMAIN, &w.signed_bytes());
        w
    }

    /// The canonical bytes the author signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(self.author.as_bytes()).str(&self.topic).u64(self.withdrawn_ms);
        w.into_bytes()
    }

    /// Checks the signature and that it was meant for `topic`.
    pub fn verify_for(&self, topic: &str) -> Result<(), ProfileError> {
        verify(&self.author, WITHDRAW_DOMAIN, &self.signed_bytes(), &self.signature)
            .map_err(|_| ProfileError::BadSignature)?;
        if self.topic != topic {
            return Err(ProfileError::WrongTopic);
        }
        Ok(())
    }
}

impl TopicMessage {
    /// Decodes a gossip message (not its signature: the table checks it, so it can skip duplicates).
    pub fn parse(bytes: &[u8]) -> Result<TopicMessage, ProfileError> {
        if bytes.len() > MAX_TOPIC_MESSAGE {
            return Err(ProfileError::TooLarge { len: bytes.len() });
        }
        let (&kind, body) = bytes.split_first().ok_or(CodecError::Truncated { needed: 1, remaining: 0 })?;
        match kind {
            1 => Ok(TopicMessage::Announce(Profile::parse(body)?)),
            2 => Ok(TopicMessage::Withdraw(Withdraw::from_bytes(body)?)),
            v => Err(CodecError::UnknownTag { what: "topic message type", value: u64::from(v) }.into()),
        }
    }

    /// The author the message claims (checked by its signature).
    pub fn author(&self) -> PublicId {
        match self {
            TopicMessage::Announce(p) => p.author,
            TopicMessage::Withdraw(w) => w.author,
        }
    }
}

impl Encode for TopicMessage {
    fn encode(&self, w: &mut Writer) {
        match self {
            TopicMessage::Announce(p) => {
                w.u8(1);
                p.encode(w);
            }
            TopicMessage::Withdraw(x) => {
                w.u8(2).raw(&x.signed_bytes()).raw(&x.signature);
            }
        }
    }
}

impl Decode for Withdraw {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Withdraw {
            author: PublicId(r.array()?),
            topic: r.string("topic name", MAX_TOPIC_NAME)?,
            withdrawn_ms: r.u64()?,
            signature: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::from_seeds([7; 32], [9; 32], 0)
    }

    #[test]
    fn announces_and_withdrawals_round_trip() {
        let p = Profile::new(&alice(), "{}", vec!["coffee".into()], 5).unwrap();
        let a = TopicMessage::Announce(p);
        assert_eq!(TopicMessage::parse(&a.to_bytes()).unwrap(), a);
        let w = TopicMessage::Withdraw(Withdraw::new(&alice(), "coffee", 6));
        let back = TopicMessage::parse(&w.to_bytes()).unwrap();
        assert_eq!(back, w);
        assert_eq!(back.author(), alice().public_id());
    }

    #[test]
    fn a_forged_or_moved_withdrawal_is_refused() {
        let w = Withdraw::new(&alice(), "coffee", 6);
        w.verify_for("coffee").unwrap();
        assert_eq!(w.verify_for("tea"), Err(ProfileError::WrongTopic));
        let mut moved = w.clone();
        moved.topic = "tea".into();
        assert_eq!(moved.verify_for("tea"), Err(ProfileError::BadSignature));
        let mut forged = w.clone();
        forged.author = Identity::from_seeds([8; 32], [9; 32], 0).public_id();
        assert_eq!(forged.verify_for("coffee"), Err(ProfileError::BadSignature));
        let mut later = w;
        later.withdrawn_ms += 1;
        assert_eq!(later.verify_for("coffee"), Err(ProfileError::BadSignature));
    }

    #[test]
    fn unknown_empty_or_oversized_messages_are_refused() {
        assert!(TopicMessage::parse(&[]).is_err());
        assert!(matches!(
            TopicMessage::parse(&[9, 0, 0]),
            Err(ProfileError::Codec(CodecError::UnknownTag { .. }))
        ));
        assert!(matches!(
            TopicMessage::parse(&vec![1; MAX_TOPIC_MESSAGE + 1]),
            Err(ProfileError::TooLarge { .. })
        ));
        let mut bytes = TopicMessage::Withdraw(Withdraw::new(&alice(), "coffee", 6)).to_bytes();
        bytes.push(0);
        assert!(TopicMessage::parse(&bytes).is_err());
    }
}
