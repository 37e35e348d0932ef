//! The CLI-daemon protocol: one JSON request line, then JSON reply lines, over `daemon.sock`.
//!
//! Long answers stream: an inject yields `Delta` lines, then one final `Ok` or `Error` line.

use serde::{Deserialize, Serialize};

/// What the CLI asks the daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Pid, uptime, id, addresses, relay, connected peers, ticket.
    Status,
    /// Address hints for a new invite.
    Hints,
    /// Claim an invite token.
    Claim {
        /// The `wop1://` token.
        token: String,
    },
    /// Inject into (or log to) a peer's session; the answer streams back.
    Inject {
        /// Name, short id or full id of the peer.
        peer: String,
        /// The peer's session.
        session: String,
        /// The message.
        text: String,
        /// P2P hops the work already travelled (1 when an AI's `p2p_inject` tool sends it).
        #[serde(default)]
        hops: u8,
    },
    /// Remove a peer's grants and close its connections now.
    Revoke {
        /// Name, short id or full id of the peer.
        peer: String,
    },
    /// Rotate the identity, restart the endpoint under the new key, and tell every peer.
    Rotate {
        /// scheduled, compromise or upgrade.
        reason: String,
    },
    /// Discovery: topics, profiles, connect-requests.
    Discover(DiscoverOp),
    /// The friend protocol.
    Friend(FriendOp),
    /// What `wopr doctor net` shows: a `wopr_p2p::NetReport` as JSON.
    NetReport {
        /// Also report the path to this peer (full id, hex): direct or relayed.
        #[serde(default)]
        peer: Option<String>,
        /// How long to wait for the relay, the measurements and a direct path, in seconds.
        #[serde(default)]
        wait: u64,
    },
    /// The HTTP API's bearer token; with `rotate`, a new one (the old one and web UI sessions end).
    Token {
        /// Make a new token.
        #[serde(default)]
        rotate: bool,
    },
    /// A one-time link that logs the web UI in.
    UiLogin,
    /// Shut down gracefully.
    Stop,
}

/// A discovery request. `Join` and `Watch` stream events (one JSON object per `Delta` line) until the
/// CLI hangs up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum DiscoverOp {
    /// Join a topic; with `watch`, then stream its events.
    Join {
        /// The topic name.
        topic: String,
        /// Stream events after joining.
        #[serde(default)]
        watch: bool,
    },
    /// Leave a topic (withdrawing the profile).
    Leave {
        /// The topic name.
        topic: String,
    },
    /// The joined topics.
    Topics,
    /// The peers seen.
    Peers {
        /// Only this topic.
        #[serde(default)]
        topic: Option<String>,
        /// Include what the content filter dropped, with the reason.
        #[serde(default)]
        all: bool,
        /// Only these keys or short ids, comma-separated.
        #[serde(default)]
        only: Option<String>,
    },
    /// This node's profile.
    Profile {
        /// As announced in this topic.
        #[serde(default)]
        topic: Option<String>,
    },
    /// Re-read the `discover.*` settings (after `config set` or `profile set`).
    Reload,
    /// Ask a peer seen in a topic for mutual trust.
    Connect {
        /// Its short id, full id or profile name.
        peer: String,
        /// The session wanted.
        #[serde(default)]
        session: Option<String>,
        /// Why.
        #[serde(default)]
        note: String,
    },
    /// Topics, bootstrap sources, the layers' settings.
    Status,
    /// Connect-requests waiting for the owner.
    Requests,
    /// Accept or decline a waiting connect-request.
    Decide {
        /// The requester's short or full id.
        peer: String,
        /// Accept (else decline).
        accept: bool,
    },
}

/// One line of the daemon's reply.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// A piece of a streamed answer.
    Delta(String),
    /// Success, with a result object.
    Ok(serde_json::Value),
    /// Failure, with the CLI exit code to use.
    Error {
        /// Exit code (DESIGN section 5), a number on the wire.
        code: wopr_store::ExitCode,
        /// What went wrong, for the user.
        message: String,
    },
}

impl Reply {
    /// The final line for a core answer: its value, or its error and exit code.
    pub fn of<T: Serialize>(result: crate::service::ApiResult<T>) -> Reply {
        match result {
            Ok(v) => Reply::Ok(serde_json::to_value(v).unwrap_or_default()),
            Err(e) => Reply::Error { code: e.code, message: e.message },
        }
    }
}

/// A friend-protocol request that needs the node (lists and rules are read from `friends.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum FriendOp {
    /// Send a friend request.
    Request {
        /// A peer seen in a topic, a name or id from `peers.json`/`access.json`, or a full key.
        target: String,
    },
    /// Accept a waiting request (by name or id), a pasted `FRIEND_REQUEST` line, or take a pasted
    /// `FRIEND_ACCEPT` line.
    Accept {
        /// The name, id or line.
        query: String,
    },
    /// End a friendship (and revoke its grant).
    Remove {
        /// The friend's name or id.
        query: String,
    },
}

/// The answer to [`Request::Inject`]: how the peer ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectStatus {
    /// `completed`, `logged`, `failed` or `cancelled`.
    pub status: String,
}

/// The answer to [`Request::Hints`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    /// Where this node can be reached.
    pub hints: Vec<String>,
}

/// The answer to [`Request::Token`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReply {
    /// The bearer token.
    pub token: String,
    /// Where the API listens.
    pub api: Option<String>,
}

/// The answer to [`Request::UiLogin`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLink {
    /// The one-time link.
    pub url: String,
}
