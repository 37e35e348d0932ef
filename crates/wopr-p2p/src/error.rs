//! What can go wrong in P2P work, and the exit code the CLI shows for it (DESIGN section 5).

use thiserror::Error;
use wopr_proto::ErrorCode;
use wopr_store::{ExitCode, StoreError};

/// A P2P failure. [`P2pError::exit_code`] is the CLI's exit code for it.
#[derive(Debug, Error)]
pub enum P2pError {
    /// The local endpoint could not start or is not running (exit code 1).
    #[error("P2P endpoint is not running: {0}")]
    Offline(String),
    /// The peer refused the request, with its reason (exit code = the refusal's code: 2 rejected,
    /// 3 invalid, 4 rate limited, 5 version mismatch, 7 unauthorized).
    #[error("{}", refusal_text(.message, *.retry_after_ms))]
    Refused {
        /// What kind of refusal.
        code: ErrorCode,
        /// The peer's explanation.
        message: String,
        /// When to retry, for rate limits.
        retry_after_ms: Option<u64>,
    },
    /// A token, key, peer reference or argument is invalid (exit code 3).
    #[error("{0}")]
    Invalid(String),
    /// No peer this node knows or sees matches the name or id given (exit code 3, as any bad
    /// argument; the HTTP API says 404).
    #[error("{0}")]
    NoSuchPeer(String),
    /// The peer could not be reached (exit code 6).
    #[error("peer {peer} is offline or unreachable: {reason}")]
    PeerOffline {
        /// Which peer (short id or name).
        peer: String,
        /// What failed.
        reason: String,
    },
    /// The connection broke during the request (exit code 6).
    #[error("connection to {peer} was lost: {reason}")]
    ConnectionLost {
        /// Which peer.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The peer broke the protocol (exit code 3).
    #[error("protocol error from {peer}: {reason}")]
    Protocol {
        /// Which peer.
        peer: String,
        /// What it did wrong.
        reason: String,
    },
    /// Reading or writing `$WOPR_HOME` failed (exit code 3 for invalid input, else 1).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refusal_text(message: &str, retry_after_ms: Option<u64>) -> String {
    match retry_after_ms {
        Some(ms) if !message.contains("retry") => format!("{message} (retry in {})", human_ms(ms)),
        _ => message.to_string(),
    }
}

/// `1.5 s`, `42 s`, `12 min`: a wait for a person.
pub(crate) fn human_ms(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{:.1} s", ms as f64 / 1000.0),
        10_000..=119_999 => format!("{} s", ms.div_ceil(1000)),
        _ => format!("{} min", ms.div_ceil(60_000)),
    }
}

/// The exit code of a peer's refusal (the wire byte has the same number).
pub fn refusal_exit(code: ErrorCode) -> ExitCode {
    match code {
        ErrorCode::Rejected => ExitCode::Rejected,
        ErrorCode::Invalid => ExitCode::Invalid,
        ErrorCode::RateLimited => ExitCode::RateLimited,
        ErrorCode::VersionMismatch => ExitCode::VersionMismatch,
        ErrorCode::Unauthorized => ExitCode::Unauthorized,
    }
}

impl P2pError {
    /// The exit code: a failure when this node is offline, the refusal's own code, invalid input,
    /// the peer offline.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            P2pError::Offline(_) => ExitCode::Failure,
            P2pError::Refused { code, .. } => refusal_exit(*code),
            P2pError::Invalid(_) | P2pError::NoSuchPeer(_) | P2pError::Protocol { .. } => ExitCode::Invalid,
            P2pError::PeerOffline { .. } | P2pError::ConnectionLost { .. } => ExitCode::PeerOffline,
            P2pError::Store(e) => e.exit_code(),
        }
    }

    /// The refusal code, if the peer refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            P2pError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// When to retry, if the peer said.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            P2pError::Refused { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    pub(crate) fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        P2pError::Refused { code, message: message.into(), retry_after_ms: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_design() {
        let refused = |code| P2pError::refused(code, "x").exit_code().code();
        assert_eq!(P2pError::Offline("x".into()).exit_code().code(), 1);
        assert_eq!(refused(ErrorCode::Rejected), 2);
        assert_eq!(P2pError::Invalid("bad token".into()).exit_code().code(), 3);
        assert_eq!(refused(ErrorCode::RateLimited), 4);
        assert_eq!(refused(ErrorCode::VersionMismatch), 5);
        assert_eq!(P2pError::PeerOffline { peer: "a".into(), reason: "b".into() }.exit_code().code(), 6);
        assert_eq!(refused(ErrorCode::Unauthorized), 7);
        assert_eq!(P2pError::Store(StoreError::InvalidPeer("x".into())).exit_code().code(), 3);
    }

    #[test]
    fn a_rate_limit_refusal_says_when_to_retry() {
        let e = P2pError::Refused {
            code: ErrorCode::RateLimited,
            message: "30 injects per minute".into(),
            retry_after_ms: Some(42_000),
        };
        assert_eq!(e.to_string(), "30 injects per minute (retry in 42 s)");
        assert_eq!(human_ms(1500), "1.5 s");
        assert_eq!(human_ms(30 * 60_000), "30 min");
    }
}
