//! Crash safety: `wopr` processes are killed with SIGKILL at random points (seeded; the seed is printed,
//! `WOPR_CRASH_SEED=<n>` replays a run) while they inject (a scripted OpenAI-compatible model), log, grant,
//! revoke, rotate, claim invites, and while the daemon serves a peer. After every kill the home must still
//! open and hold everything that was acknowledged: no JSON document torn or left group/world readable, no
//! grant lost or duplicated, no half-written turn in the history, and no temp file left behind once the
//! document it belonged to has been written again.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{StopDaemon, TestHome, mode};
use serde_json::{Value, json};
use test_support::{FixtureServer, Reply};
use wopr_identity::PublicId;
use wopr_store::{Capability, Home, MessageStatus, Role, SessionName};

/// Kills each run must see, at least.
const KILLS: usize = 50;

/// A small seeded generator (splitmix64): the same seed gives the same kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("WOPR_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash seed {seed} (replay with WOPR_CRASH_SEED={seed})");
    seed
}

/// How a process ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Exited by itself, successfully: what it did is acknowledged.
    Done,
    /// Exited by itself with an error.
    Failed,
    /// Killed by us.
    Killed,
}

/// Waits for `child` until `after`, then kills it with SIGKILL if it is still running.
fn kill_after(mut child: Child, after: Duration) -> Ended {
    let deadline = Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return if status.success() { Ended::Done } else { Ended::Failed };
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return Ended::Killed;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// An OpenAI chat-completions stream answering `text`, in small pieces.
fn answer(text: &str) -> Reply {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fixture",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = String::new();
    for word in text.split(' ') {
        body.push_str(&format!("data: {}\n\n", chunk(json!({"content": format!("{word} ")}), None)));
    }
    body.push_str(&format!("data: {}\n\ndata: [DONE]\n\n", chunk(json!({}), Some("stop"))));
    Reply::new(200).header("content-type", "text/event-stream").body(body).in_chunks(64)
}

/// What the test knows must (or must not) be granted, from acknowledged operations only.
#[derive(Default)]
struct Expected {
    granted: BTreeSet<(PublicId, String)>,
    revoked: BTreeSet<PublicId>,
}

impl Expected {
    fn grant(&mut self, key: PublicId, session: &str) {
        self.revoked.remove(&key);
        self.granted.insert((key, session.to_string()));
    }

    fn revoke(&mut self, key: PublicId) {
        self.granted.retain(|(k, _)| *k != key);
        self.revoked.insert(key);
    }

    /// A grant that may or may not have happened.
    fn unsure_grant(&mut self, key: PublicId) {
        self.revoked.remove(&key);
    }

    /// A revoke that may or may not have happened.
    fn unsure_revoke(&mut self, key: PublicId) {
        self.granted.retain(|(k, _)| *k != key);
    }
}

/// Every invariant of a home after a crash. `expected` is checked against `access.json`.
fn check_home(home: &Home, expected: &Expected, context: &str) {
    let root = home.root();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let text = std::fs::read(&path).unwrap();
            serde_json::from_slice::<Value>(&text).unwrap_or_else(|e| {
                panic!("{context}: {name} is torn ({e}): {}", String::from_utf8_lossy(&text))
            });
        }
    }
    for secret in ["identity.json", "access.json", "peers.json"] {
        let path = root.join(secret);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{context}: {secret} is not 0600");
        }
    }
    home.load_identity().unwrap_or_else(|e| panic!("{context}: identity: {e}")).expect("an identity");

    let access = home.access().load().unwrap_or_else(|e| panic!("{context}: access.json: {e}"));
    let mut seen = BTreeSet::new();
    for g in &access.grants {
        assert!(
            seen.insert((g.peer_key, g.capabilities.clone())),
            "{context}: a duplicated grant for {} {:?}",
            g.peer_key.short(),
            g.capabilities
        );
    }
    let now = wopr_store::now_ms();
    for (key, session) in &expected.granted {
        assert!(
            !access.capabilities(key, session, now).is_empty(),
            "{context}: the acknowledged grant of {session} to {} is lost",
            key.short()
        );
    }
    for key in &expected.revoked {
        assert_eq!(
            access.grants_of(key, now).count(),
            0,
            "{context}: {} is revoked but still granted",
            key.short()
        );
    }

    let history = home.history().unwrap_or_else(|e| panic!("{context}: wopr.db: {e}"));
    for (name, _) in home.sessions().list().unwrap_or_else(|e| panic!("{context}: sessions: {e}")) {
        check_turns(&history, &name, context);
    }
    home.audit().unwrap().list(None, Some(5)).unwrap_or_else(|e| panic!("{context}: audit log: {e}"));
    home.peers().load().unwrap_or_else(|e| panic!("{context}: peers.json: {e}"));
}

