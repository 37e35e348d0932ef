//! What a turn may offer the model as tools, and what running one gives back.
//!
//! The turn only sees the [`Toolbox`] trait: which tools to offer and how to run a call. Where a call
//! runs (a sandbox, the host, nowhere) is the toolbox's business, decided by whoever builds the turn from
//! the session's policy and the message's source.

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;
use wopr_providers::{ToolCall, ToolSpec};

/// A boxed, sendable future (what [`Toolbox::run`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a tool call gave back, as the model will see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOutput {
    /// The text handed to the model (the command's output, the file, the listing, or what went wrong).
    pub content: String,
    /// Whether the call failed; the model is told so and may try something else.
    pub is_error: bool,
}

impl ToolOutput {
    /// A successful result.
    pub fn ok(content: impl Into<String>) -> Self {
        ToolOutput { content: content.into(), is_error: false }
    }

    /// A failed call, explained to the model.
    pub fn error(content: impl Into<String>) -> Self {
        ToolOutput { content: content.into(), is_error: true }
    }
}

/// A call that must not run at all, because there is no safe place to run it (for a peer's turn: no
/// sandbox backend works on this host). The turn stops with this error instead of running it unsandboxed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ToolRefused(pub String);

/// The tools of one turn.
pub trait Toolbox: Send + Sync {
    /// The tools offered to the model; empty means the model gets none.
    fn specs(&self) -> Vec<ToolSpec>;

    /// Runs one call. A failing tool is an `Ok` with [`ToolOutput::is_error`]; `Err` stops the turn.
    fn run<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, Result<ToolOutput, ToolRefused>>;
}

/// A borrowed toolbox is a toolbox (so a [`crate::policy::ToolChoice`] can hand out one it owns).
impl<T: Toolbox + ?Sized> Toolbox for &T {
    fn specs(&self) -> Vec<ToolSpec> {
        (**self).specs()
    }

    fn run<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, Result<ToolOutput, ToolRefused>> {
        (**self).run(call)
    }
}
