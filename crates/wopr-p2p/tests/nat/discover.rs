//! Discovery across the namespaces: two nodes behind separate NATs meet in a topic through a public
//! bootstrap node and reach each other through the relay; two nodes on one bridged LAN meet in a topic
//! with mDNS as their only source (no bootstrap list, no DHT, no known peers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wopr_p2p::{NodeConfig, RelayChoice};
use wopr_store::{Capability, Config, ConfigKey, Home};

use crate::common::TestNode;
use crate::netns::{LanSegment, Nat, NsThread, RELAY_IP, Topology, require_root_and_tools};
use crate::{Host, ONLINE, poll, relay};

/// How long gossip (and, on the LAN, mDNS) may take to bring a profile (generous for a loaded CI).
const MEET: Duration = Duration::from_secs(60);

fn set(home: &Home, key: &str, value: Value) {
    Config::of(home).set(&ConfigKey::parse(key).unwrap(), value).unwrap();
}

/// Sets `settings` in the node's `config.json`, has it re-read them, and joins `topic`, on its
/// namespace's thread (the gossip tasks must open their sockets there).
async fn configure_and_join(
    ns: &NsThread,
    node: &Arc<TestNode>,
    settings: Vec<(&'static str, Value)>,
    topic: &'static str,
) {
    for (k, v) in settings {
        set(&node.home, k, v);
    }
    node.node.reload_discovery().expect("the settings are valid");
    let n = node.clone();
    let joined = ns.run(async move { n.node.join(topic).await }).await;
    assert!(joined.expect("join"), "{topic} was already joined");
}

/// The profile `seer` lists for `seen` in `topic`, if any.
fn profile_of(seer: &TestNode, seen: &TestNode, topic: &str) -> Option<wopr_p2p::discovery::PeerView> {
    let key = seen.id().to_hex();
    seer.node.discovered(Some(topic), false).into_iter().find(|p| p.public_key == key)
}

/// A node in the WAN (no NAT in front of it) using the relay: the public bootstrap node.
async fn public_node(topology: &Topology, relay: &relay::Relay) -> Host {
    let ns = NsThread::start(topology.wan());
    let config = NodeConfig {
        relay: RelayChoice::Custom(vec![relay.url.clone()]),
        bind: Some(SocketAddr::from((RELAY_IP, 0))),
        relay_roots: vec![relay.ca_der.clone()],
        ..NodeConfig::loopback()
    };
    let node = ns
        .run(async move {
            let dir = tempfile::tempdir().unwrap();
            let home = Home::at(dir.path().join("wopr"));
            let identity = home.init_identity(false).unwrap();
            TestNode::start_with(dir, home, identity, config).await
        })
        .await;
    let host = Host { node: Arc::new(node), ns, name: topology.wan().to_string() };
    let online = host.run(|n| async move { n.node.wait_online(ONLINE).await }).await;
    assert!(online, "the public bootstrap node never connected to the relay");
    host
}

/// Settings of a node whose only bootstrap source is `ticket`.
fn only_bootstrap(ticket: Option<String>, profile: Value) -> Vec<(&'static str, Value)> {
    vec![
        ("discover.bootstrap", json!(ticket.into_iter().collect::<Vec<_>>())),
        ("discover.dht", json!(false)),
        ("discover.mdns", json!(false)),
        ("discover.knownPeers", json!(false)),
        ("discover.profile", profile),
    ]
}

#[tokio::test]
async fn two_nodes_behind_separate_nats_meet_through_a_topic_and_connect_via_the_relay() {
    require_root_and_tools();
    let topology = Topology::build(Nat::EndpointIndependent);
    let wan = NsThread::start(topology.wan());
    let relay = wan.run(relay::start()).await;
    let hub = public_node(&topology, &relay).await;
    let a = Host::start(topology.host(0), &relay, Topology::public_ip(0).into()).await;
    let b = Host::start(topology.host(1), &relay, Topology::public_ip(1).into()).await;
    let topic = "agents-behind-nat";

    // A and B know only the public node's ticket; neither knows the other exists.
    let ticket = hub.node.node.ticket();
    configure_and_join(&hub.ns, &hub.node, only_bootstrap(None, json!({"name": "hub"})), topic).await;
    let alice = json!({"name": "Alice", "behind": "NAT 1"});
    configure_and_join(&a.ns, &a.node, only_bootstrap(Some(ticket.clone()), alice.clone()), topic).await;
    let bob = json!({"name": "Bob", "behind": "NAT 2"});
    configure_and_join(&b.ns, &b.node, only_bootstrap(Some(ticket), bob.clone()), topic).await;

    let met = poll(MEET, || {
        let (ab, ba) = (profile_of(&a.node, &b.node, topic), profile_of(&b.node, &a.node, topic));
        ab.zip(ba)
    })
    .await;
    let (seen_by_a, seen_by_b) = met.unwrap_or_else(|| {
        panic!(
            "A and B did not see each other's profiles within {MEET:?}: A lists {:?}, B lists {:?}",
            a.node.node.discovered(Some(topic), false),
            b.node.node.discovered(Some(topic), false)
        )
    });
    assert_eq!(seen_by_a.content, bob);
    assert_eq!(seen_by_b.content, alice);
    // The only way into A is the relay: its profile must say which one.
    let relay_url = relay.url.to_string();
    assert!(
        seen_by_b
            .hints
            .iter()
            .any(|h| h == &relay_url || h.trim_end_matches('/') == relay_url.trim_end_matches('/')),
        "A's profile names no relay, so nobody outside its NAT can reach it: {:?}",
        seen_by_b.hints
    );

    // B asks A for a connection; A's default policy (auto) grants `message` on a dedicated session.
    let a_short = a.node.id().short();
    let connected = b
        .run({
            let a_short = a_short.clone();
            |n| async move { n.node.connect(&a_short, None, "hello from behind NAT 2").await }
        })
        .await
        .expect("B's connect-request reaches A through the relay and is accepted");
    let session = format!("discover:{}", b.node.id().short());
    assert_eq!(connected.peer.public_key, a.node.id());
    assert_eq!(connected.peer.sessions.iter().cloned().collect::<Vec<_>>(), vec![session.clone()]);
    let grants = a.node.home.access().load().unwrap().grants;
    let grant = grants.iter().find(|g| g.peer_key == b.node.id()).expect("A stored a grant for B");
    assert_eq!(grant.capabilities.iter().copied().collect::<Vec<_>>(), [Capability::Message]);

    // And the grant works across both NATs: B logs to its session on A.
    b.run({
        let (a_short, session) = (a_short.clone(), session.clone());
        |n| async move { n.node.log(&a_short, &session, "logged from behind NAT 2").await }
    })
    .await
    .expect("B logs to the granted session");
    let logs = a.node.backend.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!((logs[0].from, logs[0].session.as_str()), (b.node.id(), session.as_str()));
    assert_eq!(logs[0].text, "logged from behind NAT 2");

    a.shutdown().await;
    b.shutdown().await;
    hub.shutdown().await;
    wan.run(async move { relay.server.shutdown().await }).await.expect("the relay stops cleanly");
    drop(wan);
    drop(topology);
}

/// A node on host `i` of the LAN, relays off, mDNS on in its endpoint config.
async fn lan_node(lan: &LanSegment, i: usize) -> (NsThread, Arc<TestNode>) {
    let ns = NsThread::start(lan.host(i));
    let config = NodeConfig {
        relay: RelayChoice::Disabled,
        bind: Some(SocketAddr::from(([0, 0, 0, 0], 0))),
        mdns: true,
        ..NodeConfig::loopback()
    };
    let node = ns
        .run(async move {
            let dir = tempfile::tempdir().unwrap();
            let home = Home::at(dir.path().join("wopr"));
            let identity = home.init_identity(false).unwrap();
            TestNode::start_with(dir, home, identity, config).await
        })
        .await;
    (ns, Arc::new(node))
}

async fn stop(ns: NsThread, node: Arc<TestNode>) {
    let node = Arc::into_inner(node).expect("no request still holds the node");
    ns.run(async move { node.node.shutdown().await }).await;
}

#[tokio::test]
async fn on_a_bridged_lan_two_nodes_meet_in_a_topic_with_mdns_as_the_only_source() {
    require_root_and_tools();
    let lan = LanSegment::build(2);
    let (a_ns, a) = lan_node(&lan, 0).await;
    let (b_ns, b) = lan_node(&lan, 1).await;
    let topic = "lan-party";
    let lan_only = |profile: Value| {
        vec![
            ("discover.bootstrap", json!([])),
            ("discover.dht", json!(false)),
            ("discover.knownPeers", json!(false)),
            ("discover.mdns", json!(true)),
            ("discover.profile", profile),
        ]
    };
    configure_and_join(&a_ns, &a, lan_only(json!({"name": "Ana"})), topic).await;
    configure_and_join(&b_ns, &b, lan_only(json!({"name": "Ben"})), topic).await;

    let met = poll(MEET, || profile_of(&a, &b, topic).zip(profile_of(&b, &a, topic))).await;
    let (seen_by_a, seen_by_b) = met.unwrap_or_else(|| {
        panic!(
            "A and B did not meet in the topic within {MEET:?}: LAN peers A {:?} B {:?}; A lists {:?}, B lists {:?}",
            a.node.lan_peers().borrow(),
            b.node.lan_peers().borrow(),
            a.node.discovered(Some(topic), false),
            b.node.discovered(Some(topic), false)
        )
    });
    assert_eq!(seen_by_a.content, json!({"name": "Ben"}));
    assert_eq!(seen_by_b.content, json!({"name": "Ana"}));
    // The LAN was the source that named the other: every other source was off and found nothing.
    let status = a.node.discover_status();
    assert!(status.sources.mdns.enabled && status.sources.mdns.found >= 1, "{:?}", status.sources);
    assert!(!status.sources.static_nodes.enabled && status.sources.static_nodes.found == 0);
    assert!(!status.sources.dht.enabled && status.sources.known_peers.found == 0, "{:?}", status.sources);
    // They talk directly over the LAN (relays are off).
    let b_ip = IpAddr::from(LanSegment::ip(1));
    assert!(
        seen_by_a.hints.iter().any(|h| h.parse::<SocketAddr>().is_ok_and(|s| s.ip() == b_ip)),
        "{:?}",
        seen_by_a.hints
    );

    stop(a_ns, a).await;
    stop(b_ns, b).await;
    drop(lan);
}
