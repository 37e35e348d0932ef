//! Local sessions: list, create, show, delete, provider, log, conversation, and the owner's inject.

use tokio::sync::mpsc;
use wopr_agent::policy::{SessionTools, Source, Taint, session_taint, trust_of};
use wopr_agent::{TurnError, TurnEvent, run_turn};
use wopr_providers::{ErrorKind, ProviderName};
use wopr_store::{ExitCode, HistoryMessage, Home, MessageStatus, Role, SessionMeta, SessionName};

use super::error::Kind;
use super::types::{
    Conversation, CreateSession, Deleted, InjectDone, InjectEvent, MessageView, SessionDetail,
    SessionSummary, SetProvider, TaintView,
};
use super::{ApiError, ApiResult, Core};
use crate::bus::BusEvent;

/// A provider name, or `None` for `auto`.
pub fn parse_provider(p: &str) -> ApiResult<Option<String>> {
    if p == "auto" {
        return Ok(None);
    }
    p.parse::<ProviderName>().map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Some(p.to_string()))
}

/// A taint as the API shows it.
pub fn taint_view(t: &Taint) -> TaintView {
    TaintView {
        source: t.seen.source.to_string(),
        label: t.seen.source.label(),
        trust: t.trust.as_str().to_string(),
        since_message: t.seen.first_id,
        since: t.seen.first_ms,
        reason: t.reason(),
    }
}

/// The most messages one request returns.
const CONVERSATION_MAX: usize = 100_000;

/// The number of messages to return: at most [`CONVERSATION_MAX`], which is also the default.
fn check_limit(limit: Option<usize>) -> ApiResult<Option<usize>> {
    match limit {
        Some(l) if l > CONVERSATION_MAX => {
            Err(ApiError::invalid(format!("limit is at most {CONVERSATION_MAX}")))
        }
        l => Ok(Some(l.unwrap_or(CONVERSATION_MAX))),
    }
}

fn message_view(m: HistoryMessage) -> MessageView {
    let trust = trust_of(&m.source).as_str().to_string();
    MessageView { message: m, trust }
}

fn summary(name: &SessionName, meta: &SessionMeta, messages: u64, last: Option<u64>) -> SessionSummary {
    SessionSummary {
        name: name.to_string(),
        id: meta.id.clone(),
        provider: meta.provider.clone(),
        model: meta.model.clone(),
        created: meta.created,
        sandbox: meta.sandbox,
        messages,
        last_activity: last,
    }
}

/// Every session, by name.
pub fn list(home: &Home) -> ApiResult<Vec<SessionSummary>> {
    let sessions = home.sessions().list()?;
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let activity = home.history()?.activity()?;
    Ok(sessions
        .iter()
        .map(|(name, meta)| {
            let (count, last) = activity.get(name.as_str()).copied().unwrap_or((0, None));
            summary(name, meta, count, last)
        })
        .collect())
}

/// Creates a session.
pub fn create(home: &Home, req: CreateSession) -> ApiResult<SessionSummary> {
    let name = SessionName::new(&req.name)?;
    let provider = req.provider.as_deref().map(parse_provider).transpose()?.flatten();
    let sessions = home.sessions();
    let mut meta = sessions.create(&name, req.context.as_deref().unwrap_or(""), provider, req.model)?;
    if req.sandbox == Some(false) {
        meta = sessions.update(&name, |m| m.sandbox = false)?;
    }
    Ok(summary(&name, &meta, 0, None))
}

