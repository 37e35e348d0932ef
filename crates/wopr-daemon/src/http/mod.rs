//! The daemon's HTTP API on `127.0.0.1:7437`: the routes of the typed core, the OpenAI-compatible door,
//! the web UI, and the OpenAPI document generated from the route types. Every route goes through
//! [`guard::check`] first.

mod a2a;
mod discover;
mod extract;
mod guard;
mod openai;
mod p2p;
mod problem;
mod sessions;
mod sse;
mod system;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http as HttpScheme, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Core;

pub use guard::is_loopback_host;

/// The default address.
pub const DEFAULT_BIND: &str = "127.0.0.1:7437";
/// The largest request body.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler gets.
#[derive(Clone)]
pub struct Http {
    core: Arc<Core>,
    failures: Arc<guard::Failures>,
    openapi: Arc<utoipa::openapi::OpenApi>,
}

impl Http {
    fn token(&self) -> String {
        self.core.credentials().token()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "WOPR daemon API", description = "Sessions, peers, access, audit and the daemon of one WOPR installation. Every route needs `Authorization: Bearer <token>` (the token is in `$WOPR_HOME/daemon-token`); errors are problem details naming the CLI's exit code."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("bearer", SecurityScheme::Http(HttpScheme::new(HttpAuthScheme::Bearer)));
    }
}

/// The router: API routes, the OpenAI door, the UI, with the checks and headers around all of them.
pub fn router(core: Arc<Core>) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(sessions::show, sessions::delete))
        .routes(routes!(sessions::provider))
        .routes(routes!(sessions::inject))
        .routes(routes!(sessions::log))
        .routes(routes!(sessions::conversation))
        .routes(routes!(system::config))
        .routes(routes!(system::config_get, system::config_put, system::config_delete))
        .routes(routes!(p2p::identity))
        .routes(routes!(p2p::rotate))
        .routes(routes!(p2p::peers))
        .routes(routes!(p2p::rename))
        .routes(routes!(p2p::invite))
        .routes(routes!(p2p::claim))
        .routes(routes!(p2p::inject))
        .routes(routes!(p2p::access, p2p::grant))
        .routes(routes!(p2p::revoke))
        .routes(routes!(p2p::audit))
        .routes(routes!(discover::status))
        .routes(routes!(discover::topics, discover::join))
        .routes(routes!(discover::leave))
        .routes(routes!(discover::peers))
        .routes(routes!(discover::profile, discover::set_profile))
        .routes(routes!(discover::generate))
        .routes(routes!(discover::connect))
        .routes(routes!(discover::requests))
        .routes(routes!(discover::decide))
        .routes(routes!(discover::friends))
        .routes(routes!(discover::request))
        .routes(routes!(discover::accept))
        .routes(routes!(discover::remove))
        .routes(routes!(discover::add_rule))
        .routes(routes!(discover::remove_rule))
        .routes(routes!(system::providers))
        .routes(routes!(system::models))
        .routes(routes!(system::pull))
        .routes(routes!(system::doctor))
        .routes(routes!(system::security))
        .routes(routes!(system::status))
        .routes(routes!(system::events))
        .routes(routes!(openai::models))
        .routes(routes!(openai::chat_completions))
        .routes(routes!(a2a::card))
        .routes(routes!(a2a::rpc))
        .split_for_parts();
    let mut doc = doc;
    document_problems(&mut doc);
    let http = Http { core, failures: Arc::default(), openapi: Arc::new(doc) };
    api.route("/openapi.json", get(openapi))
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(http.clone(), guard::check))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(http)
}

/// Every operation can answer with a problem: refused credentials (401), a foreign Host or Origin
/// (403), invalid input (400), something named that does not exist (404), an oversized body (413), a
/// failure (500). They are documented once here, as `application/problem+json`.
fn document_problems(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let common = [
        ("400", "Invalid input"),
        ("401", "Missing or wrong credentials"),
        ("403", "A foreign Host or Origin"),
        ("404", "Not found"),
        ("409", "In conflict with what is stored (a name taken, a key holding a value)"),
        ("500", "The daemon failed"),
        ("502", "A peer or the AI provider failed or refused"),
        ("503", "The daemon is stopping"),
    ];
    for item in doc.paths.paths.values_mut() {
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in ops.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            for (code, what) in common.iter().chain(has_body.then_some(&("413", "The body is over 1 MiB"))) {
                responses.entry(code.to_string()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(*what)
                        .content("application/problem+json", problem())
                        .build()
                        .into()
                });
            }
            for (code, response) in responses.iter_mut() {
                let error = code.parse::<u16>().is_ok_and(|c| c >= 400);
                if let (true, utoipa::openapi::RefOr::T(r)) = (error, response)
                    && let Some(json) = r.content.shift_remove("application/json")
                {
                    r.content.insert("application/problem+json".to_string(), json);
                }
            }
        }
    }
}

