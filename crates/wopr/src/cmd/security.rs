//! `wopr security show`: the effective policy per session and per source, shaped like the seeds'
//! security configuration (`sessions`, `sources`), plus the sandbox that enforces it.

use anyhow::Result;
use serde_json::{Map, Value, json};
use wopr_agent::policy::{Source, TurnTrust, owner_policy, policy_for, sandbox_choice, session_taint};
use wopr_p2p::PeerLimits;
use wopr_store::SessionName;

use super::Ctx;
use crate::output;

pub fn show(ctx: &Ctx, json_out: bool) -> Result<()> {
    let sessions = ctx.home.sessions().list()?;
    let grants = ctx.home.access().load()?.grants;
    let backend = sandbox_choice(&ctx.home)?;
    let available = backend.create().map(|_| String::new()).unwrap_or_else(|e| e.to_string());
    let limits = PeerLimits::default().injects;
    let history = if sessions.is_empty() { None } else { Some(ctx.home.history()?) };

    let mut session_out = Map::new();
    for (session, meta) in &sessions {
        let name = session.as_str();
        let reachable: Vec<_> = grants.iter().filter(|g| g.sessions.contains(name)).collect();
        let taint = match &history {
            Some(h) => session_taint(h, session)?,
            None => None,
        };
        // What the owner's next turn here runs under: a tainted session's turns are sandboxed at the
        // taint's trust whatever the switch says; a clean one follows the switch.
        let local_policy = match &taint {
            Some(t) => {
                let turn = TurnTrust { message: Source::Owner, taint: Some(t.clone()) };
                serde_json::to_value(turn.policy(&ctx.home, session))?
            }
            None if meta.sandbox => serde_json::to_value(owner_policy(&ctx.home, session))?,
            None => Value::Null,
        };
        session_out.insert(
            name.to_string(),
            json!({
                "access": reachable.iter().map(|g| format!("p2p:{}", g.peer_key.to_hex())).collect::<Vec<_>>(),
                "capabilities": reachable.iter().flat_map(|g| g.capabilities.iter().map(|c| c.as_str())).collect::<std::collections::BTreeSet<_>>(),
                "sandbox": if meta.sandbox { "on" } else { "off" },
                "localTrust": taint.as_ref().map_or("owner", |t| t.trust.as_str()),
                "taint": taint.as_ref().map(super::session::taint_json),
                "localPolicy": local_policy,
            }),
        );
    }
    let mut sources = Map::new();
    sources.insert("cli".into(), json!({"type": "local", "trust": "owner"}));
    for g in &grants {
        let key = g.peer_key.to_hex();
        let sample = g.sessions.iter().next().and_then(|s| SessionName::new(s).ok());
        let policy = match sample {
            Some(s) => serde_json::to_value(policy_for(&ctx.home, &s, &Source::Peer(g.peer_key)))?,
            None => Value::Null,
        };
        sources.insert(
            format!("p2p:{key}"),
            json!({
                "type": "p2p",
                "name": g.peer_name,
                "trust": "untrusted",
                "capabilities": g.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "sessions": g.sessions,
                "rateLimit": {"perMinute": limits.per_minute, "perHour": limits.per_hour},
                "sandbox": "always",
                "policy": policy,
            }),
        );
    }
    let doc = json!({
        "sandbox": {"backend": backend.as_str(), "available": available.is_empty(), "problem": (!available.is_empty()).then_some(available)},
        "sessions": session_out,
        "sources": sources,
    });
    if json_out {
        return output::json(&doc);
    }
    print_text(&doc);
    Ok(())
}

/// The same document as short tables (`--json` has every field).
fn print_text(doc: &Value) {
    let sandbox = &doc["sandbox"];
    match sandbox["problem"].as_str() {
        None => println!("Sandbox: {} (works here)", sandbox["backend"].as_str().unwrap_or("?")),
        Some(p) => println!(
            "Sandbox: {} (NOT usable: {p}; peers' tool calls are refused)",
            sandbox["backend"].as_str().unwrap_or("?")
        ),
    }
    let strings = |v: &Value| {
        v.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
    };
    println!("\n{:<24}{:<34}{:<8}TAINT", "SESSION", "YOUR OWN TURNS' TOOLS", "PEERS");
    for (name, s) in doc["sessions"].as_object().into_iter().flatten() {
        let own = match (s["taint"]["trust"].as_str(), s["sandbox"] == "on") {
            (Some(trust), _) => format!("sandboxed ({trust}: tainted)"),
            (None, true) => "sandboxed (owner policy)".into(),
            (None, false) => "on the host (sandbox off)".into(),
        };
        let peers = s["access"].as_array().map_or(0, Vec::len);
        let taint = s["taint"]["reason"].as_str().unwrap_or("-");
        println!("{}", output::printable(&format!("{name:<24}{own:<34}{peers:<8}{taint}")));
    }
    println!("\n{:<24}{:<11}{:<10}{:<22}TOOLS", "SOURCE", "TRUST", "CAPS", "SESSIONS");
    for (name, src) in doc["sources"].as_object().into_iter().flatten() {
        let shown = match src["name"].as_str() {
            Some(peer) => format!("p2p:{peer}"),
            None => name.clone(),
        };
        let tools = match src["policy"]["limits"].as_object() {
            Some(l) => format!(
                "sandbox, no network, {} pids, {} MiB, {} CPU, {} s",
                l["pids"],
                l["memoryBytes"].as_u64().unwrap_or(0) / (1024 * 1024),
                l["cpus"],
                l["timeoutMs"].as_u64().unwrap_or(0) / 1000
            ),
            None if src["type"] == "local" => "per session (above)".into(),
            None => "sandbox".into(),
        };
        let trust = src["trust"].as_str().unwrap_or("?");
        println!(
            "{shown:<24}{trust:<11}{:<10}{:<22}{tools}",
            strings(&src["capabilities"]),
            strings(&src["sessions"])
        );
    }
}
