//! Exit codes (DESIGN section 5): 0 ok, 1 failure, 2 rejected, 3 invalid input, 4 rate limited,
//! 5 version mismatch, 6 peer offline, 7 unauthorized.

use std::fmt;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

pub const INVALID: i32 = 3;

impl Exit {
    pub fn invalid(message: impl Into<String>) -> Self {
        Exit { code: INVALID, message: message.into() }
    }
}

impl From<wopr_daemon::service::ApiError> for Exit {
    fn from(e: wopr_daemon::service::ApiError) -> Self {
        Exit { code: e.code.code(), message: e.message }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error: an explicit `Exit`, 3 for invalid input from the store, else 1.
pub fn code_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<wopr_store::StoreError>()
            && e.is_invalid_input()
        {
            return INVALID;
        }
        if let Some(wopr_identity::IdentityError::InvalidPublicKey(_)) =
            cause.downcast_ref::<wopr_identity::IdentityError>()
        {
            return INVALID;
        }
    }
    1
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
