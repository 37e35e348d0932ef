//! Semantic provider errors: each kind tells the user what to do next.

use std::time::Duration;

use thiserror::Error;

/// What kind of failure, so callers (and users) can act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The API key is missing, wrong or lacks permission.
    Auth,
    /// Too many requests; retry after the given delay if the server said.
    RateLimited {
        /// Server's `retry-after`, if any.
        retry_after: Option<Duration>,
    },
    /// The conversation does not fit the model's context window.
    ContextTooLong,
    /// The server could not be reached, or is overloaded.
    Unavailable,
    /// The provider is not configured (no key, no model file).
    NotConfigured,
    /// The server rejected the request as malformed (including an unknown model).
    BadRequest,
    /// The server answered something we could not understand.
    Protocol,
}

/// A provider failure with a message for the user.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    /// Which provider failed.
    pub provider: &'static str,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, in the server's words where useful.
    pub message: String,
}

impl ProviderError {
    /// A new error.
    pub fn new(provider: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError { provider, kind, message: message.into() }
    }

    /// One sentence on what the user can do about it.
    pub fn hint(&self) -> String {
        match &self.kind {
            ErrorKind::Auth => format!(
                "check the API key for {} (environment variable or `wopr config set providers.{}.apiKey ...`)",
                self.provider, self.provider
            ),
            ErrorKind::RateLimited { retry_after: Some(d) } => {
                format!("rate limited: retry in {} s", d.as_secs().max(1))
            }
            ErrorKind::RateLimited { retry_after: None } => "rate limited: wait a little and retry".into(),
            ErrorKind::ContextTooLong => {
                "the conversation is too long for the model: start a new session or use a model with a larger context".into()
            }
            ErrorKind::Unavailable => format!(
                "{} could not be reached: check the network or the server's base URL, then retry",
                self.provider
            ),
            ErrorKind::NotConfigured => format!(
                "{} is not set up: run `wopr providers` to see what is available",
                self.provider
            ),
            ErrorKind::BadRequest => "the request was rejected: check the model name (`--model`)".into(),
            ErrorKind::Protocol => "the server's answer was not understood: check that the base URL points at the right API".into(),
        }
    }
}
