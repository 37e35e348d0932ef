//! What discovery shows: peers as JSON-friendly views, and the events a `discover join` streams.

use serde::{Deserialize, Serialize};
use wopr_proto::discovery::{PeerEntry, Profile, Verdict};

/// A discovered peer, as `discover peers --json` prints it (the spec's profile fields, plus where it
/// was seen and what the content filter said).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    /// Short id (8 characters).
    pub id: String,
    /// Full Ed25519 key, hex.
    pub public_key: String,
    /// X25519 key, hex.
    pub encrypt_pub: String,
    /// The profile content: JSON when it parses, else the text.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Topics the profile names.
    pub topics: Vec<String>,
    /// Address hints the profile carries.
    pub hints: Vec<String>,
    /// When the author wrote the profile (ms since the epoch).
    pub updated: u64,
    /// The author's signature, hex.
    pub sig: String,
    /// The topic it was seen in.
    pub topic: String,
    /// When it last re-announced, on this node's clock.
    pub heard: u64,
    /// Layer 3's word on it.
    pub verdict: VerdictWord,
    /// Layer 3's reason, if it judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PeerView {
    /// The view of a profile that came with a connect-request in `topic`.
    pub(crate) fn of_profile(topic: &str, p: &Profile, now_ms: u64) -> PeerView {
        PeerView::of(
            topic,
            &PeerEntry { profile: p.clone(), heard_ms: now_ms, since_ms: now_ms, verdict: Verdict::Unjudged },
        )
    }

    /// The view of a table entry seen in `topic`.
    pub(crate) fn of(topic: &str, e: &PeerEntry) -> PeerView {
        let p = &e.profile;
        let (verdict, reason) = match &e.verdict {
            Verdict::Unjudged => (VerdictWord::Unjudged, None),
            Verdict::Allowed(r) => (VerdictWord::Allowed, Some(r.clone())),
            Verdict::Filtered(r) => (VerdictWord::Filtered, Some(r.clone())),
        };
        PeerView {
            id: p.author.short(),
            public_key: p.author.to_hex(),
            encrypt_pub: hex::encode(p.encrypt_pub),
            content: serde_json::from_str(&p.content).unwrap_or_else(|_| p.content.clone().into()),
            topics: p.topics.clone(),
            hints: p.hints.clone(),
            updated: p.updated_ms,
            sig: hex::encode(p.signature),
            topic: topic.to_string(),
            heard: e.heard_ms,
            verdict,
            reason,
        }
    }
}

/// What the content filter (layer 3) said of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictWord {
    /// It did not judge (off, or not yet).
    Unjudged,
    /// It let the profile through.
    Allowed,
    /// It dropped the profile; shown only with `--all`.
    Filtered,
}

/// Why a peer left the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GoneWhy {
    /// It fell silent past the profile's lifetime.
    Expired,
    /// It left the topic and said so.
    Withdrawn,
}

impl GoneWhy {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            GoneWhy::Expired => "expired",
            GoneWhy::Withdrawn => "withdrawn",
        }
    }
}

/// Something that happened in a joined topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum DiscoveryEvent {
    /// A peer's first profile arrived (and passed the filters that run).
    Appeared {
        /// The peer.
        peer: PeerView,
    },
    /// A listed peer's profile changed.
    Updated {
        /// The peer, with its new profile.
        peer: PeerView,
    },
    /// The content filter dropped a peer's profile.
    Filtered {
        /// The peer, with the reason.
        peer: PeerView,
    },
    /// A peer fell silent or withdrew.
    Gone {
        /// The topic.
        topic: String,
        /// Its short id.
        id: String,
        /// Its full key.
        public_key: String,
        /// Why.
        why: GoneWhy,
    },
    /// This node joined a topic.
    Joined {
        /// The topic.
        topic: String,
    },
    /// This node left a topic.
    Left {
        /// The topic.
        topic: String,
    },
}

/// A joined topic, for `discover topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Its name.
    pub name: String,
    /// Its id (SHA-256 of the prefixed name), hex.
    pub id: String,
    /// Peers listed now.
    pub peers: usize,
    /// Direct gossip neighbours now.
    pub neighbors: usize,
}

/// A connect-request waiting for the owner (`discover.accept = ask`), for `discover requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    /// The requester, with the profile it sent.
    pub peer: PeerView,
    /// Its note.
    pub note: String,
}
