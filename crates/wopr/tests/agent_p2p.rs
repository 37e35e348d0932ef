//! The agent's P2P tools in the owner's own turn, end to end: a scripted OpenAI-compatible model calls
//! `p2p_grant_access`, `friend_list`, `discover_join` and `discover_profile_set`; each does what the
//! matching command does (the grant lands in access.json, the daemon joins the topic, the profile is
//! stored and announced), bad arguments change nothing, and every change is in the audit log.

mod common;

use std::time::Duration;

use common::{StopDaemon, TestHome, stderr, stdout};
use serde_json::{Value, json};
use test_support::{FixtureServer, RecordedRequest, Reply};

fn wopr(h: &TestHome) -> assert_cmd::Command {
    let mut c = h.wopr();
    c.env("WOPR_P2P_RELAY", "disabled")
        .env("WOPR_P2P_BIND", "127.0.0.1:0")
        .env("WOPR_DISCOVER_MDNS", "off")
        .timeout(Duration::from_secs(120));
    c
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// An OpenAI chat-completions stream of one `delta`, ending with `finish`.
fn openai_stream(delta: Value, finish: &str) -> Reply {
    let chunk = |delta: &Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-fixture", "object": "chat.completion.chunk", "created": 1, "model": "fixture",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(&delta, None),
        chunk(&json!({}), Some(finish))
    );
    Reply::new(200).header("content-type", "text/event-stream").body(body).in_chunks(200)
}

