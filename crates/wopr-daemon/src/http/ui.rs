//! The web UI: three files compiled into the binary (no CDN, no build step), and the login that turns
//! a `wopr ui` one-time code into an HttpOnly, SameSite=Strict cookie plus a key the page keeps in its
//! own storage (see [`crate::token::UiSession`]). The code leaves the address bar at once (the answer
//! is a redirect to `/`, the key in its fragment, which the page clears), and the UI never takes an API
//! address from a URL: it talks to the origin it was loaded from.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::Http;
use super::guard::COOKIE;
use crate::token::UI_SESSION_TTL;

const INDEX: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/style.css");

/// `/`, `/ui/*`, `/login`, and an empty `/favicon.ico` (browsers ask for it).
pub fn routes() -> Router<Http> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/ui/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/ui/style.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/login", get(login))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    code: String,
}

async fn login(State(http): State<Http>, Query(q): Query<LoginQuery>) -> Response {
    let Some(session) = http.core.credentials().logins.redeem(&q.code) else {
        let page = "<!doctype html><html lang=en><meta charset=utf-8><title>WOPR</title>\
            <p>This login link was used already or has expired. Run <code>wopr ui</code> for a new one.</p></html>";
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        session.cookie,
        UI_SESSION_TTL.as_secs()
    );
    // The key rides in the fragment, which no server and no Referer sees; the page moves it to its
    // own storage and clears the address bar at once.
    let location = format!("/#key={}", session.key);
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
