//! The daemon's HTTP API against a real daemon: credentials on every route, the loopback Host and
//! same-origin rules, the seeds' config command, SSE inject on the local model, the OpenAI door, the
//! web UI's one-time login, and a stop that a streaming answer cannot hold up.

mod common;

use std::time::Duration;

use common::{StopDaemon, TestHome, mode, start_api_daemon, stderr, stdout};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

fn start(h: &TestHome) -> (StopDaemon<'_>, Api) {
    let d = start_api_daemon(h);
    assert_eq!(mode(&h.file("daemon-token")), 0o600, "daemon-token must be 0600");
    (d.guard, Api { base: d.api, token: d.token, client: client(reqwest::redirect::Policy::default()) })
}

/// A plain-HTTP client (the provider's helper installs the TLS crypto provider reqwest needs to build).
fn client(redirects: reqwest::redirect::Policy) -> reqwest::Client {
    let _ = wopr_providers::http_client();
    reqwest::Client::builder().redirect(redirects).build().unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

impl Api {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }
}

#[test]
fn every_route_refuses_a_missing_or_wrong_token_a_foreign_host_and_a_foreign_origin() {
    let h = TestHome::new();
    let (_d, api) = start(&h);
    rt().block_on(async {
        let doc: Value =
            api.req(reqwest::Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 20, "only {} paths", paths.len());
        let mut checked = 0;
        let extra = [("/openapi.json".to_string(), json!({"get": {}}))];
        let all = paths.iter().map(|(p, i)| (p.clone(), i.clone())).chain(extra);
        for (path, item) in all {
            let concrete = path
                .replace("{name}", "s")
                .replace("{peer}", "p")
                .replace("{key}", "a.b")
                .replace("{topic}", "t")
                .replace("{pattern}", "x");
            for method in item.as_object().unwrap().keys() {
                let m: reqwest::Method = method.to_uppercase().parse().unwrap();
                let url = format!("{}{concrete}", api.base);
                let no_token = api.client.request(m.clone(), &url).json(&json!({})).send().await.unwrap();
                assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED, "{method} {path} without a token");
                let problem: Value = no_token.json().await.unwrap();
                assert_eq!(problem["exitCode"], 7, "{problem}");
                // One layer checks every route; wrong tokens past the first few are answered slowly, so
                // a handful of routes show it.
                if checked < 4 {
                    let wrong =
                        api.client.request(m.clone(), &url).bearer_auth("0".repeat(64)).send().await.unwrap();
                    assert_eq!(
                        wrong.status(),
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} with a wrong token"
                    );
                }
                let host = api
                    .client
                    .request(m.clone(), &url)
                    .bearer_auth(&api.token)
                    .header("Host", "evil.example")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(host.status(), StatusCode::FORBIDDEN, "{method} {path} with a foreign Host");
                let origin = api
                    .client
                    .request(m.clone(), &url)
                    .bearer_auth(&api.token)
                    .header("Origin", "http://evil.example")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(origin.status(), StatusCode::FORBIDDEN, "{method} {path} with a foreign Origin");
                assert!(origin.headers().get("access-control-allow-origin").is_none(), "no CORS header");
                checked += 1;
            }
        }
        assert!(checked >= 30, "checked {checked} routes");
        // A body over the limit is refused before any route reads it.
        let big = "x".repeat(2 << 20);
        let r = api
            .req(reqwest::Method::POST, "/sessions")
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    });
}

