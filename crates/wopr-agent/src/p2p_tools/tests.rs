use std::sync::Mutex;

use super::*;

/// Records every action asked of it and answers with what it was asked, so a test sees which action a
/// call reached and with which arguments.
#[derive(Default)]
pub(crate) struct FakeP2p {
    pub(crate) calls: Mutex<Vec<String>>,
    /// When set, every action fails with this.
    pub(crate) fail: Option<String>,
}

impl FakeP2p {
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, what: String) -> BoxFuture<'_, Result<Value, String>> {
        self.calls.lock().unwrap().push(what.clone());
        let result = match &self.fail {
            Some(why) => Err(why.clone()),
            None => Ok(json!({"did": what})),
        };
        Box::pin(async move { result })
    }
}

impl P2pActions for FakeP2p {
    fn inject<'a>(
        &'a self,
        peer: &'a str,
        session: &'a str,
        message: &'a str,
        hop_count: u8,
    ) -> BoxFuture<'a, Result<String, String>> {
        let what = format!("inject {peer} {session} {message} hops={hop_count}");
        Box::pin(async move { self.answer(what).await.map(|v| v["did"].as_str().unwrap().to_string()) })
    }

    fn grant_access<'a>(
        &'a self,
        peer: &'a str,
        sessions: &'a [String],
        caps: &'a [Capability],
    ) -> BoxFuture<'a, Result<Value, String>> {
        let caps: Vec<&str> = caps.iter().map(|c| c.as_str()).collect();
        self.answer(format!("grant {peer} {} {}", sessions.join(","), caps.join(",")))
    }

    fn rotate_keys<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("rotate {reason}"))
    }

    fn friend_request<'a>(&'a self, peer: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("friend-request {peer}"))
    }

    fn friend_accept<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("friend-accept {name}"))
    }

    fn friend_list(&self) -> BoxFuture<'_, Result<Value, String>> {
        self.answer("friend-list".into())
    }

    fn discover_join<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("join {topic}"))
    }

    fn discover_peers<'a>(&'a self, topic: Option<&'a str>) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("peers {}", topic.unwrap_or("*")))
    }

    fn discover_profile_set<'a>(&'a self, content: &'a Value) -> BoxFuture<'a, Result<Value, String>> {
        self.answer(format!("profile {content}"))
    }
}

