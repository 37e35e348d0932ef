//! What a request to the daemon can fail with: an exit code, whether the thing asked for is missing,
//! and a message for the user. The socket and the HTTP API report the same error.

use wopr_p2p::P2pError;
use wopr_store::{ExitCode, StoreError};

/// What kind of failure, beyond its exit code (the HTTP API picks its status from it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// As the exit code says.
    #[default]
    Plain,
    /// The session, peer or key named does not exist (HTTP 404).
    NotFound,
    /// In conflict with what is stored or set up: a name taken, a provider not configured (HTTP 409).
    Conflict,
    /// A service behind the daemon failed: the AI provider, a peer (HTTP 502).
    Upstream,
    /// The daemon is stopping or restarting its endpoint (HTTP 503).
    Unavailable,
}

/// A failed request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The CLI's exit code for it.
    pub code: ExitCode,
    /// What kind of failure.
    pub kind: Kind,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with `code`.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        ApiError { code, kind: Kind::Plain, message: message.into() }
    }

    /// Invalid input (exit code 3).
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ExitCode::Invalid, message)
    }

    /// A failure (exit code 1).
    pub fn failure(message: impl Into<String>) -> Self {
        ApiError::new(ExitCode::Failure, message)
    }

    /// The same error, of `kind`.
    pub fn of_kind(self, kind: Kind) -> Self {
        ApiError { kind, ..self }
    }

    /// The daemon is shutting down and takes no new work.
    pub fn stopping() -> Self {
        ApiError::failure("the daemon is stopping").of_kind(Kind::Unavailable)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let kind = match e {
            StoreError::NotFound(_) => Kind::NotFound,
            StoreError::AlreadyExists(_) => Kind::Conflict,
            _ => Kind::Plain,
        };
        ApiError { code: e.exit_code(), kind, message: e.to_string() }
    }
}

impl From<P2pError> for ApiError {
    fn from(e: P2pError) -> Self {
        // What a peer said or failed to do is the peer's answer, not this daemon's fault or the
        // caller's input.
        let kind = match e {
            P2pError::Store(StoreError::NotFound(_)) | P2pError::NoSuchPeer(_) => Kind::NotFound,
            P2pError::Refused { .. }
            | P2pError::Protocol { .. }
            | P2pError::PeerOffline { .. }
            | P2pError::ConnectionLost { .. } => Kind::Upstream,
            _ => Kind::Plain,
        };
        ApiError { code: e.exit_code(), kind, message: e.to_string() }
    }
}

impl From<wopr_identity::IdentityError> for ApiError {
    fn from(e: wopr_identity::IdentityError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

/// The result of a request.
pub type ApiResult<T> = Result<T, ApiError>;
