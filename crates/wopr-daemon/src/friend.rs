//! Friend-protocol requests, answered by a node: the daemon's or one the CLI started for them.

use wopr_p2p::Node;

use crate::ipc::{FriendOp, Reply};
use crate::service::discover as d;

/// Answers `op` on `node`.
pub async fn handle(node: &Node, op: FriendOp) -> Reply {
    match op {
        FriendOp::Request { target } => Reply::of(d::friend_request(node, &target).await),
        FriendOp::Accept { query } => Reply::of(d::friend_accept(node, &query).await),
        FriendOp::Remove { query } => Reply::of(d::friend_remove(node, &query)),
    }
}
