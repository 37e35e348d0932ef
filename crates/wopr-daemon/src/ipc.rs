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
        /// P2P hops the work already travelled (1 when an AI's `inject_peer` tool sends it).
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
    /// What `wopr doctor net` shows: a `wopr_p2p::NetReport` as JSON.
    NetReport {
        /// Also report the path to this peer (full id, hex): direct or relayed.
        #[serde(default)]
        peer: Option<String>,
        /// How long to wait for the relay, the measurements and a direct path, in seconds.
        #[serde(default)]
        wait: u64,
    },
    /// Shut down gracefully.
    Stop,
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
        /// Exit code (DESIGN section 5).
        code: i32,
        /// What went wrong, for the user.
        message: String,
    },
}
