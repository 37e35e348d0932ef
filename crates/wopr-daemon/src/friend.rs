//! Friend-protocol requests, answered by a node: the daemon's or one the CLI started for them.

use serde_json::json;
use wopr_p2p::{FriendOutcome, Node};

use crate::ipc::{FriendOp, Reply};

/// Answers `op` on `node`.
pub async fn handle(node: &Node, op: FriendOp) -> Reply {
    let result = match op {
        FriendOp::Request { target } => node.friend_request(&target).await.map(|o| match o {
            FriendOutcome::Accepted(f) => json!({"status": "accepted", "friend": f}),
            FriendOutcome::Pending { reason, line } => {
                json!({"status": "pending", "reason": reason, "line": line})
            }
            FriendOutcome::Posted { topic, reason, line } => {
                json!({"status": "posted", "topic": topic, "reason": reason, "line": line})
            }
            FriendOutcome::Undelivered { reason, line } => {
                json!({"status": "undelivered", "reason": reason, "line": line})
            }
        }),
        FriendOp::Accept { query } if query.trim_start().starts_with("FRIEND_ACCEPT") => {
            node.friend_take_accept_line(&query).await.map(|f| json!({"status": "accepted", "friend": f}))
        }
        FriendOp::Accept { query } => node.friend_accept(&query).await.map(|a| {
            json!({
                "status": "accepted",
                "friend": a.friend,
                "line": a.line,
                "delivered": a.delivered.is_ok(),
                "viaTopic": a.delivered.clone().ok().flatten(),
                "undeliveredReason": a.delivered.err(),
            })
        }),
        FriendOp::Remove { query } => node.friend_remove(&query).map(|f| json!({"removed": f})),
    };
    match result {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error { code: e.exit_code(), message: e.to_string() },
    }
}
