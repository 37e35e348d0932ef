//! What the HTTP API costs, against the same work done on the typed core in-process, in one run:
//! - an inject through `POST /sessions/{name}/inject` (JSON, and SSE read to the end) against
//!   `Core::inject`, with a scripted OpenAI-compatible provider that answers at once: p50 and p99;
//! - `GET /sessions` over 1,000 sessions against `Core::sessions`.
//!
//! `cargo bench -p wopr-daemon --bench api`

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wopr_agent::policy::Source;
use wopr_daemon::AgentBackend;
use wopr_daemon::service::Core;
use wopr_daemon::service::types::CreateSession;
use wopr_p2p::{Node, NodeConfig};
use wopr_store::{Config, ConfigKey, Home};

const INJECTS: usize = 300;
const LISTINGS: usize = 200;

fn percentiles(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    let at = |q: f64| t[((t.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

async fn time<F: std::future::Future<Output = ()>>(n: usize, mut f: impl FnMut() -> F) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        f().await;
        out.push(s.elapsed());
    }
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    home.ensure().unwrap();
    let identity = home.init_identity(false).unwrap();
    let provider =
        test_support::FixtureServer::scripted(|_, _| test_support::Reply::openai_stream("Hello there."))
            .await;
    let set =
        |k: &str, v: serde_json::Value| Config::of(&home).set(&ConfigKey::parse(k).unwrap(), v).unwrap();
    set("providers.openai-compatible.baseUrl", serde_json::json!(format!("{}/v1", provider.url())));
    set("providers.openai-compatible.model", serde_json::json!("scripted"));
    let node = Node::start(identity, home.clone(), NodeConfig::loopback(), AgentBackend::new(home.clone()))
        .await
        .unwrap();
    let core = Core::new(home.clone(), node).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(wopr_daemon::http::serve(core.clone(), listener, std::future::pending()));
    let _ = wopr_providers::http_client();
    let http = reqwest::Client::new();
    let token = core.credentials().token();
    core.create_session(CreateSession {
        name: "b".into(),
        provider: Some("openai-compatible".into()),
        ..Default::default()
    })
    .unwrap();

    let in_process = || {
        let core = core.clone();
        async move {
            let (tx, _rx) = mpsc::unbounded_channel();
            core.inject("b", "hi", Source::Owner, &tx).await.unwrap();
        }
    };
    let over_json = || {
        let req = http
            .post(format!("{base}/sessions/b/inject"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"message": "hi"}));
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
        }
    };
    let over_sse = || {
        let req = http
            .post(format!("{base}/sessions/b/inject"))
            .bearer_auth(&token)
            .header("accept", "text/event-stream")
            .json(&serde_json::json!({"message": "hi"}));
        async move {
            let body = req.send().await.unwrap().text().await.unwrap();
            assert!(body.contains("event: done"), "{body}");
        }
    };
    // Warm up all three, then alternate rounds so drift hits them alike.
    time(20, in_process).await;
    time(20, over_json).await;
    time(20, over_sse).await;
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..INJECTS / 50 {
        a.extend(time(50, in_process).await);
        b.extend(time(50, over_json).await);
        c.extend(time(50, over_sse).await);
    }
    let (a, b, c) = (percentiles(a), percentiles(b), percentiles(c));
    println!("inject, scripted provider ({INJECTS} each):");
    println!("  in-process Core::inject       p50 {:7.3} ms  p99 {:7.3} ms", a.0, a.1);
    println!(
        "  HTTP JSON                     p50 {:7.3} ms  p99 {:7.3} ms  (overhead p50 {:+.3} ms, {:.2}x)",
        b.0,
        b.1,
        b.0 - a.0,
        b.0 / a.0
    );
    println!(
        "  HTTP SSE                      p50 {:7.3} ms  p99 {:7.3} ms  (overhead p50 {:+.3} ms, {:.2}x)",
        c.0,
        c.1,
        c.0 - a.0,
        c.0 / a.0
    );

    for i in 0..1000 {
        core.create_session(CreateSession { name: format!("s{i:04}"), ..Default::default() }).unwrap();
    }
    let in_process = || {
        let core = core.clone();
        async move {
            assert!(core.sessions().unwrap().len() > 1000);
        }
    };
    let over_http = || {
        let req = http.get(format!("{base}/sessions")).bearer_auth(&token);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
        }
    };
    time(10, in_process).await;
    time(10, over_http).await;
    let (a, b) =
        (percentiles(time(LISTINGS, in_process).await), percentiles(time(LISTINGS, over_http).await));
    println!("GET /sessions with 1,001 sessions ({LISTINGS} each):");
    println!("  in-process Core::sessions     p50 {:7.3} ms  p99 {:7.3} ms", a.0, a.1);
    println!("  HTTP                          p50 {:7.3} ms  p99 {:7.3} ms  ({:.2}x)", b.0, b.1, b.0 / a.0);
}
