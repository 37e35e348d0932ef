//! Running a turn: persist the message, stream the answer, run the tools it asks for (feeding their
//! results back for up to [`MAX_STEPS`] model calls), persist the outcome.

use futures::StreamExt;
use serde_json::{Value, json};
use thiserror::Error;
use wopr_providers::{
    ChatMessage, ChatRequest, Provider, ProviderError, StopReason, StreamEvent, ToolCall, Usage,
};
use wopr_store::{History, HistoryMessage, Home, MessageStatus, Role, SessionName, Source, StoreError};

use crate::policy::{ToolChoice, TurnTrust};
use crate::prompt::{build_request, history_budget, load_history};
use crate::tools::{ToolOutput, ToolRefused};

/// Most model calls in one turn. The last one is offered no tools, so the turn always ends in text.
pub const MAX_STEPS: usize = 8;

/// What a turn reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnEvent {
    /// More answer text.
    Text(String),
    /// The model called a tool; it runs now.
    ToolStart(ToolCall),
    /// A tool finished; its output goes back to the model.
    ToolEnd {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// What it gave back.
        output: ToolOutput,
    },
}

impl TurnEvent {
    /// A one-line account of a tool event for people watching the turn (`None` for text): the
    /// tool's name and arguments when it starts, and how it ended. Tool output itself is not shown.
    pub fn tool_line(&self) -> Option<String> {
        const MAX_ARGS: usize = 120;
        match self {
            TurnEvent::Text(_) => None,
            TurnEvent::ToolStart(call) => {
                let mut args = call.arguments.to_string();
                if args.len() > MAX_ARGS {
                    let cut = (0..=MAX_ARGS).rev().find(|&i| args.is_char_boundary(i)).unwrap_or(0);
                    args.truncate(cut);
                    args.push('…');
                }
                Some(format!("[tool {} {args}]", call.name))
            }
            TurnEvent::ToolEnd { name, output, .. } => Some(match output.is_error {
                false => format!("[tool {name}: done, {} bytes]", output.content.len()),
                true => format!("[tool {name}: failed]"),
            }),
        }
    }
}

/// A finished turn.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnOutcome {
    /// All answer text of the turn, across its steps.
    pub text: String,
    /// Token counts summed over the model calls, if the provider reported them.
    pub usage: Option<Usage>,
    /// Why the model stopped the last time.
    pub stop_reason: StopReason,
    /// Tool calls run during the turn.
    pub tool_calls: usize,
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
    /// The model asked for a tool that may not run here (no safe sandbox for it).
    #[error("tool call refused: {0}")]
    ToolRefused(ToolRefused),
}

/// What a turn starts from: the history it sends, and the trust that history gives it.
#[derive(Clone, Debug)]
pub struct TurnContext {
    /// The stored messages sent to the model (the newest that fit its window), oldest first.
    pub history: Vec<HistoryMessage>,
    /// The turn's trust: the least trusted source of the message and of the whole session.
    pub trust: TurnTrust,
}

/// Reads what a turn of `session` with `message` from `source` starts from, in one read transaction
/// (so the window and the trust describe the same history): the newest messages that fit
/// `context_window` tokens next to `system` and `message`, and the trust. Costs the same however long
/// the session is.
pub fn load_context(
    history: &History,
    session: &SessionName,
    system: &str,
    message: &str,
    source: &Source,
    context_window: u32,
) -> Result<TurnContext, StoreError> {
    history.consistent(|h| {
        let window = load_history(h, session, history_budget(context_window, system, message))?;
        let trust = TurnTrust::of(h, session, source.clone())?;
        Ok(TurnContext { history: window, trust })
    })
}

