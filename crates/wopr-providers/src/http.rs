//! The HTTP client every provider shares, and sending a request with its failures made semantic.

use std::sync::Once;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use crate::http_error;
use crate::{ErrorKind, ProviderError};

/// How long to wait for a TCP and TLS connection before calling the server unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a streamed answer may stay silent. Generous: a CPU server may chew on a long prompt
/// for minutes before its first token.
const READ_TIMEOUT: Duration = Duration::from_secs(600);

/// Error bodies longer than this are cut in messages.
const MAX_BODY_IN_MESSAGE: usize = 500;

/// A new HTTP client for calling model APIs.
///
/// reqwest is built without a TLS crypto provider, so this installs rustls' `ring` provider as the
/// process default the first time it is called (keeping one that is already installed).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    static INSTALL_CRYPTO: Once = Once::new();
    INSTALL_CRYPTO.call_once(|| {
        // An error only means another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("wopr/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The client a provider was built with, or why it could not be built.
pub(crate) type ClientSlot = Result<reqwest::Client, String>;

/// Builds the client for a provider's constructor, keeping a failure to report on first use.
pub(crate) fn client_slot() -> ClientSlot {
    http_client().map_err(|e| format!("could not set up the HTTP client: {}", error_chain(&e)))
}

/// Sends `request` to `url` and returns the response if its status is a success. Anything else
/// (unreachable server, error status) comes back as a [`ProviderError`] of the matching kind.
pub(crate) async fn send(
    provider: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(|e| transport_error(provider, url, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(http_error::from_status(provider, url, status.as_u16(), &headers, &body))
}

/// Fails with a protocol error when a successful response is plainly not an event stream (a JSON
/// document from a server that ignored `stream: true`, or a web page from a wrong base URL).
pub(crate) async fn expect_event_stream(
    provider: &'static str,
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, ProviderError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(content_type.starts_with("application/json") || content_type.starts_with("text/html")) {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(ProviderError::new(
        provider,
        ErrorKind::Protocol,
        format!("expected an event stream from {url}, got {content_type}: {}", shorten(&body)),
    ))
}

/// A failure to talk to the server at all, or a connection lost mid-answer.
pub(crate) fn transport_error(provider: &'static str, url: &str, error: &reqwest::Error) -> ProviderError {
    let detail = error_chain(error);
    if error.is_builder() {
        return ProviderError::new(
            provider,
            ErrorKind::NotConfigured,
            format!("invalid request to {url} (check the base URL and API key): {detail}"),
        );
    }
    let what = if error.is_timeout() {
        format!("timed out talking to {url}")
    } else if error.is_connect() {
        format!("could not connect to {url}")
    } else if error.is_body() || error.is_decode() {
        format!("connection to {url} lost during the answer")
    } else {
        format!("request to {url} failed")
    };
    ProviderError::new(provider, ErrorKind::Unavailable, format!("{what}: {detail}"))
}

/// An error with its causes, so "error sending request" also says "connection refused".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` cut to a readable length on a character boundary.
pub(crate) fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_BODY_IN_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_shortened_on_char_boundaries() {
        let long = "é".repeat(MAX_BODY_IN_MESSAGE + 10);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_BODY_IN_MESSAGE + 1);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("  ok \n"), "ok");
    }

    #[test]
    fn the_client_builds_twice_with_tls_available() {
        http_client().unwrap();
        http_client().unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_and_names_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/models", listener.local_addr().unwrap());
        drop(listener);
        let client = http_client().unwrap();
        let err = send("openai", &url, client.get(&url)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.message.contains(&url), "{}", err.message);
        assert!(err.message.contains("could not connect"), "{}", err.message);
    }
}
