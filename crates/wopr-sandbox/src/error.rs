//! Errors a caller can act on.

use std::io;
use std::path::PathBuf;

/// Why a command could not be run in a sandbox. A command that ran and failed is not an error: see
/// [`crate::Output::status`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No program given.
    #[error("the command is empty: give at least the program to run")]
    EmptyCommand,
    /// An argument or environment variable contains a NUL byte.
    #[error("an argument or environment variable contains a NUL byte, which a process cannot receive")]
    NulByte,
    /// An environment variable name is empty or contains `=`.
    #[error("an environment variable name is empty or contains '='")]
    BadEnvName,
    /// The working directory would leave the workspace.
    #[error("working directory {0:?} is outside the workspace: give a relative path without '..'")]
    CwdOutsideWorkspace(PathBuf),
    /// The workspace path passes through a symbolic link, which is never followed.
    #[error(
        "refusing the workspace {workspace:?}: {link:?} is a symbolic link, and preparing a workspace never \
         follows one (a sandboxed command may have planted it); remove it, or give a path without symlinks \
         (for the default workspaces, set WOPR_HOME to the real path)"
    )]
    WorkspaceSymlink {
        /// The workspace on the host.
        workspace: PathBuf,
        /// The link found on the way.
        link: PathBuf,
    },
    /// The workspace directory could not be created or handed to the sandbox user.
    #[error("cannot prepare the workspace {path:?}: {source}")]
    Workspace {
        /// The workspace on the host.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// This host cannot run the backend at all (the reason says what to install or enable).
    #[error("the {backend} sandbox is not available on this host: {reason}")]
    Unavailable {
        /// `native` or `docker`.
        backend: &'static str,
        /// What is missing.
        reason: String,
    },
    /// Building the sandbox failed at one step; nothing was run.
    #[error("setting up the native sandbox failed while {step}: {source}{hint}")]
    Setup {
        /// The step, in words.
        step: &'static str,
        /// The system error.
        source: io::Error,
        /// What to try, if known (starts with "; ").
        hint: &'static str,
    },
    /// The run was cancelled (its turn ended or its peer was revoked); every process it started is gone.
    #[error("cancelled: the sandboxed command was killed")]
    Cancelled,
    /// Every sandbox slot of this process stayed taken while the run waited.
    #[error(
        "all {max} sandbox slots stayed busy for {waited:?}: try again later, or raise the limit with \
         `wopr config set sandbox.maxConcurrent <n>`"
    )]
    Busy {
        /// The limit (`sandbox.maxConcurrent`).
        max: usize,
        /// How long the run waited.
        waited: std::time::Duration,
    },
    /// Talking to Docker failed.
    #[error("docker: {0}")]
    Docker(String),
    /// The sandbox image is not built yet.
    #[error("the docker image {0} is missing: build it with `wopr sandbox build-image`")]
    ImageMissing(String),
    /// Another I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system error.
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
        let what = what.into();
        move |source| SandboxError::Io { what, source }
    }
}