/// Runs one turn of `session` with `message` from `source`, offering the model the tools `tools`
/// picks for the turn's trust, and calling `on_event` as the answer streams in and tools run.
pub async fn run_turn(
    home: &Home,
    session: &SessionName,
    message: &str,
    source: &Source,
    provider: &dyn Provider,
    tools: &dyn ToolChoice,
    mut on_event: impl FnMut(TurnEvent),
) -> Result<TurnOutcome, TurnError> {
    let sessions = home.sessions();
    sessions.get(session)?;
    let context = sessions.context(session)?;
    let mut history = home.history()?;
    let start = load_context(&history, session, &context, message, source, provider.context_window())?;
    let mut request = build_request(&context, &start.history, message);
    let tools = tools.tools_for(&start.trust);
    let offered = tools.specs();
    let answer_source = start.trust.answer_source();
    let user_id = history.append(session, Role::User, message, MessageStatus::Pending, source, None)?;

    let mut replies: Vec<(Role, String, Option<Value>)> = Vec::new();
    let mut all_text = String::new();
    let mut usage: Option<Usage> = None;
    let mut tool_calls = 0;
    for step in 1..=MAX_STEPS {
        request.tools = if step < MAX_STEPS { offered.clone() } else { Vec::new() };
        let answer = match stream_answer(provider, request.clone(), &mut on_event).await {
            Ok(answer) => answer,
            Err(e) => {
                history.mark_failed(user_id, &e.to_string())?;
                return Err(TurnError::Provider(e));
            }
        };
        all_text.push_str(&answer.text);
        usage = add_usage(usage, answer.usage);
        // Calls are only honoured when tools were offered; otherwise the text is the answer.
        if answer.calls.is_empty() || request.tools.is_empty() {
            let meta = json!({"provider": provider.name(), "model": provider.model(), "usage": usage,
                "stopReason": answer.stop, "steps": step});
            replies.push((Role::Assistant, answer.text, Some(meta)));
            history.complete_turn(session, user_id, &replies, answer_source)?;
            return Ok(TurnOutcome { text: all_text, usage, stop_reason: answer.stop, tool_calls });
        }
        replies.push((Role::Assistant, answer.text.clone(), Some(json!({"toolCalls": answer.calls}))));
        request
            .messages
            .push(ChatMessage::Assistant { content: answer.text, tool_calls: answer.calls.clone() });
        for call in answer.calls {
            on_event(TurnEvent::ToolStart(call.clone()));
            let output = match tools.run(&call).await {
                Ok(output) => output,
                Err(refused) => {
                    history.mark_failed(user_id, &refused.to_string())?;
                    return Err(TurnError::ToolRefused(refused));
                }
            };
            tool_calls += 1;
            let meta = json!({"callId": call.id, "name": call.name, "isError": output.is_error});
            replies.push((Role::Tool, output.content.clone(), Some(meta)));
            request.messages.push(ChatMessage::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: output.content.clone(),
                is_error: output.is_error,
            });
            on_event(TurnEvent::ToolEnd { id: call.id, name: call.name, output });
        }
    }
    unreachable!("the last step offers no tools, so it always returns")
}

/// One model call's answer.
struct Answer {
    text: String,
    calls: Vec<ToolCall>,
    usage: Option<Usage>,
    stop: StopReason,
}

async fn stream_answer(
    provider: &dyn Provider,
    request: ChatRequest,
    on_event: &mut impl FnMut(TurnEvent),
) -> Result<Answer, ProviderError> {
    let mut stream = provider.stream(request);
    let (mut text, mut calls, mut usage) = (String::new(), Vec::new(), None);
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text: delta } => {
                text.push_str(&delta);
                on_event(TurnEvent::Text(delta));
            }
            StreamEvent::ToolCall { call } => calls.push(call),
            StreamEvent::Usage { usage: u } => usage = Some(u),
            StreamEvent::Done { stop_reason } => return Ok(Answer { text, calls, usage, stop: stop_reason }),
        }
    }
    Err(ProviderError::new(
        provider.name(),
        wopr_providers::ErrorKind::Protocol,
        "the answer stream ended before the model finished",
    ))
}

fn add_usage(total: Option<Usage>, more: Option<Usage>) -> Option<Usage> {
    match (total, more) {
        (Some(a), Some(b)) => Some(Usage {
            input_tokens: a.input_tokens + b.input_tokens,
            output_tokens: a.output_tokens + b.output_tokens,
        }),
        (a, b) => a.or(b),
    }
}
