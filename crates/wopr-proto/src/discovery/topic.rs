//! What travels in a topic: announces (a signed profile), withdrawals (a signed goodbye), shares (the
//! signed profiles a member passes on to its neighbours) and friend requests and accepts.

use wopr_identity::{Identity, PublicId, SIGNATURE_LEN, Signature, verify};

use super::profile::{MAX_PROFILE_BYTES, MAX_TOPIC_NAME, Profile, ProfileError};
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::friend::{FriendAccept, FriendRequest};

/// The signature domain of withdrawals.
pub const WITHDRAW_DOMAIN: &str = "withdraw";

/// Largest topic message: iroh-gossip's default maximum message size.
pub const MAX_TOPIC_MESSAGE: usize = 4096;

/// Largest share a node sends: the type byte, the nonce and the count around one profile of the largest
/// size, so every profile fits a share of its own, with the same room for gossip's framing an announce
/// leaves.
pub const MAX_SHARE_BYTES: usize = 1 + 8 + 2 + MAX_PROFILE_BYTES;

/// Most profiles one share carries (fewer fit its size unless they are small).
pub const MAX_SHARED_PROFILES: usize = 64;

/// One gossip message of a topic: a type byte, then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicMessage {
    /// Type 1: "here I am", the author's current profile (sent on joining and repeated while it stays).
    Announce(Profile),
    /// Type 2: "I left", so the others drop the author's profile now rather than when it expires.
    Withdraw(Withdraw),
    /// Type 3: profiles a member lists, passed on to its direct neighbours so a newcomer learns who is
    /// in the topic at once, not at each member's next announce. Each profile verifies on its own.
    Share(Share),
    /// Type 4: a friend request (seed 004) posted in the topic for its target, who may be reachable only
    /// through it. Everyone else drops it unread.
    FriendRequest(FriendRequest),
    /// Type 5: a friend accept posted in the topic for the requester.
    FriendAccept(FriendAccept),
}

/// Signed profiles passed on by whoever sends them. The sender signs nothing: each profile carries its
/// author's signature, and the nonce only makes two shares of the same profiles differ (gossip drops a
/// message whose bytes it has seen, and demotes the neighbour that sent it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Random, chosen by the sender.
    pub nonce: u64,
    /// The profiles, at most [`MAX_SHARED_PROFILES`].
    pub profiles: Vec<Profile>,
}

impl Share {
    /// Packs `profiles` into as few shares as hold them within [`MAX_SHARE_BYTES`] each, in order;
    /// `nonce` gives each share its nonce.
    pub fn pack<'a>(
        profiles: impl IntoIterator<Item = &'a Profile>,
        mut nonce: impl FnMut() -> u64,
    ) -> Vec<Share> {
        const HEAD: usize = 1 + 8 + 2;
        let mut shares = Vec::new();
        let mut current: Vec<Profile> = Vec::new();
        let mut len = HEAD;
        for p in profiles {
            let size = p.to_bytes().len();
            if !current.is_empty() && (len + size > MAX_SHARE_BYTES || current.len() == MAX_SHARED_PROFILES) {
                shares.push(Share { nonce: nonce(), profiles: std::mem::take(&mut current) });
                len = HEAD;
            }
            len += size;
            current.push(p.clone());
        }
        if !current.is_empty() {
            shares.push(Share { nonce: nonce(), profiles: current });
        }
        shares
    }
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
            3 => Ok(TopicMessage::Share(Share::parse(body)?)),
            4 => Ok(TopicMessage::FriendRequest(FriendRequest::parse(body).map_err(ProfileError::Friend)?)),
            5 => Ok(TopicMessage::FriendAccept(FriendAccept::parse(body).map_err(ProfileError::Friend)?)),
            v => Err(CodecError::UnknownTag { what: "topic message type", value: u64::from(v) }.into()),
        }
    }

    /// The author the message claims (checked by its signature); a share has none of its own.
    pub fn author(&self) -> Option<PublicId> {
        match self {
            TopicMessage::Announce(p) => Some(p.author),
            TopicMessage::Withdraw(w) => Some(w.author),
            TopicMessage::Share(_) => None,
            TopicMessage::FriendRequest(r) => Some(r.from.key),
            TopicMessage::FriendAccept(a) => Some(a.from.key),
        }
    }

    /// What the peer table is offered, one author at a time: an announce or a withdrawal itself, each
    /// profile of a share as an announce, nothing of a friend message.
    pub fn into_listings(self) -> Vec<TopicMessage> {
        match self {
            TopicMessage::Announce(_) | TopicMessage::Withdraw(_) => vec![self],
            TopicMessage::Share(s) => s.profiles.into_iter().map(TopicMessage::Announce).collect(),
            TopicMessage::FriendRequest(_) | TopicMessage::FriendAccept(_) => Vec::new(),
        }
    }
}

