//! Exit codes (DESIGN section 5): 0 ok, 1 failure, 2 rejected, 3 invalid input, 4 rate limited,
//! 5 version mismatch, 6 peer offline, 7 unauthorized.

use std::fmt;

pub use wopr_store::ExitCode;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: ExitCode,
    pub message: String,
}

impl Exit {
    /// An error ending with `code`.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Exit { code, message: message.into() }
    }

    /// Invalid input (exit code 3).
    pub fn invalid(message: impl Into<String>) -> Self {
        Exit::new(ExitCode::Invalid, message)
    }

    /// A failure (exit code 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Exit::new(ExitCode::Failure, message)
    }
}

impl From<wopr_daemon::service::ApiError> for Exit {
    fn from(e: wopr_daemon::service::ApiError) -> Self {
        Exit { code: e.code, message: e.message }
    }
}

impl From<wopr_p2p::P2pError> for Exit {
    fn from(e: wopr_p2p::P2pError) -> Self {
        Exit { code: e.exit_code(), message: e.to_string() }
    }
}

impl From<wopr_daemon::client::ClientError> for Exit {
    fn from(e: wopr_daemon::client::ClientError) -> Self {
        Exit { code: e.exit_code(), message: e.to_string() }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// A process status that is no exit code of WOPR's own: the status of a command run for the user
/// (`wopr sandbox run` exits with it), or [`INTERRUPTED`]. The message, if any, is printed.
#[derive(Debug)]
pub struct Status {
    pub status: i32,
    pub message: String,
}

/// The status of a command Ctrl+C stopped: 128 + SIGINT, as a shell reports it.
pub const INTERRUPTED: i32 = 130;

impl Status {
    pub fn new(status: i32, message: impl Into<String>) -> Self {
        Status { status, message: message.into() }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

/// The process status for an error: a command's own status, the code an `Exit` or a core error names,
/// invalid input from the store or a malformed key, else a failure.
pub fn status_of(err: &anyhow::Error) -> i32 {
    if let Some(s) = err.downcast_ref::<Status>() {
        return s.status;
    }
    code_of(err).code()
}

/// The exit code for an error (see [`status_of`]).
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<wopr_daemon::service::ApiError>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<wopr_store::StoreError>() {
            return e.exit_code();
        }
        if let Some(wopr_identity::IdentityError::InvalidPublicKey(_)) =
            cause.downcast_ref::<wopr_identity::IdentityError>()
        {
            return ExitCode::Invalid;
        }
    }
    ExitCode::Failure
}

/// The exit status when the reader of stdout went away (`wopr ... | head -1`): 128 + SIGPIPE, what a
/// shell reports for a pipeline's writer that the signal ended.
pub const CLOSED_PIPE: i32 = 141;

/// Whether `err` is a write to a closed pipe.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Ends the process with [`CLOSED_PIPE`], printing nothing, when a print to a closed stdout panics
/// (`println!` and libraries that write with it, such as clap_complete, panic on a closed pipe); every
/// other panic is reported as before.
pub fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE);
        }
        report(info);
    }));
}
