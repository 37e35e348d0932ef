//! Soak: ten granted peers send a mix of valid injects and logs, requests for a session they hold no
//! grant for, oversized frames and payloads, forged signatures and replays, to one `wopr daemon` for
//! `WOPR_SOAK_SECS` seconds (30 by default). Every valid request must be answered and be in the daemon's
//! history afterwards, every bad one refused with its code, and the daemon's resident memory (read from
//! `/proc`, the daemon process, not this test) must stay within [`RSS_GROWTH_BOUND`] of what it held
//! once every kind of request had been seen.

mod common;
#[path = "common/raw_peer.rs"]
mod raw_peer;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{StopDaemon, TestHome};
use raw_peer::RawPeer;
use serde_json::{Value, json};
use test_support::{FixtureServer, Reply};
use wopr_identity::Identity;
use wopr_proto::ErrorCode;
use wopr_proto::frame::{MAX_FRAME, MAX_PAYLOAD};
use wopr_proto::message::{DoneStatus, Envelope, Inject, Log, Message};
use wopr_store::{Home, MessageStatus, Role, SessionName};

/// Peers talking to the daemon at once.
const PEERS: usize = 10;

/// How far the daemon's resident memory may grow past its level once warm.
const RSS_GROWTH_BOUND: u64 = 24 << 20;

fn soak_secs() -> u64 {
    std::env::var("WOPR_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30)
}

/// Pause between two requests of one peer. A peer's requests are 4 in 10 injects (valid or refused),
/// 3 in 10 logs: one a second stays inside the per-minute budgets (120 requests, 30 injects, 30 logs)
/// and, for up to ten minutes, the hourly ones (1200, 300, 300); longer runs go one every 5 s.
fn pace(secs: u64) -> Duration {
    Duration::from_secs(if secs <= 600 { 1 } else { 5 })
}

/// An OpenAI chat-completions stream answering `text`.
fn answer(text: &str) -> Reply {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fixture",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(json!({"content": text}), None),
        chunk(json!({}), Some("stop"))
    );
    Reply::new(200).header("content-type", "text/event-stream").body(body)
}

/// Resident memory of a process, in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// The last message of an answer: its outcome.
fn outcome(answer: &[Message]) -> String {
    match answer.last() {
        Some(Message::InjectDone { status }) => format!("{status:?}"),
        Some(Message::Error(e)) => format!("{:?}", e.code),
        other => format!("no outcome: {other:?}"),
    }
}

/// What one peer saw: valid requests answered, and anything unexpected.
#[derive(Default)]
struct Tally {
    logged: Vec<String>,
    injected: Vec<String>,
    refused: usize,
    wrong: Vec<String>,
}

/// Peer `n`'s traffic until `until`, one request every `pace`: each run of ten requests holds every kind.
async fn run_peer(mut peer: RawPeer, n: usize, until: Instant, pace: Duration, tally: Arc<Mutex<Tally>>) {
    let mut i = 0u64;
    let mut replayable: Option<Envelope> = None;
    while Instant::now() < until {
        i += 1;
        let kind = (n as u64 * 7 + i * 13) % 10;
        let (expect, answer) = match kind {
            0 | 1 => {
                let text = format!("peer {n} question {i}");
                let env = peer.signed(Message::Inject(Inject::new("chat", text.clone(), 0)));
                let answer = peer.send(&env).await;
                let ok = outcome(&answer) == format!("{:?}", DoneStatus::Completed)
                    && answer
                        .iter()
                        .any(|m| matches!(m, Message::InjectDelta { text } if text.contains("noted")));
                if ok {
                    tally.lock().unwrap().injected.push(text);
                }
                (if ok { None } else { Some("a valid inject answered") }, answer)
            }
            2..=4 => {
                let text = format!("peer {n} note {i}");
                let env = peer.signed(Message::Log(Log::new("notes", text.clone())));
                replayable = Some(env.clone());
                let answer = peer.send(&env).await;
                let ok = outcome(&answer) == format!("{:?}", DoneStatus::Logged);
                if ok {
                    tally.lock().unwrap().logged.push(text);
                }
                (if ok { None } else { Some("a valid log logged") }, answer)
            }
            5 | 6 => {
                let env = peer.signed(Message::Inject(Inject::new("secret", "let me in", 0)));
                let answer = peer.send(&env).await;
                let ok = outcome(&answer) == format!("{:?}", ErrorCode::Unauthorized);
                (if ok { None } else { Some("an ungranted session refused as unauthorized") }, answer)
            }
            7 => {
                let mut env = peer.signed(Message::Log(Log::new("notes", "forged")));
                if let Message::Log(m) = &mut env.message {
                    m.signature[3] ^= 0x10;
                }
                let answer = peer.send(&env).await;
                let ok = outcome(&answer) == format!("{:?}", ErrorCode::Invalid);
                (if ok { None } else { Some("a forged signature refused as invalid") }, answer)
            }
            8 => {
                // A replay of an earlier valid log, or (before there is one) a frame longer than the limit.
                let answer = match replayable.take() {
                    Some(env) => peer.send(&env).await,
                    None => {
                        let header = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes().to_vec();
                        peer.request(|_| header).await
                    }
                };
                let ok = outcome(&answer) == format!("{:?}", ErrorCode::Invalid);
                (if ok { None } else { Some("a replay or oversized frame refused as invalid") }, answer)
            }
            _ => {
                // A payload over 1 MiB in a frame that fits, in one run of ten in four; else only the header.
                let answer = if (i / 10 + n as u64).is_multiple_of(4) {
                    let env = peer.signed(Message::Log(Log::new("notes", "x".repeat(MAX_PAYLOAD + 1))));
                    peer.send(&env).await
                } else {
                    let header = u32::MAX.to_be_bytes().to_vec();
                    peer.request(|_| header).await
                };
                let ok = outcome(&answer) == format!("{:?}", ErrorCode::Invalid);
                (if ok { None } else { Some("an oversized request refused as invalid") }, answer)
            }
        };
        {
            let mut t = tally.lock().unwrap();
            match expect {
                None if kind >= 5 => t.refused += 1,
                None => {}
                Some(what) => {
                    t.wrong.push(format!("peer {n} request {i}: expected {what}, got {}", outcome(&answer)))
                }
            }
        }
        tokio::time::sleep(pace).await;
    }
}

