//! The effective security policy per session and per source (`wopr security show`, `GET /security`).

use std::collections::{BTreeMap, BTreeSet};

use wopr_agent::policy::{Source, TurnTrust, owner_policy, policy_for, sandbox_choice, session_taint};
use wopr_p2p::PeerLimits;
use wopr_store::{Home, SessionName};

use super::sessions::taint_view;
use super::types::{RateLimit, SandboxInUse, SecurityView, SessionSecurity, SourceSecurity};
use super::{ApiError, ApiResult, Core};

fn to_json(v: impl serde::Serialize) -> ApiResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| ApiError::failure(e.to_string()))
}

impl Core {
    /// Who may reach each session, at which trust every source's turns run, and the sandbox.
    pub fn security(&self) -> ApiResult<SecurityView> {
        security_view(&self.home)
    }
}

/// [`Core::security`] for a home (the CLI without a daemon).
pub fn security_view(home: &Home) -> ApiResult<SecurityView> {
    {
        let sessions = home.sessions().list()?;
        let grants = home.access().load()?.grants;
        let backend = sandbox_choice(home)?;
        let problem = backend.create().err().map(|e| e.to_string());
        let limits = PeerLimits::default().injects;
        let history = if sessions.is_empty() { None } else { Some(home.history()?) };

        let mut session_out = BTreeMap::new();
        for (session, meta) in &sessions {
            let name = session.as_str();
            let reachable: Vec<_> = grants.iter().filter(|g| g.sessions.contains(name)).collect();
            let taint = match &history {
                Some(h) => session_taint(h, session)?,
                None => None,
            };
            // What the owner's next turn here runs under: a tainted session's turns are sandboxed at
            // the taint's trust whatever the switch says; a clean one follows the switch.
            let local_policy = match &taint {
                Some(t) => {
                    let turn = TurnTrust { message: Source::Owner, taint: Some(t.clone()) };
                    Some(to_json(turn.policy(home, session))?)
                }
                None if meta.sandbox => Some(to_json(owner_policy(home, session))?),
                None => None,
            };
            let capabilities: BTreeSet<&str> =
                reachable.iter().flat_map(|g| g.capabilities.iter().map(|c| c.as_str())).collect();
            session_out.insert(
                name.to_string(),
                SessionSecurity {
                    access: reachable.iter().map(|g| format!("p2p:{}", g.peer_key.to_hex())).collect(),
                    capabilities: capabilities.into_iter().map(str::to_string).collect(),
                    sandbox: if meta.sandbox { "on" } else { "off" }.into(),
                    local_trust: taint.as_ref().map_or("owner", |t| t.trust.as_str()).into(),
                    taint: taint.as_ref().map(taint_view),
                    local_policy,
                },
            );
        }
        let mut sources = BTreeMap::new();
        sources.insert(
            "cli".to_string(),
            SourceSecurity {
                kind: "local".into(),
                name: None,
                trust: "owner".into(),
                capabilities: Vec::new(),
                sessions: sessions.iter().map(|(n, _)| n.to_string()).collect(),
                rate_limit: None,
                sandbox: "per session".into(),
                policy: None,
            },
        );
        for g in &grants {
            let sample = g.sessions.iter().next().and_then(|s| SessionName::new(s).ok());
            let policy = match sample {
                Some(s) => Some(to_json(policy_for(home, &s, &Source::Peer(g.peer_key)))?),
                None => None,
            };
            sources.insert(
                format!("p2p:{}", g.peer_key.to_hex()),
                SourceSecurity {
                    kind: "p2p".into(),
                    name: Some(g.peer_name.clone()),
                    trust: "untrusted".into(),
                    capabilities: g.capabilities.iter().map(|c| c.as_str().to_string()).collect(),
                    sessions: g.sessions.iter().cloned().collect(),
                    rate_limit: Some(RateLimit { per_minute: limits.per_minute, per_hour: limits.per_hour }),
                    sandbox: "always".into(),
                    policy,
                },
            );
        }
        Ok(SecurityView {
            sandbox: SandboxInUse { backend: backend.as_str().into(), available: problem.is_none(), problem },
            sessions: session_out,
            sources,
        })
    }
}