/// A session with its context, trust and the newest `limit` messages (at most 100,000, the default).
pub fn detail(home: &Home, name: &str, limit: Option<usize>) -> ApiResult<SessionDetail> {
    let limit = check_limit(limit)?;
    let name = SessionName::new(name)?;
    let sessions = home.sessions();
    let meta = sessions.get(&name)?;
    let context = sessions.context(&name)?;
    let history = home.history()?;
    let messages = history.messages(&name, limit)?;
    let taint = session_taint(&history, &name)?;
    Ok(SessionDetail {
        name: name.to_string(),
        id: meta.id,
        provider: meta.provider,
        model: meta.model,
        created: meta.created,
        sandbox: meta.sandbox,
        message_count: history.count(&name)?,
        last_activity: history.last_activity(&name)?,
        context,
        trust: taint.as_ref().map_or("owner", |t| t.trust.as_str()).to_string(),
        taint: taint.as_ref().map(taint_view),
        messages: messages.into_iter().map(message_view).collect(),
    })
}

/// Deletes a session, its context and its history.
pub fn delete(home: &Home, name: &str) -> ApiResult<Deleted> {
    let name = SessionName::new(name)?;
    home.sessions().get(&name)?;
    let removed = home.history()?.delete_session(&name)?;
    home.sessions().delete(&name)?;
    Ok(Deleted { name: name.to_string(), removed })
}

/// Sets a session's provider (`auto` for detection at each inject) and model.
pub fn set_provider(home: &Home, name: &str, req: SetProvider) -> ApiResult<SessionSummary> {
    let name = SessionName::new(name)?;
    let provider = parse_provider(&req.provider)?;
    let meta = home.sessions().update(&name, |m| {
        m.provider = provider;
        m.model = req.model;
    })?;
    let history = home.history()?;
    Ok(summary(&name, &meta, history.count(&name)?, history.last_activity(&name)?))
}

/// Stores a message from `source` without an answer.
pub fn log(home: &Home, name: &str, message: &str, source: &Source) -> ApiResult<()> {
    let name = SessionName::new(name)?;
    home.sessions().get(&name)?;
    home.history()?.append(&name, Role::User, message, MessageStatus::Ok, source, None)?;
    Ok(())
}

impl Core {
    /// [`list`].
    pub fn sessions(&self) -> ApiResult<Vec<SessionSummary>> {
        list(&self.home)
    }

    /// [`create`], announced on the bus.
    pub fn create_session(&self, req: CreateSession) -> ApiResult<SessionSummary> {
        let created = create(&self.home, req)?;
        self.bus.send(BusEvent::SessionCreated { session: created.name.clone() });
        Ok(created)
    }

    /// [`detail`].
    pub fn session(&self, name: &str, limit: Option<usize>) -> ApiResult<SessionDetail> {
        detail(&self.home, name, limit)
    }

    /// That the session exists (before a streamed answer starts, so a missing one is a 404).
    pub fn require_session(&self, name: &str) -> ApiResult<()> {
        self.home.sessions().get(&SessionName::new(name)?)?;
        Ok(())
    }

    /// The newest `limit` messages of a session.
    pub fn conversation(&self, name: &str, limit: Option<usize>) -> ApiResult<Conversation> {
        let limit = check_limit(limit)?;
        let name = SessionName::new(name)?;
        self.home.sessions().get(&name)?;
        let messages = self.home.history()?.messages(&name, limit)?;
        Ok(Conversation {
            session: name.to_string(),
            messages: messages.into_iter().map(message_view).collect(),
        })
    }

    /// [`delete`], announced on the bus.
    pub fn delete_session(&self, name: &str) -> ApiResult<Deleted> {
        let deleted = delete(&self.home, name)?;
        self.bus.send(BusEvent::SessionDeleted { session: deleted.name.clone() });
        Ok(deleted)
    }

    /// [`set_provider`].
    pub fn set_provider(&self, name: &str, req: SetProvider) -> ApiResult<SessionSummary> {
        set_provider(&self.home, name, req)
    }

    /// [`log`].
    pub fn log(&self, name: &str, message: &str, source: &Source) -> ApiResult<()> {
        log(&self.home, name, message, source)
    }

