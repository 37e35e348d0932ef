//! Discovery requests, answered by a node: the daemon's, or one the CLI started for a foreground
//! `discover join`.

use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use wopr_p2p::Node;
use wopr_p2p::discovery::DiscoveryEvent;

use crate::ipc::{DiscoverOp, Reply};
use crate::service::discover as d;
use crate::service::types::{ConnectRequest, PeersQuery};

/// Answers `op` on `node`. `Join { watch: true }` answers only once the watcher goes away: the caller
/// should use [`watch`] for it, outside any lock on the node.
pub async fn handle(node: &Node, op: DiscoverOp) -> Reply {
    match op {
        DiscoverOp::Join { topic, .. } => Reply::of(d::join(node, &topic).await),
        DiscoverOp::Leave { topic } => Reply::of(d::leave(node, &topic).await),
        DiscoverOp::Topics => Reply::of(Ok(node.topics())),
        DiscoverOp::Peers { topic, all, only } => {
            Reply::of(Ok(d::peers(node, &PeersQuery { topic, all, only })))
        }
        DiscoverOp::Profile { topic } => Reply::of(node.profile(topic.as_deref()).map_err(Into::into)),
        DiscoverOp::Reload => Reply::of(node.reload_discovery().map(|()| true).map_err(Into::into)),
        DiscoverOp::Connect { peer, session, note } => {
            Reply::of(d::connect(node, &ConnectRequest { peer, session, message: note }).await)
        }
        DiscoverOp::Status => Reply::of(Ok(node.discover_status())),
        DiscoverOp::Requests => Reply::of(Ok(node.connect_requests())),
        DiscoverOp::Decide { peer, accept } => Reply::of(d::decide(node, &peer, accept)),
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
            return Reply::Ok(json!({"watching": false}));
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
    Reply::Ok(json!({"watching": false}))
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
