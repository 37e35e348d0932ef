//! The OpenAI-compatible door: `GET /v1/models` lists the sessions, `POST /v1/chat/completions` runs
//! a turn in the session named by `model`, streaming when asked. A session keeps its own history and
//! context, so only the last user message of the request is new to it; earlier messages and system
//! messages in the request are not replayed.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::Http;
use super::extract::Body;
use super::problem::HttpResult;
use super::sessions::{interrupted, spawn_owner_inject};
use crate::service::ApiError;
use crate::service::types::{InjectEvent, Problem};

/// A model, which here is a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Model {
    /// The session's name.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Always `wopr`.
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The sessions.
    pub data: Vec<Model>,
}

/// A chat message of the request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// A string, or an array of parts of which the `text` ones are read.
    #[serde(default)]
    pub content: Value,
}

/// `POST /v1/chat/completions` (fields not listed are accepted and ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// The session to talk to.
    pub model: String,
    /// The conversation; its last user message is sent.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as `chat.completion.chunk` events.
    #[serde(default)]
    pub stream: bool,
}

/// The sessions, as OpenAI models.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, body = ModelList), (status = 401, body = Problem)))]
pub async fn models(State(http): State<Http>) -> HttpResult<Json<ModelList>> {
    let data = http
        .core
        .sessions()?
        .into_iter()
        .map(|s| Model {
            id: s.name,
            object: "model".into(),
            created: s.created / 1000,
            owned_by: "wopr".into(),
        })
        .collect();
    Ok(Json(ModelList { object: "list".into(), data }))
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// A chat completion from a session, as OpenAI's API gives it.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body = ChatRequest,
    responses((status = 200, description = "A `chat.completion`, or with `stream` a `text/event-stream` of `chat.completion.chunk`s ending in `[DONE]`", body = Object),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn chat_completions(
    State(http): State<Http>,
    Body(req): Body<ChatRequest>,
) -> HttpResult<Response> {
    let message = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| text_of(&m.content))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("the request has no user message with text"))?;
    http.core.require_session(&req.model)?;
    let id = format!("chatcmpl-{}", &crate::token::random_secret()[..24]);
    let created = wopr_store::now_ms() / 1000;
    let (mut rx, done_rx) = spawn_owner_inject(&http.core, req.model.clone(), message);
    if !req.stream {
        drop(rx);
        let done = done_rx.await.map_err(|_| interrupted())??;
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": req.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text}, "finish_reason": "stop"}],
        }))
        .into_response());
    }
    let model = req.model;
    let chunk = move |delta: Value, finish: Option<&str>| {
        let body = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Event::default().data(body.to_string())
    };
    let stream = async_stream(move |out: mpsc::UnboundedSender<Event>| async move {
        let _ = out.send(chunk(json!({"role": "assistant", "content": ""}), None));
        while let Some(ev) = rx.recv().await {
            if let InjectEvent::Delta { text } = ev {
                let _ = out.send(chunk(json!({"content": text}), None));
            }
        }
        match done_rx.await {
            Ok(Ok(_)) => {
                let _ = out.send(chunk(json!({}), Some("stop")));
            }
            Ok(Err(e)) => {
                let _ = out.send(
                    Event::default()
                        .data(json!({"error": {"message": e.message, "type": "server_error"}}).to_string()),
                );
            }
            Err(_) => {}
        }
        let _ = out.send(Event::default().data("[DONE]"));
    });
    Ok(Sse::new(stream).into_response())
}

/// A stream of the events a task sends.
fn async_stream<F, Fut>(task: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(mpsc::UnboundedSender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(task(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
