//! A hostile peer, built directly on `wopr-proto` over a raw iroh connection, throws forged, replayed,
//! oversized, malformed and flooding traffic at a node. The node refuses each with the right error code,
//! stays up, and keeps answering its legitimate peer.

mod common;

use common::{TestNode, befriend, inject, words};
use iroh::endpoint::{Connection, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey, TransportAddr};
use wopr_identity::{Identity, PublicId};
use wopr_p2p::{DoneStatus, ErrorCode, create_invite};
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
        let endpoint = Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .clear_ip_transports()
            .bind_addr("127.0.0.1:0")
            .unwrap()
            .secret_key(SecretKey::from_bytes(&identity.signing_seed()))
            .bind()
            .await
            .unwrap();
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
        let conn = self.connect(victim).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let (init, hello) =
            Initiator::start(signer, victim.id(), HandshakeRandom::generate(), wopr_store::now_ms());
        send.write_all(&frame::encode_frame(&HandshakeMessage::Hello(hello).to_bytes()).unwrap())
            .await
            .unwrap();
        send.finish().unwrap();
        let reply = HandshakeMessage::from_bytes(&read_frame(&mut recv).await.unwrap()).unwrap();
        let session = init.finish(&reply, wopr_store::now_ms()).map_err(|_| reply);
        (conn, session)
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
    send.write_all(&bytes).await.unwrap();
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

/// Bytes of `wopr.db` and its write-ahead log.
fn db_bytes(home: &wopr_store::Home) -> u64 {
    let db = home.db_path();
    let wal = db.with_extension("db-wal");
    [db, wal].iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_megabyte_injects_from_a_stranger_do_not_fill_the_disk() {
    let (victim, stranger) = (TestNode::start().await, TestNode::start().await);
    // The stranger knows where the victim is, but holds no grant there.
    let mut record = wopr_store::PeerRecord::new(victim.id(), victim.identity().encrypt_pub(), 0);
    record.addrs = victim.node.addr_hints();
    stranger.home.peers().upsert(record).unwrap();
    // A payload of exactly the largest size the protocol carries, mixed with control bytes.
    let mut text = "\x1b]0;owned\x07".to_string();
    while text.len() < MAX_PAYLOAD {
        text.push_str("all work and no play makes jack a dull boy ");
    }
    text.truncate(MAX_PAYLOAD);
    // Warm up: the first refusal creates the audit table.
    let (r, _) = inject(&stranger, &victim.id().to_hex(), "dev", &text).await;
    assert!(matches!(r, Err(wopr_p2p::P2pError::Refused { code: ErrorCode::Unauthorized, .. })), "{r:?}");
    let before = db_bytes(&victim.home);
    for _ in 0..30 {
        let (r, _) = inject(&stranger, &victim.id().to_hex(), "dev", &text).await;
        assert!(matches!(r, Err(wopr_p2p::P2pError::Refused { .. })), "{r:?}");
    }
    let grown = db_bytes(&victim.home).saturating_sub(before);
    assert!(grown < 100 * 1024, "30 refused 1 MiB injects grew wopr.db by {} KiB", grown / 1024);
    // Each refusal is still on record, without its payload.
    let audit = victim.home.audit().unwrap().list(Some(&stranger.id()), None).unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "inject" && e.decision == Decision::Refused).count(), 31);
    assert!(audit.iter().all(|e| e.signed.is_none()), "a refused record kept the signed bytes");
    let digest = wopr_store::PayloadSummary::of(text.as_bytes()).digest;
    for e in &audit {
        assert_eq!(e.digest.as_deref(), Some(&digest[..]), "the record names its payload by digest");
        let excerpt = e.excerpt.as_deref().unwrap_or_default();
        assert!(
            excerpt.starts_with("\\u{1b}]0;owned") && excerpt.len() <= wopr_store::EXCERPT_MAX,
            "{excerpt}"
        );
    }
}
