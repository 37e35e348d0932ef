//! Friend-protocol requests, answered by a node: the daemon's or one the CLI started for them.

use wopr_p2p::Node;
use wopr_store::Home;

use crate::ipc::{FriendOp, Reply};
use crate::service::discover as d;

/// Answers `op` on `node`.
pub async fn handle(home: &Home, node: &Node, op: FriendOp) -> Reply {
    match op {
        FriendOp::Request { target } => Reply::of(d::friend_request(node, &target).await),
        FriendOp::Accept { query } => Reply::of(d::friend_accept(node, &query).await),
        FriendOp::Remove { query } => Reply::of(d::friend_remove(node, &query)),
        FriendOp::List => Reply::of(d::friend_list(home)),
        FriendOp::AddRule { pattern } => Reply::of(d::add_rule(home, &pattern)),
        FriendOp::RemoveRule { pattern } => Reply::of(d::remove_rule(home, &pattern)),
    }
}
