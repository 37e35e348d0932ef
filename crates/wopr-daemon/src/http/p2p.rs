//! `/identity`, `/peers`, `/access`, `/audit`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use wopr_store::{AuditEntry, Grant, PeerRecord};

use super::Http;
use super::extract::{Body, Params, PeerPath, Segments};
use super::problem::HttpResult;
use super::sessions::{respond_inject, wants_stream};
use crate::service::types::{
    AuditQuery, ClaimRequest, Deleted, GrantRequest, IdentityView, InjectDone, InjectEvent, InviteReply,
    InviteRequest, PeerInjectRequest, Problem, RenameRequest, RotateReply, RotateRequest,
};

/// This installation's public identity.
#[utoipa::path(get, path = "/identity", tag = "identity",
    responses((status = 200, body = IdentityView), (status = 401, body = Problem)))]
pub async fn identity(State(http): State<Http>) -> HttpResult<Json<IdentityView>> {
    Ok(Json(http.core.identity()?))
}

/// Rotates the identity and tells every peer.
#[utoipa::path(post, path = "/identity/rotate", tag = "identity", request_body = RotateRequest,
    responses((status = 200, body = RotateReply), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn rotate(
    State(http): State<Http>,
    Body(req): Body<RotateRequest>,
) -> HttpResult<Json<RotateReply>> {
    Ok(Json(http.core.rotate(&req.reason).await?))
}

/// Whom this installation can reach.
#[utoipa::path(get, path = "/peers", tag = "peers",
    responses((status = 200, body = Vec<PeerRecord>), (status = 401, body = Problem)))]
pub async fn peers(State(http): State<Http>) -> HttpResult<Json<Vec<PeerRecord>>> {
    Ok(Json(http.core.peers()?))
}

/// Renames a peer.
#[utoipa::path(put, path = "/peers/{peer}/name", tag = "peers", params(PeerPath), request_body = RenameRequest,
    responses((status = 200, body = PeerRecord), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn rename(
    State(http): State<Http>,
    Segments(PeerPath { peer }): Segments<PeerPath>,
    Body(req): Body<RenameRequest>,
) -> HttpResult<Json<PeerRecord>> {
    Ok(Json(http.core.rename_peer(&peer, &req.name)?))
}

/// A signed invite to one session, bound to the invitee's key.
#[utoipa::path(post, path = "/peers/invite", tag = "peers", request_body = InviteRequest,
    responses((status = 200, body = InviteReply), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn invite(
    State(http): State<Http>,
    Body(req): Body<InviteRequest>,
) -> HttpResult<Json<InviteReply>> {
    Ok(Json(http.core.invite(req).await?))
}

/// Claims an invite made for this installation's key.
#[utoipa::path(post, path = "/peers/claim", tag = "peers", request_body = ClaimRequest,
    responses((status = 200, body = PeerRecord), (status = 400, body = Problem), (status = 401, body = Problem), (status = 502, body = Problem)))]
pub async fn claim(State(http): State<Http>, Body(req): Body<ClaimRequest>) -> HttpResult<Json<PeerRecord>> {
    Ok(Json(http.core.claim(req).await?))
}

/// Injects into a peer's session; SSE as for local sessions.
#[utoipa::path(post, path = "/peers/{peer}/inject", tag = "peers", params(PeerPath), request_body = PeerInjectRequest,
    responses(
        (status = 200, body = InjectDone, content((InjectDone = "application/json"), (InjectEvent = "text/event-stream"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 502, body = Problem)))]
pub async fn inject(
    State(http): State<Http>,
    Segments(PeerPath { peer }): Segments<PeerPath>,
    headers: HeaderMap,
    Body(req): Body<PeerInjectRequest>,
) -> HttpResult<Response> {
    let core = http.core.clone();
    let work = move |tx: &tokio::sync::mpsc::UnboundedSender<InjectEvent>| {
        let tx = tx.clone();
        async move { core.peer_inject(&peer, req, 0, &tx).await }
    };
    respond_inject(&http.core, wants_stream(&headers), work).await
}

/// Who may reach my sessions.
#[utoipa::path(get, path = "/access", tag = "access",
    responses((status = 200, body = Vec<Grant>), (status = 401, body = Problem)))]
pub async fn access(State(http): State<Http>) -> HttpResult<Json<Vec<Grant>>> {
    Ok(Json(http.core.access()?))
}

/// Grants a peer a capability on a session.
#[utoipa::path(post, path = "/access", tag = "access", request_body = GrantRequest,
    responses((status = 200, body = Grant), (status = 400, body = Problem), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn grant(State(http): State<Http>, Body(req): Body<GrantRequest>) -> HttpResult<Json<Grant>> {
    Ok(Json(http.core.grant_access(req)?))
}

/// Revokes every grant of a peer and closes its connections.
#[utoipa::path(delete, path = "/access/{peer}", tag = "access", params(PeerPath),
    responses((status = 200, body = Deleted), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn revoke(
    State(http): State<Http>,
    Segments(PeerPath { peer }): Segments<PeerPath>,
) -> HttpResult<Json<Deleted>> {
    Ok(Json(http.core.revoke(&peer).await?))
}

/// The audit log of P2P requests, oldest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn audit(
    State(http): State<Http>,
    Params(q): Params<AuditQuery>,
) -> HttpResult<Json<Vec<AuditEntry>>> {
    Ok(Json(http.core.audit(&q)?))
}
