//! Running a turn: persist the message, stream the answer, persist the outcome.

use futures::StreamExt;
use serde_json::json;
use thiserror::Error;
use wopr_providers::{Provider, ProviderError, StopReason, StreamEvent, Usage};
use wopr_store::{Home, MessageStatus, Role, SessionName, StoreError};

use crate::build_request;

/// What a turn reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnEvent {
    /// More answer text.
    Text(String),
}

/// A finished turn.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnOutcome {
    /// The whole answer.
    pub text: String,
    /// Token counts, if the provider reported them.
    pub usage: Option<Usage>,
    /// Why the model stopped.
    pub stop_reason: StopReason,
}

/// Why a turn failed. The user's message is stored (as failed) in every case but `Store`.
#[derive(Debug, Error)]
pub enum TurnError {
    /// `$WOPR_HOME` could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider failed.
    #[error(transparent)]
    Provider(ProviderError),
}

/// Runs one turn of `session` with `message` from `source` (`cli`, `p2p:<key>`, ...), calling `on_event`
/// as the answer streams in.
pub async fn run_turn(
    home: &Home,
    session: &SessionName,
    message: &str,
    source: &str,
    provider: &dyn Provider,
    mut on_event: impl FnMut(TurnEvent),
) -> Result<TurnOutcome, TurnError> {
    let sessions = home.sessions();
    sessions.get(session)?;
    let context = sessions.context(session)?;
    let mut history = home.history()?;
    let request = build_request(&context, &history.messages(session, None)?, message);
    let user_id = history.append(session, Role::User, message, MessageStatus::Pending, source, None)?;

    let mut stream = provider.stream(request);
    let mut text = String::new();
    let mut usage = None;
    let mut stop = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta { text: delta }) => {
                text.push_str(&delta);
                on_event(TurnEvent::Text(delta));
            }
            Ok(StreamEvent::Usage { usage: u }) => usage = Some(u),
            Ok(StreamEvent::Done { stop_reason }) => {
                stop = Some(stop_reason);
                break;
            }
            // Tool calls come with the agent loop; a model that calls a tool without tools offered is
            // answered with its text so far.
            Ok(StreamEvent::ToolCall { .. }) => {}
            Err(e) => {
                history.mark_failed(user_id, &e.to_string())?;
                return Err(TurnError::Provider(e));
            }
        }
    }
    let Some(stop_reason) = stop else {
        let e = ProviderError::new(
            provider.name(),
            wopr_providers::ErrorKind::Protocol,
            "the answer stream ended before the model finished",
        );
        history.mark_failed(user_id, &e.to_string())?;
        return Err(TurnError::Provider(e));
    };
    let meta = json!({"provider": provider.name(), "model": provider.model(), "usage": usage, "stopReason": stop_reason});
    history.complete_turn(session, user_id, &[(Role::Assistant, text.clone(), Some(meta))])?;
    Ok(TurnOutcome { text, usage, stop_reason })
}
