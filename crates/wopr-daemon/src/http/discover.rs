//! `/discover` and `/friends`: topics, profiles, connect-requests, the friend protocol. Discovery
//! events stream on `/events` (`discovery`).

use axum::Json;
use axum::extract::State;
use wopr_p2p::FriendOutcome;
use wopr_p2p::discovery::{DiscoverStatus, PeerView, PendingView, TopicStatus};
use wopr_store::Friend;

use super::Http;
use super::extract::{Body, Params, PeerPath, Segments};
use super::problem::HttpResult;
use crate::service::discover as d;
use crate::service::types::{
    ConnectReply, ConnectRequest, DecideRequest, Decided, FriendAcceptReply, FriendAcceptRequest, FriendList,
    FriendTarget, GenerateProfile, JoinRequest, PeersQuery, ProfileQuery, ProfileSet, RuleChange,
    RuleRequest, SuggestedProfile, TopicChange,
};

/// The path of one topic.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TopicPath {
    /// The topic's name.
    #[param(min_length = 1, max_length = 128)]
    pub topic: String,
}

/// The path of one auto-accept rule.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RulePath {
    /// The rule, as `GET /friends` lists it (URL-encoded: `a%7Cb` for `a|b`).
    #[param(min_length = 1, max_length = 1024)]
    pub pattern: String,
}

/// Topics, bootstrap sources and their findings, the spam layers' settings.
#[utoipa::path(get, path = "/discover/status", tag = "discover", responses((status = 200, body = DiscoverStatus)))]
pub async fn status(State(http): State<Http>) -> HttpResult<Json<DiscoverStatus>> {
    Ok(Json(http.core.discover_status().await?))
}

/// The joined topics.
#[utoipa::path(get, path = "/discover/topics", tag = "discover", responses((status = 200, body = Vec<TopicStatus>)))]
pub async fn topics(State(http): State<Http>) -> HttpResult<Json<Vec<TopicStatus>>> {
    Ok(Json(http.core.discover_topics().await?))
}

/// Joins a topic: the profile is announced there, and peers' profiles arrive (see `/events`).
#[utoipa::path(post, path = "/discover/topics", tag = "discover", request_body = JoinRequest,
    responses((status = 200, body = TopicChange)))]
pub async fn join(State(http): State<Http>, Body(req): Body<JoinRequest>) -> HttpResult<Json<TopicChange>> {
    Ok(Json(http.core.discover_join(&req.topic).await?))
}

/// Leaves a topic, withdrawing the profile there.
#[utoipa::path(delete, path = "/discover/topics/{topic}", tag = "discover", params(TopicPath),
    responses((status = 200, body = TopicChange)))]
pub async fn leave(
    State(http): State<Http>,
    Segments(TopicPath { topic }): Segments<TopicPath>,
) -> HttpResult<Json<TopicChange>> {
    Ok(Json(http.core.discover_leave(&topic).await?))
}

/// The peers online now in the joined topics (signed profiles, verified).
#[utoipa::path(get, path = "/discover/peers", tag = "discover", params(PeersQuery),
    responses((status = 200, body = Vec<PeerView>)))]
pub async fn peers(
    State(http): State<Http>,
    Params(q): Params<PeersQuery>,
) -> HttpResult<Json<Vec<PeerView>>> {
    Ok(Json(http.core.discover_peers(&q).await?))
}

/// This node's profile, as announced.
#[utoipa::path(get, path = "/discover/profile", tag = "discover", params(ProfileQuery),
    responses((status = 200, body = PeerView)))]
pub async fn profile(
    State(http): State<Http>,
    Params(q): Params<ProfileQuery>,
) -> HttpResult<Json<PeerView>> {
    Ok(Json(http.core.discover_profile(q.topic.as_deref()).await?))
}

/// Sets the profile's content (a JSON object, at most what fits one announce) and announces it.
#[utoipa::path(put, path = "/discover/profile", tag = "discover", request_body = Object,
    responses((status = 200, body = ProfileSet)))]
pub async fn set_profile(
    State(http): State<Http>,
    Body(content): Body<serde_json::Value>,
) -> HttpResult<Json<ProfileSet>> {
    Ok(Json(http.core.discover_set_profile(&content).await?))
}

