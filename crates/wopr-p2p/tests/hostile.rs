//! A hostile peer, built directly on `wopr-proto` over a raw iroh connection, throws forged, replayed,
//! oversized, malformed and flooding traffic at a node. The node refuses each with the right error code,
//! stays up, and keeps answering its legitimate peer.

mod common;

use common::{TestNode, befriend, inject, words};
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr, TransportAddr};
use wopr_identity::{Identity, PublicId, RotationReason, RotationRecord};
use wopr_p2p::{Clock, DoneStatus, ErrorCode, ManualClock, NodeConfig, PeerLimits, create_invite};
use wopr_proto::channel::{OpeningKey, SealingKey};
use wopr_proto::frame::{self, MAX_FRAME, MAX_PAYLOAD};
use wopr_proto::handshake::{HandshakeMessage, HandshakeRandom, Initiator, Session};
use wopr_proto::message::{Claim, Envelope, Inject, Message};
use wopr_proto::{Decode, Encode};
use wopr_store::{Capability, Decision};

/// A raw client: an iroh endpoint with its own key, speaking frames by hand.
struct Hostile {
    identity: Identity,
    endpoint: Endpoint,
}

impl Hostile {
    async fn new() -> Hostile {
        let identity = Identity::generate();
        let endpoint = common::raw_endpoint(&identity, None).await;
        Hostile { identity, endpoint }
    }

    async fn connect(&self, victim: &TestNode) -> Connection {
        let id = iroh::EndpointId::from_bytes(victim.id().as_bytes()).unwrap();
        let addr = EndpointAddr::from_parts(id, [TransportAddr::Ip(victim.socket())]);
        self.endpoint.connect(addr, wopr_proto::ALPN).await.unwrap()
    }

    /// A connection with a completed v3 handshake, signed by `signer` (normally our own identity).
    async fn handshake(
        &self,
        victim: &TestNode,
        signer: &Identity,
    ) -> (Connection, Result<Session, HandshakeMessage>) {
        self.handshake_at(victim, signer, wopr_store::now_ms()).await
    }

    /// [`Hostile::handshake`] with the clock reading `now_ms` (for victims on an injected clock).
    async fn handshake_at(
        &self,
        victim: &TestNode,
        signer: &Identity,
        now_ms: u64,
    ) -> (Connection, Result<Session, HandshakeMessage>) {
        let conn = self.connect(victim).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let (init, hello) = Initiator::start(signer, victim.id(), HandshakeRandom::generate(), now_ms);
        send.write_all(&frame::encode_frame(&HandshakeMessage::Hello(hello).to_bytes()).unwrap())
            .await
            .unwrap();
        send.finish().unwrap();
        let reply = HandshakeMessage::from_bytes(&read_frame(&mut recv).await.unwrap()).unwrap();
        let session = init.finish(&reply, now_ms).map_err(|_| reply);
        (conn, session)
    }

    /// A handshaken connection as our own identity at `now_ms`, ready for requests.
    async fn session_at(&self, victim: &TestNode, now_ms: u64) -> (Connection, Session) {
        let (conn, session) = self.handshake_at(victim, &self.identity, now_ms).await;
        (conn, session.expect("the victim completes the handshake"))
    }
}

