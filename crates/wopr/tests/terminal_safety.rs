//! Strings a peer chooses (session names, refusal and reject messages, the sessions an issuer says a
//! claim gave) never reach the terminal raw: human output carries no ESC byte, `--json` stays exact.
//! The other side is hand-built on `wopr-proto` over a raw iroh connection, so it can send what an
//! honest node never would: a stranger injecting into a session named with a terminal escape, and an
//! issuer whose answers are made of them.

mod common;
#[path = "common/raw_peer.rs"]
mod raw_peer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestHome, stderr, stdout};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use raw_peer::{RawPeer, endpoint, read_frame};
use serde_json::Value;
use wopr_identity::{Identity, PublicId};
use wopr_proto::frame::encode_frame;
use wopr_proto::handshake::{self, HandshakeMessage, HandshakeRandom, Reject};
use wopr_proto::invite::{Capabilities, NewInvite};
use wopr_proto::message::{Envelope, ErrorMessage, Inject, Log, Message};
use wopr_proto::{Decode, Encode, ErrorCode};

/// Sets the window title on most terminals.
const HOSTILE: &str = "\x1b]0;x\x07";

fn wopr(h: &TestHome) -> assert_cmd::Command {
    let mut c = h.wopr();
    c.env("WOPR_P2P_RELAY", "disabled").env("WOPR_P2P_BIND", "127.0.0.1:0").timeout(Duration::from_secs(120));
    c
}

/// Runs `wopr` and checks that neither output stream holds an ESC byte.
fn no_escape(h: &TestHome, args: &[&str]) -> std::process::Output {
    let out = wopr(h).args(args).output().unwrap();
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "`wopr {}` wrote a raw ESC to {name}: {:?}",
            args.join(" "),
            String::from_utf8_lossy(bytes)
        );
    }
    out
}

fn envelope(message: Message) -> Envelope {
    Envelope::new(wopr_identity::random_bytes(), wopr_store::now_ms(), message)
}

/// A stranger (no grant) sends `message`, signed, to `victim` at `addr`, and returns the reply.
async fn stranger_sends(victim: PublicId, addr: SocketAddr, message: Message) -> Message {
    let mut peer = RawPeer::connect(Identity::generate(), victim, addr).await;
    let env = peer.signed(message);
    peer.send(&env).await.pop().expect("the victim answers")
}

/// A hostile issuer: grants every claim the sessions of its own token (whatever they are called),
/// refuses everything else with [`HOSTILE`] in the message, and once `reject_handshakes` is set answers
/// handshakes with a `Reject` made of it.
#[derive(Debug, Clone)]
struct HostileIssuer {
    identity: Arc<Identity>,
    reject_handshakes: Arc<AtomicBool>,
}

impl ProtocolHandler for HostileIssuer {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let remote = PublicId(*conn.remote_id().as_bytes());
        let Ok((mut send, mut recv)) = conn.accept_bi().await else { return Ok(()) };
        let Some(hello) = read_frame(&mut recv).await else { return Ok(()) };
        let Ok(HandshakeMessage::Hello(hello)) = HandshakeMessage::from_bytes(&hello) else { return Ok(()) };
        if self.reject_handshakes.load(Ordering::SeqCst) {
            let reject = Reject { code: ErrorCode::Rejected, message: format!("{HOSTILE} go away") };
            let _ =
                send.write_all(&encode_frame(&HandshakeMessage::Reject(reject).to_bytes()).unwrap()).await;
            let _ = send.finish();
            conn.closed().await;
            return Ok(());
        }
        let now = wopr_store::now_ms();
        let (ack, mut session) =
            handshake::respond(&self.identity, &remote, &hello, HandshakeRandom::generate(), now).unwrap();
        let _ = send.write_all(&encode_frame(&HandshakeMessage::HelloAck(ack).to_bytes()).unwrap()).await;
        let _ = send.finish();
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let (mut seal, mut open) = session.stream_channel(u64::from(send.id())).unwrap();
            let Some(frame) = read_frame(&mut recv).await else { continue };
            let request = Envelope::from_bytes(&open.open(&frame).unwrap()).unwrap().message;
            let reply = match request {
                Message::Claim(claim) => Message::ClaimAccepted {
                    sessions: claim.token.sessions.clone(),
                    capabilities: claim.token.capabilities,
                },
                _ => Message::Error(ErrorMessage {
                    code: ErrorCode::Rejected,
                    message: format!("{HOSTILE} no"),
                    retry_after_ms: None,
                }),
            };
            let _ = send.write_all(&seal.seal_frame(&envelope(reply).to_bytes()).unwrap()).await;
            let _ = send.finish();
        }
        Ok(())
    }
}

