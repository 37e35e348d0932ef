//! Whole-behaviour tests: three nodes in one process on loopback, relays disabled, temp homes.

mod common;

use std::time::Duration;

use common::{TestNode, befriend, inject, words};
use wopr_identity::RotationReason;
use wopr_p2p::{DoneStatus, ErrorCode, P2pError, PeerPath, create_invite};
use wopr_store::{Capability, Decision};

fn code(r: &Result<DoneStatus, P2pError>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.exit_code().code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_claim_inject_streams_the_answer_in_order_and_both_sides_record_each_other() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    let token = alice.invite(&bob.id(), &["dev"], &[Capability::Inject]);
    let issuer = bob.node.claim(&token).await.unwrap();
    assert_eq!(issuer.public_key, alice.id());
    assert!(issuer.sessions.contains("dev") && issuer.capabilities.contains(&Capability::Inject));

    // The claimant knows the issuer; the issuer granted the claimant.
    let peers = bob.home.peers().load().unwrap();
    let a = peers.resolve(&alice.id().short(), 0).unwrap();
    assert_eq!(a.encrypt_pub, hex::encode(alice.identity().encrypt_pub()));
    assert!(!a.addrs.is_empty());
    let access = alice.home.access().load().unwrap();
    assert_eq!(access.capabilities(&bob.id(), "dev", wopr_store::now_ms()).len(), 1);
    let grant = access.resolve(&bob.id().to_hex(), 0).unwrap();
    assert!(grant.source_invite.is_some() && !grant.addrs.is_empty());

    bob.home.peers().rename(&alice.id().short(), "alice", 0).unwrap();
    let (r, deltas) = inject(&bob, "alice", "dev", "review my code please").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert_eq!(deltas, words("review my code please"));
    let calls = alice.backend.injects.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].from, calls[0].session.as_str(), calls[0].hops), (bob.id(), "dev", 0));

    // The inject was audited with a signature that re-verifies (its record is committed while the turn
    // runs, so it may land just after the answer).
    let mut audit = Vec::new();
    for _ in 0..100 {
        audit = alice.home.audit().unwrap().list(Some(&bob.id()), None).unwrap();
        if audit.iter().any(|e| e.action == "inject") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let injected = audit.iter().find(|e| e.action == "inject").expect("the inject is on record");
    assert_eq!(injected.decision, Decision::Accepted);
    let sig: [u8; 64] = injected.signature.clone().unwrap().try_into().unwrap();
    wopr_identity::verify(&bob.id(), "message", injected.signed.as_ref().unwrap(), &sig).unwrap();
    assert!(audit.iter().any(|e| e.action == "claim" && e.decision == Decision::Accepted));

    // A second inject reuses the connection.
    let (r, _) = inject(&bob, "alice", "dev", "again").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert!(bob.node.connected_peers().contains(&alice.id()));
    assert!(alice.node.connected_peers().contains(&bob.id()));
    // On loopback with relays off, both sides talk directly, to each other's socket.
    assert_eq!(bob.node.path_to(&alice.id()), Some(PeerPath::Direct(alice.socket())));
    assert!(matches!(alice.node.path_to(&bob.id()), Some(PeerPath::Direct(a)) if a.ip().is_loopback()));
    assert!(alice.node.ticket().starts_with("endpoint"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_only_capability_logs_without_the_ai_and_other_sessions_are_unauthorized() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["notes"], &[Capability::Message]).await;
    let peer = alice.id().to_hex();
    let (r, deltas) = inject(&bob, &peer, "notes", "remember the milk").await;
    assert_eq!(r.unwrap(), DoneStatus::Logged);
    assert!(deltas.is_empty());
    assert!(alice.backend.injects.lock().unwrap().is_empty(), "the AI must not run");
    assert_eq!(alice.backend.logs.lock().unwrap()[0].text, "remember the milk");
    bob.node.log(&peer, "notes", "and eggs").await.unwrap();
    assert_eq!(alice.backend.logs.lock().unwrap().len(), 2);

    let (r, _) = inject(&bob, &peer, "secrets", "let me in").await;
    assert_eq!(code(&r), 7, "{r:?}");
    let refused = alice.home.audit().unwrap().list(Some(&bob.id()), None).unwrap();
    assert!(
        refused.iter().any(|e| e.session.as_deref() == Some("secrets") && e.decision == Decision::Refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_closes_the_open_connection_at_once_and_the_next_inject_is_unauthorized() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["slow", "dev"], &[Capability::Inject]).await;
    let peer = alice.id().to_hex();

    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let mut first_tx = Some(first_tx);
    let pending = async {
        bob.node
            .inject(&peer, "slow", "long job", |_| {
                if let Some(tx) = first_tx.take() {
                    let _ = tx.send(());
                }
            })
            .await
    };
    let revoke = async {
        first_rx.await.unwrap();
        assert_eq!(alice.node.revoke(&bob.id()).unwrap(), 1);
    };
    let (r, ()) =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(pending, revoke) }).await.unwrap();
    assert!(r.is_err(), "the answer in progress must stop");
    assert_eq!(r.unwrap_err().exit_code().code(), 7);
    // The turn was cancelled on the issuer's side, not left running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*alice.backend.dropped.lock().unwrap(), 1);
    assert!(!alice.node.connected_peers().contains(&bob.id()));

    let (r, _) = inject(&bob, &peer, "dev", "still there?").await;
    assert_eq!(code(&r), 7, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_bound_single_use_and_expire() {
    let (alice, bob, carol) = (TestNode::start().await, TestNode::start().await, TestNode::start().await);
    let token = alice.invite(&bob.id(), &["dev"], &[Capability::Inject]);

    // Stolen: carol is not the subject.
    let stolen = carol.node.claim(&token).await.unwrap_err();
    assert_eq!(stolen.exit_code().code(), 7, "{stolen}");
    assert!(alice.home.access().load().unwrap().grants.is_empty());

    // The subject can still claim it, once.
    bob.node.claim(&token).await.unwrap();
    let reused = bob.node.claim(&token).await.unwrap_err();
    assert_eq!((reused.exit_code().code(), reused.code()), (3, Some(ErrorCode::Invalid)), "{reused}");
    assert!(reused.to_string().contains("already used"), "{reused}");

    // Expired tokens are refused before anything is sent.
    let expired = create_invite(
        &alice.identity(),
        &bob.id(),
        &["dev".into()],
        &[Capability::Inject],
        Some(0),
        alice.node.addr_hints(),
    )
    .unwrap();
    let err = bob.node.claim(&expired).await.unwrap_err();
    assert_eq!(err.exit_code().code(), 3);
    assert!(err.to_string().contains("expired"), "{err}");

    // Garbage is invalid, and so is claiming one's own invite. (The issuer's own expiry check is
    // exercised by tests/hostile.rs, which sends an expired claim past the client.)
    assert_eq!(bob.node.claim("wop1://garbage").await.unwrap_err().exit_code().code(), 3);
    assert_eq!(alice.node.claim(&token).await.unwrap_err().exit_code().code(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_31st_inject_in_a_minute_is_rate_limited_with_a_retry_time() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["dev"], &[Capability::Inject]).await;
    let peer = alice.id().to_hex();
    for i in 0..30 {
        let (r, _) = inject(&bob, &peer, "dev", &format!("n{i}")).await;
        assert_eq!(r.unwrap(), DoneStatus::Completed, "inject {i}");
    }
    let (r, _) = inject(&bob, &peer, "dev", "one too many").await;
    let err = r.unwrap_err();
    assert_eq!((err.exit_code().code(), err.code()), (4, Some(ErrorCode::RateLimited)));
    let retry = err.retry_after_ms().unwrap();
    assert!(retry > 0 && retry <= 60_000, "{retry}");
    assert!(err.to_string().contains("30 injects per minute"), "{err}");
    assert_eq!(alice.backend.injects.lock().unwrap().len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotations_peers_reach_the_new_key_and_an_offline_peer_learns_them_later() {
    let (alice, bob, carol) = (TestNode::start().await, TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["dev"], &[Capability::Inject]).await;
    befriend(&alice, &carol, &["dev"], &[Capability::Inject]).await;
    bob.home.peers().rename(&alice.id().short(), "alice", 0).unwrap();
    carol.home.peers().rename(&alice.id().short(), "alice", 0).unwrap();
    let (r, _) = inject(&bob, "alice", "dev", "before").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);

    // Carol goes offline.
    let carol_addr = carol.socket();
    let TestNode { node: carol_node, home: carol_home, dir: carol_dir, .. } = carol;
    carol_node.shutdown().await;

    // Alice rotates and restarts with the new key on a new port.
    let old = alice.id();
    let (_, record) = alice.home.rotate_identity(RotationReason::Scheduled).unwrap();
    let alice = alice.restart(None).await;
    assert_eq!(alice.id(), record.new_key);
    let report = alice.node.broadcast_rotation(&record).await.unwrap();
    assert_eq!(report.delivered, vec![bob.id()]);
    assert_eq!(
        report.pending.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![carol_home.load_identity().unwrap().unwrap().identity.public_id()]
    );

    // Bob reaches Alice under her new key, by the same name.
    let a = bob.home.peers().load().unwrap().resolve("alice", 0).unwrap().clone();
    assert_eq!(a.public_key, record.new_key);
    assert_eq!(a.old_keys[0].key, old);
    let (r, deltas) = inject(&bob, "alice", "dev", "after").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert_eq!(deltas, words("after"));

    // Alice rotates again while Carol is still away: Bob follows at once, Carol is owed two records.
    let (_, second) = alice.home.rotate_identity(RotationReason::Scheduled).unwrap();
    let alice = alice.restart(None).await;
    let report = alice.node.broadcast_rotation(&second).await.unwrap();
    assert_eq!(report.delivered, vec![bob.id()]);
    assert_eq!(alice.home.outbox().unwrap().pending(None).unwrap().len(), 2);
    let (r, _) = inject(&bob, "alice", "dev", "third key").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);

    // Carol comes back on her old address; the outbox delivers both rotations, in order, over Alice's
    // newest key's connection; she reaches Alice too.
    let identity = carol_home.load_identity().unwrap().unwrap().identity;
    let mut config = wopr_p2p::NodeConfig::loopback();
    config.bind = Some(carol_addr);
    let carol = TestNode::start_with(carol_dir, carol_home, identity, config).await;
    let report = alice.node.flush_outbox().await.unwrap();
    assert_eq!(report.delivered, vec![carol.id()]);
    let (r, _) = inject(&carol, "alice", "dev", "hello new alice").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    let a = carol.home.peers().load().unwrap().resolve("alice", 0).unwrap().clone();
    assert_eq!(a.public_key, second.new_key);
    assert!(alice.home.outbox().unwrap().pending(None).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_broadcast_a_crash_interrupted_reaches_peers_when_the_node_starts_again() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["dev"], &[Capability::Inject]).await;
    // Bob's identity.json is rotated, and the process dies before the broadcast is queued.
    let (_, record) = bob.home.rotate_identity(RotationReason::Scheduled).unwrap();
    let bob = bob.restart(None).await;
    assert_eq!(bob.id(), record.new_key);
    // His first connection to Alice delivers the rotation, so she grants his new key.
    let (r, deltas) = inject(&bob, &alice.id().to_hex(), "dev", "under my new key").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert_eq!(deltas, words("under my new key"));
    let access = alice.home.access().load().unwrap();
    assert_eq!(access.grants.iter().map(|g| g.peer_key).collect::<Vec<_>>(), [record.new_key]);
    // Queued once: starting again does not queue it a second time.
    let bob = bob.restart(None).await;
    assert!(bob.home.outbox().unwrap().pending(None).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_session_and_an_unreachable_peer_have_clear_errors() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["broken"], &[Capability::Inject]).await;
    let peer = alice.id().to_hex();
    let (r, _) = inject(&bob, &peer, "broken", "hi").await;
    let err = r.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.to_string().contains("provider unavailable"), "{err}");

    alice.node.shutdown().await;
    let (r, _) = inject(&bob, &peer, "broken", "anyone?").await;
    assert_eq!(code(&r), 6, "{r:?}");
    // Names that match nobody are invalid input.
    let (r, _) = inject(&bob, "nobody", "dev", "x").await;
    assert_eq!(code(&r), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_work_carries_its_hop_count_and_more_than_eight_hops_are_refused() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["dev"], &[Capability::Inject]).await;
    let peer = alice.id().to_hex();
    let last = wopr_p2p::MAX_HOPS;
    let r = bob.node.inject_forwarded(&peer, "dev", "from afar", last, |_| {}).await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    let r = bob.node.inject_forwarded(&peer, "dev", "too far", last + 1, |_| {}).await;
    assert_eq!(code(&r), 2, "{r:?}");
    assert!(r.unwrap_err().to_string().contains("hops"));
    let calls = alice.backend.injects.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the refused request must not reach the AI");
    assert_eq!(calls[0].hops, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_message_still_fits_through_the_bounded_windows_and_answers_stream_back() {
    let (alice, bob) = (TestNode::start().await, TestNode::start().await);
    befriend(&alice, &bob, &["dev"], &[Capability::Inject]).await;
    let peer = alice.id().to_hex();
    // A 1 MiB payload, the protocol's largest, on a connection whose windows hold one largest frame.
    let text = "x".repeat(wopr_proto::frame::MAX_PAYLOAD);
    bob.node.log(&peer, "dev", &text).await.unwrap();
    assert_eq!(alice.backend.logs.lock().unwrap()[0].text.len(), text.len());
    // Three at once share the connection window without stalling.
    let send = || bob.node.log(&peer, "dev", &text);
    let (a, b, c) = tokio::join!(send(), send(), send());
    for r in [a, b, c] {
        r.unwrap();
    }
    assert_eq!(alice.backend.logs.lock().unwrap().len(), 4);
    let (r, deltas) = inject(&bob, &peer, "dev", "and an answer back").await;
    assert_eq!(r.unwrap(), DoneStatus::Completed);
    assert_eq!(deltas, words("and an answer back"));
}
