//! The provider-neutral request and event types.

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::ProviderError;

/// A stream of events from one model call.
pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// An AI backend. One streaming method; everything else is configuration.
pub trait Provider: Send + Sync {
    /// Provider name (`anthropic`, `openai`, `kimi`, `openai-compatible`, `local`).
    fn name(&self) -> &'static str;
    /// The model this provider will use.
    fn model(&self) -> &str;
    /// Starts a model call. Connection errors arrive as the stream's first item.
    fn stream(&self, request: ChatRequest) -> EventStream;
    /// Tokens the model's context window holds, prompt and answer together (turns size the history
    /// they send to fit). The default is what llama-server and Ollama give a model unless told more.
    fn context_window(&self) -> u32 {
        DEFAULT_CONTEXT_WINDOW
    }
}

/// Context window assumed for a server that does not say (llama-server's and Ollama's usual default).
pub const DEFAULT_CONTEXT_WINDOW: u32 = 4096;

/// One call to a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// System prompt (the session context).
    pub system: String,
    /// Conversation so far, oldest first; the last item is what the model answers.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the provider default.
    #[serde(default)]
    pub temperature: Option<f32>,
}

/// One turn of conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    /// Something the user (or a peer) said.
    User {
        /// The text.
        content: String,
    },
    /// What the model answered, possibly with tool calls.
    Assistant {
        /// The text.
        content: String,
        /// Tools the model asked to run.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of a tool the model called.
    Tool {
        /// The id of the [`ToolCall`] this answers.
        call_id: String,
        /// The tool's name.
        name: String,
        /// What the tool printed or returned.
        content: String,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: bool,
    },
}

impl ChatMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::User { content: content.into() }
    }
    /// An assistant message without tool calls.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::Assistant { content: content.into(), tool_calls: vec![] }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name the model uses.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: serde_json::Value,
}

/// A tool call the model made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed back with the result.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments, parsed from the model's JSON.
    pub arguments: serde_json::Value,
}

/// Token counts for one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It wants tool results.
    ToolUse,
    /// Something else (content filter, stop sequence).
    Other,
}

/// One event of a streamed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A complete tool call (deltas are assembled by the provider).
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// Token counts, when the provider reports them.
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// The answer is complete. Always the last event of a successful stream.
    Done {
        /// Why it stopped.
        stop_reason: StopReason,
    },
}
