//! `wopr security show`: the effective policy per session and per source, shaped like the seeds'
//! security configuration (`sessions`, `sources`), plus the sandbox that enforces it. The same view as
//! the daemon's `GET /security`.

use anyhow::Result;
use wopr_daemon::service::security_view;
use wopr_daemon::service::types::SecurityView;

use super::Ctx;
use crate::exit::Exit;
use crate::output;

pub fn show(ctx: &Ctx, json_out: bool) -> Result<()> {
    let view = security_view(&ctx.home).map_err(Exit::from)?;
    if json_out {
        return output::json(&view);
    }
    print_text(&view);
    Ok(())
}

/// The same document as short tables (`--json` has every field).
fn print_text(doc: &SecurityView) {
    let sandbox = &doc.sandbox;
    match &sandbox.problem {
        None => println!("Sandbox: {} (works here)", sandbox.backend),
        Some(p) => println!("Sandbox: {} (NOT usable: {p}; peers' tool calls are refused)", sandbox.backend),
    }
    println!("\n{:<24}{:<34}{:<8}TAINT", "SESSION", "YOUR OWN TURNS' TOOLS", "PEERS");
    for (name, s) in &doc.sessions {
        let own = match (&s.taint, s.sandbox == "on") {
            (Some(t), _) => format!("sandboxed ({}: tainted)", t.trust),
            (None, true) => "sandboxed (owner policy)".into(),
            (None, false) => "on the host (sandbox off)".into(),
        };
        let taint = s.taint.as_ref().map_or("-", |t| t.reason.as_str());
        println!("{}", output::printable(&format!("{name:<24}{own:<34}{:<8}{taint}", s.access.len())));
    }
    println!("\n{:<24}{:<11}{:<10}{:<22}TOOLS", "SOURCE", "TRUST", "CAPS", "SESSIONS");
    for (name, src) in &doc.sources {
        let shown = match &src.name {
            Some(peer) => format!("p2p:{peer}"),
            None => name.clone(),
        };
        let limits = src.policy.as_ref().and_then(|p| p.get("limits"));
        let tools = match limits {
            Some(l) => format!(
                "sandbox, no network, {} pids, {} MiB, {} CPU, {} s",
                l["pids"],
                l["memoryBytes"].as_u64().unwrap_or(0) / (1024 * 1024),
                l["cpus"],
                l["timeoutMs"].as_u64().unwrap_or(0) / 1000
            ),
            None if src.kind == "local" => "per session (above)".into(),
            None => "sandbox".into(),
        };
        let sessions = if src.kind == "local" { String::new() } else { src.sessions.join(",") };
        let line =
            format!("{shown:<24}{:<11}{:<10}{sessions:<22}{tools}", src.trust, src.capabilities.join(","));
        println!("{}", output::printable(&line));
    }
}
