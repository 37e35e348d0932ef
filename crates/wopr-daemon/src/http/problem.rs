//! Errors as RFC 9457 problem details (`application/problem+json`), naming the CLI's exit code.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use wopr_store::ExitCode;

use crate::service::ApiError;
use crate::service::error::Kind;
use crate::service::types::Problem;

/// The HTTP status for an exit code.
pub fn status_of(e: &ApiError) -> StatusCode {
    match e.kind {
        Kind::NotFound => return StatusCode::NOT_FOUND,
        Kind::Conflict => return StatusCode::CONFLICT,
        Kind::Upstream => match e.code {
            ExitCode::RateLimited => return StatusCode::TOO_MANY_REQUESTS,
            _ => return StatusCode::BAD_GATEWAY,
        },
        Kind::Unavailable => return StatusCode::SERVICE_UNAVAILABLE,
        Kind::Plain => {}
    }
    match e.code {
        ExitCode::Ok => StatusCode::OK,
        ExitCode::Failure => StatusCode::INTERNAL_SERVER_ERROR,
        ExitCode::Rejected => StatusCode::CONFLICT,
        ExitCode::Invalid => StatusCode::BAD_REQUEST,
        ExitCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ExitCode::VersionMismatch | ExitCode::PeerOffline => StatusCode::BAD_GATEWAY,
        ExitCode::Unauthorized => StatusCode::FORBIDDEN,
    }
}

/// The problem document for `e`.
pub fn problem_of(e: &ApiError) -> Problem {
    let status = status_of(e);
    Problem {
        kind: format!("https://wopr.dev/problems/exit-{}", e.code.code()),
        title: status.canonical_reason().unwrap_or("error").to_string(),
        status: status.as_u16(),
        detail: e.message.clone(),
        exit_code: e.code,
    }
}

/// A problem response made here (auth, limits), with its exit code.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ExitCode::Unauthorized,
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY => {
            ExitCode::Invalid
        }
        StatusCode::TOO_MANY_REQUESTS => ExitCode::RateLimited,
        _ => ExitCode::Failure,
    };
    let body = Problem {
        kind: format!("https://wopr.dev/problems/exit-{}", code.code()),
        title: title.to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        exit_code: code,
    };
    respond(status, body)
}

fn respond(status: StatusCode, body: Problem) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
    r
}

/// Route errors.
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "API request failed");
        }
        respond(status, problem_of(&self.0))
    }
}

/// What a route returns.
pub type HttpResult<T> = Result<T, HttpError>;