/// One model step calling `calls` (name, arguments), ids `call_0`, `call_1`...
fn tool_calls(calls: &[(&str, Value)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"index": i, "id": format!("call_{i}"), "type": "function",
                   "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    openai_stream(json!({"role": "assistant", "content": null, "tool_calls": calls}), "tool_calls")
}

fn text(answer: &str) -> Reply {
    openai_stream(json!({"role": "assistant", "content": answer}), "stop")
}

/// The result the model was sent for the call `id`.
fn result_of(request: &RecordedRequest, id: &str) -> String {
    request.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
        .and_then(|m| m["content"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("no result for {id}"))
}

fn offered(request: &RecordedRequest) -> Vec<String> {
    request.json()["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn public_key(h: &TestHome) -> String {
    json_of(&wopr(h).args(["id", "--json"]).output().unwrap())["publicKey"].as_str().unwrap().to_string()
}

#[test]
fn the_owners_turn_grants_access_lists_friends_and_joins_a_topic_through_its_tools() {
    let (a, b) = (TestHome::new(), TestHome::new());
    wopr(&a).args(["id", "init"]).assert().success();
    wopr(&b).args(["id", "init"]).assert().success();
    let pb = public_key(&b);
    let create = ["session", "create", "mine", "You run my node.", "--provider", "openai-compatible"];
    wopr(&a).args(create).args(["--model", "fixture"]).assert().success();
    wopr(&a).args(["session", "create", "shared", "Shared with B."]).assert().success();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let model = rt.block_on(FixtureServer::start([
        tool_calls(&[
            ("p2p_grant_access", json!({"peerKey": pb, "sessions": ["shared"], "caps": ["inject"]})),
            // Refused by the same checks as `wopr access grant`: no such session. Nothing is granted.
            ("p2p_grant_access", json!({"peerKey": pb, "sessions": ["shared", "nope"], "caps": ["message"]})),
            // Refused by the schema before anything runs.
            ("p2p_grant_access", json!({"peerKey": pb, "sessions": ["shared"], "caps": ["admin"]})),
            ("friend_list", json!({})),
            ("discover_join", json!({"topic": "wopr-agent-tools-test"})),
            ("discover_profile_set", json!({"content": {"name": "Alice's node"}})),
        ]),
        text("Granted, listed, joined."),
    ]));
    // Topics stay on this machine: no DHT rendezvous, no LAN lookup.
    wopr(&a).args(["config", "set", "discover.dht", "false"]).assert().success();
    let start = wopr(&a).args(["daemon", "start"]).output().unwrap();
    assert!(start.status.success(), "{}", stderr(&start));
    let _stop = StopDaemon(&a);

    let out = wopr(&a)
        .env("OPENAI_COMPATIBLE_BASE_URL", format!("{}/v1", model.url()))
        .args(["session", "inject", "mine", "Give B inject on shared, list my friends, join the topic."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Granted, listed, joined."), "{}", stdout(&out));

    let requests = model.requests();
    assert_eq!(requests.len(), 2, "the calls, then the answer to their results");
    let tools = offered(&requests[0]);
    for tool in wopr_agent::P2P_TOOLS {
        assert!(tools.iter().any(|t| t == tool), "the owner's clean turn lacks {tool}: {tools:?}");
    }
    let results = &requests[1];

    // The grant is in access.json, as `wopr access grant` makes it.
    let granted: Value = serde_json::from_str(&result_of(results, "call_0")).unwrap();
    assert_eq!(granted["peerKey"], pb.as_str(), "{granted}");
    let access = json_of(&wopr(&a).args(["access", "--json"]).output().unwrap());
    let grants = access.as_array().unwrap();
    assert_eq!(grants.len(), 1, "only the valid grant was made: {access}");
    assert_eq!(grants[0]["peerKey"], pb.as_str());
    assert_eq!(grants[0]["sessions"], json!(["shared"]));
    assert_eq!(grants[0]["capabilities"], json!(["inject"]));
    let missing = result_of(results, "call_1");
    assert!(missing.contains("p2p_grant_access failed: no session named nope"), "{missing}");
    let bad = result_of(results, "call_2");
    assert!(bad.contains("unknown capability \"admin\""), "{bad}");

    // The friend list, as `wopr friend list --json` prints it.
    let friends: Value = serde_json::from_str(&result_of(results, "call_3")).unwrap();
    let listed = json_of(&wopr(&a).args(["friend", "list", "--json"]).output().unwrap());
    assert_eq!(friends, listed);
    assert_eq!(friends["friends"], json!([]));

    // The daemon joined the topic; the profile is stored and announced.
    let joined: Value = serde_json::from_str(&result_of(results, "call_4")).unwrap();
    assert_eq!(joined["changed"], true, "{joined}");
    let topics = json_of(&wopr(&a).args(["discover", "topics", "--json"]).output().unwrap());
    assert!(topics.to_string().contains("wopr-agent-tools-test"), "{topics}");
    let profile: Value = serde_json::from_str(&result_of(results, "call_5")).unwrap();
    assert_eq!(profile["announced"], true, "{profile}");
    let config = json_of(&wopr(&a).args(["config", "get", "discover.profile", "--json"]).output().unwrap());
    assert_eq!(config, json!({"name": "Alice's node"}));

    // Every change the AI made, and the refused grant, is on record with the turn's session.
    let audit = json_of(&wopr(&a).args(["audit", "--json"]).output().unwrap());
    let rows: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("tool:"))
        .map(|e| {
            assert_eq!(e["session"], "mine", "{e}");
            (
                e["action"].as_str().unwrap().to_string(),
                e["decision"].as_str().unwrap().to_string(),
                e["peer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |action: &str, decision: &str| rows.iter().any(|(a, d, _)| a == action && d == decision);
    assert!(has("tool:p2p_grant_access", "accepted"), "{rows:?}");
    assert!(has("tool:p2p_grant_access", "refused"), "{rows:?}");
    assert!(has("tool:discover_join", "accepted"), "{rows:?}");
    assert!(has("tool:discover_profile_set", "accepted"), "{rows:?}");
    assert!(rows.iter().filter(|(a, ..)| a == "tool:p2p_grant_access").all(|(.., p)| p == &pb), "{rows:?}");
    // The schema refusal ran nothing, and a read (friend_list) changes nothing to record.
    assert_eq!(rows.len(), 4, "{rows:?}");
}
