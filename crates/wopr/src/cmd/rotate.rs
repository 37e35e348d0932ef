//! `wopr id rotate --broadcast`: rotate and tell every known peer.

use anyhow::Result;
use wopr_daemon::ipc::Request;
use wopr_identity::RotationReason;

use super::Ctx;
use super::node::{p2p_exit, start_node};
use crate::exit::Exit;
use crate::output;
use serde_json::Value;

pub fn broadcast(ctx: &Ctx, reason: &str, json: bool) -> Result<()> {
    let rt = super::runtime()?;
    let result = rt.block_on(rotate_and_tell(ctx, reason))?;
    if json {
        return output::json(&result);
    }
    let count = |k: &str| result["report"][k].as_array().map(Vec::len).unwrap_or(0);
    let short = |k: &str| {
        result["record"][k].as_str().and_then(|h| wopr_identity::PublicId::parse(h).ok()).map(|p| p.short())
    };
    println!(
        "Rotated {} -> {}: {} peer(s) told, {} pending (they learn it at the next connection), {} refused",
        short("oldKey").unwrap_or_default(),
        short("newKey").unwrap_or_default(),
        count("delivered"),
        count("pending"),
        count("refused")
    );
    Ok(())
}

/// Rotates the identity for `reason` and tells every known peer: through the daemon, which also
/// restarts its endpoint under the new key, or on a node started for it. `wopr id rotate --broadcast`
/// and the agent's `p2p_rotate_keys` tool. Returns the signed record and who was told.
pub(crate) async fn rotate_and_tell(ctx: &Ctx, reason: &str) -> Result<Value, Exit> {
    if let Some(stream) = wopr_daemon::client::connect(&ctx.home).await {
        return wopr_daemon::client::call(stream, &Request::Rotate { reason: reason.into() }, |_| {})
            .await
            .map_err(|e| Exit { code: e.exit_code(), message: e.to_string() });
    }
    let reason = RotationReason::parse(reason).ok_or_else(|| {
        Exit::invalid(format!("unknown reason {reason:?}: scheduled, compromise or upgrade"))
    })?;
    let (_, record) =
        ctx.home.rotate_identity(reason).map_err(|e| Exit { code: 1, message: e.to_string() })?;
    let node = start_node(ctx).await?;
    let report = node.broadcast_rotation(&record).await;
    node.shutdown().await;
    let report = report.map_err(p2p_exit)?;
    Ok(serde_json::json!({"record": record, "report": wopr_daemon::report_json(&report)}))
}
