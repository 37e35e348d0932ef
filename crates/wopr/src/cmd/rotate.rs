//! `wopr id rotate --broadcast`: rotate and tell every known peer.

use anyhow::Result;
use wopr_daemon::ipc::Request;
use wopr_identity::RotationReason;

use super::Ctx;
use super::node::{p2p_exit, start_node};
use crate::exit::Exit;
use crate::output;

pub fn broadcast(ctx: &Ctx, reason: &str, json: bool) -> Result<()> {
    let rt = super::runtime()?;
    let result = match rt.block_on(wopr_daemon::client::connect(&ctx.home)) {
        // The daemon rotates, restarts its endpoint under the new key, and broadcasts.
        Some(stream) => rt
            .block_on(wopr_daemon::client::call(stream, &Request::Rotate { reason: reason.into() }, |_| {}))
            .map_err(|e| Exit { code: e.exit_code(), message: e.to_string() })?,
        None => rt.block_on(async {
            let reason = RotationReason::parse(reason).ok_or_else(|| Exit::invalid("unknown reason"))?;
            let (_, record) =
                ctx.home.rotate_identity(reason).map_err(|e| Exit { code: 1, message: e.to_string() })?;
            let node = start_node(ctx).await?;
            let report = node.broadcast_rotation(&record).await;
            node.shutdown().await;
            let report = report.map_err(p2p_exit)?;
            Ok::<_, Exit>(serde_json::json!({"record": record, "report": wopr_daemon::report_json(&report)}))
        })?,
    };
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
