//! `wopr id rotate --broadcast`: rotate and tell every known peer.

use anyhow::Result;
use wopr_daemon::ipc::Request;
use wopr_identity::RotationReason;

use super::Ctx;
use super::node::{p2p_exit, start_node};
use crate::exit::Exit;
use crate::output;
use wopr_daemon::service::types::RotateReply;

pub fn broadcast(ctx: &Ctx, reason: &str, json: bool) -> Result<()> {
    let rt = super::runtime()?;
    let result = rt.block_on(rotate_and_tell(ctx, reason))?;
    if json {
        return output::json(&result);
    }
    let old = wopr_identity::PublicId::parse(&result.old_key).map(|k| k.short()).unwrap_or_default();
    println!(
        "Rotated {old} -> {}: {} peer(s) told, {} pending (they learn it at the next connection), {} refused",
        result.identity.short_id,
        result.delivered.len(),
        result.pending.len(),
        result.refused.len()
    );
    Ok(())
}

/// Rotates the identity for `reason` and tells every known peer: through the daemon, which also
/// restarts its endpoint under the new key, or on a node started for it. `wopr id rotate --broadcast`
/// and the agent's `p2p_rotate_keys` tool. Returns the signed record and who was told.
pub(crate) async fn rotate_and_tell(ctx: &Ctx, reason: &str) -> Result<RotateReply, Exit> {
    if let Some(stream) = wopr_daemon::client::connect(&ctx.home).await {
        return wopr_daemon::client::call_as(stream, &Request::Rotate { reason: reason.into() }, |_| {})
            .await
            .map_err(Exit::from);
    }
    let reason = RotationReason::parse(reason).ok_or_else(|| {
        Exit::invalid(format!("unknown reason {reason:?}: scheduled, compromise or upgrade"))
    })?;
    let (identity, record) = ctx.home.rotate_identity(reason).map_err(|e| Exit::failure(e.to_string()))?;
    let view = wopr_daemon::service::identity_view(&identity);
    let node = start_node(ctx).await?;
    let report = node.broadcast_rotation(&record).await;
    node.shutdown().await;
    let report = report.map_err(p2p_exit)?;
    Ok(wopr_daemon::service::rotate_reply(&record, view, &report))
}
