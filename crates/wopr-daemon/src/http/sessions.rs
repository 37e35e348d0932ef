//! `/sessions`: list, create, show, delete, provider, inject (SSE or JSON), log, conversation.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use wopr_agent::policy::Source;

use super::Http;
use super::extract::{Body, Params, Segments, SessionPath};
use super::problem::{HttpResult, problem_of};
use super::sse;
use crate::service::types::{
    Conversation, CreateSession, Deleted, InjectDone, InjectEvent, LimitQuery, MessageBody, Problem,
    SessionDetail, SessionSummary, SetProvider,
};
use crate::service::{ApiResult, Core};

/// Every session.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    responses((status = 200, body = Vec<SessionSummary>), (status = 401, body = Problem)))]
pub async fn list(State(http): State<Http>) -> HttpResult<Json<Vec<SessionSummary>>> {
    Ok(Json(http.core.sessions()?))
}

/// Creates a session.
#[utoipa::path(post, path = "/sessions", tag = "sessions", request_body = CreateSession,
    responses((status = 201, body = SessionSummary), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn create(
    State(http): State<Http>,
    Body(req): Body<CreateSession>,
) -> HttpResult<(StatusCode, Json<SessionSummary>)> {
    Ok((StatusCode::CREATED, Json(http.core.create_session(req)?)))
}

/// A session with its context and the newest messages.
#[utoipa::path(get, path = "/sessions/{name}", tag = "sessions", params(SessionPath, LimitQuery),
    responses((status = 200, body = SessionDetail), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn show(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
    Params(q): Params<LimitQuery>,
) -> HttpResult<Json<SessionDetail>> {
    Ok(Json(http.core.session(&name, q.limit)?))
}

/// Deletes a session, its context and its history.
#[utoipa::path(delete, path = "/sessions/{name}", tag = "sessions", params(SessionPath),
    responses((status = 200, body = Deleted), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn delete(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
) -> HttpResult<Json<Deleted>> {
    Ok(Json(http.core.delete_session(&name)?))
}

/// Sets a session's provider and model.
#[utoipa::path(put, path = "/sessions/{name}/provider", tag = "sessions", params(SessionPath), request_body = SetProvider,
    responses((status = 200, body = SessionSummary), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn provider(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
    Body(req): Body<SetProvider>,
) -> HttpResult<Json<SessionSummary>> {
    Ok(Json(http.core.set_provider(&name, req)?))
}

/// Stores a message without asking the AI.
#[utoipa::path(post, path = "/sessions/{name}/log", tag = "sessions", params(SessionPath), request_body = MessageBody,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn log(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
    Body(req): Body<MessageBody>,
) -> HttpResult<StatusCode> {
    http.core.log(&name, &req.message, &Source::Owner)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The newest messages of a session.
#[utoipa::path(get, path = "/sessions/{name}/conversation", tag = "sessions", params(SessionPath, LimitQuery),
    responses((status = 200, body = Conversation), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn conversation(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
    Params(q): Params<LimitQuery>,
) -> HttpResult<Json<Conversation>> {
    Ok(Json(http.core.conversation(&name, q.limit)?))
}

/// Runs a turn as the owner. With `Accept: text/event-stream` the answer streams as server-sent
/// events (`delta`, `toolStart`, `toolEnd`, then `done` or `error`); otherwise the reply is the
/// finished answer.
#[utoipa::path(post, path = "/sessions/{name}/inject", tag = "sessions", params(SessionPath), request_body = MessageBody,
    responses(
        (status = 200, description = "The answer; as `text/event-stream` of InjectEvent when asked for", body = InjectDone,
            content((InjectDone = "application/json"), (InjectEvent = "text/event-stream"))),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem), (status = 500, body = Problem)))]
pub async fn inject(
    State(http): State<Http>,
    Segments(SessionPath { name }): Segments<SessionPath>,
    headers: HeaderMap,
    Body(req): Body<MessageBody>,
) -> HttpResult<Response> {
    http.core.require_session(&name)?;
    let core = http.core.clone();
    let work = move |tx: &mpsc::UnboundedSender<InjectEvent>| {
        let tx = tx.clone();
        async move { core.inject(&name, &req.message, Source::Owner, &tx).await }
    };
    respond_inject(&http.core, wants_stream(&headers), work).await
}

/// Whether the client asked for server-sent events.
pub fn wants_stream(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"))
}

/// Runs an inject as a daemon task (drained, then cancelled, on shutdown) and answers with its events
/// as SSE, or with the finished answer.
pub async fn respond_inject<W, F>(core: &Arc<Core>, stream: bool, work: W) -> HttpResult<Response>
where
    W: FnOnce(&mpsc::UnboundedSender<InjectEvent>) -> F,
    F: std::future::Future<Output = ApiResult<InjectDone>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let fut = work(&tx);
    let cancel_tx = tx.clone();
    core.spawn(
        async move {
            let result = fut.await;
            let last = match &result {
                Ok(done) => InjectEvent::Done(done.clone()),
                Err(e) => InjectEvent::Error { problem: problem_of(e) },
            };
            let _ = tx.send(last);
            let _ = done_tx.send(result);
        },
        move || {
            let e = interrupted();
            let _ = cancel_tx.send(InjectEvent::Error { problem: problem_of(&e) });
        },
    );
    if stream {
        return Ok(sse::stream(rx, InjectEvent::name).into_response());
    }
    drop(rx);
    match done_rx.await {
        Ok(Ok(done)) => Ok(Json(done).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(interrupted().into()),
    }
}

/// The answer of an inject that was cancelled by the daemon's stop.
pub fn interrupted() -> crate::service::ApiError {
    crate::service::ApiError::failure("the daemon stopped before the answer was complete")
}

/// Starts an owner's turn in `session` as a daemon task, for the doors that frame its events
/// themselves (OpenAI, A2A): its events, then its result (dropped unsent if the stop cancels it).
pub fn spawn_owner_inject(
    core: &Arc<Core>,
    session: String,
    message: String,
) -> (mpsc::UnboundedReceiver<InjectEvent>, tokio::sync::oneshot::Receiver<ApiResult<InjectDone>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (worker, cancel_tx) = (core.clone(), tx.clone());
    core.spawn(
        async move {
            let r = worker.inject(&session, &message, Source::Owner, &tx).await;
            let _ = done_tx.send(r);
        },
        move || drop(cancel_tx),
    );
    (rx, done_rx)
}