/// A `wop1://` invite from `issuer` for `subject` to `sessions`, as a hostile issuer may sign it.
fn hostile_invite(issuer: &Identity, subject: PublicId, sessions: &[&str], addr: SocketAddr) -> String {
    let sessions = sessions.iter().map(|s| s.to_string()).collect();
    let now = wopr_store::now_ms();
    let mut invite = NewInvite::new(
        subject,
        sessions,
        Capabilities::MESSAGE.union(Capabilities::INJECT),
        now,
        wopr_identity::random_bytes(),
    );
    invite.hints = vec![addr.to_string()];
    invite.sign(issuer).unwrap().to_uri()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn a_strangers_session_name_reaches_the_audit_escaped_and_the_json_exact() {
    let a = TestHome::new();
    wopr(&a).args(["id", "init"]).assert().success();
    wopr(&a).args(["session", "create", "s", "ctx"]).assert().success();
    wopr(&a).args(["daemon", "start"]).assert().success();
    let _stop = StopDaemon(&a);
    let me = Identity::generate();
    // An invite only to learn where A listens: nobody claims it, so the sender stays a stranger.
    let token = stdout(&wopr(&a).args(["invite", &me.public_id().to_hex(), "s"]).output().unwrap());
    let token = wopr_p2p::parse_invite(token.trim()).unwrap();
    let addr: SocketAddr = token.hints.iter().find_map(|h| h.parse().ok()).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    for message in [Message::Inject(Inject::new(HOSTILE, "hi", 0)), Message::Log(Log::new(HOSTILE, "hi"))] {
        match rt.block_on(stranger_sends(token.issuer, addr, message)) {
            Message::Error(e) => assert_eq!(e.code, ErrorCode::Unauthorized),
            other => panic!("a stranger was answered with {other:?}"),
        }
    }

    let text = stdout(&no_escape(&a, &["audit"]));
    assert!(text.contains("\u{FFFD}]0;x\u{FFFD}"), "the refused requests are listed, escaped: {text}");
    let entries = json_of(&no_escape(&a, &["audit", "--json"]));
    let hostile = entries.as_array().unwrap().iter().filter(|e| e["session"] == HOSTILE).count();
    assert_eq!(hostile, 2, "--json keeps the exact name: {entries}");
    no_escape(&a, &["daemon", "logs"]);
}

#[test]
fn a_hostile_issuers_names_and_refusals_never_reach_the_terminal_raw() {
    let b = TestHome::new();
    wopr(&b).args(["id", "init"]).assert().success();
    let pb = PublicId::parse(
        json_of(&wopr(&b).args(["id", "--json"]).output().unwrap())["publicKey"].as_str().unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = Arc::new(Identity::generate());
    let reject_handshakes = Arc::new(AtomicBool::new(false));
    let handler = HostileIssuer { identity: issuer.clone(), reject_handshakes: reject_handshakes.clone() };
    let router = rt.block_on(async {
        let ep = endpoint(&issuer).await;
        Router::builder(ep).accept(wopr_proto::ALPN, handler).spawn()
    });
    let addr = rt.block_on(async { router.endpoint().bound_sockets()[0] });

    // The issuer's answer names a session with a terminal escape: refused, shown escaped, not stored.
    let out = no_escape(&b, &["invite", "claim", &hostile_invite(&issuer, pb, &[HOSTILE], addr)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid session name"), "{}", stderr(&out));
    let peers = no_escape(&b, &["peers"]);
    assert!(stdout(&peers).contains("nobody"), "nothing was stored: {}", stdout(&peers));
    assert_eq!(json_of(&no_escape(&b, &["peers", "--json"])), Value::Array(vec![]));

    // A valid claim, then the issuer's refusals: an `Error` and a handshake `Reject`, both hostile.
    no_escape(&b, &["invite", "claim", &hostile_invite(&issuer, pb, &["ok"], addr)]);
    let listed = stdout(&no_escape(&b, &["peers"]));
    assert!(listed.contains("ok"), "{listed}");
    let target = format!("{}:ok", issuer.public_id().short());
    let refused = no_escape(&b, &["inject", &target, "hello"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("\u{FFFD}]0;x\u{FFFD} no"), "{}", stderr(&refused));
    reject_handshakes.store(true, Ordering::SeqCst);
    let rejected = no_escape(&b, &["inject", &target, "hello"]);
    assert!(!rejected.status.success());
    assert!(stderr(&rejected).contains("go away"), "{}", stderr(&rejected));
    rt.block_on(async { router.shutdown().await.unwrap() });
}

struct StopDaemon<'a>(&'a TestHome);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let _ = wopr(self.0).args(["daemon", "stop"]).output();
    }
}
