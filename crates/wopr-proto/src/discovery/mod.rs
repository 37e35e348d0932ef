//! Discovery, sans-IO: topic ids, signed profiles, the messages of a topic, and the table of peers a
//! node sees in its topics. The gossip transport around them is `wopr-p2p`'s.
//!
//! A topic is a name; peers meet under its id, `SHA-256("wopr:topic:" + name)`, so the name itself
//! never travels outside the topic. In a topic each peer announces a signed [`Profile`], repeats it
//! while it stays, and withdraws it when it leaves ([`TopicMessage`]). Gossip hands a message on from
//! neighbour to neighbour (its `delivered_from` is the last relay, not the author), so every payload
//! carries its author's signature. A [`PeerTable`] keeps what passed the checks: only the newest profile
//! of each author, only while the author keeps re-announcing, and at most [`MAX_PEERS_PER_TOPIC`].

mod profile;
mod table;
mod topic;

use sha2::{Digest, Sha256};

pub use profile::{
    MAX_CONTENT, MAX_PROFILE_BYTES, MAX_TOPIC_NAME, MAX_TOPICS, PROFILE_DOMAIN, Profile, ProfileError,
};
pub use table::{MAX_PEERS_PER_TOPIC, Offer, PEER_TTL_MS, PeerEntry, PeerTable, Verdict, profile_name};
pub use topic::{
    MAX_SHARE_BYTES, MAX_SHARED_PROFILES, MAX_TOPIC_MESSAGE, Share, TopicMessage, WITHDRAW_DOMAIN, Withdraw,
};

/// The prefix hashed with a topic name into its id.
pub const TOPIC_PREFIX: &str = "wopr:topic:";

/// A topic's id: `SHA-256("wopr:topic:" + name)`.
pub fn topic_id(name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TOPIC_PREFIX.as_bytes());
    h.update(name.as_bytes());
    h.finalize().into()
}

/// Checks a topic name a person typed: 1 to [`MAX_TOPIC_NAME`] bytes, no control characters.
pub fn check_topic_name(name: &str) -> Result<(), ProfileError> {
    if name.is_empty() || name.len() > MAX_TOPIC_NAME || name.chars().any(char::is_control) {
        return Err(ProfileError::BadTopicName);
    }
    Ok(())
}
