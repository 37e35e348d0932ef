//! Discovery end to end on loopback: nodes meet in topics through one bootstrap node, see each other's
//! signed profiles, connect, and leave.

mod common;

use std::time::Duration;

use common::{TestNode, discovery_node as node, set_config as set};
use serde_json::json;
use wopr_p2p::discovery::DiscoveryEvent;
use wopr_store::Capability;

/// Generous: CI machines are loaded. Tests wait for events, never assert on time.
const DEADLINE: Duration = Duration::from_secs(60);

/// Waits until `cond` holds, polling; panics with `what` after the deadline.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sees(n: &TestNode, topic: &str, others: &[&TestNode]) -> bool {
    let seen = n.node.discovered(Some(topic), false);
    others.iter().all(|o| seen.iter().any(|p| p.public_key == o.id().to_hex()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_find_each_other_through_one_bootstrap_node() {
    let hub = node(&[], &[]).await;
    let ticket = vec![hub.node.ticket()];
    let mut nodes = vec![hub];
    for i in 1..5 {
        let n = node(&ticket, &[("discover.profile", json!({"name": format!("node{i}")}))]).await;
        nodes.push(n);
    }
    for n in &nodes {
        assert!(n.node.join("coffee").await.unwrap());
        assert!(!n.node.join("coffee").await.unwrap(), "joining twice is a no-op");
    }
    for (i, n) in nodes.iter().enumerate() {
        let others: Vec<&TestNode> =
            nodes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o).collect();
        until(&format!("node {i} sees the 4 others"), || sees(n, "coffee", &others)).await;
    }
    // Profiles arrive whole and signed: content, keys, the topic.
    let seen = nodes[0].node.discovered(Some("coffee"), false);
    let p = seen.iter().find(|p| p.public_key == nodes[3].id().to_hex()).unwrap();
    assert_eq!(p.content, json!({"name": "node3"}));
    assert_eq!(p.topics, ["coffee"]);
    assert_eq!(p.id, nodes[3].id().short());
    assert!(!p.hints.is_empty());
    let topics = nodes[0].node.topics();
    assert_eq!(topics.len(), 1);
    assert_eq!((topics[0].name.as_str(), topics[0].peers), ("coffee", 4));
    // Nobody sees peers in a topic nobody else joined.
    assert!(nodes[1].node.join("tea").await.unwrap());
    assert!(nodes[1].node.discovered(Some("tea"), false).is_empty());
    for n in nodes {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_peer_is_withdrawn_at_once_and_a_profile_change_is_seen() {
    let a = node(&[], &[]).await;
    let b = node(&[a.node.ticket()], &[]).await;
    a.node.join("coffee").await.unwrap();
    b.node.join("coffee").await.unwrap();
    until("a sees b", || sees(&a, "coffee", &[&b])).await;
    let mut events = a.node.discovery_events();
    b.node.set_profile(&json!({"name": "Bob", "skills": ["review"]})).unwrap();
    until("a sees b's new content", || {
        a.node.discovered(Some("coffee"), false).iter().any(|p| p.content["name"] == "Bob")
    })
    .await;
    assert!(b.node.leave("coffee").await.unwrap());
    until("b is gone from a's list", || a.node.discovered(Some("coffee"), false).is_empty()).await;
    let mut saw_update = false;
    let mut saw_withdraw = false;
    while let Ok(ev) = events.try_recv() {
        match ev {
            DiscoveryEvent::Updated { peer } => saw_update |= peer.content["name"] == "Bob",
            DiscoveryEvent::Gone { why, public_key, .. } => {
                saw_withdraw |=
                    why == wopr_p2p::discovery::GoneWhy::Withdrawn && public_key == b.id().to_hex()
            }
            _ => {}
        }
    }
    assert!(saw_update && saw_withdraw, "update {saw_update}, withdraw {saw_withdraw}");
    assert!(b.node.topics().is_empty());
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_connect_leaves_the_state_of_a_claimed_invite() {
    let a = node(&[], &[]).await;
    let c = node(&[a.node.ticket()], &[]).await;
    a.node.join("bars").await.unwrap();
    c.node.join("bars").await.unwrap();
    until("c sees a", || sees(&c, "bars", &[&a])).await;
    let connected = c.node.connect(&a.id().short(), None, "hello from c").await.unwrap();
    let session = format!("discover:{}", c.id().short());
    assert_eq!(connected.peer.public_key, a.id());
    assert_eq!(connected.peer.sessions.iter().cloned().collect::<Vec<_>>(), vec![session.clone()]);
    assert_eq!(connected.peer.capabilities.iter().copied().collect::<Vec<_>>(), [Capability::Message]);
    // c stored a in peers.json; a stored a grant for c's key in access.json: message only, one session.
    let peers = c.home.peers().load().unwrap();
    assert!(peers.peers.iter().any(|p| p.public_key == a.id()));
    let access = a.home.access().load().unwrap();
    let grant = access.grants.iter().find(|g| g.peer_key == c.id()).expect("a grant for c");
    assert_eq!(grant.capabilities.iter().copied().collect::<Vec<_>>(), [Capability::Message]);
    assert_eq!(grant.sessions.iter().cloned().collect::<Vec<_>>(), vec![session.clone()]);
    // And the grant works: c can log to its session on a (and nothing more).
    c.node.log(&a.id().short(), &session, "hi").await.unwrap();
    assert_eq!(a.backend.logs.lock().unwrap().len(), 1);
    // With `message` only, an inject is logged and never reaches the AI.
    let logged = c.node.inject(&a.id().short(), &session, "think", |_| {}).await.unwrap();
    assert_eq!(logged, wopr_p2p::DoneStatus::Logged);
    assert!(a.backend.injects.lock().unwrap().is_empty());
    // Another session on a is out of reach.
    let e = c.node.log(&a.id().short(), "main", "hi").await.unwrap_err();
    assert_eq!(e.exit_code().code(), 7, "unauthorized: {e}");
    a.node.shutdown().await;
    c.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_policies_never_and_ask_decide_and_say_why() {
    let a = node(&[], &[("discover.accept", json!("never"))]).await;
    let c = node(&[a.node.ticket()], &[]).await;
    a.node.join("bars").await.unwrap();
    c.node.join("bars").await.unwrap();
    until("c sees a", || sees(&c, "bars", &[&a])).await;
    let e = c.node.connect(&a.id().short(), None, "").await.unwrap_err();
    assert_eq!(e.exit_code().code(), 2, "{e}");
    assert!(e.to_string().contains("does not accept connect requests"), "{e}");
    assert!(a.home.access().load().unwrap().grants.is_empty());

    // `ask`: the request waits for the owner, who sees it and declines, then accepts the next.
    set(&a.home, "discover.accept", json!("ask"));
    a.node.reload_discovery().unwrap();
    let asking = {
        let (c_node, a_short) = (&c.node, a.id().short());
        async move { c_node.connect(&a_short, None, "please").await }
    };
    let owner = async {
        until("a holds c's request", || !a.node.connect_requests().is_empty()).await;
        let pending = a.node.connect_requests();
        assert_eq!(
            (pending[0].peer.public_key.as_str(), pending[0].note.as_str()),
            (c.id().to_hex().as_str(), "please")
        );
        a.node.decide_connect(&c.id().short(), false).unwrap()
    };
    let (declined, _) = tokio::join!(asking, owner);
    let e = declined.unwrap_err();
    assert!(e.to_string().contains("the owner declined"), "{e}");
    let a_short = a.id().short();
    let asking = c.node.connect(&a_short, None, "please?");
    let owner = async {
        until("a holds c's second request", || !a.node.connect_requests().is_empty()).await;
        a.node.decide_connect(&c.id().to_hex(), true).unwrap()
    };
    let (accepted, key) = tokio::join!(asking, owner);
    assert_eq!(key, c.id());
    assert!(accepted.unwrap().reason.contains("owner"));
    assert!(a.home.access().load().unwrap().grants.iter().any(|g| g.peer_key == c.id()));
    a.node.shutdown().await;
    c.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_know_only_the_topic_name_meet_through_a_local_dht_testnet() {
    let net = tokio::task::spawn_blocking(|| mainline::Testnet::builder(10).build().expect("testnet"))
        .await
        .unwrap();
    let dht = json!({ "bootstrap": net.bootstrap });
    // No static bootstrap, no known peers, no LAN: the DHT is the only way to meet.
    let settings = [("discover.dht", dht), ("discover.knownPeers", json!(false))];
    let a = node(&[], &settings).await;
    let b = node(&[], &settings).await;
    a.node.join("dht-only-topic").await.unwrap();
    b.node.join("dht-only-topic").await.unwrap();
    until("a and b meet through the DHT", || {
        sees(&a, "dht-only-topic", &[&b]) && sees(&b, "dht-only-topic", &[&a])
    })
    .await;
    let status = a.node.discover_status();
    assert!(status.sources.dht.enabled && !status.sources.static_nodes.enabled);
    // A third node in another topic on the same DHT meets nobody (the name is the meeting place).
    let c = node(&[], &settings).await;
    c.node.join("another-topic").await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(c.node.discovered(None, true).is_empty());
    assert!(a.node.discovered(Some("dht-only-topic"), true).iter().all(|p| p.public_key != c.id().to_hex()));
    for n in [a, b, c] {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_topic_stays_between_its_members() {
    // The secret topic's members meet through the DHT (only its name leads there); everyone meets in
    // "global" through the hub, which is not in the secret topic.
    let net = tokio::task::spawn_blocking(|| mainline::Testnet::builder(10).build().expect("testnet"))
        .await
        .unwrap();
    let dht =
        [("discover.dht", json!({ "bootstrap": net.bootstrap })), ("discover.knownPeers", json!(false))];
    let hub = node(&[], &dht).await;
    let t = vec![hub.node.ticket()];
    let (a, b, eve) = (node(&t, &dht).await, node(&t, &dht).await, node(&t, &dht).await);
    for n in [&hub, &eve] {
        n.node.join("global").await.unwrap();
    }
    for n in [&a, &b] {
        n.node.join("global").await.unwrap();
        n.node.join("coffee-tuesday-7pm-alice-bob").await.unwrap();
    }
    until("a and b meet in the secret topic", || sees(&a, "coffee-tuesday-7pm-alice-bob", &[&b])).await;
    until("eve sees a and b in global", || sees(&eve, "global", &[&a, &b])).await;
    // Eve's view holds their global profiles only, which name only "global": the secret name never left.
    for p in eve.node.discovered(None, true) {
        assert_eq!(p.topics, ["global"], "{p:?}");
    }
    for n in [hub, a, b, eve] {
        n.node.shutdown().await;
    }
}
