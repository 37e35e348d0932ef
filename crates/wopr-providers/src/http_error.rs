//! Server failures made semantic: HTTP statuses, `retry-after` headers and the error bodies of the
//! Anthropic and OpenAI APIs (and servers imitating them) become [`ProviderError`]s.
//!
//! Both APIs wrap errors as `{"error": {"type" | "code": ..., "message": ...}}`; other servers send
//! `{"error": "..."}`, `{"message": "..."}` or `{"detail": "..."}`, which are understood too.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::http::shorten;
use crate::{ErrorKind, ProviderError};

/// An error status with its body.
pub(crate) fn from_status(
    provider: &'static str,
    url: &str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
) -> ProviderError {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let detail = parsed.as_ref().map(ErrorDetail::from_body).unwrap_or_default();
    let kind = match status {
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::RateLimited { retry_after: retry_after(headers) },
        400..=499 if detail.is_context_overflow() => ErrorKind::ContextTooLong,
        400..=499 => ErrorKind::BadRequest,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Protocol,
    };
    let server_says = match detail.message {
        Some(m) => m,
        None if body.trim().is_empty() => "no error message".to_string(),
        None => shorten(body),
    };
    ProviderError::new(provider, kind, format!("{server_says} (HTTP {status} from {url})"))
}

/// An error the server sent inside a stream that had started well (`event: error` or an `error` field).
pub(crate) fn from_stream_error(provider: &'static str, body: &Value) -> ProviderError {
    let detail = ErrorDetail::from_body(body);
    let status = detail.code.as_deref().and_then(|c| c.parse::<u16>().ok());
    let name = detail.error_type.as_deref().or(detail.code.as_deref()).unwrap_or_default();
    let kind = match (status, name) {
        _ if detail.is_context_overflow() => ErrorKind::ContextTooLong,
        (Some(401 | 403), _) | (_, "authentication_error" | "permission_error" | "invalid_api_key") => {
            ErrorKind::Auth
        }
        (Some(429), _) | (_, "rate_limit_error" | "rate_limit_exceeded") => {
            ErrorKind::RateLimited { retry_after: None }
        }
        (Some(400..=499), _) | (_, "invalid_request_error" | "not_found_error" | "request_too_large") => {
            ErrorKind::BadRequest
        }
        // overloaded_error, api_error, server_error, 5xx and anything new: it may work again later.
        _ => ErrorKind::Unavailable,
    };
    let message = detail.message.unwrap_or_else(|| shorten(&body.to_string()));
    let label = if name.is_empty() { String::new() } else { format!(" ({name})") };
    ProviderError::new(provider, kind, format!("the server reported an error mid-answer{label}: {message}"))
}

/// The delay a 429 asks for: `retry-after-ms` (OpenAI) or `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    // An HTTP date instead of seconds is rare for APIs and not worth a date parser: no delay is known.
    let seconds = |name: &str, scale: f64| -> Option<Duration> {
        let value = headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok()?;
        Duration::try_from_secs_f64(value / scale).ok()
    };
    seconds("retry-after-ms", 1000.0).or_else(|| seconds("retry-after", 1.0))
}

/// The useful parts of an error body.
#[derive(Debug, Default)]
struct ErrorDetail {
    message: Option<String>,
    /// `code`: a name (`context_length_exceeded`) or an HTTP status, depending on the server.
    code: Option<String>,
    /// `type`: `authentication_error`, `invalid_request_error`, ...
    error_type: Option<String>,
}

impl ErrorDetail {
    fn from_body(body: &Value) -> Self {
        let text = |v: Option<&Value>| match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let fields = |o: &Value| ErrorDetail {
            message: text(o.get("message")).or_else(|| text(o.get("detail"))),
            code: text(o.get("code")),
            error_type: text(o.get("type")).filter(|t| t != "error"),
        };
        match body.get("error") {
            Some(error @ Value::Object(_)) => fields(error),
            Some(Value::String(message)) => ErrorDetail { message: Some(message.clone()), ..fields(body) },
            _ => fields(body),
        }
    }

    /// Whether the error says the prompt does not fit the context window, in any of the ways
    /// Anthropic, OpenAI, Moonshot, vLLM, Ollama and llama-server say it.
    fn is_context_overflow(&self) -> bool {
        const CODES: [&str; 2] = ["context_length_exceeded", "exceed_context_size_error"];
        const PHRASES: [&str; 8] = [
            "context length",
            "context_length",
            "context window",
            "context size",
            "maximum context",
            "too many tokens",
            "prompt is too long",
            "input is too long",
        ];
        let named = |n: &Option<String>| n.as_deref().is_some_and(|n| CODES.contains(&n));
        let message = self.message.as_deref().unwrap_or_default().to_lowercase();
        named(&self.code) || named(&self.error_type) || PHRASES.iter().any(|p| message.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn status(code: u16, headers: &[(&'static str, &'static str)], body: &str) -> ProviderError {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        from_status("test", "http://h/v1/x", code, &map, body)
    }

    #[test]
    fn auth_statuses_keep_the_server_message() {
        let body =
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        let err = status(401, &[], body);
        assert_eq!(err.kind, ErrorKind::Auth);
        assert_eq!(err.message, "invalid x-api-key (HTTP 401 from http://h/v1/x)");
        assert_eq!(status(403, &[], "").kind, ErrorKind::Auth);
    }

    #[test]
    fn rate_limits_carry_the_retry_delay() {
        let limited = |headers: &[(&'static str, &'static str)]| status(429, headers, "{}").kind;
        assert_eq!(
            limited(&[("retry-after", "17")]),
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(17)) }
        );
        assert_eq!(
            limited(&[("retry-after-ms", "1500"), ("retry-after", "2")]),
            ErrorKind::RateLimited { retry_after: Some(Duration::from_millis(1500)) }
        );
        for odd in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e300", "NaN"] {
            assert_eq!(
                limited(&[("retry-after", odd)]),
                ErrorKind::RateLimited { retry_after: None },
                "{odd}"
            );
        }
    }

    #[test]
    fn context_overflow_is_recognised_in_each_dialect() {
        let bodies = [
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}"#,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","code":400}"#,
        ];
        for body in bodies {
            assert_eq!(status(400, &[], body).kind, ErrorKind::ContextTooLong, "{body}");
        }
        assert_eq!(status(400, &[], r#"{"error":"model not found"}"#).kind, ErrorKind::BadRequest);
    }

    #[test]
    fn server_failures_are_unavailable() {
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let err = status(529, &[], overloaded);
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.message.starts_with("Overloaded"));
        assert_eq!(
            status(502, &[], "<html>bad gateway</html>").message,
            "<html>bad gateway</html> (HTTP 502 from http://h/v1/x)"
        );
    }

    #[test]
    fn stream_errors_map_by_type() {
        let kind =
            |t: &str| from_stream_error("t", &json!({"type":"error","error":{"type":t,"message":"m"}})).kind;
        assert_eq!(kind("overloaded_error"), ErrorKind::Unavailable);
        assert_eq!(kind("authentication_error"), ErrorKind::Auth);
        assert_eq!(kind("rate_limit_error"), ErrorKind::RateLimited { retry_after: None });
        assert_eq!(kind("invalid_request_error"), ErrorKind::BadRequest);
        let llama = json!({"error":{"code":500,"message":"slot failed","type":"server_error"}});
        let err = from_stream_error("t", &llama);
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.message.contains("slot failed"));
    }
}
