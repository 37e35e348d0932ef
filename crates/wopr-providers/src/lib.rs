//! WOPR AI providers.
//!
//! One trait, [`Provider`], with a single streaming method. Each wire format lives in its own module:
//! `anthropic` (Messages API), `openai` (Chat Completions, also used by Kimi and any OpenAI-compatible
//! server), and `local` (the embedded llama.cpp engine on a GGUF file). [`detect`] implements the seeds'
//! auto-detection order. This crate knows nothing about `$WOPR_HOME`: callers hand it [`Settings`].
//! The network providers share [`http_client`], the [`sse`] parser and one mapping of HTTP failures
//! to [`ErrorKind`]s.
//! [`model_pull`] installs the default model of `local` (`wopr model pull`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod anthropic;
mod decode;
mod detect;
mod error;
mod http;
mod http_error;
mod local;
pub mod model_pull;
mod openai;
mod settings;
pub mod sse;
mod types;

pub use anthropic::Anthropic;
pub use detect::{Availability, ProviderName, detect, resolve};
pub use error::{ErrorKind, ProviderError};
pub use http::http_client;
pub use local::Local;
pub use openai::OpenAi;
pub use settings::Settings;
pub use types::{
    ChatMessage, ChatRequest, DEFAULT_CONTEXT_WINDOW, EventStream, Provider, StopReason, StreamEvent,
    ToolCall, ToolSpec, Usage,
};