async fn openapi(axum::extract::State(http): axum::extract::State<Http>) -> Json<utoipa::openapi::OpenApi> {
    Json((*http.openapi).clone())
}

/// Headers on every answer: a strict content security policy (same origin only, no inline script),
/// no framing, no sniffing, no referrer.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    // Answers hold conversations and keys: no cache keeps them (the UI's files set their own policy).
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Serves the API on `listener` until `stop` resolves.
pub async fn serve(
    core: Arc<Core>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Streamed answers are many small writes: without TCP_NODELAY the last one of a burst waits for
    // the client's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%e, "TCP_NODELAY on an API connection");
        }
    });
    axum::serve(listener, router(core)).with_graceful_shutdown(stop).await
}

/// Where the API listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The address.
    pub addr: SocketAddr,
    /// Set by the owner (`daemon.bind`, `WOPR_DAEMON_BIND`); the default may move to a free port when
    /// another installation on this machine holds it.
    pub explicit: bool,
}

/// The address to listen on: `WOPR_DAEMON_BIND`, else config `daemon.bind`, else [`DEFAULT_BIND`];
/// `off` turns the API off. Only loopback addresses are accepted.
pub fn bind_address(home: &wopr_store::Home) -> Result<Option<Bind>, String> {
    let from_env = std::env::var("WOPR_DAEMON_BIND").ok().filter(|v| !v.trim().is_empty());
    let config = match from_env {
        Some(_) => serde_json::Value::Null,
        None => wopr_store::Config::of(home).load().map_err(|e| e.to_string())?,
    };
    parse_bind(from_env.as_deref(), config.pointer("/daemon/bind"))
}

/// [`bind_address`] from the environment's value and the config's.
fn parse_bind(
    from_env: Option<&str>,
    from_config: Option<&serde_json::Value>,
) -> Result<Option<Bind>, String> {
    let (configured, explicit) = match (from_env, from_config) {
        (Some(v), _) => (v.to_string(), true),
        (None, Some(serde_json::Value::String(s))) => (s.clone(), true),
        (None, Some(other)) => {
            return Err(format!("daemon.bind must be a string like 127.0.0.1:7437, not {other}"));
        }
        (None, None) => (DEFAULT_BIND.to_string(), false),
    };
    if configured.trim() == "off" {
        return Ok(None);
    }
    let addr: SocketAddr = configured
        .trim()
        .parse()
        .map_err(|_| format!("daemon.bind {configured:?} is not an address like 127.0.0.1:7437"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "daemon.bind {addr} is not a loopback address: the API serves this machine only (127.0.0.1 or ::1)"
        ));
    }
    Ok(Some(Bind { addr, explicit }))
}

/// Binds the API's socket. The default port, when another installation on this machine holds it,
/// moves to a free loopback port (logged; `daemon status` and `wopr ui` show it); an address the
/// owner chose must be free.
pub async fn listen(bind: Bind) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(bind.addr).await {
        Err(e) if !bind.explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(addr = %bind.addr, "the API's default port is taken (another WOPR daemon?): using a free port");
            tokio::net::TcpListener::bind(SocketAddr::new(bind.addr.ip(), 0)).await
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_bind;

    #[test]
    fn the_api_binds_loopback_only_and_the_owners_choice_is_explicit() {
        let default = parse_bind(None, None).unwrap().unwrap();
        assert_eq!((default.addr.to_string().as_str(), default.explicit), ("127.0.0.1:7437", false));
        let env = parse_bind(Some("127.0.0.1:9000"), Some(&json!("127.0.0.1:1"))).unwrap().unwrap();
        assert_eq!((env.addr.port(), env.explicit), (9000, true), "the environment wins");
        assert!(parse_bind(None, Some(&json!("[::1]:7437"))).unwrap().unwrap().explicit);
        assert_eq!(parse_bind(None, Some(&json!("off"))).unwrap(), None);
        for bad in ["0.0.0.0:7437", "192.168.1.2:7437", "localhost:7437", "7437"] {
            assert!(parse_bind(Some(bad), None).is_err(), "{bad}");
        }
        assert!(parse_bind(None, Some(&json!(7437))).is_err());
    }
}
