//! The agent behind inbound P2P work.

use std::sync::Arc;

use tokio::sync::mpsc;
use wopr_agent::policy::{SessionTools, Source};
use wopr_agent::{TurnError, TurnEvent, run_turn};
use wopr_identity::PublicId;
use wopr_p2p::{BoxFuture, SessionBackend};
use wopr_providers::ProviderName;
use wopr_store::{Config, Home, MessageStatus, Role, SessionName};

use crate::turn_limits::{PeerTurns, TurnLimits};

/// Runs peers' turns with the session's own provider. Peers are `untrusted`: their turns' tools run in
/// the sandbox, in a private workspace per peer and session, or are refused when no sandbox works here;
/// nothing about local configuration is echoed back to them.
pub struct AgentBackend {
    home: Home,
    pub(crate) turns: PeerTurns,
}

impl AgentBackend {
    /// A backend over `home`.
    pub fn new(home: Home) -> Arc<Self> {
        Arc::new(AgentBackend { home, turns: PeerTurns::default() })
    }

    async fn turn(
        &self,
        from: PublicId,
        session: &str,
        text: &str,
        deltas: mpsc::Sender<String>,
    ) -> Result<(), String> {
        let name = SessionName::new(session).map_err(|e| e.to_string())?;
        let meta = self.home.sessions().get(&name).map_err(|_| format!("no session named {name}"))?;
        let config = Config::of(&self.home)
            .load()
            .map_err(|_| "the peer's configuration is unreadable".to_string())?;
        let limits = TurnLimits::from_config(&config);
        wopr_sandbox::set_max_concurrent_runs(limits.sandbox_runs);
        let _counted = self.turns.enter(from, limits.turns_per_peer)?;
        let providers = config.get("providers").cloned().unwrap_or_default();
        let settings = wopr_providers::Settings::from_env(providers, self.home.models_dir());
        let wanted = meta.provider.as_deref().and_then(|p| p.parse::<ProviderName>().ok());
        let provider = wopr_providers::resolve(wanted, meta.model.as_deref(), &settings).map_err(|e| {
            tracing::warn!(%e, session, "no provider for a peer's inject");
            "the AI provider of this session is not available".to_string()
        })?;
        // Never given a peer injector: a peer's turn cannot start P2P work.
        let tools = SessionTools::new(&self.home, &name, &meta);
        let source = Source::Peer(from);
        // The turn reports text synchronously; an unbounded hop keeps every piece, in order, while the
        // forwarder waits on the peer's (bounded) stream.
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let turn = async move {
            let on_event = |ev: TurnEvent| {
                let piece = match ev {
                    TurnEvent::Text(t) => t,
                    tool => tool.tool_line().map(|l| format!("\n{l}\n")).unwrap_or_default(),
                };
                let _ = tx.send(piece);
            };
            let r = run_turn(&self.home, &name, text, &source, provider.as_ref(), &tools, on_event).await;
            drop(tx);
            r
        };
        let forward = async move {
            while let Some(t) = rx.recv().await {
                if deltas.send(t).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(turn, forward);
        match result {
            Ok(_) => Ok(()),
            Err(TurnError::Provider(e)) => {
                tracing::warn!(%e, session, "provider failed on a peer's inject");
                Err(format!("the AI failed to answer ({})", kind_word(&e.kind)))
            }
            Err(TurnError::ToolRefused(r)) => {
                tracing::warn!(%r, session, "a peer's turn asked for a tool that cannot run safely here");
                Err(format!("refused: {r}"))
            }
            Err(TurnError::Store(e)) => {
                tracing::error!(%e, session, "store failed on a peer's inject");
                Err("the peer could not store the message".into())
            }
        }
    }
}

fn kind_word(kind: &wopr_providers::ErrorKind) -> &'static str {
    use wopr_providers::ErrorKind::*;
    match kind {
        Auth | NotConfigured => "provider not configured",
        RateLimited { .. } => "provider rate limited",
        ContextTooLong => "conversation too long",
        Unavailable => "provider unavailable",
        BadRequest | Protocol => "provider error",
    }
}

impl SessionBackend for AgentBackend {
    fn judge<'a>(
        &'a self,
        question: wopr_p2p::Judgement<'a>,
        capable_only: bool,
    ) -> BoxFuture<'a, Result<Option<wopr_p2p::Ruling>, String>> {
        Box::pin(crate::judge::judge(&self.home, question, capable_only))
    }

    fn inject<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
        _hop_count: u8,
        deltas: mpsc::Sender<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.turn(from, session, text, deltas))
    }

    fn log<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let (home, session, text) = (self.home.clone(), session.to_string(), text.to_string());
        // SQLite and the session files are blocking I/O: off the async workers.
        let store = move || {
            let name = SessionName::new(&session).map_err(|e| e.to_string())?;
            home.sessions().get(&name).map_err(|_| format!("no session named {name}"))?;
            let history = home.history().map_err(|_| "the peer could not store the message".to_string())?;
            history
                .append(&name, Role::User, &text, MessageStatus::Ok, &Source::Peer(from), None)
                .map_err(|_| "the peer could not store the message".to_string())?;
            Ok(())
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(store)
                .await
                .map_err(|_| "the peer could not store the message".to_string())?
        })
    }
}