/// Asks a session's AI to write the profile's content; nothing is published until it is `PUT`.
#[utoipa::path(post, path = "/discover/profile/generate", tag = "discover", request_body = GenerateProfile,
    responses((status = 200, body = SuggestedProfile)))]
pub async fn generate(
    State(http): State<Http>,
    Body(req): Body<GenerateProfile>,
) -> HttpResult<Json<SuggestedProfile>> {
    Ok(Json(http.core.discover_generate(req.session.as_deref().unwrap_or("main")).await?))
}

/// Asks a peer seen in a topic for mutual trust (a connect-request over a direct connection).
#[utoipa::path(post, path = "/discover/connect", tag = "discover", request_body = ConnectRequest,
    responses((status = 200, body = ConnectReply)))]
pub async fn connect(
    State(http): State<Http>,
    Body(req): Body<ConnectRequest>,
) -> HttpResult<Json<ConnectReply>> {
    Ok(Json(http.core.discover_connect(&req).await?))
}

/// Connect-requests waiting for the owner (`discover.accept = ask`).
#[utoipa::path(get, path = "/discover/requests", tag = "discover", responses((status = 200, body = Vec<PendingView>)))]
pub async fn requests(State(http): State<Http>) -> HttpResult<Json<Vec<PendingView>>> {
    Ok(Json(http.core.connect_requests().await?))
}

/// Accepts or declines a waiting connect-request.
#[utoipa::path(post, path = "/discover/requests/{peer}", tag = "discover", params(PeerPath), request_body = DecideRequest,
    responses((status = 200, body = Decided)))]
pub async fn decide(
    State(http): State<Http>,
    Segments(PeerPath { peer }): Segments<PeerPath>,
    Body(req): Body<DecideRequest>,
) -> HttpResult<Json<Decided>> {
    Ok(Json(http.core.decide_connect(&peer, req.accept).await?))
}

/// Friends, requests waiting either way, and the auto-accept rules.
#[utoipa::path(get, path = "/friends", tag = "friends", responses((status = 200, body = FriendList)))]
pub async fn friends(State(http): State<Http>) -> HttpResult<Json<FriendList>> {
    Ok(Json(http.core.friends()?))
}

/// Sends a signed friend request.
#[utoipa::path(post, path = "/friends/requests", tag = "friends", request_body = FriendTarget,
    responses((status = 200, body = FriendOutcome)))]
pub async fn request(
    State(http): State<Http>,
    Body(req): Body<FriendTarget>,
) -> HttpResult<Json<FriendOutcome>> {
    Ok(Json(http.core.friend_request(&req.target).await?))
}

/// Accepts a waiting request, or takes a pasted request or accept line.
#[utoipa::path(post, path = "/friends/accept", tag = "friends", request_body = FriendAcceptRequest,
    responses((status = 200, body = FriendAcceptReply)))]
pub async fn accept(
    State(http): State<Http>,
    Body(req): Body<FriendAcceptRequest>,
) -> HttpResult<Json<FriendAcceptReply>> {
    Ok(Json(http.core.friend_accept(&req.query).await?))
}

/// Ends a friendship and revokes the friend's grant.
#[utoipa::path(delete, path = "/friends/{peer}", tag = "friends", params(PeerPath),
    responses((status = 200, body = Friend)))]
pub async fn remove(
    State(http): State<Http>,
    Segments(PeerPath { peer }): Segments<PeerPath>,
) -> HttpResult<Json<Friend>> {
    Ok(Json(http.core.friend_remove(&peer).await?))
}

/// Adds an auto-accept rule (auto-accepted friends start with `message` only).
#[utoipa::path(post, path = "/friends/auto-accept", tag = "friends", request_body = RuleRequest,
    responses((status = 200, body = RuleChange)))]
pub async fn add_rule(
    State(http): State<Http>,
    Body(req): Body<RuleRequest>,
) -> HttpResult<Json<RuleChange>> {
    Ok(Json(d::add_rule(http.core.home(), &req.pattern)?))
}

/// Removes an auto-accept rule.
#[utoipa::path(delete, path = "/friends/auto-accept/{pattern}", tag = "friends", params(RulePath),
    responses((status = 200, body = RuleChange)))]
pub async fn remove_rule(
    State(http): State<Http>,
    Segments(RulePath { pattern }): Segments<RulePath>,
) -> HttpResult<Json<RuleChange>> {
    Ok(Json(d::remove_rule(http.core.home(), &pattern)?))
}