pub(crate) fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: "call_1".into(), name: name.into(), arguments }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn each_tool_reaches_its_own_action_with_its_arguments() {
    let cases = [
        (P2P_INJECT, json!({"peer": "bob", "session": "dev", "message": "hi"}), "inject bob dev hi hops=1"),
        (
            P2P_GRANT_ACCESS,
            json!({"peerKey": "bob", "sessions": ["dev", "notes"], "caps": ["inject", "message"]}),
            "grant bob dev,notes inject,message",
        ),
        (P2P_ROTATE_KEYS, json!({"reason": "compromise"}), "rotate compromise"),
        (FRIEND_REQUEST, json!({"peer": "1a2b3c4d"}), "friend-request 1a2b3c4d"),
        (FRIEND_ACCEPT, json!({"name": "alice"}), "friend-accept alice"),
        (FRIEND_LIST, json!({}), "friend-list"),
        (FRIEND_LIST, Value::Null, "friend-list"),
        (DISCOVER_JOIN, json!({"topic": "rust"}), "join rust"),
        (DISCOVER_PEERS, json!({"topic": "rust"}), "peers rust"),
        (DISCOVER_PEERS, json!({}), "peers *"),
        (DISCOVER_PROFILE_SET, json!({"content": {"name": "Alice"}}), r#"profile {"name":"Alice"}"#),
    ];
    for (name, args, expected) in cases {
        let fake = FakeP2p::default();
        let out = block_on(run(&fake, &call(name, args.clone())));
        assert!(!out.is_error, "{name} {args}: {}", out.content);
        assert_eq!(fake.calls(), [expected], "{name} {args}");
        // The action's result goes back to the model: an inject's answer as it is, JSON for the others.
        let back =
            if name == P2P_INJECT { expected.to_string() } else { json!({"did": expected}).to_string() };
        assert_eq!(out.content, back, "{name}");
    }
    // Every tool is covered above, once at least.
    for name in P2P_TOOLS {
        assert!(specs().iter().any(|s| s.name == name), "{name} has a spec");
    }
}

#[test]
fn bad_arguments_are_explained_and_run_nothing() {
    let long = "x".repeat(MAX_NAME + 1);
    let cases = [
        (P2P_INJECT, json!({"peer": "bob", "session": "dev"}), "`message`"),
        (P2P_INJECT, json!({"peer": "bob", "session": "dev", "message": ""}), "must not be empty"),
        (P2P_INJECT, json!({"peer": 7, "session": "dev", "message": "hi"}), "must be a string"),
        (
            P2P_INJECT,
            json!({"peer": "bob", "session": "dev", "message": "hi", "hops": 0}),
            "no argument `hops`",
        ),
        (P2P_INJECT, json!(["bob", "dev", "hi"]), "JSON object"),
        (P2P_INJECT, Value::Null, "JSON object"),
        (P2P_GRANT_ACCESS, json!({"peerKey": "bob", "sessions": [], "caps": ["message"]}), "1 to 32"),
        (P2P_GRANT_ACCESS, json!({"peerKey": "bob", "sessions": "dev", "caps": ["message"]}), "array"),
        (
            P2P_GRANT_ACCESS,
            json!({"peerKey": "bob", "sessions": ["dev", 3], "caps": ["message"]}),
            "strings only",
        ),
        (
            P2P_GRANT_ACCESS,
            json!({"peerKey": "bob", "sessions": ["dev"], "caps": ["admin"]}),
            "unknown capability",
        ),
        (P2P_GRANT_ACCESS, json!({"peerKey": "bob", "sessions": ["dev"]}), "`caps`"),
        (
            P2P_GRANT_ACCESS,
            json!({"peer": "bob", "sessions": ["dev"], "caps": ["message"]}),
            "no argument `peer`",
        ),
        (P2P_GRANT_ACCESS, json!({"peerKey": long, "sessions": ["dev"], "caps": ["message"]}), "at most 256"),
        (P2P_ROTATE_KEYS, json!({"reason": "because"}), "scheduled, compromise, upgrade"),
        (P2P_ROTATE_KEYS, json!({}), "`reason`"),
        (FRIEND_REQUEST, json!({"peer": "   "}), "must not be empty"),
        (FRIEND_ACCEPT, json!({"query": "alice"}), "no argument `query`"),
        (FRIEND_LIST, json!({"all": true}), "its arguments: none"),
        (DISCOVER_JOIN, json!({"topic": null}), "`topic`"),
        (DISCOVER_PEERS, json!({"topic": ["a"]}), "must be a string"),
        (DISCOVER_PROFILE_SET, json!({"content": "Alice"}), "JSON object"),
        (DISCOVER_PROFILE_SET, json!({"content": {"about": "y".repeat(MAX_PROFILE)}}), "at most 8192"),
    ];
    for (name, args, says) in cases {
        let fake = FakeP2p::default();
        let out = block_on(run(&fake, &call(name, args.clone())));
        assert!(out.is_error, "{name} {args} was accepted");
        assert!(out.content.contains(says), "{name} {args}: {:?} lacks {says:?}", out.content);
        assert!(fake.calls().is_empty(), "{name} {args} ran {:?}", fake.calls());
    }
}

#[test]
fn a_failed_action_is_a_tool_error_that_says_why() {
    let fake = FakeP2p { fail: Some("no daemon is running".into()), ..FakeP2p::default() };
    let out = block_on(run(&fake, &call(DISCOVER_JOIN, json!({"topic": "rust"}))));
    assert!(out.is_error);
    assert_eq!(out.content, "discover_join failed: no daemon is running");
    let out =
        block_on(run(&fake, &call(P2P_INJECT, json!({"peer": "bob", "session": "dev", "message": "hi"}))));
    assert!(out.is_error);
    assert_eq!(out.content, "the inject to bob:dev failed: no daemon is running");
}

#[test]
fn every_schema_is_closed_and_names_its_required_arguments() {
    let all = specs();
    assert_eq!(all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), P2P_TOOLS);
    for spec in &all {
        let p = &spec.parameters;
        assert_eq!(p["type"], "object", "{}", spec.name);
        assert_eq!(p["additionalProperties"], false, "{}", spec.name);
        let properties = p["properties"].as_object().unwrap();
        for required in p["required"].as_array().unwrap() {
            assert!(properties.contains_key(required.as_str().unwrap()), "{}: {required}", spec.name);
        }
    }
    let grant = all.iter().find(|s| s.name == P2P_GRANT_ACCESS).unwrap();
    assert_eq!(grant.parameters["properties"]["caps"]["items"]["enum"], json!(["message", "inject"]));
    let rotate = all.iter().find(|s| s.name == P2P_ROTATE_KEYS).unwrap();
    assert_eq!(rotate.parameters["properties"]["reason"]["enum"], json!(ROTATION_REASONS));
    // The old name is gone: history that called it gets "no tool named", not a P2P action.
    assert!(!is_p2p_tool("inject_peer"));
}
