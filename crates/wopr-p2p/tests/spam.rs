//! A spammer built on the protocol crate floods a topic: forged profiles, junk bytes, junk profiles
//! and 1,000 connect-requests. Honest nodes still meet, forged profiles appear nowhere, the AI filter
//! (a scripted judge) drops the junk, and the limits hold.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestNode, discovery_node as node};
use serde_json::json;
use wopr_identity::Identity;
use wopr_p2p::P2pError;
use wopr_p2p::discovery::VerdictWord;
use wopr_proto::discovery::{Profile, TopicMessage};
use wopr_proto::{Encode, ErrorCode};
use wopr_store::Decision;

const TOPIC: &str = "global";

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn listed(n: &TestNode, all: bool) -> Vec<wopr_p2p::discovery::PeerView> {
    n.node.discovered(Some(TOPIC), all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_nodes_meet_while_a_spammer_floods_the_topic() {
    let hub = node(&[], &[]).await;
    let t = vec![hub.node.ticket()];
    let alice = node(&t, &[("discover.profile", json!({"name": "Alice"}))]).await;
    let bob =
        node(&t, &[("discover.profile", json!({"name": "Bob"})), ("discover.filter", json!("on"))]).await;
    for n in [&hub, &alice, &bob] {
        n.node.join(TOPIC).await.unwrap();
    }
    let (_router, spam, receiver) = common::raw_gossip_peer(&hub, &Identity::generate(), TOPIC).await;
    // Keep the subscription alive (and drain it) while the test runs.
    tokio::spawn(common::drain(receiver));

    // Forged profiles: Alice's key, the spammer's words, a signature that cannot verify.
    let now = wopr_store::now_ms();
    let alice_id = alice.identity();
    for i in 0..200u64 {
        let mut forged = Profile::new(&alice_id, r#"{"name":"Alice"}"#, vec![TOPIC.into()], now + i).unwrap();
        forged.content = format!(r#"{{"name":"Alice","wallet":"send me {i} BTC"}}"#);
        spam.broadcast(Bytes::from(TopicMessage::Announce(forged).to_bytes())).await.unwrap();
    }
    // Junk bytes, and well-signed junk profiles from throwaway keys.
    for i in 0..200u32 {
        spam.broadcast(Bytes::from(format!("junk {i} {}", "x".repeat(i as usize)))).await.unwrap();
    }
    for i in 0..30u64 {
        let throwaway = Identity::generate();
        let junk =
            Profile::new(&throwaway, r#"{"ad":"FREE BITCOIN!!! CLICK HERE"}"#, vec![TOPIC.into()], now + i)
                .unwrap();
        spam.broadcast(Bytes::from(TopicMessage::Announce(junk).to_bytes())).await.unwrap();
    }

    // The honest nodes still meet; Bob's filter lets Alice through and drops the junk with a reason.
    until("alice and bob see each other", || {
        listed(&alice, false).iter().any(|p| p.public_key == bob.id().to_hex())
            && listed(&bob, false).iter().any(|p| p.public_key == alice.id().to_hex())
    })
    .await;
    until("bob's filter judged the junk", || {
        listed(&bob, true).iter().filter(|p| p.verdict == VerdictWord::Filtered).count() >= 30
    })
    .await;
    let shown = listed(&bob, false);
    assert!(shown.iter().all(|p| p.verdict == VerdictWord::Allowed), "{shown:?}");
    assert!(shown.iter().all(|p| !p.content.to_string().contains("BITCOIN")));
    let filtered =
        listed(&bob, true).into_iter().filter(|p| p.verdict == VerdictWord::Filtered).collect::<Vec<_>>();
    assert!(filtered.iter().all(|p| p.reason.as_deref() == Some("spam: advertises free bitcoin")));

    // No forged profile appears anywhere, in any view.
    for n in [&hub, &alice, &bob] {
        for p in listed(n, true) {
            assert!(!p.content.to_string().contains("BTC"), "a forged profile got through: {p:?}");
            if p.public_key == alice.id().to_hex() {
                assert_eq!(p.content, json!({"name": "Alice"}));
            }
        }
    }
    // The floods were audited a bounded number of times, not once per message.
    let audit = hub.home.audit().unwrap().list(None, None).unwrap();
    let refused = audit.iter().filter(|e| e.action == "profile" && e.decision == Decision::Refused).count();
    assert!((1..=10).contains(&refused), "{refused} profile refusals audited");

    // 1,000 connect-requests from one key: a few are counted, the rest refused by the limits.
    let spam_node = node(&t, &[("discover.profile", json!({"ad": "FREE BITCOIN"}))]).await;
    spam_node.node.join(TOPIC).await.unwrap();
    until("the spam node sees alice", || {
        listed(&spam_node, false).iter().any(|p| p.public_key == alice.id().to_hex())
    })
    .await;
    let (mut accepted, mut limited, mut other) = (0, 0, 0);
    for _ in 0..1000 {
        match spam_node.node.connect(&alice.id().short(), None, "let me in").await {
            Ok(_) => accepted += 1,
            Err(P2pError::Refused { code: ErrorCode::RateLimited, .. }) => limited += 1,
            Err(_) => other += 1,
        }
    }
    // 3 a minute as a stranger, and 3 more once its first accepted request made it a known peer.
    let per_minute = wopr_p2p::CONNECT_LIMIT.per_minute as usize;
    assert!((1..=2 * per_minute).contains(&accepted), "{accepted} accepted");
    let grants = alice.home.access().load().unwrap().grants;
    assert_eq!(
        grants.iter().filter(|g| g.peer_key == spam_node.id()).count(),
        1,
        "one grant, however many accepts"
    );
    assert!(limited >= 990, "{limited} rate-limited, {other} other refusals");
    // Bob, honest, still gets in: the spammer's refused requests did not use up everyone's budget.
    let connected = bob.node.connect(&alice.id().short(), None, "hello").await.unwrap();
    assert_eq!(connected.peer.public_key, alice.id());
    for n in [hub, alice, bob, spam_node] {
        n.node.shutdown().await;
    }
}
