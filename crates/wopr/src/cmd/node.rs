//! Reaching the P2P node: through the running daemon, or an in-process node for one request.

use serde_json::{Value, json};
use wopr_daemon::ipc::{InjectStatus, Request};
use wopr_daemon::service::types::Deleted;
use wopr_daemon::{AgentBackend, client};
use wopr_p2p::{Node, NodeConfig, P2pError};

use super::Ctx;
use crate::exit::Exit;

/// Runs `request` on the daemon if one runs for this home, else on a node started just for it, so there
/// is one endpoint per identity either way. Streamed answer pieces go to `on_delta`.
pub async fn dispatch(
    ctx: &Ctx,
    request: Request,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<Value, Exit> {
    if let Some(stream) = client::connect(&ctx.home).await {
        return client::call(stream, &request, on_delta).await.map_err(Exit::from);
    }
    let node = start_node(ctx).await?;
    if let Request::Friend(op) = request {
        let reply = wopr_daemon::friend::handle(&node, op).await;
        node.shutdown().await;
        return match reply {
            wopr_daemon::ipc::Reply::Ok(v) => Ok(v),
            wopr_daemon::ipc::Reply::Error { code, message } => Err(Exit { code, message }),
            wopr_daemon::ipc::Reply::Delta(_) => Err(Exit::failure("unexpected streamed answer")),
        };
    }
    let result = match request {
        Request::Claim { token } => {
            node.claim(&token).await.map(|peer| serde_json::to_value(peer).unwrap_or_default())
        }
        Request::Inject { peer, session, text, hops } => node
            .inject_forwarded(&peer, &session, &text, hops, |d| on_delta(d))
            .await
            .map(|s| json!(InjectStatus { status: wopr_daemon::status_word(s).into() })),
        Request::Revoke { peer } => peer_key(ctx, &peer)
            .and_then(|k| Ok((k, node.revoke(&k)?)))
            .map(|(k, n)| json!(Deleted { name: k.to_hex(), removed: n as u64 })),
        Request::NetReport { peer, wait } => {
            match peer.as_deref().map(wopr_identity::PublicId::parse).transpose() {
                Ok(peer) => {
                    let report = node.net_report(peer.as_ref(), std::time::Duration::from_secs(wait)).await;
                    Ok(serde_json::to_value(report).unwrap_or_default())
                }
                Err(e) => Err(P2pError::Invalid(format!("peer: {e}"))),
            }
        }
        other => Err(P2pError::Invalid(format!("{other:?} needs a running daemon: `wopr daemon start`"))),
    };
    node.shutdown().await;
    result.map_err(p2p_exit)
}

/// [`dispatch`], with the answer read as `T` (the typed replies of the daemon's core).
pub async fn dispatch_as<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    request: Request,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<T, Exit> {
    let v = dispatch(ctx, request, on_delta).await?;
    serde_json::from_value(v).map_err(|e| Exit::failure(format!("the daemon's answer: {e}")))
}

/// A node for this identity with the configured network settings.
pub async fn start_node(ctx: &Ctx) -> Result<Node, Exit> {
    let identity = ctx
        .home
        .load_identity()
        .map_err(|e| Exit::failure(e.to_string()))?
        .ok_or_else(|| Exit::failure("no identity yet: run `wopr id init`"))?
        .identity;
    let config = NodeConfig::load(&ctx.home).map_err(p2p_exit)?;
    Node::start(identity, ctx.home.clone(), config, AgentBackend::new(ctx.home.clone()))
        .await
        .map_err(p2p_exit)
}

pub fn p2p_exit(e: P2pError) -> Exit {
    Exit::from(e)
}

/// The key of a peer named in access.json or peers.json (name, short id, full id), or a full id.
pub fn peer_key(ctx: &Ctx, query: &str) -> Result<wopr_identity::PublicId, P2pError> {
    wopr_daemon::service::peer_key(&ctx.home, query)
}
