//! `wopr security show`: the effective policy per session and per source, shaped like the seeds'
//! security configuration (`sessions`, `sources`), plus the sandbox that enforces it.

use anyhow::Result;
use serde_json::{Map, Value, json};
use wopr_agent::policy::{Source, policy_for, sandbox_choice};
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

    let mut session_out = Map::new();
    for (session, meta) in &sessions {
        let name = session.as_str();
        let reachable: Vec<_> = grants.iter().filter(|g| g.sessions.contains(name)).collect();
        session_out.insert(
            name.to_string(),
            json!({
                "access": reachable.iter().map(|g| format!("p2p:{}", g.peer_key.to_hex())).collect::<Vec<_>>(),
                "capabilities": reachable.iter().flat_map(|g| g.capabilities.iter().map(|c| c.as_str())).collect::<std::collections::BTreeSet<_>>(),
                "sandbox": if meta.sandbox { "on" } else { "off" },
                "localPolicy": if meta.sandbox { serde_json::to_value(policy_for(&ctx.home, session, Source::Local))? } else { Value::Null },
            }),
        );
    }
    let mut sources = Map::new();
    sources.insert("cli".into(), json!({"type": "local", "trust": "owner"}));
    for g in &grants {
        let key = g.peer_key.to_hex();
        let sample = g.sessions.iter().next().and_then(|s| SessionName::new(s).ok());
        let policy = match sample {
            Some(s) => serde_json::to_value(policy_for(&ctx.home, &s, Source::Peer(&key)))?,
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
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
