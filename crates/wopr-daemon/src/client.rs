//! The CLI side of `daemon.sock`.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use wopr_store::Home;

use crate::ipc::{Reply, Request};
use crate::lifecycle;

/// Why a daemon call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error.
    #[error("{message}")]
    Daemon {
        /// Exit code to use.
        code: wopr_store::ExitCode,
        /// Its message.
        message: String,
    },
    /// The socket failed.
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon closed without a final answer.
    #[error("the daemon closed the connection without answering (see `wopr daemon logs`)")]
    NoAnswer,
}

impl ClientError {
    /// The exit code for the CLI.
    pub fn exit_code(&self) -> wopr_store::ExitCode {
        match self {
            ClientError::Daemon { code, .. } => *code,
            _ => wopr_store::ExitCode::Failure,
        }
    }
}

/// Connects to the running daemon, if there is one.
pub async fn connect(home: &Home) -> Option<UnixStream> {
    lifecycle::running_pid(home)?;
    UnixStream::connect(lifecycle::socket_path(home)).await.ok()
}

/// Sends `request` on `stream`, passes each streamed piece to `on_delta`, and returns the final result.
pub async fn call(
    stream: UnixStream,
    request: &Request,
    mut on_delta: impl FnMut(&str),
) -> Result<serde_json::Value, ClientError> {
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut lines = BufReader::new(read).lines();
    while let Some(l) = lines.next_line().await? {
        match serde_json::from_str::<Reply>(&l).map_err(std::io::Error::other)? {
            Reply::Delta(t) => on_delta(&t),
            Reply::Ok(v) => return Ok(v),
            Reply::Error { code, message } => return Err(ClientError::Daemon { code, message }),
        }
    }
    Err(ClientError::NoAnswer)
}

/// [`call`], with the final result read as `T` (the typed replies of [`crate::service::types`]).
pub async fn call_as<T: serde::de::DeserializeOwned>(
    stream: UnixStream,
    request: &Request,
    on_delta: impl FnMut(&str),
) -> Result<T, ClientError> {
    let v = call(stream, request, on_delta).await?;
    serde_json::from_value(v)
        .map_err(|e| ClientError::Io(std::io::Error::other(format!("the daemon's answer: {e}"))))
}
