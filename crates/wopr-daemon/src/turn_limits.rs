//! How much of this node's sandbox one peer may hold: at most `p2p.maxTurnsPerPeer` AI turns of a peer
//! run at once (each may run sandboxed tools), and at most `sandbox.maxConcurrent` sandboxed commands run
//! at once in this process, whoever asked (enforced by `wopr-sandbox`; set here from the configuration
//! read for each turn, so a change counts from the next turn on).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use wopr_identity::PublicId;

/// Config key: most AI turns of one peer at once.
pub const KEY_MAX_TURNS_PER_PEER: &str = "p2p.maxTurnsPerPeer";
/// Its default.
pub const DEFAULT_MAX_TURNS_PER_PEER: usize = 2;
/// Config key: most sandboxed commands at once in the daemon.
pub const KEY_MAX_SANDBOX_RUNS: &str = "sandbox.maxConcurrent";

/// The two limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnLimits {
    /// Most AI turns of one peer at once.
    pub turns_per_peer: usize,
    /// Most sandboxed commands at once in the daemon.
    pub sandbox_runs: usize,
}

impl TurnLimits {
    /// From the loaded `config.json`; a missing or invalid value (anything but a positive integer) gives
    /// the default, with a warning in the log.
    pub fn from_config(config: &Value) -> TurnLimits {
        TurnLimits {
            turns_per_peer: positive(config, KEY_MAX_TURNS_PER_PEER, DEFAULT_MAX_TURNS_PER_PEER),
            sandbox_runs: positive(config, KEY_MAX_SANDBOX_RUNS, wopr_sandbox::DEFAULT_MAX_CONCURRENT_RUNS),
        }
    }
}

fn positive(config: &Value, key: &str, default: usize) -> usize {
    let value = key.split('.').try_fold(config, |v, k| v.get(k));
    match value {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0) {
            Some(n) => n,
            None => {
                tracing::warn!(key, %v, default, "not a positive integer; using the default");
                default
            }
        },
    }
}

/// The turns running now, per peer.
#[derive(Debug, Default)]
pub(crate) struct PeerTurns {
    running: Mutex<HashMap<PublicId, usize>>,
}

impl PeerTurns {
    /// Counts a turn of `peer`, or refuses it when `max` of its turns already run.
    pub(crate) fn enter(&self, peer: PublicId, max: usize) -> Result<TurnSlot<'_>, String> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let n = running.entry(peer).or_insert(0);
        if *n >= max {
            return Err(format!(
                "{max} of your turns are already running on this node (at most {max} at once): wait for one \
                 to finish"
            ));
        }
        *n += 1;
        Ok(TurnSlot { turns: self, peer })
    }

    #[cfg(test)]
    fn running(&self, peer: &PublicId) -> usize {
        self.running.lock().unwrap().get(peer).copied().unwrap_or(0)
    }
}

/// One counted turn; uncounted when dropped (the turn ended or was cancelled).
#[derive(Debug)]
pub(crate) struct TurnSlot<'a> {
    turns: &'a PeerTurns,
    peer: PublicId,
}

impl Drop for TurnSlot<'_> {
    fn drop(&mut self) {
        let mut running = self.turns.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wopr_identity::Identity;

    use super::*;

    #[test]
    fn a_peer_gets_at_most_its_turns_and_others_are_not_held_up() {
        let turns = PeerTurns::default();
        let (p, q) = (Identity::generate().public_id(), Identity::generate().public_id());
        let first = turns.enter(p, 2).unwrap();
        let _second = turns.enter(p, 2).unwrap();
        let refused = turns.enter(p, 2).unwrap_err();
        assert!(refused.contains("at most 2 at once"), "{refused}");
        let _other = turns.enter(q, 2).expect("another peer still gets a turn");
        drop(first);
        let _third = turns.enter(p, 2).expect("a finished turn frees its place");
        drop((_second, _third));
        assert_eq!(turns.running(&p), 0);
        assert!(!turns.running.lock().unwrap().contains_key(&p), "idle peers leave no entry");
    }

    #[tokio::test]
    async fn a_peers_inject_past_its_limit_is_refused_before_anything_runs() {
        use wopr_p2p::SessionBackend;
        use wopr_store::{Config, ConfigKey, Home, SessionName};

        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("wopr"));
        let name = SessionName::new("dev").unwrap();
        home.sessions().create(&name, "", None, None).unwrap();
        Config::of(&home).set(&ConfigKey::parse(KEY_MAX_TURNS_PER_PEER).unwrap(), json!(1)).unwrap();
        let backend = crate::AgentBackend::new(home.clone());
        let peer = Identity::generate().public_id();
        let in_flight = backend.turns.enter(peer, 1).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let err = backend.inject(peer, "dev", "hi", 0, tx).await.unwrap_err();
        assert!(err.contains("at most 1 at once"), "{err}");
        assert!(home.history().unwrap().messages(&name, None).unwrap().is_empty(), "the refused turn ran");
        drop(in_flight);
        assert_eq!(backend.turns.running(&peer), 0);
    }

    #[test]
    fn limits_come_from_config_with_defaults_for_missing_or_bad_values() {
        let limits =
            TurnLimits::from_config(&json!({"p2p": {"maxTurnsPerPeer": 1}, "sandbox": {"maxConcurrent": 8}}));
        assert_eq!(limits, TurnLimits { turns_per_peer: 1, sandbox_runs: 8 });
        let defaults = TurnLimits { turns_per_peer: DEFAULT_MAX_TURNS_PER_PEER, sandbox_runs: 4 };
        assert_eq!(TurnLimits::from_config(&json!({})), defaults);
        for bad in [json!(0), json!(-1), json!("3"), json!(2.5)] {
            let config = json!({"p2p": {"maxTurnsPerPeer": bad}, "sandbox": {"maxConcurrent": bad}});
            assert_eq!(TurnLimits::from_config(&config), defaults, "{bad}");
        }
    }
}