async fn read_frame(recv: &mut iroh::endpoint::RecvStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    recv.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Opens a stream keyed like an honest client's, writes `raw` bytes, and returns the victim's first reply.
async fn send_raw(
    conn: &Connection,
    session: &mut Session,
    raw: impl FnOnce(&mut SealingKey) -> Vec<u8>,
) -> Message {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let (mut seal, mut open): (SealingKey, OpeningKey) =
        session.stream_channel(u64::from(send.id())).unwrap();
    let bytes = raw(&mut seal);
    // The victim may refuse from a frame's header and stop reading before all of it is written.
    let _ = send.write_all(&bytes).await;
    let _ = send.finish();
    let reply = read_frame(&mut recv).await.expect("the victim answers every request");
    Envelope::from_bytes(&open.open(&reply).unwrap()).unwrap().message
}

fn refusal(m: &Message) -> ErrorCode {
    match m {
        Message::Error(e) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn signed_inject(
    author: &Identity,
    victim: &PublicId,
    session: &str,
    text: &str,
    timestamp_ms: u64,
) -> Envelope {
    let mut env = Envelope::new(
        wopr_identity::random_bytes(),
        timestamp_ms,
        Message::Inject(Inject::new(session, text, 0)),
    );
    env.sign(author, victim).unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traffic_is_refused_and_the_victim_keeps_serving_its_peer() {
    let (victim, friend) = (TestNode::start().await, TestNode::start().await);
    befriend(&victim, &friend, &["dev"], &[Capability::Inject]).await;
    let hostile = Hostile::new().await;
    let me = hostile.identity.public_id();
    let now = wopr_store::now_ms;

    // Garbage instead of a Hello: a Reject (invalid), then the connection is closed.
    let conn = hostile.connect(&victim).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&frame::encode_frame(b"\xffnot a hello at all").unwrap()).await.unwrap();
    send.finish().unwrap();
    let reply = HandshakeMessage::from_bytes(&read_frame(&mut recv).await.unwrap()).unwrap();
    assert!(matches!(reply, HandshakeMessage::Reject(ref r) if r.code == ErrorCode::Invalid), "{reply:?}");
    conn.closed().await;

    // A Hello signed by a key other than the connection's: unauthorized.
    let impostor = Identity::generate();
    let (_, refused) = hostile.handshake(&victim, &impostor).await;
    assert!(matches!(refused, Err(HandshakeMessage::Reject(ref r)) if r.code == ErrorCode::Unauthorized));

    // From here on, a well-formed connection.
    let (conn, session) = hostile.handshake(&victim, &hostile.identity).await;
    let mut session = session.unwrap();
    let vid = victim.id();

    // A valid, signed inject without a grant: unauthorized. Keep its bytes for the replays below.
    let honest = signed_inject(&hostile.identity, &vid, "dev", "hi", now());
    let mut first_frame = Vec::new();
    let reply = send_raw(&conn, &mut session, |seal| {
        first_frame = seal.seal_frame(&honest.to_bytes()).unwrap();
        first_frame.clone()
    })
    .await;
    assert_eq!(refusal(&reply), ErrorCode::Unauthorized);

    // Forged signature.
    let mut forged = signed_inject(&hostile.identity, &vid, "dev", "hi", now());
    if let Message::Inject(m) = &mut forged.message {
        m.signature[0] ^= 1;
    }
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&forged.to_bytes()).unwrap()).await;
    assert_eq!(refusal(&reply), ErrorCode::Invalid);
    assert!(matches!(&reply, Message::Error(e) if e.message.contains("signature")), "{reply:?}");

    // Signed by someone else than the connection's key (say, the victim's friend, by a stolen envelope).
    let stolen = signed_inject(&Identity::generate(), &vid, "dev", "hi", now());
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&stolen.to_bytes()).unwrap()).await;
    assert_eq!(refusal(&reply), ErrorCode::Unauthorized);

    // The first sealed frame replayed on a new stream: it does not open under that stream's keys.
    let replayed_frame = first_frame.clone();
    let reply = send_raw(&conn, &mut session, |_| replayed_frame).await;
    assert_eq!(refusal(&reply), ErrorCode::Invalid);

    // The first envelope re-sealed correctly: the replay window catches the nonce.
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&honest.to_bytes()).unwrap()).await;
    assert!(
        matches!(&reply, Message::Error(e) if e.code == ErrorCode::Invalid && e.message.contains("replay")),
        "{reply:?}"
    );

    // A stale timestamp.
    let stale = signed_inject(&hostile.identity, &vid, "dev", "hi", now() - 10 * 60 * 1000);
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&stale.to_bytes()).unwrap()).await;
    assert!(
        matches!(&reply, Message::Error(e) if e.code == ErrorCode::Invalid && e.message.contains("clock")),
        "{reply:?}"
    );

    // An oversized frame length: refused from the header, before any body is read.
    let reply = send_raw(&conn, &mut session, |_| (u32::MAX).to_be_bytes().to_vec()).await;
    assert!(
        matches!(&reply, Message::Error(e) if e.code == ErrorCode::Invalid && e.message.contains("exceeds")),
        "{reply:?}"
    );
    let just_over = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes().to_vec();
    assert_eq!(refusal(&send_raw(&conn, &mut session, |_| just_over).await), ErrorCode::Invalid);

    // A payload over 1 MiB inside a frame that fits.
    let big = signed_inject(&hostile.identity, &vid, "dev", &"x".repeat(MAX_PAYLOAD + 1), now());
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&big.to_bytes()).unwrap()).await;
    assert_eq!(refusal(&reply), ErrorCode::Invalid);

    // Garbage: unsealed bytes, and sealed bytes that are no message.
    let reply = send_raw(&conn, &mut session, |_| frame::encode_frame(&[0x42; 64]).unwrap()).await;
    assert_eq!(refusal(&reply), ErrorCode::Invalid);
    let reply = send_raw(&conn, &mut session, |seal| seal.seal_frame(&[0xff; 40]).unwrap()).await;
    assert_eq!(refusal(&reply), ErrorCode::Invalid);

    // Claims: a token the victim issued to someone else, and an expired one issued to us.
    let victim_id = victim.identity();
    let hints = victim.node.addr_hints();
    let claim = |token: &str| {
        let token = wopr_proto::invite::InviteToken::decode_uri(token).unwrap();
        let mut env = Envelope::new(wopr_identity::random_bytes(), now(), Message::Claim(Claim::new(token)));
        env.sign(&hostile.identity, &vid).unwrap();
        env
    };
    let for_friend =
        create_invite(&victim_id, &friend.id(), &["dev".into()], &[Capability::Inject], None, hints.clone())
            .unwrap();
    let env = claim(&for_friend);
    assert_eq!(
        refusal(&send_raw(&conn, &mut session, |s| s.seal_frame(&env.to_bytes()).unwrap()).await),
        ErrorCode::Unauthorized
    );
    let expired =
        create_invite(&victim_id, &me, &["dev".into()], &[Capability::Inject], Some(0), hints).unwrap();
    let env = claim(&expired);
    let reply = send_raw(&conn, &mut session, |s| s.seal_frame(&env.to_bytes()).unwrap()).await;
    assert!(
        matches!(&reply, Message::Error(e) if e.code == ErrorCode::Invalid && e.message.contains("expired")),
        "{reply:?}"
    );

    // A flood, while the friend keeps talking to the victim.
    let flood = async {
        let mut limited = 0;
        for i in 0..150 {
            let env = signed_inject(&hostile.identity, &vid, "dev", &format!("flood {i}"), now());
            let reply = send_raw(&conn, &mut session, |s| s.seal_frame(&env.to_bytes()).unwrap()).await;
            match refusal(&reply) {
                ErrorCode::RateLimited => {
                    limited += 1;
                    assert!(matches!(&reply, Message::Error(e) if e.retry_after_ms.is_some()));
                }
                code => assert_eq!(code, ErrorCode::Unauthorized),
            }
        }
        limited
    };
    let legit = async {
        let mut answers = Vec::new();
        for i in 0..5 {
            let (r, deltas) = inject(&friend, &vid.to_hex(), "dev", &format!("still there {i}?")).await;
            assert_eq!(r.unwrap(), DoneStatus::Completed);
            answers.push(deltas);
        }
        answers
    };
    let (limited, answers) = tokio::join!(flood, legit);
    assert!(limited >= 30, "the flood must hit the request budget ({limited} limited)");
    assert_eq!(answers[4], words("still there 4?"));

    // Nothing from the hostile peer reached the AI; its refusals are in the audit log.
    let calls = victim.backend.injects.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c.from == friend.id()) && calls.len() == 5);
    let audit = victim.home.audit().unwrap().list(Some(&me), None).unwrap();
    assert!(audit.iter().all(|e| e.decision == Decision::Refused));
    for action in ["handshake", "inject", "frame", "claim", "request"] {
        assert!(audit.iter().any(|e| e.action == action), "no refused {action} in the audit log");
    }
    // The audit log did not grow with every flooded stream.
    assert!(audit.len() < 140, "{} audit rows", audit.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_name_that_walks_out_of_sessions_reaches_nothing() {
    let victim = TestNode::start().await;
    let hostile = Hostile::new().await;
    let now = wopr_store::now_ms;
    // The hostile peer is a granted friend of `dev`: the names below are all it can play with.
    let grant =
        wopr_store::Grant::new(hostile.identity.public_id(), ["dev".into()], [Capability::Inject], now());
    victim.home.access().add(grant).unwrap();
    let (conn, session) = hostile.handshake(&victim, &hostile.identity).await;
    let mut session = session.unwrap();

    for name in ["../dev", "dev/../dev", "../../identity.json", "sessions/dev", "dev\0", "/etc/passwd", ".."]
    {
        let env = signed_inject(&hostile.identity, &victim.id(), name, "read your keys", now());
        let reply = send_raw(&conn, &mut session, |s| s.seal_frame(&env.to_bytes()).unwrap()).await;
        assert!(
            matches!(refusal(&reply), ErrorCode::Unauthorized | ErrorCode::Invalid),
            "{name:?}: {reply:?}"
        );
    }
    assert!(victim.backend.injects.lock().unwrap().is_empty(), "nothing may reach the AI");
    // The granted name itself still works on the same connection.
    let env = signed_inject(&hostile.identity, &victim.id(), "dev", "hello", now());
    let reply = send_raw(&conn, &mut session, |s| s.seal_frame(&env.to_bytes()).unwrap()).await;
    assert!(matches!(reply, Message::InjectDelta { .. } | Message::InjectDone { .. }), "{reply:?}");
    assert_eq!(victim.backend.injects.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_flood_is_refused_at_the_handshake_naming_the_limit() {
    let victim = TestNode::start().await;
    let hostile = Hostile::new().await;
    let budget = wopr_p2p::REQUEST_LIMIT.per_minute;
    let mut refused = Vec::new();
    for _ in 0..budget + 5 {
        let (conn, session) = hostile.handshake(&victim, &hostile.identity).await;
        if let Err(reply) = session {
            refused.push(reply);
        }
        conn.close(0u32.into(), b"again");
    }
    // Every connection costs one request: exactly the budget's worth were served.
    assert_eq!(refused.len(), 5, "{refused:?}");
    for reply in &refused {
        assert!(
            matches!(reply, HandshakeMessage::Reject(r) if r.code == ErrorCode::RateLimited
                && r.message.contains("per minute") && r.message.contains("retry in")),
            "{reply:?}"
        );
    }
    // The flood is audited once, not once per connection.
    let audit = victim.home.audit().unwrap().list(Some(&hostile.identity.public_id()), None).unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "request").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_for_another_protocol_version_is_not_accepted() {
    let victim = TestNode::start().await;
    let hostile = Hostile::new().await;
    let id = iroh::EndpointId::from_bytes(victim.id().as_bytes()).unwrap();
    let addr = EndpointAddr::from_parts(id, [TransportAddr::Ip(victim.socket())]);
    for alpn in [&b"wopr/2"[..], b"wopr/1", b"wopr"] {
        let outcome = hostile.endpoint.connect(addr.clone(), alpn).await;
        assert!(outcome.is_err(), "ALPN {:?} was accepted", String::from_utf8_lossy(alpn));
    }
    // The right one still works.
    hostile.endpoint.connect(addr, wopr_proto::ALPN).await.unwrap();
}

// ---- Key rotation: budgets, grace and revocation follow the peer ------------------------------------

/// Seals `env` on a new stream and returns the victim's first reply.
async fn request(conn: &Connection, session: &mut Session, env: &Envelope) -> Message {
    send_raw(conn, session, |seal| seal.seal_frame(&env.to_bytes()).unwrap()).await
}

fn rotation(old: &Identity, new: &Identity, dated_ms: u64, now_ms: u64) -> Envelope {
    let record = RotationRecord::new(old, new, RotationReason::Scheduled, dated_ms);
    Envelope::new(wopr_identity::random_bytes(), now_ms, Message::Rotation(record))
}

fn answered(m: &Message) -> bool {
    matches!(m, Message::InjectDelta { .. } | Message::InjectDone { .. })
}

/// A victim whose checks read `clock` (its grants, windows and grace periods move only when told).
async fn victim_on(clock: &ManualClock) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let home = wopr_store::Home::at(dir.path().join("wopr"));
    let identity = home.init_identity(false).unwrap();
    let mut config = NodeConfig::loopback();
    config.clock = Clock::from(clock);
    TestNode::start_with(dir, home, identity, config).await
}

fn grant(victim: &TestNode, key: &Identity, session: &str) {
    let grant =
        wopr_store::Grant::new(key.public_id(), [session.into()], [Capability::Inject], wopr_store::now_ms());
    victim.home.access().add(grant).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_chained_rotations_share_one_inject_budget() {
    // The victim's clock stands still: every inject below falls within one minute of it.
    let t = wopr_store::now_ms();
    let victim = victim_on(&ManualClock::new(t)).await;
    let mut keys = Vec::new();
    for _ in 0..11 {
        keys.push(Hostile::new().await);
    }
    grant(&victim, &keys[0].identity, "dev");
    // Each key rotates to the next, the record delivered by the new key.
    for i in 0..10 {
        let (conn, mut session) = keys[i + 1].session_at(&victim, t).await;
        let env = rotation(&keys[i].identity, &keys[i + 1].identity, t, t);
        let reply = request(&conn, &mut session, &env).await;
        assert!(matches!(reply, Message::InjectDone { .. }), "rotation {i}: {reply:?}");
        conn.close(0u32.into(), b"done");
    }
    // Every key of the chain (the old ones are all in their grace period) injects three times.
    let mut accepted = 0;
    for (i, key) in keys.iter().enumerate() {
        let (conn, mut session) = key.session_at(&victim, t).await;
        for n in 0..3 {
            let env = signed_inject(&key.identity, &victim.id(), "dev", &format!("key {i}, inject {n}"), t);
            let reply = request(&conn, &mut session, &env).await;
            if answered(&reply) {
                accepted += 1;
            } else {
                assert_eq!(refusal(&reply), ErrorCode::RateLimited, "key {i}: {reply:?}");
                assert!(matches!(&reply, Message::Error(e) if e.message.contains("30 injects per minute")));
            }
        }
        conn.close(0u32.into(), b"done");
    }
    assert_eq!(accepted, 30, "33 injects from 11 keys of one peer: only the peer's 30 may pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_dated_far_from_now_is_refused_and_moves_nothing() {
    let victim = TestNode::start().await;
    let (old, new) = (Hostile::new().await, Hostile::new().await);
    grant(&victim, &old.identity, "dev");
    let t = wopr_store::now_ms();
    let year = 365 * 24 * 60 * 60 * 1000;
    for (what, dated) in [("ten years ahead", t + 10 * year), ("an hour ago", t - 60 * 60 * 1000)] {
        let (conn, mut session) = new.session_at(&victim, t).await;
        let reply = request(&conn, &mut session, &rotation(&old.identity, &new.identity, dated, t)).await;
        assert_eq!(refusal(&reply), ErrorCode::Invalid, "{what}: {reply:?}");
        let doc = victim.home.access().load().unwrap();
        assert_eq!(doc.grants[0].peer_key, old.identity.public_id(), "{what}: the grant moved");
        assert!(doc.grants[0].old_keys.is_empty(), "{what}");
    }
}

/// Inode and modification time of a file: what a rewrite changes.
fn stamp(path: &std::path::Path) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_of_an_unknown_key_writes_nothing() {
    let victim = TestNode::start().await;
    let friend = Identity::generate();
    grant(&victim, &friend, "dev");
    victim.home.peers().upsert(wopr_store::PeerRecord::new(friend.public_id(), [1; 32], 1)).unwrap();
    let files = [victim.home.file(wopr_store::ACCESS_FILE), victim.home.file(wopr_store::PEERS_FILE)];
    let before = files.each_ref().map(|f| stamp(f));

    let (old, new) = (Identity::generate(), Hostile::new().await);
    let t = wopr_store::now_ms();
    let (conn, mut session) = new.session_at(&victim, t).await;
    let reply = request(&conn, &mut session, &rotation(&old, &new.identity, t, t)).await;
    assert_eq!(refusal(&reply), ErrorCode::Rejected, "{reply:?}");
    assert_eq!(files.each_ref().map(|f| stamp(f)), before, "access.json or peers.json was rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_closes_the_connections_of_every_key_of_the_peer() {
    let victim = TestNode::start().await;
    let (old, new) = (Hostile::new().await, Hostile::new().await);
    grant(&victim, &old.identity, "dev");
    let t = wopr_store::now_ms();
    let (conn, mut session) = new.session_at(&victim, t).await;
    let reply = request(&conn, &mut session, &rotation(&old.identity, &new.identity, t, t)).await;
    assert!(matches!(reply, Message::InjectDone { .. }), "{reply:?}");

    // The old key is within its grace period: it still gets answers, on a connection of its own.
    let (old_conn, mut old_session) = old.session_at(&victim, t).await;
    let env = signed_inject(&old.identity, &victim.id(), "dev", "still me", t);
    let reply = request(&old_conn, &mut old_session, &env).await;
    assert!(answered(&reply), "{reply:?}");

    assert_eq!(victim.node.revoke(&new.identity.public_id()).unwrap(), 1);
    for (which, c) in [("new", &conn), ("old", &old_conn)] {
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), c.closed())
            .await
            .unwrap_or_else(|_| panic!("the {which} key's connection stayed open after the revoke"));
        assert!(
            matches!(&closed, iroh::endpoint::ConnectionError::ApplicationClosed(a)
                if a.error_code == iroh::endpoint::VarInt::from_u32(7)),
            "{which}: {closed:?}"
        );
    }
}

/// One inject from `key` on a connection of its own, everything dated `at`; the victim's first reply.
async fn inject_at(victim: &TestNode, key: &Hostile, at: u64) -> Message {
    let env = signed_inject(&key.identity, &victim.id(), "dev", "is this key still you?", at);
    let (conn, mut session) = key.session_at(victim, at).await;
    let reply = request(&conn, &mut session, &env).await;
    conn.close(0u32.into(), b"done");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_key_is_refused_a_day_and_a_second_after_its_rotation() {
    let t0 = wopr_store::now_ms();
    let clock = ManualClock::new(t0);
    let victim = victim_on(&clock).await;
    let keys = [Hostile::new().await, Hostile::new().await, Hostile::new().await];
    grant(&victim, &keys[0].identity, "dev");
    // k0 -> k1 now; twelve hours later k1 -> k2. Each superseded key keeps its own 24 hours.
    let (conn, mut session) = keys[1].session_at(&victim, t0).await;
    let reply = request(&conn, &mut session, &rotation(&keys[0].identity, &keys[1].identity, t0, t0)).await;
    assert!(matches!(reply, Message::InjectDone { .. }), "{reply:?}");
    let half_day = 12 * 60 * 60 * 1000;
    clock.set(t0 + half_day);
    let t1 = t0 + half_day;
    let (conn, mut session) = keys[2].session_at(&victim, t1).await;
    let reply = request(&conn, &mut session, &rotation(&keys[1].identity, &keys[2].identity, t1, t1)).await;
    assert!(matches!(reply, Message::InjectDone { .. }), "{reply:?}");

    let day = wopr_p2p::ROTATION_GRACE_MS;
    let last_moment = t0 + day - 1;
    clock.set(last_moment);
    assert!(answered(&inject_at(&victim, &keys[0], last_moment).await), "k0 is still in its grace period");
    let after = t0 + day + 1_000;
    clock.set(after);
    let reply = inject_at(&victim, &keys[0], after).await;
    assert_eq!(refusal(&reply), ErrorCode::Unauthorized, "k0 a day and a second later: {reply:?}");
    // k1's grace started with its own rotation, so it is still accepted, and k2 of course.
    assert!(answered(&inject_at(&victim, &keys[1], after).await));
    assert!(answered(&inject_at(&victim, &keys[2], after).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_fresh_keys_cannot_refill_a_peers_spent_budget() {
    // A node tracking only 8 strangers, so that a crowd of 9 fills its table (the default is 10,000;
    // `server::limits` tests that size).
    let t = wopr_store::now_ms();
    let dir = tempfile::tempdir().unwrap();
    let home = wopr_store::Home::at(dir.path().join("wopr"));
    let identity = home.init_identity(false).unwrap();
    let mut config = NodeConfig::loopback();
    config.clock = Clock::from(&ManualClock::new(t));
    config.limits = PeerLimits { strangers: 8, ..PeerLimits::default() };
    let victim = TestNode::start_with(dir, home, identity, config).await;
    let p = Hostile::new().await;
    grant(&victim, &p.identity, "dev");
    let (conn, mut session) = p.session_at(&victim, t).await;
    for n in 0..30 {
        let env = signed_inject(&p.identity, &victim.id(), "dev", &format!("inject {n}"), t);
        assert!(answered(&request(&conn, &mut session, &env).await), "inject {n}");
    }
    let mut crowded = 0;
    for n in 0..9 {
        let stranger = Hostile::new().await;
        let (c, outcome) = stranger.handshake_at(&victim, &stranger.identity, t).await;
        match outcome {
            Ok(mut s) => {
                let env = signed_inject(&stranger.identity, &victim.id(), "dev", "me too", t);
                assert_eq!(
                    refusal(&request(&c, &mut s, &env).await),
                    ErrorCode::Unauthorized,
                    "stranger {n}"
                );
            }
            Err(HandshakeMessage::Reject(r)) if r.code == ErrorCode::RateLimited => crowded += 1,
            Err(other) => panic!("stranger {n}: {other:?}"),
        }
    }
    assert_eq!(crowded, 1, "the ninth stranger finds the table full");
    let env = signed_inject(&p.identity, &victim.id(), "dev", "one more?", t);
    let reply = request(&conn, &mut session, &env).await;
    assert_eq!(refusal(&reply), ErrorCode::RateLimited, "P's 31st inject: {reply:?}");
    assert_eq!(victim.backend.injects.lock().unwrap().len(), 30);
}

/// Whether a connection was closed for "too many connections" (code 4, rate limited).
fn crowded(e: &iroh::endpoint::ConnectionError) -> bool {
    matches!(e, iroh::endpoint::ConnectionError::ApplicationClosed(a)
        if a.error_code == iroh::endpoint::VarInt::from_u32(4))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_connections_are_capped_per_key_and_in_total_and_friends_still_get_in() {
    let (victim, friend) = (TestNode::start().await, TestNode::start().await);
    befriend(&victim, &friend, &["dev"], &[Capability::Inject]).await;
    let mut keys = Vec::new();
    for _ in 0..20 {
        keys.push(Hostile::new().await);
    }
    // Three connections per key, each with a handshake: a key's third replaces its first; once 16
    // strangers' connections are open, newcomers are refused.
    let mut held = Vec::new();
    let mut refused = 0;
    for key in &keys {
        for _ in 0..3 {
            let id = iroh::EndpointId::from_bytes(victim.id().as_bytes()).unwrap();
            let addr = EndpointAddr::from_parts(id, [TransportAddr::Ip(victim.socket())]);
            let conn = match key.endpoint.connect(addr, wopr_proto::ALPN).await {
                Ok(conn) => conn,
                Err(e) => {
                    // Closed for "too many connections" (code 4) as soon as the QUIC handshake completed.
                    let e = format!("{e:?}");
                    assert!(e.contains("error_code: 4"), "{e}");
                    refused += 1;
                    continue;
                }
            };
            let Ok((mut send, mut recv)) = conn.open_bi().await else {
                assert_eq!(conn.close_reason().map(|c| crowded(&c)), Some(true));
                refused += 1;
                continue;
            };
            let (init, hello) = Initiator::start(
                &key.identity,
                victim.id(),
                HandshakeRandom::generate(),
                wopr_store::now_ms(),
            );
            let hello = frame::encode_frame(&HandshakeMessage::Hello(hello).to_bytes()).unwrap();
            let _ = send.write_all(&hello).await;
            let _ = send.finish();
            match read_frame(&mut recv).await {
                Some(reply) => {
                    let reply = HandshakeMessage::from_bytes(&reply).unwrap();
                    init.finish(&reply, wopr_store::now_ms()).unwrap();
                    held.push(conn);
                }
                None => {
                    let closed = conn.closed().await;
                    assert!(crowded(&closed), "{closed:?}");
                    refused += 1;
                }
            }
        }
    }
    // 8 keys fill the 16 places (their first connections replaced); the other 12 keys are refused.
    assert_eq!((held.len(), refused), (24, 36));
    let (r, deltas) = inject(&friend, &victim.id().to_hex(), "dev", "still room for me?").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert_eq!(deltas, words("still room for me?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_to_a_rotated_away_key_gives_it_no_grant_of_its_own() {
    let victim = TestNode::start().await;
    let (old, new) = (Hostile::new().await, Hostile::new().await);
    grant(&victim, &old.identity, "dev");
    // An invite to the old key, still unclaimed when the key rotates.
    let token = victim.invite(&old.identity.public_id(), &["ops"], &[Capability::Inject]);
    let t = wopr_store::now_ms();
    let (conn, mut session) = new.session_at(&victim, t).await;
    let reply = request(&conn, &mut session, &rotation(&old.identity, &new.identity, t, t)).await;
    assert!(matches!(reply, Message::InjectDone { .. }), "{reply:?}");

    let token = wopr_proto::invite::InviteToken::decode_uri(&token).unwrap();
    let mut env = Envelope::new(wopr_identity::random_bytes(), t, Message::Claim(Claim::new(token)));
    env.sign(&old.identity, &victim.id()).unwrap();
    let (conn, mut session) = old.session_at(&victim, t).await;
    let reply = request(&conn, &mut session, &env).await;
    assert_eq!(refusal(&reply), ErrorCode::Unauthorized, "{reply:?}");
    assert!(matches!(&reply, Message::Error(e) if e.message.contains("rotated")), "{reply:?}");
    let doc = victim.home.access().load().unwrap();
    assert!(doc.grants.iter().all(|g| g.peer_key == new.identity.public_id()), "{:?}", doc.grants);
}

/// Bytes of `wopr.db` and its write-ahead log.
fn db_bytes(home: &wopr_store::Home) -> u64 {
    let db = home.db_path();
    let wal = db.with_extension("db-wal");
    [db, wal].iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

/// A payload of exactly the largest size the protocol carries, mixed with control bytes.
fn largest_payload() -> String {
    let mut text = "\x1b]0;owned\x07".to_string();
    while text.len() < MAX_PAYLOAD {
        text.push_str("all work and no play makes jack a dull boy ");
    }
    text.truncate(MAX_PAYLOAD);
    text
}

/// `from` knows where `victim` is (it holds no grant there unless the test gives it one).
fn knows_where(from: &TestNode, victim: &TestNode) {
    let mut record = wopr_store::PeerRecord::new(victim.id(), victim.identity().encrypt_pub(), 0);
    record.addrs = victim.node.addr_hints();
    from.home.peers().upsert(record).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_megabyte_injects_from_a_stranger_do_not_fill_the_disk() {
    let (victim, stranger) = (TestNode::start().await, TestNode::start().await);
    knows_where(&stranger, &victim);
    let text = largest_payload();
    // Warm up: the first refusal creates the audit table. The stranger hears why, not a lost stream.
    let (r, _) = inject(&stranger, &victim.id().to_hex(), "dev", &text).await;
    assert!(
        matches!(&r, Err(wopr_p2p::P2pError::Refused { code: ErrorCode::Invalid, message, .. })
            if message.contains("a key with no grant may only claim an invite")),
        "{r:?}"
    );
    let before = db_bytes(&victim.home);
    for _ in 0..30 {
        let (r, _) = inject(&stranger, &victim.id().to_hex(), "dev", &text).await;
        assert!(matches!(r, Err(wopr_p2p::P2pError::Refused { .. })), "{r:?}");
    }
    let grown = db_bytes(&victim.home).saturating_sub(before);
    assert!(grown < 100 * 1024, "30 refused 1 MiB injects grew wopr.db by {} KiB", grown / 1024);
    // The refusals are on record (a key with no grant may not even send the frame), without the payload.
    let audit = victim.home.audit().unwrap().list(Some(&stranger.id()), None).unwrap();
    assert!(audit.iter().any(|e| e.decision == Decision::Refused), "no refusal on record");
    assert!(audit.iter().all(|e| e.signed.is_none()), "a refused record kept the signed bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_megabyte_injects_of_a_peer_are_audited_by_digest_and_excerpt_only() {
    let (victim, peer) = (TestNode::start().await, TestNode::start().await);
    knows_where(&peer, &victim);
    // A known peer (granted another session) may send the largest frame, but not into `dev`.
    let grant =
        wopr_store::Grant::new(peer.id(), ["other".into()], [Capability::Inject], wopr_store::now_ms());
    victim.home.access().add(grant).unwrap();
    let text = largest_payload();
    let (r, _) = inject(&peer, &victim.id().to_hex(), "dev", &text).await;
    assert!(matches!(r, Err(wopr_p2p::P2pError::Refused { code: ErrorCode::Unauthorized, .. })), "{r:?}");
    let before = db_bytes(&victim.home);
    for _ in 0..29 {
        let (r, _) = inject(&peer, &victim.id().to_hex(), "dev", &text).await;
        assert!(matches!(r, Err(wopr_p2p::P2pError::Refused { code: ErrorCode::Unauthorized, .. })), "{r:?}");
    }
    let grown = db_bytes(&victim.home).saturating_sub(before);
    assert!(grown < 100 * 1024, "29 refused 1 MiB injects grew wopr.db by {} KiB", grown / 1024);
    let audit = victim.home.audit().unwrap().list(Some(&peer.id()), None).unwrap();
    let refused: Vec<_> =
        audit.iter().filter(|e| e.action == "inject" && e.decision == Decision::Refused).collect();
    assert_eq!(refused.len(), 30);
    assert!(refused.iter().all(|e| e.signed.is_none()), "a refused record kept the signed bytes");
    let digest = wopr_store::PayloadSummary::of(text.as_bytes()).digest;
    for e in refused {
        assert_eq!(e.digest.as_deref(), Some(&digest[..]), "the record names its payload by digest");
        let excerpt = e.excerpt.as_deref().unwrap_or_default();
        assert!(
            excerpt.starts_with("\\u{1b}]0;owned") && excerpt.len() <= wopr_store::EXCERPT_MAX,
            "{excerpt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_message_relayed_by_another_key_is_refused_as_unauthorized() {
    let victim = TestNode::start().await;
    // The victim asks carol (not online): its request to her stays pending.
    let carol = Identity::generate();
    let outcome = victim.node.friend_request(&carol.public_id().to_hex()).await.unwrap();
    assert!(matches!(outcome, wopr_p2p::FriendOutcome::Undelivered { .. }), "{outcome:?}");
    let line = victim.home.friends().load().unwrap().outgoing[0].line.clone();
    let pending = wopr_proto::friend::FriendRequest::parse_line(&line).unwrap();
    let now = wopr_store::now_ms();
    let accept = wopr_proto::friend::FriendAccept::new(&carol, "carol", vec![], &pending, now).unwrap();
    let asks = wopr_proto::friend::FriendRequest::new(&carol, "carol", vec![], victim.id(), now).unwrap();
    // Mallory holds carol's genuine accept and request and delivers them over her own connection.
    let mallory = Hostile::new().await;
    let (conn, mut session) = mallory.session_at(&victim, now).await;
    for message in [Message::FriendAccept(accept), Message::FriendRequest(asks)] {
        let env = Envelope::new(wopr_identity::random_bytes(), wopr_store::now_ms(), message);
        let reply = request(&conn, &mut session, &env).await;
        assert_eq!(refusal(&reply), ErrorCode::Unauthorized, "{reply:?}");
    }
    let doc = victim.home.friends().load().unwrap();
    assert!(doc.friends.is_empty() && doc.incoming.is_empty(), "{doc:?}");
    assert_eq!(doc.outgoing.len(), 1, "the victim's request still waits for carol herself");
}