/// No answer without its user message: every assistant or tool message follows, through other answers,
/// a user message that is `ok` (a turn's answer and its question's status are written together).
fn check_turns(history: &wopr_store::History, session: &SessionName, context: &str) {
    let mut asked: Option<MessageStatus> = None;
    for m in history.messages(session, None).unwrap() {
        match m.role {
            Role::User => asked = Some(m.status),
            Role::Assistant | Role::Tool => assert_eq!(
                asked,
                Some(MessageStatus::Ok),
                "{context}: in {session}, answer {} follows no answered question",
                m.id
            ),
        }
    }
}

/// Temp files of JSON documents (`.<name>.tmp-<pid>-<n>`) in the home.
fn temp_files(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
        .collect()
}

fn key() -> PublicId {
    wopr_identity::Identity::generate().public_id()
}

/// One kind of work the test interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Inject,
    Log,
    Grant,
    Revoke,
    Rotate,
}

const OPS: [Op; 5] = [Op::Inject, Op::Log, Op::Grant, Op::Revoke, Op::Rotate];

#[test]
fn sigkill_at_random_points_never_corrupts_the_store_or_loses_what_was_acknowledged() {
    let mut rng = Rng(seed());
    let h = TestHome::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let model =
        rt.block_on(FixtureServer::start((0..400).map(|i| answer(&format!("answer number {i} here")))));
    let url = format!("{}/v1", model.url());
    let wopr = |args: &[&str]| {
        let mut c = h.command();
        c.env("OPENAI_COMPATIBLE_BASE_URL", &url).env("OPENAI_COMPATIBLE_MODEL", "fixture").args(args);
        c
    };
    let run = |args: &[&str]| {
        let out = wopr(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["id", "init"]);
    run(&["session", "create", "s", "Be brief.", "--provider", "openai-compatible"]);
    for i in 0..4 {
        run(&["session", "create", &format!("g{i}"), "Granted."]);
    }
    // A large access.json makes every write of it take long enough for kills to land inside it.
    let home = Home::at(h.path());
    for _ in 0..300 {
        home.access().add(wopr_store::Grant::new(key(), ["g0".into()], [Capability::Message], 0)).unwrap();
    }
    let peers: Vec<PublicId> = (0..6).map(|_| key()).collect();
    let mut expected = Expected::default();

    // How long each operation takes when nobody kills it: kills land anywhere in that span.
    let command = |op: Op, i: usize, rng: &mut Rng| -> (Command, Option<(PublicId, String)>) {
        let peer = peers[rng.below(peers.len() as u64) as usize];
        let session = format!("g{}", rng.below(4));
        let cap = if rng.below(2) == 0 { "message" } else { "inject" };
        match op {
            Op::Inject => (wopr(&["session", "inject", "s", &format!("question {i}")]), None),
            Op::Log => (wopr(&["session", "log", "s", &format!("note {i}")]), None),
            Op::Grant => {
                (wopr(&["access", "grant", &peer.to_hex(), &session, "--cap", cap]), Some((peer, session)))
            }
            Op::Revoke => (wopr(&["revoke", &peer.to_hex()]), Some((peer, String::new()))),
            Op::Rotate => (wopr(&["id", "rotate"]), None),
        }
    };
    let mut spans = Vec::new();
    for op in OPS {
        let (cmd, target) = command(op, 0, &mut rng);
        let started = Instant::now();
        let ended = kill_after(spawn(cmd), Duration::from_secs(60));
        spans.push(started.elapsed());
        match (op, target) {
            (Op::Grant, Some((peer, session))) if ended == Ended::Done => expected.grant(peer, &session),
            (Op::Revoke, Some((peer, _))) if ended == Ended::Done => expected.revoke(peer),
            _ => {}
        }
        assert!(ended != Ended::Killed, "{op:?} did not finish in 60 s");
        check_home(&home, &expected, &format!("{op:?} run to its end"));
    }

    let mut kills = 0;
    let mut killed: Vec<Op> = Vec::new();
    let mut round = 0;
    while kills < KILLS {
        round += 1;
        assert!(round < 20 * KILLS, "only {kills} of {round} rounds ended in a kill");
        let which = rng.below(OPS.len() as u64) as usize;
        let op = OPS[which];
        let span = spans[which].as_micros() as u64;
        let after = Duration::from_micros(rng.below(span + span / 4));
        let (cmd, target) = command(op, round, &mut rng);
        let ended = kill_after(spawn(cmd), after);
        match (op, &ended, target) {
            (Op::Grant, Ended::Done, Some((peer, session))) => expected.grant(peer, &session),
            (Op::Grant, Ended::Killed, Some((peer, _))) => expected.unsure_grant(peer),
            (Op::Revoke, Ended::Done, Some((peer, _))) => expected.revoke(peer),
            (Op::Revoke, Ended::Killed, Some((peer, _))) => expected.unsure_revoke(peer),
            _ => {}
        }
        if ended == Ended::Killed {
            kills += 1;
            killed.push(op);
        }
        check_home(&home, &expected, &format!("round {round}: {op:?} {ended:?} after {after:?}"));
    }

    let count = |op: Op| killed.iter().filter(|k| **k == op).count();
    eprintln!("{kills} kills in {round} rounds: {:?}", OPS.map(|op| (op, count(op))));
    // Everything still works, and writing each document again leaves none of the killed writers' files.
    run(&["session", "log", "s", "after the crashes"]);
    run(&["access", "grant", &peers[0].to_hex(), "g1", "--cap", "message"]);
    expected.grant(peers[0], "g1");
    run(&["id", "rotate"]);
    run(&["session", "create", "last", "One more."]);
    check_home(&home, &expected, "after the crashes");
    assert_eq!(
        temp_files(h.path().as_path()),
        Vec::<String>::new(),
        "killed writers' temp files were left behind"
    );
}

/// A free UDP port on 127.0.0.1, so a restarted daemon listens where its peers remember it.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the daemon of `home` with SIGKILL and waits until it is gone.
fn kill_daemon(home: &Home) {
    let Some(pid) = wopr_daemon::lifecycle::running_pid(home) else { return };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    while wopr_daemon::lifecycle::alive(pid) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a peer-facing round interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerOp {
    /// The peer claims an invite; the peer's process is killed.
    Claim,
    /// The peer injects; the peer's process is killed.
    PeerInject,
    /// The peer injects; the daemon answering it is killed, then started again.
    DaemonDuringInject,
    /// The peer logs a message; the daemon is killed, then started again.
    DaemonDuringLog,
    /// The peer rotates its key and broadcasts it; the peer's process is killed.
    Rotate,
}

const PEER_OPS: [PeerOp; 5] =
    [PeerOp::Claim, PeerOp::PeerInject, PeerOp::DaemonDuringInject, PeerOp::DaemonDuringLog, PeerOp::Rotate];

#[test]
fn sigkill_of_a_daemon_or_its_peer_mid_request_loses_no_grant_and_leaves_no_half_turn() {
    let mut rng = Rng(seed());
    let (a, b) = (TestHome::new(), TestHome::new());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let model = rt.block_on(FixtureServer::start((0..1000).map(|i| answer(&format!("peer answer {i}")))));
    let bind = format!("127.0.0.1:{}", free_port());
    let cmd = |h: &TestHome, args: &[&str]| {
        let mut c = h.command();
        c.env("WOPR_P2P_RELAY", "disabled")
            .env("WOPR_P2P_BIND", "127.0.0.1:0")
            .env("OPENAI_COMPATIBLE_BASE_URL", format!("{}/v1", model.url()))
            .env("OPENAI_COMPATIBLE_MODEL", "fixture")
            .args(args);
        c
    };
    let out = |h: &TestHome, args: &[&str]| {
        let o = cmd(h, args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let start_daemon = || {
        let mut c = cmd(&a, &["daemon", "start"]);
        c.env("WOPR_P2P_BIND", &bind);
        let o = c.output().unwrap();
        assert!(o.status.success(), "daemon start: {}", String::from_utf8_lossy(&o.stderr));
    };
    let (home_a, home_b) = (Home::at(a.path()), Home::at(b.path()));
    out(&a, &["id", "init"]);
    out(&b, &["id", "init"]);
    out(&a, &["session", "create", "s", "Be brief.", "--provider", "openai-compatible"]);
    for i in 0..4 {
        out(&a, &["session", "create", &format!("p{i}"), "Notes."]);
    }
    start_daemon();
    let _stop = StopDaemon(&a);
    let sa = home_a.load_identity().unwrap().unwrap().identity.public_id().short();
    let b_key = || home_b.load_identity().unwrap().unwrap().identity.public_id();
    let original_b = b_key();
    let invite = |session: &str, cap: &str| {
        out(&a, &["invite", &b_key().to_hex(), session, "--cap", cap]).trim().to_string()
    };
    out(&b, &["invite", "claim", &invite("s", "inject")]);
    let mut expected = Expected::default();
    expected.grant(original_b, "s");

    let peer_command = |op: PeerOp, i: u64, rng: &mut Rng| match op {
        PeerOp::Claim => cmd(&b, &["invite", "claim", &invite(&format!("p{}", rng.below(4)), "message")]),
        PeerOp::PeerInject | PeerOp::DaemonDuringInject => {
            cmd(&b, &["inject", &format!("{sa}:s"), &format!("question {i}")])
        }
        PeerOp::DaemonDuringLog => cmd(&b, &["inject", &format!("{sa}:p0"), &format!("note {i}")]),
        PeerOp::Rotate => cmd(&b, &["id", "rotate", "--broadcast"]),
    };
    out(&b, &["invite", "claim", &invite("p0", "message")]);
    expected.grant(original_b, "p0");
    // The span of each operation when nobody is killed.
    let mut spans = Vec::new();
    for (i, op) in PEER_OPS.into_iter().enumerate() {
        let started = Instant::now();
        let ended = kill_after(spawn(peer_command(op, i as u64, &mut rng)), Duration::from_secs(60));
        assert_eq!(ended, Ended::Done, "{op:?} run to its end");
        spans.push(started.elapsed());
    }
    let check = |expected: &Expected, context: &str| {
        check_home(&home_a, expected, context);
        let peers = home_b.peers().load().unwrap_or_else(|e| panic!("{context}: B's peers.json: {e}"));
        let keys: BTreeSet<_> = peers.peers.iter().map(|p| p.public_key).collect();
        assert_eq!(keys.len(), peers.peers.len(), "{context}: B records A twice");
        assert_eq!(mode(&b.file("identity.json")), 0o600, "{context}: B's identity.json");
        // B can still reach A and be answered, under whichever key it holds now.
        let o = cmd(&b, &["inject", &format!("{sa}:s"), "still there?"]).output().unwrap();
        assert!(
            o.status.success(),
            "{context}: B's inject after the crash: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };

    let mut kills = 0;
    let mut killed: Vec<PeerOp> = Vec::new();
    let mut round = 0u64;
    while kills < 20 {
        round += 1;
        assert!(round < 200, "only {kills} of {round} rounds ended in a kill");
        let which = rng.below(PEER_OPS.len() as u64) as usize;
        let op = PEER_OPS[which];
        let span = spans[which].as_micros() as u64;
        let after = Duration::from_micros(rng.below(span + span / 4));
        let peer = spawn(peer_command(op, round, &mut rng));
        let ended = match op {
            PeerOp::DaemonDuringInject | PeerOp::DaemonDuringLog => {
                std::thread::sleep(after);
                let was_running = wopr_daemon::lifecycle::running_pid(&home_a).is_some();
                kill_daemon(&home_a);
                // The peer may wait for a connection that will never answer: give it a moment, then stop it.
                kill_after(peer, Duration::from_secs(2));
                start_daemon();
                if was_running { Ended::Killed } else { Ended::Failed }
            }
            _ => kill_after(peer, after),
        };
        if op == PeerOp::Claim && ended == Ended::Killed {
            expected.unsure_grant(original_b);
        }
        if ended == Ended::Killed {
            kills += 1;
            killed.push(op);
        }
        check(&expected, &format!("round {round}: {op:?} {ended:?} after {after:?}"));
    }
    let count = |op: PeerOp| killed.iter().filter(|k| **k == op).count();
    eprintln!("{kills} kills in {round} rounds: {:?}", PEER_OPS.map(|op| (op, count(op))));
    check(&expected, "after the crashes");
}
