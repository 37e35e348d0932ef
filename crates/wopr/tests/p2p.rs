//! Two installations as separate processes with separate homes, on loopback with relays off: daemon,
//! invite, claim, inject answered by the real embedded model, revoke, exit code 7.

mod common;

use std::time::Duration;

use common::{TestHome, stderr, stdout, test_model};

fn node() -> TestHome {
    TestHome::new()
}

fn wopr(h: &TestHome) -> assert_cmd::Command {
    let mut c = h.wopr();
    c.env("WOPR_P2P_RELAY", "disabled")
        .env("WOPR_P2P_BIND", "127.0.0.1:0")
        .env("WOPR_MODEL", test_model())
        .env("WOPR_THREADS", "1")
        .timeout(Duration::from_secs(300));
    c
}

fn id_json(h: &TestHome) -> serde_json::Value {
    serde_json::from_slice(&wopr(h).args(["id", "--json"]).output().unwrap().stdout).unwrap()
}

struct Daemon<'a>(&'a TestHome);

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = wopr(self.0).args(["daemon", "stop"]).output();
    }
}

#[test]
fn invite_claim_inject_revoke_between_two_processes() {
    let (a, b) = (node(), node());
    wopr(&a).args(["id", "init"]).assert().success();
    wopr(&b).args(["id", "init"]).assert().success();
    let pb = id_json(&b)["publicKey"].as_str().unwrap().to_string();
    let sa = id_json(&a)["shortId"].as_str().unwrap().to_string();
    wopr(&a).args(["session", "create", "s", "You are a terse assistant."]).assert().success();

    // Without a daemon an invite has no address to carry.
    let out = wopr(&a).args(["invite", &pb, "s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("wopr daemon start"));

    wopr(&a).args(["daemon", "start"]).assert().success();
    let _guard = Daemon(&a);
    // Only the owner may talk to the daemon or read its log.
    assert_eq!(common::mode(&a.file("daemon.sock")), 0o600);
    assert_eq!(common::mode(&a.file("daemon.log")), 0o600);
    assert_eq!(common::mode(&a.path()), 0o700);
    let again = wopr(&a).args(["daemon", "start"]).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("already running"), "{}", stderr(&again));
    let status: serde_json::Value =
        serde_json::from_slice(&wopr(&a).args(["daemon", "status", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(status["relay"], "disabled");
    assert!(status["ticket"].as_str().unwrap().starts_with("endpoint"));
    assert!(status["addresses"][0].as_str().unwrap().starts_with("127.0.0.1:"));

    let out = wopr(&a).args(["invite", &pb, "s", "--cap", "inject"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("wop1://"));

    // Someone else holding the token cannot use it.
    let c = node();
    wopr(&c).args(["id", "init"]).assert().success();
    let stolen = wopr(&c).args(["invite", "claim", &token]).output().unwrap();
    assert!(!stolen.status.success());
    assert_ne!(stolen.status.code(), Some(0));

    wopr(&b).args(["invite", "claim", &token]).assert().success();
    // Single use: claiming twice is refused.
    let reuse = wopr(&b).args(["invite", "claim", &token]).output().unwrap();
    assert!(!reuse.status.success(), "a used invite was accepted again");

    let out = wopr(&b).args(["inject", &format!("{sa}:s"), "Say hello."]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());

    // Both sides of the turn are in A's history, from B.
    let show: serde_json::Value =
        serde_json::from_slice(&wopr(&a).args(["session", "show", "s", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(show["messages"][0]["content"], "Say hello.");
    assert_eq!(show["messages"][0]["source"], format!("p2p:{pb}"));
    assert_eq!(show["messages"][1]["role"], "assistant");

    let access: serde_json::Value =
        serde_json::from_slice(&wopr(&a).args(["access", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(access[0]["peerKey"], pb.as_str());
    let audit: serde_json::Value =
        serde_json::from_slice(&wopr(&a).args(["audit", "--json"]).output().unwrap().stdout).unwrap();
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "inject" && e["decision"] == "accepted"));

    wopr(&a).args(["revoke", &pb]).assert().success();
    let out = wopr(&b).args(["inject", &format!("{sa}:s"), "hi again"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));

    wopr(&a).args(["daemon", "stop"]).assert().success();
    let out = wopr(&b).args(["inject", &format!("{sa}:s"), "anyone?"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "peer offline: {}", stderr(&out));
}

#[test]
fn a_stale_pid_file_is_cleaned_up() {
    let a = node();
    wopr(&a).args(["id", "init"]).assert().success();
    // A pid that cannot exist.
    std::fs::write(a.file("daemon.pid"), "999999999\n").unwrap();
    wopr(&a).args(["daemon", "start"]).assert().success();
    let _guard = Daemon(&a);
    let pid: i32 = std::fs::read_to_string(a.file("daemon.pid")).unwrap().trim().parse().unwrap();
    assert_ne!(pid, 999_999_999);
    let logs = wopr(&a).args(["daemon", "logs"]).output().unwrap();
    assert!(stdout(&logs).contains("P2P node listening"), "{}", stdout(&logs));
    wopr(&a).args(["daemon", "stop"]).assert().success();
    assert!(!a.file("daemon.pid").exists());
    let out = wopr(&a).args(["daemon", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
