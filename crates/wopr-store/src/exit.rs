//! Exit codes (DESIGN section 5), one type for the CLI, the daemon's socket and its HTTP API.

use serde::{Deserialize, Serialize};

/// How a command or request ended. The number is the CLI's exit status; the HTTP API names it in its
/// problem details (`exitCode`), so a script gets the same answer either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i32", from = "i32")]
pub enum ExitCode {
    /// 0: done.
    Ok,
    /// 1: it failed (a file, the provider, the daemon).
    Failure,
    /// 2: the peer or the owner's policy said no.
    Rejected,
    /// 3: the input is invalid (a name, a token, a key, a value).
    Invalid,
    /// 4: too many requests; try again later.
    RateLimited,
    /// 5: the peer speaks another protocol version.
    VersionMismatch,
    /// 6: the peer cannot be reached.
    PeerOffline,
    /// 7: not allowed (no grant, a wrong key, a missing token).
    Unauthorized,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::Rejected => 2,
            ExitCode::Invalid => 3,
            ExitCode::RateLimited => 4,
            ExitCode::VersionMismatch => 5,
            ExitCode::PeerOffline => 6,
            ExitCode::Unauthorized => 7,
        }
    }

    /// The code for an exit status; anything unknown is a failure.
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => ExitCode::Ok,
            2 => ExitCode::Rejected,
            3 => ExitCode::Invalid,
            4 => ExitCode::RateLimited,
            5 => ExitCode::VersionMismatch,
            6 => ExitCode::PeerOffline,
            7 => ExitCode::Unauthorized,
            _ => ExitCode::Failure,
        }
    }
}

impl utoipa::PartialSchema for ExitCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(7))
            .description(Some(
                "Exit code: 0 ok, 1 failure, 2 rejected, 3 invalid input, 4 rate limited, 5 version mismatch, 6 peer offline, 7 unauthorized",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ExitCode {}

impl From<ExitCode> for i32 {
    fn from(c: ExitCode) -> i32 {
        c.code()
    }
}

impl From<i32> for ExitCode {
    fn from(code: i32) -> Self {
        ExitCode::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn every_code_reads_back_as_itself() {
        for n in 0..=7 {
            assert_eq!(ExitCode::from_code(n).code(), n);
        }
        assert_eq!(ExitCode::from_code(99), ExitCode::Failure);
        assert_eq!(serde_json::to_string(&ExitCode::RateLimited).unwrap(), "4");
    }
}
