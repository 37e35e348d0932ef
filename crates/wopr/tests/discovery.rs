//! Discovery through the CLI, as separate processes with separate homes on loopback, relays off, LAN and
//! DHT off: three installations meet in a topic through one bootstrap node (no invite), see each other's
//! profiles, connect, become friends, and leave; a foreground `discover join` without a daemon lists what
//! appears and withdraws on Ctrl+C; bad input and a missing daemon get clear errors and exit codes.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{StopDaemon, TestHome, mode, stderr, stdout, test_model};
use serde_json::Value;

/// The signal number of Ctrl+C.
const SIGINT: i32 = 2;

/// Generous: CI machines are loaded. Tests wait for a state, never assert on time.
const DEADLINE: Duration = Duration::from_secs(60);

/// `wopr` for `h`, as the acceptance flow runs it: relays off, loopback only.
fn wopr(h: &TestHome) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(command(h));
    c.timeout(Duration::from_secs(120));
    c
}

/// The same as [`wopr`], as a plain command to spawn as a child process.
fn command(h: &TestHome) -> std::process::Command {
    let mut c = h.command();
    c.env("WOPR_P2P_RELAY", "disabled")
        .env("WOPR_P2P_BIND", "127.0.0.1:0")
        .env("WOPR_MODEL", test_model())
        .env("WOPR_THREADS", "1")
        .env_remove("WOPR_TOPICS");
    c
}

/// Runs `wopr args` in `h`, expecting success, and parses its stdout as JSON.
fn json(h: &TestHome, args: &[&str]) -> Value {
    let out = wopr(h).args(args).output().unwrap();
    assert!(out.status.success(), "wopr {}: {}", args.join(" "), stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("wopr {} printed no JSON ({e}): {}", args.join(" "), stdout(&out)))
}

/// A fresh home with an identity, discovery limited to what the test configures.
fn installation() -> TestHome {
    let h = TestHome::new();
    wopr(&h).args(["id", "init"]).assert().success();
    wopr(&h).args(["config", "set", "discover.mdns", "false"]).assert().success();
    wopr(&h).args(["config", "set", "discover.dht", "false"]).assert().success();
    h
}

fn short_id(h: &TestHome) -> String {
    json(h, &["id", "--json"])["shortId"].as_str().unwrap().to_string()
}

fn public_key(h: &TestHome) -> String {
    json(h, &["id", "--json"])["publicKey"].as_str().unwrap().to_string()
}

/// Starts the daemon of `h` in `topic`; stopped when the guard drops.
fn start_daemon<'a>(h: &'a TestHome, topic: &str) -> StopDaemon<'a> {
    let out = wopr(h).env("WOPR_TOPICS", topic).args(["daemon", "start"]).output().unwrap();
    assert!(out.status.success(), "daemon start: {}", stderr(&out));
    StopDaemon(h)
}

fn ticket(h: &TestHome) -> String {
    let status = json(h, &["daemon", "status", "--json"]);
    let t = status["ticket"].as_str().expect("daemon status --json has a ticket").to_string();
    assert!(t.starts_with("endpoint"), "{t}");
    t
}

fn bootstrap_from(h: &TestHome, ticket: &str) {
    let list = serde_json::to_string(&[ticket]).unwrap();
    wopr(h).args(["config", "set", "discover.bootstrap", &list]).assert().success();
}

/// The peers `h`'s daemon lists in `topic`.
fn peers_in(h: &TestHome, topic: &str) -> Vec<Value> {
    json(h, &["discover", "peers", topic, "--json"]).as_array().cloned().expect("an array of peers")
}

fn lists(peers: &[Value], short: &str) -> bool {
    peers.iter().any(|p| p["id"] == short)
}

