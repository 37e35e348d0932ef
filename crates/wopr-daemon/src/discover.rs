//! Discovery requests, answered by a node: the daemon's, or one the CLI started for a foreground
//! `discover join`.

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use wopr_p2p::discovery::DiscoveryEvent;
use wopr_p2p::{Node, P2pError};

use crate::ipc::{DiscoverOp, Reply};

fn err(e: P2pError) -> Reply {
    Reply::Error { code: e.exit_code(), message: e.to_string() }
}

fn ok(v: Value) -> Reply {
    Reply::Ok(v)
}

/// Answers `op` on `node`. `Join { watch: true }` answers only once the watcher goes away: the caller
/// should use [`watch`] for it, outside any lock on the node.
pub async fn handle(node: &Node, op: DiscoverOp) -> Reply {
    match op {
        DiscoverOp::Join { topic, .. } => match node.join(&topic).await {
            Ok(new) => ok(json!({"topic": topic, "joined": new, "alreadyIn": !new})),
            Err(e) => err(e),
        },
        DiscoverOp::Leave { topic } => match node.leave(&topic).await {
            Ok(true) => ok(json!({"topic": topic, "left": true})),
            Ok(false) => {
                err(P2pError::Invalid(format!("not in topic {topic:?} (see `wopr discover topics`)")))
            }
            Err(e) => err(e),
        },
        DiscoverOp::Topics => ok(json!({"topics": node.topics()})),
        DiscoverOp::Peers { topic, all } => ok(json!({"peers": node.discovered(topic.as_deref(), all)})),
        DiscoverOp::Profile { topic } => match node.profile(topic.as_deref()) {
            Ok(p) => ok(serde_json::to_value(p).unwrap_or_default()),
            Err(e) => err(e),
        },
        DiscoverOp::Reload => match node.reload_discovery() {
            Ok(()) => ok(json!({"reloaded": true})),
            Err(e) => err(e),
        },
        DiscoverOp::Connect { peer, session, note } => {
            match node.connect(&peer, session.as_deref(), &note).await {
                Ok(c) => ok(json!({"accepted": true, "peer": c.peer, "reason": c.reason})),
                Err(e) => err(e),
            }
        }
        DiscoverOp::Status => ok(serde_json::to_value(node.discover_status()).unwrap_or_default()),
        DiscoverOp::Requests => ok(json!({"requests": node.connect_requests()})),
        DiscoverOp::Decide { peer, accept } => match node.decide_connect(&peer, accept) {
            Ok(key) => ok(json!({"peer": key.to_hex(), "accepted": accept})),
            Err(e) => err(e),
        },
    }
}

/// Streams `events` of `topic` (or every topic) as JSON `Delta` lines until the receiver of `tx` is
/// gone, starting with the peers already listed.
pub async fn watch(
    listed: Vec<wopr_p2p::discovery::PeerView>,
    mut events: broadcast::Receiver<DiscoveryEvent>,
    topic: Option<String>,
    tx: &mpsc::UnboundedSender<Reply>,
) -> Reply {
    let send =
        |ev: &DiscoveryEvent| tx.send(Reply::Delta(serde_json::to_string(ev).unwrap_or_default())).is_ok();
    for peer in listed {
        if !send(&DiscoveryEvent::Appeared { peer }) {
            return ok(json!({"watching": false}));
        }
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) if in_topic(&ev, topic.as_deref()) => {
                    if !send(&ev) {
                        break;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(n, "a discovery watcher fell behind"),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = tx.closed() => break,
        }
    }
    ok(json!({"watching": false}))
}

fn in_topic(ev: &DiscoveryEvent, topic: Option<&str>) -> bool {
    let Some(want) = topic else { return true };
    match ev {
        DiscoveryEvent::Appeared { peer }
        | DiscoveryEvent::Updated { peer }
        | DiscoveryEvent::Filtered { peer } => peer.topic == want,
        DiscoveryEvent::Gone { topic, .. }
        | DiscoveryEvent::Joined { topic }
        | DiscoveryEvent::Left { topic } => topic == want,
    }
}
