use std::path::PathBuf;

use thiserror::Error;

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in `$WOPR_HOME`. Messages name the file and say what to do.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("reading", "writing", ...).
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON document could not be parsed; it is left untouched.
    #[error("{} is not valid JSON ({source}); fix or move it aside, nothing was changed", path.display())]
    Json {
        /// Which file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The database failed.
    #[error("database {}: {source}", path.display())]
    Db {
        /// `wopr.db`.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A session name that is not allowed.
    #[error("invalid session name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// An invalid configuration key or value.
    #[error("{0}")]
    InvalidConfig(String),
    /// A peer reference (id, short id or name) that is malformed or matches more than one peer.
    #[error("{0}")]
    InvalidPeer(String),
    /// Something that should exist does not.
    #[error("{0}")]
    NotFound(String),
    /// Something that should not exist does.
    #[error("{0}")]
    AlreadyExists(String),
    /// The identity file is unusable.
    #[error("{}: {source}", path.display())]
    Identity {
        /// `identity.json`.
        path: PathBuf,
        /// What is wrong with it.
        source: wopr_identity::IdentityError,
    },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { action, path, source }
    }

    /// The exit code: invalid input is 3, the rest a failure.
    pub fn exit_code(&self) -> crate::ExitCode {
        match self.is_invalid_input() {
            true => crate::ExitCode::Invalid,
            false => crate::ExitCode::Failure,
        }
    }

    /// Whether this is a user-input error (exit code 3 in the CLI).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidName { .. } | StoreError::InvalidConfig(_) | StoreError::InvalidPeer(_)
        )
    }
}
