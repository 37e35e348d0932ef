//! Anthropic Messages API (`POST {base}/v1/messages`, streamed).
//!
//! `request` writes the request body from the provider-neutral types; `events` reads the answer's
//! server-sent events.

mod events;
mod request;

use reqwest::header::{ACCEPT, HeaderValue};

use crate::decode::{lazy_stream, stream_answer};
use crate::http::{self, ClientSlot};
use crate::{ChatRequest, ErrorKind, EventStream, Provider, ProviderError};

const NAME: &str = "anthropic";
/// The API version this implementation speaks.
const API_VERSION: &str = "2023-06-01";

/// Anthropic Messages API client.
pub struct Anthropic {
    client: ClientSlot,
    base_url: String,
    api_key: String,
    model: String,
}

impl Anthropic {
    /// `base_url` without `/v1` (as `ANTHROPIC_BASE_URL`).
    pub fn new(base_url: String, api_key: String, model: String) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        Anthropic { client: http::client_slot(), base_url, api_key, model }
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &'static str {
        NAME
    }

    fn model(&self) -> &str {
        &self.model
    }

    /// Every current Claude model holds 200k tokens.
    fn context_window(&self) -> u32 {
        200_000
    }

    fn stream(&self, request: ChatRequest) -> EventStream {
        let url = format!("{}/v1/messages", self.base_url);
        let client = self.client.clone();
        let body = request::body(&self.model, &request);
        let api_key = HeaderValue::from_str(&self.api_key);
        lazy_stream(async move {
            let client = client.map_err(|e| ProviderError::new(NAME, ErrorKind::NotConfigured, e))?;
            let mut api_key = api_key.map_err(|_| {
                ProviderError::new(
                    NAME,
                    ErrorKind::NotConfigured,
                    "the API key has characters an HTTP header cannot carry",
                )
            })?;
            // Keeps the key out of any Debug output of the request.
            api_key.set_sensitive(true);
            let call = client
                .post(&url)
                .header("x-api-key", api_key)
                .header("anthropic-version", API_VERSION)
                .header(ACCEPT, "text/event-stream")
                .json(&body);
            let response = http::send(NAME, &url, call).await?;
            let response = http::expect_event_stream(NAME, &url, response).await?;
            Ok(stream_answer(NAME, url, response, events::MessageStream::default()))
        })
    }
}