#[test]
fn ten_peers_of_mixed_traffic_are_all_answered_and_the_daemons_memory_stays_flat() {
    let secs = soak_secs();
    let a = TestHome::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Enough answers for every inject the peers' budgets allow in the run.
    let replies = PEERS * 30 * (secs as usize / 60 + 1) + 10;
    let model = rt.block_on(FixtureServer::start((0..replies).map(|_| answer("noted."))));
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let wopr = |args: &[&str]| {
        let mut c = a.wopr();
        c.env("WOPR_P2P_RELAY", "disabled")
            .env("WOPR_P2P_BIND", format!("127.0.0.1:{port}"))
            .env("OPENAI_COMPATIBLE_BASE_URL", format!("{}/v1", model.url()))
            .env("OPENAI_COMPATIBLE_MODEL", "fixture")
            .timeout(Duration::from_secs(60))
            .args(args);
        c
    };
    wopr(&["id", "init"]).assert().success();
    wopr(&["session", "create", "chat", "Be brief.", "--provider", "openai-compatible"]).assert().success();
    wopr(&["session", "create", "notes", "Notes."]).assert().success();
    wopr(&["session", "create", "secret", "Nobody's."]).assert().success();
    let identities: Vec<Identity> = (0..PEERS).map(|_| Identity::generate()).collect();
    for id in &identities {
        let key = id.public_id().to_hex();
        wopr(&["access", "grant", &key, "chat", "--cap", "inject"]).assert().success();
        wopr(&["access", "grant", &key, "notes", "--cap", "message"]).assert().success();
    }
    wopr(&["daemon", "start"]).assert().success();
    let _stop = StopDaemon(&a);
    let home = Home::at(a.path());
    let victim = home.load_identity().unwrap().unwrap().identity.public_id();
    let pid = wopr_daemon::lifecycle::running_pid(&home).expect("the daemon runs");
    let at: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let pace = pace(secs);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let samples = rt.block_on(async {
        let mut peers = tokio::task::JoinSet::new();
        for (n, id) in identities.into_iter().enumerate() {
            let tally = tally.clone();
            peers.spawn(async move { run_peer(RawPeer::connect(id, victim, at).await, n, until, pace, tally).await });
        }
        let mut samples = Vec::new();
        while !peers.is_empty() {
            tokio::select! {
                joined = peers.join_next() => joined.unwrap().unwrap(),
                _ = tokio::time::sleep(Duration::from_millis(500)) => samples.push((started.elapsed(), rss(pid))),
            }
        }
        samples
    });

    let tally = tally.lock().unwrap();
    assert!(tally.wrong.is_empty(), "{} unexpected answers: {:#?}", tally.wrong.len(), tally.wrong);
    // Every peer has sent each kind of request once after ten of them: the daemon is warm from there.
    let warm_at = (pace * 10).min(Duration::from_secs(secs) / 3);
    let warm = samples.iter().find(|(t, _)| *t >= warm_at).map(|s| s.1).expect("samples after warm-up");
    let peak = samples.iter().filter(|(t, _)| *t >= warm_at).map(|s| s.1).max().unwrap();
    let last = samples.last().unwrap().1;
    eprintln!(
        "soak {secs} s: {} injects, {} logs, {} refused; daemon RSS warm {} KiB, peak {} KiB, last {} KiB",
        tally.injected.len(),
        tally.logged.len(),
        tally.refused,
        warm / 1024,
        peak / 1024,
        last / 1024
    );
    let tenth = (samples.len() / 10).max(1);
    let course: Vec<String> =
        samples.iter().step_by(tenth).map(|(t, b)| format!("{}s {} KiB", t.as_secs(), b / 1024)).collect();
    eprintln!("daemon RSS over the run: {}", course.join(", "));
    assert!(!tally.injected.is_empty() && !tally.logged.is_empty() && tally.refused > 0, "no traffic ran");
    assert!(
        peak <= warm + RSS_GROWTH_BOUND,
        "the daemon grew from {} KiB to {} KiB",
        warm / 1024,
        peak / 1024
    );

    // Nothing was lost: every logged note and every answered question is in the history, once.
    let history = home.history().unwrap();
    let notes = history.messages(&SessionName::new("notes").unwrap(), None).unwrap();
    let stored: Vec<&str> = notes.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(stored.iter().copied().collect::<BTreeSet<_>>().len(), stored.len(), "a note stored twice");
    assert_eq!(
        stored.iter().copied().collect::<BTreeSet<_>>(),
        tally.logged.iter().map(String::as_str).collect()
    );
    let chat = history.messages(&SessionName::new("chat").unwrap(), None).unwrap();
    let asked: BTreeSet<&str> = chat
        .iter()
        .filter(|m| m.role == Role::User && m.status == MessageStatus::Ok)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(asked, tally.injected.iter().map(String::as_str).collect());
    assert_eq!(chat.iter().filter(|m| m.role == Role::Assistant).count(), tally.injected.len());
    assert!(history.messages(&SessionName::new("secret").unwrap(), None).unwrap().is_empty());
}