/// Polls `cond` until it holds; panics with `what` after the deadline.
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A unique topic name per run, so parallel test runs never meet.
fn topic(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

#[test]
fn three_installations_meet_in_a_topic_connect_and_become_friends_through_the_cli() {
    let (a, b, c) = (installation(), installation(), installation());
    let (sa, sb, sc) = (short_id(&a), short_id(&b), short_id(&c));
    let topic = topic("bars");

    // Without a daemon, nobody holds the topic: exit 1 and the way to start one.
    let out = wopr(&c).args(["discover", "peers", &topic]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("WOPR_TOPICS=<topic> wopr daemon start"), "{}", stderr(&out));
    // A profile that is not JSON is refused and nothing is stored.
    let out = wopr(&b).args(["discover", "profile", "set", "not json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("must be JSON"), "{}", stderr(&out));
    let config: Value = serde_json::from_slice(&std::fs::read(b.file("config.json")).unwrap()).unwrap();
    assert!(config["discover"].get("profile").is_none(), "a refused profile was stored: {config}");

    let _a_daemon = start_daemon(&a, &topic);
    let ticket = ticket(&a);
    bootstrap_from(&b, &ticket);
    bootstrap_from(&c, &ticket);
    wopr(&b).args(["discover", "profile", "set", r#"{"name":"Bob","skills":["review"]}"#]).assert().success();
    let _b_daemon = start_daemon(&b, &topic);
    let _c_daemon = start_daemon(&c, &topic);

    until("C lists A and B in the topic", || {
        let peers = peers_in(&c, &topic);
        lists(&peers, &sa) && lists(&peers, &sb)
    });
    let peers = peers_in(&c, &topic);
    let bob = peers.iter().find(|p| p["id"] == sb.as_str()).unwrap();
    assert_eq!(bob["content"], serde_json::json!({"name": "Bob", "skills": ["review"]}));
    assert_eq!(bob["topic"], topic.as_str());
    assert!(!lists(&peers, &sc), "C lists itself: {peers:?}");

    let topics = stdout(&wopr(&a).args(["discover", "topics"]).output().unwrap());
    assert!(topics.contains(&topic), "{topics}");
    let topics = json(&a, &["discover", "topics", "--json"]);
    assert_eq!(topics[0]["name"], topic.as_str());

    let status = json(&c, &["discover", "status", "--json"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["sources"]["staticNodes"]["enabled"], true);
    assert_eq!(status["sources"]["staticNodes"]["found"], 1);
    assert_eq!(status["sources"]["mdns"]["enabled"], false);
    assert_eq!(status["sources"]["dht"]["enabled"], false);

    // Connecting to someone nobody has seen is bad input, not a network failure.
    let out = wopr(&c).args(["discover", "connect", "nobody"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // Connect leaves what a claimed invite leaves: a grant on A, a peer on C.
    wopr(&a).args(["config", "set", "discover.accept", "auto"]).assert().success();
    let out = wopr(&c).args(["discover", "connect", &sa]).output().unwrap();
    assert!(out.status.success(), "connect: {}", stderr(&out));
    assert!(stdout(&out).contains(&format!("Connected: {sa} accepted")), "{}", stdout(&out));
    let pc = public_key(&c);
    let access = json(&a, &["access", "--json"]);
    let grant = access.as_array().unwrap().iter().find(|g| g["peerKey"] == pc.as_str());
    let grant = grant.unwrap_or_else(|| panic!("A has no grant for C: {access}"));
    assert_eq!(grant["capabilities"], serde_json::json!(["message"]), "{grant}");
    let peers = json(&c, &["peers", "--json"]);
    assert!(peers.to_string().contains(&public_key(&a)), "C has no peer A: {peers}");

    // Friends through the CLI: A accepts anyone, B asks, both list the friendship.
    wopr(&a).args(["friend", "auto-accept", "add", "*"]).assert().success();
    let out = wopr(&b).args(["friend", "request", &sa, "--json"]).output().unwrap();
    assert!(out.status.success(), "friend request: {}", stderr(&out));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], "accepted", "{reply}");
    let pb = public_key(&b);
    until("A lists B as a friend", || {
        json(&a, &["friend", "list", "--json"])["friends"].to_string().contains(&sb)
    });
    let friends = json(&a, &["friend", "list", "--json"]);
    assert_eq!(friends["autoAccept"], serde_json::json!(["*"]));
    let bob = friends["friends"].as_array().unwrap().iter().find(|f| f["publicKey"] == pb.as_str());
    let bob = bob.unwrap_or_else(|| panic!("A's friends lack B's key: {friends}"));
    // B named itself by its profile's name; the short id keeps two "Bob"s apart.
    let session = format!("friend:p2p:Bob({sb})");
    assert_eq!(bob["session"], session.as_str(), "{bob}");
    let sessions = json(&a, &["session", "list", "--json"]);
    assert!(
        sessions.as_array().unwrap().iter().any(|s| s["name"] == session.as_str()),
        "no {session} session on A: {sessions}"
    );
    assert_eq!(mode(&a.file("friends.json")), 0o600);
    assert_eq!(mode(&b.file("friends.json")), 0o600);
    until("B lists A as a friend", || {
        json(&b, &["friend", "list", "--json"])["friends"].to_string().contains(&sa)
    });

    // Leaving withdraws: C hears A withdraw (not expire) and drops it.
    let mut on_c = Running::watch(&c, &topic);
    on_c.wait_for_event("appeared", &sa);
    let out = wopr(&a).args(["discover", "leave", &topic]).output().unwrap();
    assert!(out.status.success(), "leave: {}", stderr(&out));
    assert!(json(&a, &["discover", "topics", "--json"]).as_array().unwrap().is_empty());
    let gone = on_c.wait_for_event("gone", &sa);
    assert_eq!(gone["why"], "withdrawn", "{gone}");
    assert!(!lists(&peers_in(&c, &topic), &sa));
    // Leaving a topic one is not in is bad input.
    let out = wopr(&a).args(["discover", "leave", &topic]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// A `wopr` child process whose stdout lines are read on a thread, so the test can wait for one with a
/// deadline. Killed on drop if the test fails before it ends.
struct Running {
    child: Option<Child>,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: std::process::Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child: Some(child), rx, seen: Vec::new() }
    }

    /// `wopr discover join <topic> --json` against the daemon of `h`: its discovery events, one JSON
    /// object a line.
    fn watch(h: &TestHome, topic: &str) -> Running {
        let mut cmd = command(h);
        cmd.args(["discover", "join", topic, "--json"]);
        Running::spawn(cmd)
    }

    /// Waits for a line for which `want` holds; panics with everything printed after the deadline.
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {what} within {DEADLINE:?}; printed: {:?}", self.seen),
            }
        }
    }

    /// Waits for the event `kind` about the peer `short`.
    fn wait_for_event(&mut self, kind: &str, short: &str) -> Value {
        let line = self.wait_for(&format!("event {kind} of {short}"), |l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|ev| ev["event"] == kind && (ev["id"] == short || ev["peer"]["id"] == short))
        });
        serde_json::from_str(&line).unwrap()
    }

    /// Sends SIGINT (Ctrl+C) and waits for the process to end; returns its status and stderr.
    fn interrupt(&mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("still running");
        let pid = child.id().to_string();
        let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "cannot send SIGINT to {pid}");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the process did not exit within {DEADLINE:?} of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_foreground_join_without_a_daemon_lists_peers_and_withdraws_on_ctrl_c() {
    let (a, d) = (installation(), installation());
    let (sa, sd) = (short_id(&a), short_id(&d));
    let topic = topic("lobby");
    wopr(&a).args(["discover", "profile", "set", r#"{"name":"Alice"}"#]).assert().success();
    let _a_daemon = start_daemon(&a, &topic);
    bootstrap_from(&d, &ticket(&a));
    wopr(&d).args(["discover", "profile", "set", r#"{"name":"Dora"}"#]).assert().success();

    let mut on_a = Running::watch(&a, &topic);
    let mut cmd = command(&d);
    cmd.args(["discover", "join", &topic]);
    let mut join = Running::spawn(cmd);
    let first = join.wait_for("Listening for peers", |l| l.contains("Listening for peers"));
    assert!(first.contains(&topic) && first.contains("Ctrl+C to exit"), "{first}");
    // A appears, with its profile, in the foreground listing.
    let appeared = join.wait_for("A appearing", |l| l.starts_with("+ ") && l.contains(&sa));
    assert!(appeared.contains("Alice") && appeared.contains(&topic), "{appeared}");
    // And the foreground node is a member like any other: A's daemon lists it with its profile.
    let seen = on_a.wait_for_event("appeared", &sd);
    assert_eq!(seen["peer"]["content"]["name"], "Dora");
    assert!(lists(&peers_in(&a, &topic), &sd));

    // Ctrl+C: the process ends cleanly, and withdraws its profile (A hears a withdrawal, not an expiry).
    let (status, err) = join.interrupt();
    assert!(status.success(), "exit after SIGINT: {status:?}, stderr: {err}");
    let gone = on_a.wait_for_event("gone", &sd);
    assert_eq!(gone["why"], "withdrawn", "{gone}");
    assert!(!lists(&peers_in(&a, &topic), &sd));
    // D had no daemon and still has none: nothing was left running.
    let out = wopr(&d).args(["daemon", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // Ctrl+C on a watcher of the daemon ends the watcher (by the signal: it holds nothing to withdraw)
    // and leaves the daemon in the topic.
    let (status, err) = on_a.interrupt();
    assert!(
        status.success() || status.signal() == Some(SIGINT),
        "watcher exit after SIGINT: {status:?}, stderr: {err}"
    );
    assert_eq!(json(&a, &["discover", "topics", "--json"])[0]["name"], topic.as_str());
}
