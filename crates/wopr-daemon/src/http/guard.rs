//! Who may use the API: a request must name a loopback host (DNS rebinding), come from no other
//! origin than the daemon's own (cross-site requests), and carry the bearer token or a web UI session
//! cookie. Wrong tokens are answered more and more slowly.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Http;
use super::problem::problem;
use crate::token::{UI_KEY_HEADER, same_secret};

/// The web UI's session cookie.
pub const COOKIE: &str = "wopr_session";
/// Wrong tokens allowed per minute before answers slow down.
const FREE_FAILURES: u32 = 5;
/// The slowest answer to a wrong token.
const MAX_DELAY: Duration = Duration::from_secs(3);

/// Wrong-token counter over a one-minute window.
pub struct Failures(Mutex<(Instant, u32)>);

impl Default for Failures {
    fn default() -> Self {
        Failures(Mutex::new((Instant::now(), 0)))
    }
}

impl Failures {
    /// Counts a failure; how long to wait before answering it.
    fn delay(&self) -> Duration {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.elapsed() > Duration::from_secs(60) || g.1 == 0 {
            *g = (Instant::now(), 0);
        }
        g.1 += 1;
        let over = g.1.saturating_sub(FREE_FAILURES);
        (Duration::from_millis(100) * over.min(30)).min(MAX_DELAY)
    }
}

/// Whether `host` (a `Host` header or an origin's authority) names this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host
            .rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost" || name == "::1" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// The `Origin` a page served by this daemon sends: `http://<the Host it used>`.
fn same_origin(origin: &str, host: &str) -> bool {
    origin.strip_prefix("http://").is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The checks every request passes before it reaches a route; `/login` and the UI's static files need
/// no credentials (they hold no data), everything else does.
pub async fn check(State(http): State<Http>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !is_loopback_host(host) {
        return problem(
            StatusCode::FORBIDDEN,
            "foreign host",
            "the Host header must name 127.0.0.1, ::1 or localhost",
        )
        .into_response();
    }
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin
        && !same_origin(origin, host)
    {
        return problem(StatusCode::FORBIDDEN, "foreign origin", "requests from other origins are refused")
            .into_response();
    }
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    match credentials(&http, headers, req.method()) {
        Credential::Token | Credential::Cookie => next.run(req).await,
        Credential::Missing(why) => problem(StatusCode::UNAUTHORIZED, "unauthorized", why).into_response(),
        Credential::Wrong => {
            tokio::time::sleep(http.failures.delay()).await;
            problem(StatusCode::UNAUTHORIZED, "unauthorized", "wrong token (see `wopr daemon token`)")
                .into_response()
        }
    }
}

/// Paths anyone on this machine may load: the UI shell and its files, and the login exchange.
fn is_public(method: &Method, path: &str) -> bool {
    method == Method::GET && (matches!(path, "/" | "/login" | "/favicon.ico") || path.starts_with("/ui/"))
}

enum Credential {
    Token,
    Cookie,
    Missing(&'static str),
    Wrong,
}

fn credentials(http: &Http, headers: &HeaderMap, method: &Method) -> Credential {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let given = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        return match same_secret(given.trim(), &http.token()) {
            true => Credential::Token,
            false => Credential::Wrong,
        };
    }
    let Some(session) = cookie(headers, COOKIE) else {
        return Credential::Missing(
            "send `Authorization: Bearer <token>` (the token is in $WOPR_HOME/daemon-token)",
        );
    };
    // The cookie reaches any process on 127.0.0.1 the browser visits (cookies are not scoped by
    // port); only the UI's page holds the key.
    let key = headers.get(UI_KEY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !http.core.credentials().logins.is_session(&session, key) {
        return Credential::Missing("log in again: run `wopr ui` and open the link it prints");
    }
    // A cookie rides along on any request the browser makes; a change must also show it comes from
    // the UI itself (same-origin fetch), not a form or link elsewhere.
    let safe = method == Method::GET || method == Method::HEAD;
    let from_ui = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin")
        || headers.contains_key(header::ORIGIN);
    match safe || from_ui {
        true => Credential::Cookie,
        false => Credential::Missing("a change with the UI's cookie must come from the UI"),
    }
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in ["127.0.0.1:7437", "localhost:7437", "LOCALHOST", "[::1]:7437", "127.0.0.2", "localhost"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7437",
            "127.0.0.1.evil.example",
            "",
            "[::2]:7437",
            "0.0.0.0:7437",
            "localhost.evil:80",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn an_origin_must_be_the_daemons_own() {
        assert!(same_origin("http://127.0.0.1:7437", "127.0.0.1:7437"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:7437"));
        assert!(!same_origin("http://127.0.0.1:9999", "127.0.0.1:7437"));
        assert!(!same_origin("null", "127.0.0.1:7437"));
    }

    #[test]
    fn wrong_tokens_slow_down_after_a_few() {
        let f = Failures::default();
        let delays: Vec<_> = (0..8).map(|_| f.delay()).collect();
        assert!(delays[..5].iter().all(|d| d.is_zero()));
        assert!(delays[5] > Duration::ZERO && delays[7] > delays[5]);
    }
}