#[test]
fn the_cli_and_the_api_see_the_same_state() {
    let h = TestHome::new();
    let (_d, api) = start(&h);
    let out = h.wopr().args(["session", "create", "from-cli", "You are terse."]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    rt().block_on(async {
        let list: Vec<Value> =
            api.req(reqwest::Method::GET, "/sessions").send().await.unwrap().json().await.unwrap();
        assert!(list.iter().any(|s| s["name"] == "from-cli"), "{list:?}");
        let r = api
            .req(reqwest::Method::POST, "/sessions")
            .json(&json!({"name": "from-api", "context": "Be kind."}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = api
            .req(reqwest::Method::POST, "/sessions")
            .json(&json!({"name": "../etc"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a hostile name is refused");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["exitCode"], 3);
        // The seeds' command, plus the header.
        let r = api
            .req(reqwest::Method::PUT, "/config/plugins.data.router")
            .json(&json!({"routes": [{"sourceSession": "support", "targetSessions": ["billing"]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = api
            .req(reqwest::Method::POST, "/sessions/from-api/log")
            .json(&json!({"message": "kept without an answer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = api.req(reqwest::Method::GET, "/sessions/nope").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    });
    let out = h.wopr().args(["config", "get", "plugins.data.router"]).output().unwrap();
    assert!(stdout(&out).contains("billing"), "{}", stdout(&out));
    let out = h.wopr().args(["session", "show", "from-api", "--json"]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["context"].as_str().map(str::trim), Some("Be kind."));
    assert_eq!(shown["messages"][0]["content"], "kept without an answer");
    let out = h.wopr().args(["session", "delete", "from-cli", "--yes"]).output().unwrap();
    assert!(out.status.success());
    rt().block_on(async {
        let list: Vec<Value> =
            api.req(reqwest::Method::GET, "/sessions").send().await.unwrap().json().await.unwrap();
        assert!(!list.iter().any(|s| s["name"] == "from-cli"), "deleted through the CLI: {list:?}");
    });
}

/// The `(event, data)` pairs of an SSE body.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).unwrap_or(Value::String(data))))
        })
        .collect()
}

#[test]
fn an_sse_inject_streams_deltas_then_done_and_the_openai_door_answers_from_the_session() {
    let h = TestHome::new();
    let (_d, api) = start(&h);
    let out = h.wopr().args(["session", "create", "s", "You are terse."]).output().unwrap();
    assert!(out.status.success());
    rt().block_on(async {
        // The bus sees the turn too.
        let mut bus = api.req(reqwest::Method::GET, "/events").send().await.unwrap();
        assert_eq!(bus.status(), StatusCode::OK);
        let r = api
            .req(reqwest::Method::POST, "/sessions/s/inject")
            .header("accept", "text/event-stream")
            .json(&json!({"message": "Say hello."}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let events = sse_events(&r.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        assert!(names[..names.len() - 1].iter().all(|n| *n == "delta" || n.starts_with("tool")), "{names:?}");
        assert!(names.iter().filter(|n| **n == "delta").count() >= 2, "{names:?}");
        let streamed: String = events.iter().filter(|(n, _)| n == "delta").map(|(_, d)| d["text"].as_str().unwrap()).collect();
        assert_eq!(events.last().unwrap().1["text"].as_str().unwrap(), streamed, "done carries the streamed text");
        let mut seen = String::new();
        while !seen.contains("event: injectDone") {
            let chunk = tokio::time::timeout(Duration::from_secs(30), bus.chunk()).await.unwrap().unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let bus_events: Vec<String> = sse_events(&seen).into_iter().map(|(n, _)| n).collect();
        let started = bus_events.iter().position(|n| n == "injectStarted").expect("injectStarted on the bus");
        let delta = bus_events.iter().position(|n| n == "injectDelta").expect("injectDelta on the bus");
        assert!(started < delta, "{bus_events:?}");
        drop(bus);

        let models: Value = api.req(reqwest::Method::GET, "/v1/models").send().await.unwrap().json().await.unwrap();
        assert_eq!(models["data"][0]["id"], "s");
        let r = api
            .req(reqwest::Method::POST, "/v1/chat/completions")
            .json(&json!({"model": "s", "messages": [{"role": "user", "content": "Say hi."}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["object"], "chat.completion");
        assert!(!c["choices"][0]["message"]["content"].as_str().unwrap().trim().is_empty(), "{c}");
        let r = api
            .req(reqwest::Method::POST, "/v1/chat/completions")
            .json(&json!({"model": "s", "stream": true, "messages": [{"role": "user", "content": "Say hi again."}]}))
            .send()
            .await
            .unwrap();
        let chunks = sse_events(&r.text().await.unwrap());
        assert_eq!(chunks.last().unwrap().1, Value::String("[DONE]".into()));
        assert!(chunks.iter().any(|(_, c)| c["choices"][0]["finish_reason"] == "stop"), "{chunks:?}");
        let r = api
            .req(reqwest::Method::POST, "/v1/chat/completions")
            .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    });
    let out = h.wopr().args(["session", "show", "s", "--json"]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> =
        shown["messages"].as_array().unwrap().iter().filter_map(|m| m["content"].as_str()).collect();
    assert!(texts.contains(&"Say hello.") && texts.contains(&"Say hi."), "{texts:?}");
}

#[test]
fn the_web_ui_logs_in_once_with_a_cookie_and_a_page_elsewhere_cannot_drive_the_api() {
    let h = TestHome::new();
    let (_d, api) = start(&h);
    rt().block_on(async {
        let page = api.client.get(format!("{}/", api.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(page.text().await.unwrap().contains("<html"));
    });
    let out = h.wopr().arg("ui").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let link = stdout(&out).trim().to_string();
    assert!(link.starts_with(&format!("{}/login?code=", api.base)), "{link}");
    rt().block_on(async {
        let no_redirect = client(reqwest::redirect::Policy::none());
        let r = no_redirect.get(&link).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let key =
            location.strip_prefix("/#key=").expect("the code leaves; the page's key rides in the fragment");
        let key = key.to_string();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        let session = cookie.split(';').next().unwrap().to_string();
        let again = no_redirect.get(&link).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "a login link works once");

        let with_cookie = |m: reqwest::Method, p: &str| {
            no_redirect
                .request(m, format!("{}{p}", api.base))
                .header("cookie", &session)
                .header("x-wopr-ui-key", &key)
        };
        assert_eq!(
            with_cookie(reqwest::Method::GET, "/sessions").send().await.unwrap().status(),
            StatusCode::OK
        );
        // Cookies are not scoped by port: another process on 127.0.0.1 the browser visits receives this
        // one. Without the key only the UI's page holds, it opens nothing, reads included.
        for (m, p) in [
            (reqwest::Method::GET, "/sessions"),
            (reqwest::Method::GET, "/config"),
            (reqwest::Method::POST, "/sessions"),
        ] {
            let r = no_redirect
                .request(m.clone(), format!("{}{p}", api.base))
                .header("cookie", &session)
                .header("origin", &api.base)
                .json(&json!({"name": "stolen"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {p} with the cookie and no key");
        }
        // The UI's own fetch: same origin.
        let r = with_cookie(reqwest::Method::POST, "/sessions")
            .header("origin", &api.base)
            .json(&json!({"name": "from-ui"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        // A form or fetch from another site: its Origin is refused, and a cookie does not make a change
        // without the UI's own Origin.
        let r = with_cookie(reqwest::Method::POST, "/sessions")
            .header("origin", "http://evil.example")
            .json(&json!({"name": "evil"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = with_cookie(reqwest::Method::POST, "/sessions")
            .json(&json!({"name": "evil2"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = with_cookie(reqwest::Method::GET, "/sessions")
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "a cross-origin read is refused too");
        let list: Vec<Value> =
            api.req(reqwest::Method::GET, "/sessions").send().await.unwrap().json().await.unwrap();
        let names: Vec<&str> = list.iter().filter_map(|s| s["name"].as_str()).collect();
        assert!(!names.iter().any(|n| ["evil", "evil2", "stolen"].contains(n)), "{names:?}");
    });
    // A rotated token ends the old token and every UI login.
    let out = h.wopr().args(["daemon", "token", "--rotate"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let new = stdout(&out).trim().to_string();
    assert_ne!(new, api.token);
    assert_eq!(std::fs::read_to_string(h.file("daemon-token")).unwrap().trim(), new);
    rt().block_on(async {
        assert_eq!(
            api.req(reqwest::Method::GET, "/sessions").send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        let r = api.client.get(format!("{}/sessions", api.base)).bearer_auth(&new).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    });
}

#[test]
fn daemon_stop_is_not_held_up_by_a_streaming_inject() {
    let h = TestHome::new();
    let (_d, api) = start(&h);
    let out = h.wopr().args(["session", "create", "s", "You write long stories."]).output().unwrap();
    assert!(out.status.success());
    let stream = std::thread::spawn(move || {
        rt().block_on(async {
            let r = api
                .req(reqwest::Method::POST, "/sessions/s/inject")
                .header("accept", "text/event-stream")
                .json(&json!({"message": "Write a very long story about a lighthouse keeper, at least 2000 words."}))
                .send()
                .await
                .unwrap();
            r.text().await.unwrap_or_default()
        })
    });
    // Wait until the turn is running: its first message is stored when it starts.
    for _ in 0..200 {
        let out = h.wopr().args(["session", "show", "s", "--json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = h.wopr().args(["daemon", "stop"]).output().unwrap();
    assert!(out.status.success(), "daemon stop failed (its deadline is 15 s): {}", stderr(&out));
    let body = stream.join().unwrap();
    let events = sse_events(&body);
    let last = events.last().map(|(n, _)| n.as_str());
    assert!(
        matches!(last, Some("done") | Some("error")),
        "the stream ends with done or an error: {events:?}"
    );
}

#[test]
fn the_event_stream_carries_a_peers_connection_and_its_audit_record() {
    let (ha, hb) = (TestHome::new(), TestHome::new());
    let (_a, api) = start(&ha);
    let _b = start_api_daemon(&hb);
    let out = ha.wopr().args(["session", "create", "s", "You are terse."]).output().unwrap();
    assert!(out.status.success());
    let id: Value =
        serde_json::from_slice(&hb.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    let key = id["publicKey"].as_str().unwrap();
    let out = ha.wopr().args(["invite", key, "s"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    rt().block_on(async {
        let mut bus = api.req(reqwest::Method::GET, "/events").send().await.unwrap();
        let out = hb.wopr().args(["invite", "claim", &token]).output().unwrap();
        assert!(out.status.success(), "claim: {}", stderr(&out));
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !(seen.contains("event: peerConnected") && seen.contains("\"action\":\"claim\"")) {
            let chunk = tokio::time::timeout_at(deadline, bus.chunk()).await;
            let chunk =
                chunk.unwrap_or_else(|_| panic!("30 s and not both events: {seen}")).unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let events = sse_events(&seen);
        let connected = events.iter().find(|(n, _)| n == "peerConnected").unwrap();
        assert_eq!(connected.1["peer"], key);
        let audit = events.iter().find(|(n, d)| n == "audit" && d["entry"]["action"] == "claim").unwrap();
        assert_eq!(audit.1["entry"]["decision"], "accepted", "{:?}", audit.1);
    });
}

/// Sets discovery to what a loopback test needs: no LAN, no DHT, and `bootstrap` if given.
fn quiet_discovery(h: &TestHome, bootstrap: Option<&str>) {
    for (key, value) in [("discover.mdns", "false"), ("discover.dht", "false")] {
        assert!(h.wopr().args(["config", "set", key, value]).output().unwrap().status.success());
    }
    if let Some(ticket) = bootstrap {
        let list = serde_json::to_string(&[ticket]).unwrap();
        assert!(
            h.wopr().args(["config", "set", "discover.bootstrap", &list]).output().unwrap().status.success()
        );
    }
}

#[test]
fn discovery_and_friends_work_over_the_api_as_through_the_cli() {
    let (ha, hb) = (TestHome::new(), TestHome::new());
    quiet_discovery(&ha, None);
    let (_a, a) = start(&ha);
    let status: Value =
        serde_json::from_slice(&ha.wopr().args(["daemon", "status", "--json"]).output().unwrap().stdout)
            .unwrap();
    quiet_discovery(&hb, Some(status["ticket"].as_str().unwrap()));
    let d = start_api_daemon(&hb);
    let b = Api { base: d.api, token: d.token, client: client(reqwest::redirect::Policy::default()) };
    let id = |h: &TestHome| -> Value {
        serde_json::from_slice(&h.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap()
    };
    let (ida, idb) = (id(&ha), id(&hb));
    let short_a = ida["shortId"].as_str().unwrap().to_string();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let topic = format!("api-{}-{nanos}", std::process::id());
    rt().block_on(async {
        let send = |api: &Api, m: reqwest::Method, path: &str, body: Option<Value>| {
            let r = api.req(m, path);
            let r = match body {
                Some(b) => r.json(&b),
                None => r,
            };
            async move {
                let res = r.send().await.unwrap();
                (res.status(), res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        use reqwest::Method as M;
        // The profile is a JSON object; anything else is refused and nothing is stored.
        let (s, p) = send(&a, M::PUT, "/discover/profile", Some(json!("just text"))).await;
        assert_eq!((s, p["exitCode"].clone()), (StatusCode::BAD_REQUEST, json!(3)), "{p}");
        let (s, set) = send(&a, M::PUT, "/discover/profile", Some(json!({"name": "Alice"}))).await;
        assert_eq!(s, StatusCode::OK, "{set}");
        assert_eq!(set["announced"], true, "{set}");
        let config = ha.wopr().args(["config", "get", "discover.profile", "--json"]).output().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&config.stdout).unwrap(), json!({"name": "Alice"}));

        for api in [&a, &b] {
            let (s, joined) = send(api, M::POST, "/discover/topics", Some(json!({"topic": topic}))).await;
            assert_eq!((s, joined["changed"].clone()), (StatusCode::OK, json!(true)), "{joined}");
        }
        let (_, again) = send(&b, M::POST, "/discover/topics", Some(json!({"topic": topic}))).await;
        assert_eq!(again["changed"], false, "joining twice changes nothing: {again}");
        let (_, topics) = send(&b, M::GET, "/discover/topics", None).await;
        assert_eq!(topics[0]["name"], topic.as_str(), "{topics}");
        // What the API lists, the CLI lists: one core.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let peers = loop {
            let (_, peers) = send(&b, M::GET, &format!("/discover/peers?topic={topic}"), None).await;
            if peers.as_array().is_some_and(|p| p.iter().any(|p| p["id"] == short_a.as_str())) {
                break peers;
            }
            assert!(tokio::time::Instant::now() < deadline, "B never listed A: {peers}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(peers[0]["content"], json!({"name": "Alice"}), "{peers}");
        assert_eq!(peers[0]["verdict"], "unjudged", "{peers}");
        let cli = hb.wopr().args(["discover", "peers", &topic, "--json"]).output().unwrap();
        let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
        assert_eq!(cli[0]["publicKey"], peers[0]["publicKey"]);
        let (_, only) = send(&b, M::GET, &format!("/discover/peers?only={short_a}"), None).await;
        assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
        let (_, none) = send(&b, M::GET, "/discover/peers?only=00000000", None).await;
        assert_eq!(none, json!([]));
        let (_, status) = send(&b, M::GET, "/discover/status", None).await;
        assert_eq!(status["sources"]["staticNodes"]["enabled"], true, "{status}");
        assert_eq!(status["sources"]["dht"]["enabled"], false, "{status}");

        // A connect-request ends in a grant on A and a peer on B; nobody by that name: 404 (exit code 3).
        let (s, p) = send(&b, M::POST, "/discover/connect", Some(json!({"peer": "nobody"}))).await;
        assert_eq!((s, p["exitCode"].clone()), (StatusCode::NOT_FOUND, json!(3)), "{p}");
        let body = json!({"peer": short_a, "message": "hello from the API"});
        let (s, c) = send(&b, M::POST, "/discover/connect", Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["accepted"], true, "{c}");
        assert_eq!(c["peer"]["publicKey"], ida["publicKey"], "{c}");
        let (_, access) = send(&a, M::GET, "/access", None).await;
        let grant = access.as_array().unwrap().iter().find(|g| g["peerKey"] == idb["publicKey"]).cloned();
        assert_eq!(grant.expect("A granted B")["capabilities"], json!(["message"]));
        let (s, p) = send(&a, M::POST, "/discover/requests/00000000", Some(json!({"accept": true}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "no request waits: {p}");

        // Friends: A accepts anyone; B asks by A's short id; the friend gets its own session.
        let (_, rule) = send(&a, M::POST, "/friends/auto-accept", Some(json!({"pattern": "*"}))).await;
        assert_eq!(rule, json!({"rule": "*", "changed": true}));
        let (s, r) = send(&b, M::POST, "/friends/requests", Some(json!({"target": short_a}))).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["status"], "accepted", "{r}");
        let (_, fa) = send(&a, M::GET, "/friends", None).await;
        assert_eq!(fa["autoAccept"], json!(["*"]), "{fa}");
        let friend = fa["friends"].as_array().unwrap().iter().find(|f| f["publicKey"] == idb["publicKey"]);
        let session =
            friend.unwrap_or_else(|| panic!("A lacks B: {fa}"))["session"].as_str().unwrap().to_string();
        assert!(session.starts_with("friend:p2p:"), "{session}");
        let cli = ha.wopr().args(["friend", "list", "--json"]).output().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&cli.stdout).unwrap(), fa, "the CLI and the API disagree");
        let name = friend.unwrap()["name"].as_str().unwrap().to_string();
        let (s, gone) = send(&a, M::DELETE, &format!("/friends/{name}"), None).await;
        assert_eq!((s, gone["publicKey"].clone()), (StatusCode::OK, idb["publicKey"].clone()), "{gone}");
        let (s, p) = send(&a, M::DELETE, &format!("/friends/{name}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
        let (s, _) = send(&a, M::DELETE, "/friends/auto-accept/%2A", None).await;
        assert_eq!(s, StatusCode::OK);
        let (_, fa) = send(&a, M::GET, "/friends", None).await;
        assert_eq!(fa["autoAccept"], json!([]), "{fa}");

        // Leaving withdraws; leaving again is "not found".
        let (s, left) = send(&a, M::DELETE, &format!("/discover/topics/{topic}"), None).await;
        assert_eq!((s, left["changed"].clone()), (StatusCode::OK, json!(true)), "{left}");
        let (s, p) = send(&a, M::DELETE, &format!("/discover/topics/{topic}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    });
}
