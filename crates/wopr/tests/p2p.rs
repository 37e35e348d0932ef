//! Two installations as separate processes with separate homes, on loopback with relays off: daemon,
//! invite, claim, inject answered by the real embedded model, revoke, exit code 7.

mod common;
#[path = "common/raw_peer.rs"]
mod raw_peer;

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

/// One line of `/proc/<pid>/status`, in bytes (`VmRSS`, `VmHWM`).
fn vm_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Resets the peak resident size (`VmHWM`) of `pid` to its current size.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// A stranger's client: an iroh endpoint on loopback with a fresh key, nothing known to the victim.
async fn stranger() -> iroh::Endpoint {
    raw_peer::endpoint(&wopr_identity::Identity::generate()).await
}

/// Writes 1.2 MB into `send`, giving up after 20 s (a victim that grants no flow control never reads it).
fn push(tasks: &mut tokio::task::JoinSet<()>, mut send: iroh::endpoint::SendStream) {
    tasks.spawn(async move {
        let junk = vec![0x5a; 1_200_000];
        let _ = tokio::time::timeout(Duration::from_secs(20), send.write_all(&junk)).await;
        let _ = send.finish();
    });
}

/// The attack: one connection writing 1.2 MB into each of 100 unidirectional streams, then 200
/// connections from 20 fresh keys, held open, each writing 1.2 MB into every bidirectional stream it may
/// open besides the first (left silent, so the victim waits for a handshake). Returns how many streams
/// the victim let it open.
async fn flood(victim: iroh::EndpointAddr) -> usize {
    use futures::FutureExt;
    let alpn = wopr_proto::ALPN;
    let mut tasks = tokio::task::JoinSet::new();
    let mut opened = 0;
    let first = stranger().await;
    let conn = first.connect(victim.clone(), alpn).await.unwrap();
    for _ in 0..100 {
        // A stream the victim's flow control does not allow right now is never opened.
        let Some(Ok(send)) = conn.open_uni().now_or_never() else { break };
        opened += 1;
        push(&mut tasks, send);
    }
    let mut keys = Vec::new();
    for _ in 0..20 {
        keys.push(stranger().await);
    }
    let mut held = vec![conn];
    for i in 0..200 {
        let Ok(Ok(conn)) =
            tokio::time::timeout(Duration::from_secs(10), keys[i % 20].connect(victim.clone(), alpn)).await
        else {
            continue;
        };
        let _silent = conn.open_bi().now_or_never();
        for _ in 0..20 {
            let Some(Ok((send, _recv))) = conn.open_bi().now_or_never() else { break };
            opened += 1;
            push(&mut tasks, send);
        }
        held.push(conn);
    }
    while tasks.join_next().await.is_some() {}
    drop(held);
    opened
}

#[test]
fn a_strangers_streams_and_connections_leave_the_daemons_memory_flat() {
    let (a, b) = (node(), node());
    wopr(&a).args(["id", "init"]).assert().success();
    wopr(&b).args(["id", "init"]).assert().success();
    let pb = id_json(&b)["publicKey"].as_str().unwrap().to_string();
    let pa = id_json(&a)["publicKey"].as_str().unwrap().to_string();
    wopr(&a).args(["session", "create", "s", "You are a terse assistant."]).assert().success();
    wopr(&a).args(["daemon", "start"]).assert().success();
    let _guard = Daemon(&a);
    let out = wopr(&a).args(["invite", &pb, "s", "--cap", "inject"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wopr(&b).args(["invite", "claim", stdout(&out).trim()]).assert().success();
    // The granted peer is answered (this also loads the model, so it is not counted below).
    let peer = format!("{pa}:s");
    let out = wopr(&b).args(["inject", &peer, "Say hello."]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let pid: u32 = std::fs::read_to_string(a.file("daemon.pid")).unwrap().trim().parse().unwrap();
    let status: serde_json::Value =
        serde_json::from_slice(&wopr(&a).args(["daemon", "status", "--json"]).output().unwrap().stdout)
            .unwrap();
    let socket: std::net::SocketAddr = status["addresses"][0].as_str().unwrap().parse().unwrap();
    let key: [u8; 32] = hex::decode(&pa).unwrap().try_into().unwrap();
    let victim = iroh::EndpointAddr::from_parts(
        iroh::EndpointId::from_bytes(&key).unwrap(),
        [iroh::TransportAddr::Ip(socket)],
    );

    reset_peak(pid);
    let before = vm_bytes(pid, "VmRSS");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opened = rt.block_on(flood(victim));
    let grown = vm_bytes(pid, "VmHWM").saturating_sub(before);
    eprintln!("daemon peak growth under the flood: {} KiB ({opened} streams opened)", grown / 1024);
    assert!(
        grown < 10 * 1024 * 1024,
        "the daemon grew by {} KiB (peak) under the flood; the stranger opened {opened} streams",
        grown / 1024
    );

    // The granted peer is still answered.
    let out = wopr(&b).args(["inject", &peer, "Are you still there?"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
}