impl Share {
    /// The whole share by §1's rules first, then each profile by an announce's: its size (as read, so
    /// nothing is encoded again) and its fields.
    fn parse(body: &[u8]) -> Result<Share, ProfileError> {
        let mut r = Reader::new(body);
        let nonce = r.u64()?;
        let sized = r.list("shared profiles", MAX_SHARED_PROFILES, MIN_PROFILE_LEN, |r| {
            let before = r.remaining();
            let p = Profile::decode(r)?;
            Ok((p, before - r.remaining()))
        })?;
        r.finish()?;
        for (p, len) in &sized {
            if *len > MAX_PROFILE_BYTES {
                return Err(ProfileError::TooLarge { len: *len });
            }
            p.check_fields()?;
        }
        Ok(Share { nonce, profiles: sized.into_iter().map(|(p, _)| p).collect() })
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
            TopicMessage::Share(x) => {
                w.u8(3);
                x.encode(w);
            }
            TopicMessage::FriendRequest(x) => {
                w.u8(4);
                x.encode(w);
            }
            TopicMessage::FriendAccept(x) => {
                w.u8(5);
                x.encode(w);
            }
        }
    }
}

impl Encode for Share {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.nonce);
        w.list(&self.profiles, |w, p| p.encode(w));
    }
}

/// The smallest encoding that decodes as a profile: two keys, empty content, empty topic and hint lists,
/// the date and the signature.
const MIN_PROFILE_LEN: usize = 32 + 32 + 4 + 2 + 2 + 8 + SIGNATURE_LEN;

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
        assert_eq!(back.author(), Some(alice().public_id()));
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
    fn shares_pack_within_the_size_and_round_trip() {
        let small: Vec<Profile> = (0..40u8)
            .map(|i| Profile::new(&Identity::from_seeds([i; 32], [9; 32], 0), "{}", vec!["coffee".into()], 5))
            .collect::<Result<_, _>>()
            .unwrap();
        let big =
            Profile::new(&alice(), "x".repeat(super::super::MAX_CONTENT), vec!["coffee".into()], 5).unwrap();
        let all: Vec<&Profile> = small.iter().chain([&big]).chain(&small[..3]).collect();
        let mut n = 0;
        let shares = Share::pack(all.iter().copied(), || {
            n += 1;
            n
        });
        assert!(shares.len() >= 3, "{} shares", shares.len());
        let mut back = Vec::new();
        for share in &shares {
            let bytes = TopicMessage::Share(share.clone()).to_bytes();
            assert!(bytes.len() <= MAX_SHARE_BYTES, "{} bytes", bytes.len());
            let TopicMessage::Share(parsed) = TopicMessage::parse(&bytes).unwrap() else { panic!("a share") };
            assert_eq!(&parsed, share);
            back.extend(TopicMessage::Share(parsed).into_listings());
        }
        let expected: Vec<TopicMessage> = all.into_iter().cloned().map(TopicMessage::Announce).collect();
        assert_eq!(back, expected, "every profile once, in order");
        let nonces: std::collections::HashSet<u64> = shares.iter().map(|s| s.nonce).collect();
        assert_eq!(nonces.len(), shares.len(), "each share has its own nonce");
    }

    #[test]
    fn a_profile_of_the_largest_size_fits_a_share_alone() {
        let mut content = String::new();
        let topics: Vec<String> = (0..8).map(|i| format!("{i:0>128}")).collect();
        let mut p = Profile::new(&alice(), "", topics.clone(), 5).unwrap();
        // Grow the content until the profile is as large as one may be.
        while p.to_bytes().len() < MAX_PROFILE_BYTES {
            content.push('x');
            match Profile::new(&alice(), content.clone(), topics.clone(), 5) {
                Ok(next) => p = next,
                Err(_) => break,
            }
        }
        let shares = Share::pack([&p], || 1);
        assert_eq!(shares.len(), 1);
        assert!(TopicMessage::Share(shares[0].clone()).to_bytes().len() <= MAX_SHARE_BYTES);
    }

    #[test]
    fn a_share_refuses_a_malformed_profile_inside() {
        let p = Profile::new(&alice(), "{}", vec!["coffee".into()], 5).unwrap();
        let mut no_topics = p.clone();
        no_topics.topics.clear();
        let bytes = TopicMessage::Share(Share { nonce: 1, profiles: vec![p, no_topics] }).to_bytes();
        assert_eq!(TopicMessage::parse(&bytes), Err(ProfileError::TopicCount { count: 0 }));
        let mut count_too_large = TopicMessage::Share(Share { nonce: 1, profiles: vec![] }).to_bytes();
        count_too_large[9..11].copy_from_slice(&2u16.to_be_bytes());
        assert!(matches!(
            TopicMessage::parse(&count_too_large),
            Err(ProfileError::Codec(CodecError::Truncated { .. }))
        ));
    }

    #[test]
    fn friend_messages_travel_in_a_topic_and_list_no_one() {
        let bob = Identity::from_seeds([8; 32], [9; 32], 0);
        let request = FriendRequest::new(&alice(), "alice", vec![], bob.public_id(), 5).unwrap();
        let accept = FriendAccept::new(&bob, "bob", vec![], &request, 6).unwrap();
        for m in [TopicMessage::FriendRequest(request.clone()), TopicMessage::FriendAccept(accept.clone())] {
            let back = TopicMessage::parse(&m.to_bytes()).unwrap();
            assert_eq!(back, m);
            assert!(back.into_listings().is_empty());
        }
        assert_eq!(TopicMessage::FriendRequest(request).author(), Some(alice().public_id()));
        assert_eq!(TopicMessage::FriendAccept(accept).author(), Some(bob.public_id()));
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
