//! OpenAI Chat Completions (`POST {base}/chat/completions`, streamed), which Kimi (Moonshot) and
//! OpenAI-compatible servers (Ollama, llama-server, vLLM) speak too.
//!
//! `request` writes the request body from the provider-neutral types; `events` reads the answer's
//! chunks. Without a configured model, the first one the server lists under `GET {base}/models` is
//! used, asked once per provider.

mod events;
mod request;

use std::sync::{Arc, OnceLock};

use reqwest::header::ACCEPT;
use serde::Deserialize;

use crate::decode::{lazy_stream, stream_answer};
use crate::http::{self, ClientSlot};
use crate::{ChatRequest, ErrorKind, EventStream, Provider, ProviderError};

/// OpenAI Chat Completions client; also Kimi and OpenAI-compatible servers.
pub struct OpenAi {
    name: &'static str,
    client: ClientSlot,
    base_url: String,
    api_key: Option<String>,
    /// The configured model, or the server's first model once asked.
    model: Arc<OnceLock<String>>,
}

impl OpenAi {
    /// `base_url` includes `/v1` (as `OPENAI_BASE_URL`). `model: None` asks the server's `/models`.
    pub fn new(name: &'static str, base_url: String, api_key: Option<String>, model: Option<String>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let cell = OnceLock::new();
        if let Some(model) = model {
            let _ = cell.set(model);
        }
        OpenAi { name, client: http::client_slot(), base_url, api_key, model: Arc::new(cell) }
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        self.name
    }

    /// The model, or `auto` while the server has not been asked for it yet.
    fn model(&self) -> &str {
        self.model.get().map(String::as_str).unwrap_or("auto")
    }

    /// OpenAI's current models hold 128k tokens; Moonshot's say theirs in the name (`moonshot-v1-8k`),
    /// else 128k; an OpenAI-compatible server gets the conservative default.
    fn context_window(&self) -> u32 {
        let model = self.model();
        let named = [("-8k", 8_192), ("-32k", 32_768), ("-128k", 131_072)]
            .into_iter()
            .find_map(|(suffix, window)| model.ends_with(suffix).then_some(window));
        match self.name {
            "openai" => 128_000,
            "kimi" => named.unwrap_or(131_072),
            _ => named.unwrap_or(crate::DEFAULT_CONTEXT_WINDOW),
        }
    }

    fn stream(&self, request: ChatRequest) -> EventStream {
        let name = self.name;
        let client = self.client.clone();
        let base_url = self.base_url.clone();
        let api_key = self.api_key.clone();
        let model = self.model.clone();
        lazy_stream(async move {
            let client = client.map_err(|e| ProviderError::new(name, ErrorKind::NotConfigured, e))?;
            let with_key = |call: reqwest::RequestBuilder| match &api_key {
                Some(key) => call.bearer_auth(key),
                None => call,
            };
            let model = match model.get() {
                Some(m) => m.clone(),
                None => {
                    let first =
                        first_model(name, &base_url, with_key(client.get(format!("{base_url}/models"))))
                            .await?;
                    model.get_or_init(|| first).clone()
                }
            };
            let url = format!("{base_url}/chat/completions");
            let body = request::body(name, &model, &request);
            let call = with_key(client.post(&url)).header(ACCEPT, "text/event-stream").json(&body);
            let response = http::send(name, &url, call).await?;
            let response = http::expect_event_stream(name, &url, response).await?;
            Ok(stream_answer(name, url, response, events::ChunkStream::new(name)))
        })
    }
}

/// The first model listed by `GET {base}/models`.
async fn first_model(
    name: &'static str,
    base_url: &str,
    call: reqwest::RequestBuilder,
) -> Result<String, ProviderError> {
    #[derive(Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let url = format!("{base_url}/models");
    let response = http::send(name, &url, call).await?;
    let text = response.text().await.map_err(|e| http::transport_error(name, &url, &e))?;
    let models: Models = serde_json::from_str(&text).map_err(|e| {
        ProviderError::new(
            name,
            ErrorKind::Protocol,
            format!("could not read the model list from {url} ({e}): {}", http::shorten(&text)),
        )
    })?;
    models.data.into_iter().next().map(|m| m.id).ok_or_else(|| {
        ProviderError::new(
            name,
            ErrorKind::NotConfigured,
            format!("{url} lists no models: choose one with `--model` or `providers.{name}.model`"),
        )
    })
}
