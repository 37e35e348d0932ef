//! `wopr doctor net` as separate processes on loopback with relays off: the JSON report parses and has
//! its fields, says the relay is disabled instead of failing, is answered by the daemon when one runs,
//! and tells the path to a peer.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestHome, stderr, stdout};
use serde_json::Value;

fn wopr(h: &TestHome) -> assert_cmd::Command {
    let mut c = h.wopr();
    c.env("WOPR_P2P_RELAY", "disabled").env("WOPR_P2P_BIND", "127.0.0.1:0").timeout(Duration::from_secs(120));
    c
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn doctor(h: &TestHome, extra: &[&str]) -> Value {
    json_of(&wopr(h).args(["doctor", "net", "--json", "--wait", "2"]).args(extra).output().unwrap())
}

struct Daemon<'a>(&'a TestHome);

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = wopr(self.0).args(["daemon", "stop"]).output();
    }
}

#[test]
fn doctor_net_with_relays_disabled_reports_every_field_and_says_so() {
    let h = TestHome::new();
    wopr(&h).args(["id", "init"]).assert().success();
    let id: Value = json_of(&wopr(&h).args(["id", "--json"]).output().unwrap());
    let r = doctor(&h, &[]);

    assert_eq!(r["id"], id["publicKey"]);
    let bound: Vec<SocketAddr> = serde_json::from_value(r["bound"].clone()).unwrap();
    assert!(!bound.is_empty() && bound.iter().all(|a| a.ip().is_loopback() && a.port() != 0), "{r:#}");
    assert!(r["interfaces"].is_array() && r["advertised"].is_array(), "{r:#}");
    assert_eq!(r["relay"]["enabled"], false, "{r:#}");
    assert_eq!(r["relay"]["mode"], "disabled");
    assert_eq!(r["relay"]["relays"], Value::Array(vec![]));
    assert_eq!(r["relay"]["measured"], false);
    assert_eq!(r["nat"]["kind"], "unknown");
    assert!(r["nat"]["explanation"].as_str().unwrap().contains("relays are disabled"), "{r:#}");
    assert_eq!(r["nat"]["publicV4"], Value::Null);
    assert_eq!(r["nat"]["mappingVariesByDestination"], Value::Null);
    // The tests' environment turns mDNS off.
    assert_eq!(r["lan"]["state"], "off", "{r:#}");
    assert_eq!(r["peer"], Value::Null);
    assert!(r.as_object().unwrap().contains_key("bootstrapSources"), "{r:#}");

    // The text form says it in words.
    let out = wopr(&h).args(["doctor", "net", "--wait", "1"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Relay:       disabled"), "{}", stdout(&out));
    assert!(stdout(&out).contains("NAT:         unknown"), "{}", stdout(&out));

    // A peer that is neither known nor a key is invalid input, before any network work.
    let out = wopr(&h).args(["doctor", "net", "--peer", "nobody"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn doctor_net_asks_the_running_daemon_and_reports_the_direct_path_to_a_peer() {
    let (a, b) = (TestHome::new(), TestHome::new());
    for h in [&a, &b] {
        wopr(h).args(["id", "init"]).assert().success();
    }
    wopr(&a).args(["session", "create", "s"]).assert().success();
    wopr(&a).args(["daemon", "start"]).assert().success();
    let _guard = Daemon(&a);
    let status = json_of(&wopr(&a).args(["daemon", "status", "--json"]).output().unwrap());
    let a_addr: SocketAddr = status["addresses"][0].as_str().unwrap().parse().unwrap();

    // Answered by the daemon: its endpoint, on the port peers use (a node started for the check would
    // have bound another random port).
    let r = doctor(&a, &[]);
    let bound: Vec<SocketAddr> = serde_json::from_value(r["bound"].clone()).unwrap();
    assert!(bound.contains(&a_addr), "daemon at {a_addr}, report bound {bound:?}");

    // B learns A's address from an invite, then asks for the path to A by its short id.
    let pb = json_of(&wopr(&b).args(["id", "--json"]).output().unwrap())["publicKey"]
        .as_str()
        .unwrap()
        .to_string();
    let sa = status["shortId"].as_str().unwrap().to_string();
    let out = wopr(&a).args(["invite", &pb, "s", "--cap", "message"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wopr(&b).args(["invite", "claim", stdout(&out).trim()]).assert().success();
    let r = doctor(&b, &["--peer", &sa]);
    let peer = &r["peer"];
    assert_eq!(peer["id"], status["id"], "{r:#}");
    assert_eq!(peer["kind"], "direct", "{r:#}");
    assert_eq!(peer["path"], format!("direct {a_addr}"), "{r:#}");
    assert!(peer["rttMs"].is_number(), "{r:#}");
}
