//! `doctor net` behind the NATs: what the net report says about the relay, the NAT and the path to a
//! peer, checked against what the topology really is.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wopr_p2p::{NatKind, NetReport, NodeConfig, RelayChoice};
use wopr_store::Home;

use crate::common::TestNode;
use crate::netns::{Nat, NsThread, RELAY_IP, SECOND_RELAY_IP, Topology, require_root_and_tools};
use crate::{ONLINE, PUNCH, Scene, WATCH, relay};

/// A's report about itself and its path to B, taken inside A's namespace.
async fn report_of_a(scene: &Scene, patience: Duration) -> NetReport {
    let b = scene.b.node.id();
    scene.a.run(move |n| async move { n.node.net_report(Some(&b), patience).await }).await
}

/// What holds behind any NAT: the relay is reachable with a latency, and the public address the relay
/// saw is the router's, not one of A's own.
fn assert_behind_the_nat(report: &NetReport, scene: &Scene) {
    assert!(report.relay.enabled && report.relay.measured, "{report:#?}");
    let relay = scene.relay.url.to_string();
    let home = report.relay.relays.iter().find(|r| r.url == relay).unwrap_or_else(|| panic!("{report:#?}"));
    assert!(home.home && home.connected, "the home relay is not connected: {home:?}");
    assert!(home.latency_ms.is_some_and(|ms| ms > 0.0), "no relay latency: {home:?}");
    assert!(report.relay.udp_v4, "QAD over IPv4 got no answer: {report:#?}");

    let public = report.nat.public_v4.expect("a public IPv4 address from QAD");
    assert_eq!(public.ip(), IpAddr::from(Topology::public_ip(0)), "{report:#?}");
    let lan_ip: IpAddr = "192.168.1.2".parse().unwrap();
    assert!(report.interfaces.contains(&lan_ip), "A's own address is missing: {:?}", report.interfaces);
    assert!(!report.interfaces.contains(&public.ip()), "the public address is local: {report:#?}");
    assert!(report.bound.iter().all(|b| b.ip() != public.ip()), "bound on the public address: {report:#?}");
    // One relay: iroh has nothing to compare mappings with, so it must not claim to know.
    assert_eq!(report.nat.mapping_varies_by_destination, None, "{report:#?}");
    assert_eq!(report.nat.kind, NatKind::BehindUnknownMapping, "{report:#?}");
    assert!(report.bootstrap_sources.is_none(), "no discovery runs here: {report:#?}");
}

#[tokio::test]
async fn doctor_net_behind_a_cone_nat_reports_the_relay_the_public_address_and_a_direct_path() {
    let scene = Scene::set_up(Nat::EndpointIndependent).await;
    let report = report_of_a(&scene, PUNCH).await;
    assert_behind_the_nat(&report, &scene);
    // Plain masquerade keeps the source port.
    assert_eq!(report.nat.port_preserved, Some(true), "{report:#?}");
    let peer = report.peer.as_ref().expect("a peer section");
    assert_eq!(peer.id, scene.b.node.id().to_hex());
    assert_eq!(peer.kind, "direct", "{peer:?}");
    let b_public = SocketAddr::from((Topology::public_ip(1), 0)).ip().to_string();
    assert!(peer.path.as_deref().is_some_and(|p| p.contains(&b_public)), "{peer:?}");
    assert!(peer.rtt_ms.is_some(), "{peer:?}");
    // The report is what `--json` prints: it goes through JSON and back unchanged.
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<NetReport>(&json).unwrap(), report);
    scene.tear_down().await;
}

#[tokio::test]
async fn doctor_net_behind_a_symmetric_nat_reports_a_rewritten_port_and_a_relayed_path() {
    let scene = Scene::set_up(Nat::Symmetric).await;
    let report = report_of_a(&scene, WATCH).await;
    assert_behind_the_nat(&report, &scene);
    // `fully-random` gives the flow to the relay a fresh port.
    assert_eq!(report.nat.port_preserved, Some(false), "{report:#?}");
    let peer = report.peer.as_ref().expect("a peer section");
    assert_eq!(peer.kind, "relay", "{peer:?}");
    assert_eq!(peer.path, Some(format!("relay {}", scene.relay.url)), "{peer:?}");
    scene.tear_down().await;
}

/// The report of a node alone behind `nat` that uses two relays (at two WAN addresses), so iroh can
/// compare the public address each one saw.
async fn report_with_two_relays(nat: Nat) -> NetReport {
    require_root_and_tools();
    let topology = Topology::build(nat);
    let wan = NsThread::start(topology.wan());
    let first = wan.run(relay::start_at(RELAY_IP)).await;
    let second = wan.run(relay::start_at(SECOND_RELAY_IP)).await;
    let config = NodeConfig {
        relay: RelayChoice::Custom(vec![first.url.clone(), second.url.clone()]),
        bind: Some(SocketAddr::from(([0, 0, 0, 0], 0))),
        relay_roots: vec![first.ca_der.clone(), second.ca_der.clone()],
        ..NodeConfig::loopback()
    };
    let host = NsThread::start(topology.host(0));
    let report = host
        .run(async move {
            let dir = tempfile::tempdir().unwrap();
            let home = Home::at(dir.path().join("wopr"));
            let identity = home.init_identity(false).unwrap();
            let node = TestNode::start_with(dir, home, identity, config).await;
            let report = node.node.net_report(None, ONLINE).await;
            node.node.shutdown().await;
            report
        })
        .await;
    drop(host);
    wan.run(async move {
        first.server.shutdown().await.expect("the first relay stops cleanly");
        second.server.shutdown().await.expect("the second relay stops cleanly");
    })
    .await;
    drop(wan);
    drop(topology);
    report
}

#[tokio::test]
async fn doctor_net_with_two_relays_tells_a_cone_nat_from_a_symmetric_one() {
    let public = IpAddr::from(Topology::public_ip(0));
    for (nat, kind, varies) in [
        (Nat::EndpointIndependent, NatKind::EndpointIndependent, false),
        (Nat::Symmetric, NatKind::Symmetric, true),
    ] {
        let report = report_with_two_relays(nat).await;
        let latencies = report.relay.relays.iter().filter(|r| r.latency_ms.is_some()).count();
        assert_eq!(latencies, 2, "{nat:?}: both relays answer: {report:#?}");
        assert_eq!(report.nat.public_v4.map(|a| a.ip()), Some(public), "{nat:?}: {report:#?}");
        assert_eq!(report.nat.mapping_varies_by_destination, Some(varies), "{nat:?}: {report:#?}");
        assert_eq!(report.nat.kind, kind, "{nat:?}: {report:#?}");
    }
}
