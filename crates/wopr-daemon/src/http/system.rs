//! `/config`, `/providers`, `/models`, `/sandbox/doctor`, `/security`, `/daemon/status`, `/events`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::Http;
use super::extract::{Body, KeyPath, Params, Segments};
use super::problem::{HttpResult, problem_of};
use super::sse;
use crate::bus::BusEvent;
use crate::service::types::{
    ConfigEntry, DaemonStatus, ModelFile, Problem, ProviderView, PullEvent, SecurityView,
};

/// The whole configuration.
#[utoipa::path(get, path = "/config", tag = "config",
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
pub async fn config(State(http): State<Http>) -> HttpResult<Json<serde_json::Value>> {
    Ok(Json(http.core.config()?))
}

/// One key (dotted: `plugins.data.router`).
#[utoipa::path(get, path = "/config/{key}", tag = "config", params(KeyPath),
    responses((status = 200, body = ConfigEntry), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn config_get(
    State(http): State<Http>,
    Segments(KeyPath { key }): Segments<KeyPath>,
) -> HttpResult<Json<ConfigEntry>> {
    Ok(Json(http.core.config_get(&key)?))
}

/// Sets a key to the JSON body.
#[utoipa::path(put, path = "/config/{key}", tag = "config", params(KeyPath), request_body = serde_json::Value,
    responses((status = 200, body = ConfigEntry), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn config_put(
    State(http): State<Http>,
    Segments(KeyPath { key }): Segments<KeyPath>,
    Body(value): Body<serde_json::Value>,
) -> HttpResult<Json<ConfigEntry>> {
    Ok(Json(http.core.config_set(&key, value)?))
}

/// Removes a key.
#[utoipa::path(delete, path = "/config/{key}", tag = "config", params(KeyPath),
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn config_delete(
    State(http): State<Http>,
    Segments(KeyPath { key }): Segments<KeyPath>,
) -> HttpResult<StatusCode> {
    http.core.config_unset(&key)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every provider and whether it is usable here.
#[utoipa::path(get, path = "/providers", tag = "providers",
    responses((status = 200, body = Vec<ProviderView>), (status = 401, body = Problem)))]
pub async fn providers(State(http): State<Http>) -> HttpResult<Json<Vec<ProviderView>>> {
    Ok(Json(http.core.providers()?))
}

/// The model files.
#[utoipa::path(get, path = "/models", tag = "providers",
    responses((status = 200, body = Vec<ModelFile>), (status = 401, body = Problem)))]
pub async fn models(State(http): State<Http>) -> HttpResult<Json<Vec<ModelFile>>> {
    Ok(Json(http.core.models()?))
}

/// `POST /models/pull` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Download again even when the model is there.
    #[serde(default)]
    pub force: bool,
}

/// Downloads the default model, streaming progress as server-sent events (`progress`, then `done` or
/// `error`).
#[utoipa::path(post, path = "/models/pull", tag = "providers", params(PullQuery),
    responses((status = 200, content_type = "text/event-stream", body = PullEvent), (status = 401, body = Problem)))]
pub async fn pull(State(http): State<Http>, Params(q): Params<PullQuery>) -> Response {
    let (tx, rx) = mpsc::unbounded_channel();
    let core = http.core.clone();
    let cancel_tx = tx.clone();
    http.core.spawn(
        async move {
            let last = match core.pull_model(q.force, &tx).await {
                Ok(done) => done,
                Err(e) => PullEvent::Error { problem: problem_of(&e) },
            };
            let _ = tx.send(last);
        },
        move || {
            let e = crate::service::ApiError::failure("the daemon stopped during the download");
            let _ = cancel_tx.send(PullEvent::Error { problem: problem_of(&e) });
        },
    );
    sse::stream(rx, |e| match e {
        PullEvent::Progress { .. } => "progress",
        PullEvent::Done { .. } => "done",
        PullEvent::Error { .. } => "error",
    })
    .into_response()
}

/// Probes every sandbox property on this host, per backend.
#[utoipa::path(get, path = "/sandbox/doctor", tag = "security",
    responses((status = 200, body = wopr_sandbox::doctor::Report), (status = 401, body = Problem)))]
pub async fn doctor(State(http): State<Http>) -> HttpResult<Json<wopr_sandbox::doctor::Report>> {
    Ok(Json(http.core.sandbox_doctor().await?))
}

/// The effective policy per session and per source.
#[utoipa::path(get, path = "/security", tag = "security",
    responses((status = 200, body = SecurityView), (status = 401, body = Problem)))]
pub async fn security(State(http): State<Http>) -> HttpResult<Json<SecurityView>> {
    Ok(Json(http.core.security()?))
}

/// The daemon: pid, uptime, id, addresses, peers, where the API listens.
#[utoipa::path(get, path = "/daemon/status", tag = "daemon",
    responses((status = 200, body = DaemonStatus), (status = 401, body = Problem)))]
pub async fn status(State(http): State<Http>) -> HttpResult<Json<DaemonStatus>> {
    Ok(Json(http.core.status().await?))
}

/// Every event on the daemon's bus, as server-sent events named by their `type`.
#[utoipa::path(get, path = "/events", tag = "daemon",
    responses((status = 200, content_type = "text/event-stream", body = BusEvent), (status = 401, body = Problem)))]
pub async fn events(State(http): State<Http>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = http.core.bus().subscribe();
    let cancel = http.core.cancelled();
    let stream = futures::stream::unfold((rx, cancel), |(mut rx, cancel)| async move {
        let next = tokio::select! {
            r = rx.recv() => r,
            () = cancel.cancelled() => return None,
        };
        let event = match next {
            Ok(e) => Event::default().event(e.name()).json_data(&e).unwrap_or_default(),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, cancel)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