    /// Runs a turn in a local session for `source`: its answer streams to `events` as it comes; the
    /// message and the answer are stored. The turn's trust follows its history, as in the CLI.
    pub async fn inject(
        &self,
        name: &str,
        message: &str,
        source: Source,
        events: &mpsc::UnboundedSender<InjectEvent>,
    ) -> ApiResult<InjectDone> {
        let name = SessionName::new(name)?;
        let meta = self.home.sessions().get(&name)?;
        let settings = self.provider_settings()?;
        let wanted = meta
            .provider
            .as_deref()
            .map(str::parse::<ProviderName>)
            .transpose()
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let provider = match wopr_providers::resolve(wanted, meta.model.as_deref(), &settings) {
            Ok(p) => p,
            Err(e) => {
                // The message is kept even when no provider could be set up.
                let history = self.home.history()?;
                let id = history.append(&name, Role::User, message, MessageStatus::Pending, &source, None)?;
                history.mark_failed(id, &e.to_string())?;
                return Err(provider_failure(&name, e));
            }
        };
        let tools = SessionTools::new(&self.home, &name, &meta);
        let session = name.to_string();
        self.bus.send(BusEvent::InjectStarted { session: session.clone(), source: source.to_string() });
        let on_event = |ev: TurnEvent| {
            let out = match ev {
                TurnEvent::Text(text) => {
                    self.bus.send(BusEvent::InjectDelta { session: session.clone(), text: text.clone() });
                    InjectEvent::Delta { text }
                }
                TurnEvent::ToolStart(call) => {
                    self.bus.send(BusEvent::ToolStart { session: session.clone(), name: call.name.clone() });
                    InjectEvent::ToolStart { id: call.id, name: call.name, arguments: call.arguments }
                }
                TurnEvent::ToolEnd { id, name, output } => {
                    InjectEvent::ToolEnd { id, name, ok: !output.is_error }
                }
            };
            let _ = events.send(out);
        };
        let result = run_turn(&self.home, &name, message, &source, provider.as_ref(), &tools, on_event).await;
        let status = if result.is_ok() { "completed" } else { "failed" };
        self.bus.send(BusEvent::InjectDone { session: session.clone(), status: status.into() });
        match result {
            Ok(outcome) => Ok(InjectDone {
                status: status.into(),
                text: outcome.text,
                provider: Some(provider.name().to_string()),
                model: Some(provider.model().to_string()),
            }),
            Err(TurnError::Provider(e)) => Err(provider_failure(&name, e)),
            Err(TurnError::ToolRefused(r)) => Err(ApiError::failure(format!(
                "{r}\n  the message is kept in the history of {name}, marked as failed"
            ))),
            Err(TurnError::Store(e)) => Err(e.into()),
        }
    }

    /// Provider settings from the environment and `config.json`'s `providers` object.
    pub fn provider_settings(&self) -> ApiResult<wopr_providers::Settings> {
        let config = wopr_store::Config::of(&self.home).load()?;
        let providers = config.get("providers").cloned().unwrap_or(serde_json::Value::Null);
        Ok(wopr_providers::Settings::from_env(providers, self.home.models_dir()))
    }
}

/// A provider's failure, with what to do; the message stays in the history.
pub fn provider_failure(name: &SessionName, e: wopr_providers::ProviderError) -> ApiError {
    let (code, kind) = match e.kind {
        ErrorKind::RateLimited { .. } => (ExitCode::RateLimited, Kind::Plain),
        ErrorKind::Auth | ErrorKind::NotConfigured => (ExitCode::Failure, Kind::Conflict),
        ErrorKind::ContextTooLong | ErrorKind::BadRequest => (ExitCode::Failure, Kind::Conflict),
        ErrorKind::Unavailable | ErrorKind::Protocol => (ExitCode::Failure, Kind::Upstream),
    };
    ApiError::new(
        code,
        format!(
            "{e}\n  what to do: {}\n  the message is kept in the history of {name}, marked as failed",
            e.hint()
        ),
    )
    .of_kind(kind)
}
