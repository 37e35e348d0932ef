//! `wopr session` and `wopr config` without an AI: storage, validation, output, concurrency.

mod common;

use common::{TestHome, mode, stderr, stdout};

#[test]
fn hostile_session_names_are_refused_with_exit_3() {
    let h = TestHome::new();
    for bad in ["../evil", "a/b", ".hidden", "..", "a..b", "x\\y", &"n".repeat(129), "sp ace"] {
        let out = h.wopr().args(["session", "create", bad, "ctx"]).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("invalid session name"), "{}", stderr(&out));
    }
    assert!(!h.dir.path().join("evil.md").exists());
    assert!(!h.path().join("evil.md").exists());
    for cmd in [
        &["session", "show", "../x"][..],
        &["session", "log", "../x", "m"],
        &["session", "inject", "a/b", "m"],
    ] {
        assert_eq!(h.wopr().args(cmd).output().unwrap().status.code(), Some(3), "{cmd:?}");
    }
}

#[test]
fn create_log_list_show_delete() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "friend:p2p:alice(abc123)", "You are terse."]).assert().success();
    assert_eq!(
        std::fs::read_to_string(h.path().join("sessions/friend:p2p:alice(abc123).md")).unwrap(),
        "You are terse.\n"
    );
    assert_eq!(mode(&h.file("sessions.json")), 0o600);
    let dup = h.wopr().args(["session", "create", "friend:p2p:alice(abc123)"]).output().unwrap();
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"));

    h.wopr().args(["session", "log", "friend:p2p:alice(abc123)", "remember this line"]).assert().success();
    h.wopr()
        .args(["session", "log", "friend:p2p:alice(abc123)", "-"])
        .write_stdin("from stdin\n")
        .assert()
        .success();

    let list: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["session", "list", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(list[0]["name"], "friend:p2p:alice(abc123)");
    assert_eq!(list[0]["messages"], 2);

    let show: serde_json::Value = serde_json::from_slice(
        &h.wopr()
            .args(["session", "show", "friend:p2p:alice(abc123)", "--json", "--limit", "1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(show["context"], "You are terse.\n");
    assert_eq!(show["messages"].as_array().unwrap().len(), 1);
    assert_eq!(show["messages"][0]["content"], "from stdin");

    // The context file may be edited by hand.
    std::fs::write(h.path().join("sessions/friend:p2p:alice(abc123).md"), "Edited.").unwrap();
    let text = stdout(&h.wopr().args(["session", "show", "friend:p2p:alice(abc123)"]).output().unwrap());
    assert!(text.contains("Edited.") && text.contains("remember this line"), "{text}");

    // Without a terminal, delete needs --yes and changes nothing.
    let refused = h.wopr().args(["session", "delete", "friend:p2p:alice(abc123)"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(stderr(&refused).contains("--yes"));
    h.wopr().args(["session", "show", "friend:p2p:alice(abc123)"]).assert().success();

    h.wopr().args(["session", "delete", "friend:p2p:alice(abc123)", "--yes"]).assert().success();
    let gone = h.wopr().args(["session", "show", "friend:p2p:alice(abc123)"]).output().unwrap();
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("wopr session create"), "{}", stderr(&gone));
    assert!(!h.path().join("sessions/friend:p2p:alice(abc123).md").exists());
}

#[test]
fn set_provider_validates_and_records() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "s", "ctx", "--provider", "local"]).assert().success();
    h.wopr().args(["session", "set-provider", "s", "openai", "--model", "gpt-x"]).assert().success();
    let show: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["session", "show", "s", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(show["provider"], "openai");
    assert_eq!(show["model"], "gpt-x");
    let bad = h.wopr().args(["session", "set-provider", "s", "claude"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(stderr(&bad).contains("anthropic"), "{}", stderr(&bad));
    let bad = h.wopr().args(["session", "create", "t", "--provider", "gpt"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3));
    h.wopr().args(["session", "set-provider", "s", "auto"]).assert().success();
}

#[test]
fn a_failed_provider_call_keeps_the_message_and_says_what_to_do() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "s", "ctx", "--provider", "openai-compatible"]).assert().success();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = h
        .wopr()
        .env("OPENAI_COMPATIBLE_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .env("OPENAI_COMPATIBLE_MODEL", "m")
        .args(["session", "inject", "s", "hello there"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("what to do") && err.contains("marked as failed"), "{err}");
    let show: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["session", "show", "s", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(show["messages"][0]["content"], "hello there");
    assert_eq!(show["messages"][0]["status"], "failed");

    // No provider configured at all: the message is kept too.
    h.wopr().args(["session", "create", "n", "ctx", "--provider", "anthropic"]).assert().success();
    let out = h.wopr().args(["session", "inject", "n", "anyone?"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ANTHROPIC_API_KEY"), "{}", stderr(&out));
    let show: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["session", "show", "n", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(show["messages"][0]["status"], "failed");
}

#[test]
fn config_set_get_unset_list_with_dotted_keys_and_json_values() {
    let h = TestHome::new();
    let routes = r#"{"routes":[{"sourceSession":"support","targetSessions":["billing"]}]}"#;
    h.wopr().args(["config", "set", "plugins.data.router", routes]).assert().success();
    h.wopr().args(["config", "set", "p2p.relay", "disabled"]).assert().success();
    h.wopr().args(["config", "set", "p2p.port", "7437"]).assert().success();
    assert_eq!(mode(&h.file("config.json")), 0o600);
    let got: serde_json::Value = serde_json::from_slice(
        &h.wopr().args(["config", "get", "plugins.data.router"]).output().unwrap().stdout,
    )
    .unwrap();
    assert_eq!(got, serde_json::from_str::<serde_json::Value>(routes).unwrap());
    assert_eq!(stdout(&h.wopr().args(["config", "get", "p2p.relay"]).output().unwrap()), "disabled\n");
    assert_eq!(
        stdout(&h.wopr().args(["config", "get", "p2p.relay", "--json"]).output().unwrap()),
        "\"disabled\"\n"
    );
    assert_eq!(stdout(&h.wopr().args(["config", "get", "p2p.port"]).output().unwrap()), "7437\n");
    let list = stdout(&h.wopr().args(["config", "list"]).output().unwrap());
    assert_eq!(
        list,
        "p2p.port = 7437\np2p.relay = \"disabled\"\nplugins.data.router.routes = [{\"sourceSession\":\"support\",\"targetSessions\":[\"billing\"]}]\n"
    );
    h.wopr().args(["config", "unset", "p2p.relay"]).assert().success();
    assert!(!h.wopr().args(["config", "get", "p2p.relay"]).output().unwrap().status.success());
    assert_eq!(h.wopr().args(["config", "set", "bad..key", "1"]).output().unwrap().status.code(), Some(3));
}

#[test]
fn a_corrupt_config_is_reported_and_kept() {
    let h = TestHome::new();
    h.wopr().args(["config", "set", "a", "1"]).assert().success();
    std::fs::write(h.file("config.json"), "{oops").unwrap();
    let out = h.wopr().args(["config", "set", "b", "2"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("config.json") && stderr(&out).contains("not valid JSON"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(h.file("config.json")).unwrap(), "{oops");
}

#[test]
fn concurrent_processes_lose_nothing() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "shared", "ctx"]).assert().success();
    let bin = assert_cmd::cargo::cargo_bin("wopr");
    let children: Vec<_> = (0..12)
        .map(|i| {
            let script = format!(
                "{bin} session create s{i} c{i} && {bin} session log shared m{i}a && {bin} config set k.n{i} {i} && {bin} session log shared m{i}b",
                bin = bin.display()
            );
            std::process::Command::new("sh").arg("-c").arg(script).env("WOPR_HOME", h.path()).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["session", "list", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 13);
    let show: serde_json::Value = serde_json::from_slice(
        &h.wopr().args(["session", "show", "shared", "--json"]).output().unwrap().stdout,
    )
    .unwrap();
    assert_eq!(show["messages"].as_array().unwrap().len(), 24);
    let cfg: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["config", "get", "k"]).output().unwrap().stdout).unwrap();
    assert_eq!(cfg.as_object().unwrap().len(), 12);
}

#[test]
fn completions_are_generated() {
    let h = TestHome::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = h.wopr().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(stdout(&out).contains("session"), "{shell}");
    }
}

#[test]
fn usage_errors_exit_3_and_help_exits_0() {
    let h = TestHome::new();
    assert_eq!(h.wopr().args(["session", "frobnicate"]).output().unwrap().status.code(), Some(3));
    assert_eq!(h.wopr().args(["--help"]).output().unwrap().status.code(), Some(0));
    assert_eq!(h.wopr().args(["--version"]).output().unwrap().status.code(), Some(0));
}
