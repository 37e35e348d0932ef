//! `wopr doctor net`: what this node can tell about its own network, from what iroh measures.
//!
//! iroh's net report probes each configured relay over HTTPS and QUIC address discovery (QAD): the relay
//! answers with the address it saw the packet come from, that is this node's public address as the NAT
//! rewrote it. Compared with the machine's own interface addresses that says whether a NAT is in the
//! way; compared across relays it says whether the NAT keeps one public mapping per socket
//! (endpoint-independent: hole punching works) or gives each destination its own (symmetric: peers'
//! punches miss, the relay carries the traffic). With one relay there is nothing to compare, and with
//! relays disabled there is no observer at all: the report then says "unknown" rather than guess.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::Watcher as _;
use iroh::unstable_net_report::Probe;
use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::inner::Inner;
use crate::lan::{LanDiscovery, LanState};
use crate::{Node, PeerPath, RelayChoice};

/// How often a path is looked at while waiting for a direct one.
const PATH_POLL: Duration = Duration::from_millis(100);

/// Everything `wopr doctor net` reports (`--json` prints it as is, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetReport {
    /// This node's WOPR id (also its endpoint id), hex.
    pub id: String,
    /// The UDP sockets the endpoint bound (`0.0.0.0:port` / `[::]:port`: every interface).
    pub bound: Vec<SocketAddr>,
    /// This machine's interface addresses, loopback excluded.
    pub interfaces: Vec<IpAddr>,
    /// The direct addresses the endpoint advertises: interface addresses with the bound port, and the
    /// public ones relays reported.
    pub advertised: Vec<SocketAddr>,
    /// Relays: which, whether reachable, and how fast.
    pub relay: RelayReport,
    /// Whether a NAT is in the way and how it maps, as far as iroh can tell.
    pub nat: NatReport,
    /// LAN discovery by mDNS.
    pub lan: LanReport,
    /// The path to the peer asked about (`--peer`), if any.
    pub peer: Option<PeerReport>,
    /// The discovery bootstrap sources and whether each answered at the last join; `None` when this node
    /// is in no topic (nothing to report), not "none answered".
    pub bootstrap_sources: Option<Vec<BootstrapSource>>,
}

/// The relays of `p2p.relay` and what probing them found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    /// `p2p.relay` as configured: `default`, `disabled` or a URL.
    pub mode: String,
    /// Whether any relay is configured (false: `p2p.relay = disabled`).
    pub enabled: bool,
    /// One entry per relay probed or connected to.
    pub relays: Vec<RelayProbe>,
    /// Whether a QAD probe got an answer over IPv4 (UDP works to the relays).
    pub udp_v4: bool,
    /// Whether a QAD probe got an answer over IPv6.
    pub udp_v6: bool,
    /// Whether HTTP traffic seems intercepted by a captive portal (`None`: not checked).
    pub captive_portal: Option<bool>,
    /// Whether iroh's net report completed within the wait (with relays enabled).
    pub measured: bool,
}

/// One relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayProbe {
    /// The relay's URL.
    pub url: String,
    /// Whether it is this node's home relay (the one peers reach it through).
    pub home: bool,
    /// Whether the home relay connection is up (always false for a relay that is not home).
    pub connected: bool,
    /// The lowest round trip measured, in milliseconds (`None`: no probe answered).
    pub latency_ms: Option<f64>,
    /// Which probe measured it: `https`, `qad-ipv4` or `qad-ipv6`.
    pub latency_probe: Option<String>,
    /// The last error connecting to it, if it is home and not connected.
    pub error: Option<String>,
}

/// NAT as seen through the relays' eyes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NatReport {
    /// The verdict.
    pub kind: NatKind,
    /// The public IPv4 address and port relays saw (QAD).
    pub public_v4: Option<SocketAddr>,
    /// The public IPv6 address and port relays saw (QAD).
    pub public_v6: Option<SocketAddr>,
    /// Whether the public address differed between relays (`None`: fewer than two relays answered, so
    /// iroh cannot tell).
    pub mapping_varies_by_destination: Option<bool>,
    /// Whether the public port is the bound port (the NAT, if any, keeps source ports).
    pub port_preserved: Option<bool>,
    /// The verdict in a sentence, with what it means for direct connections.
    pub explanation: String,
}

/// Whether a NAT sits between this node and the relays, and how it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatKind {
    /// The public address is one of this machine's own: no NAT in the way.
    None,
    /// Behind a NAT that keeps one public address per socket for every destination: hole punching works.
    EndpointIndependent,
    /// Behind a NAT that gives each destination a new public port: direct paths through it are unlikely.
    Symmetric,
    /// Behind a NAT, but only one relay answered, so whether the mapping varies is unknown.
    BehindUnknownMapping,
    /// No public address learnt (relays disabled or unreachable): nothing to compare.
    Unknown,
}

/// LAN discovery by mDNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LanReport {
    /// `off`, `running` or `failed`.
    pub state: String,
    /// Why it failed to start.
    pub error: Option<String>,
    /// The endpoint ids seen on the LAN now, hex.
    pub peers: Vec<String>,
}

/// How this node reaches one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerReport {
    /// The peer's id, hex.
    pub id: String,
    /// `direct`, `relay`, or `none` (no connection could be opened).
    pub kind: String,
    /// The path: `direct <socket address>` or `relay <url>`.
    pub path: Option<String>,
    /// Round trip on that path, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why no connection could be opened.
    pub error: Option<String>,
}

/// One discovery bootstrap source (known peers, static nodes, mDNS, the DHT) and whether it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapSource {
    /// The source's name, as `wopr discover status` shows it.
    pub source: String,
    /// Whether it gave at least one peer.
    pub answered: bool,
    /// What it gave or why not.
    pub detail: String,
}

/// Builds the report for `node`; waits up to `patience` for each of: the home relay, the net report, a
/// connection to `peer`, and a direct path to it.
pub(crate) async fn probe(
    node: &Node,
    inner: &Arc<Inner>,
    lan: &LanDiscovery,
    peer: Option<&PublicId>,
    patience: Duration,
) -> NetReport {
    let endpoint = &inner.endpoint;
    let enabled = !matches!(inner.config.relay, RelayChoice::Disabled);
    let mut measured = None;
    if enabled {
        // Both run from the endpoint's start: the first report is usually there already.
        let _ = tokio::time::timeout(patience, endpoint.online()).await;
        measured = tokio::time::timeout(patience, endpoint.net_report().initialized()).await.ok();
    }
    let interfaces = interface_addrs().await;
    let bound = endpoint.bound_sockets();
    let relays = relay_probes(inner, measured.as_ref());
    let nat = nat_verdict(&interfaces, &bound, measured.as_ref(), enabled);
    let relay = RelayReport {
        mode: inner.config.relay.to_string(),
        enabled,
        relays,
        udp_v4: measured.as_ref().is_some_and(|r| r.udp_v4),
        udp_v6: measured.as_ref().is_some_and(|r| r.udp_v6),
        captive_portal: measured.as_ref().and_then(|r| r.captive_portal),
        measured: measured.is_some(),
    };
    let peer = match peer {
        Some(p) => Some(peer_path(node, inner, p, patience).await),
        None => None,
    };
    NetReport {
        id: inner.me.to_hex(),
        bound,
        interfaces: interfaces.into_iter().collect(),
        advertised: endpoint.addr().ip_addrs().copied().collect(),
        relay,
        nat,
        lan: lan_report(lan),
        peer,
        bootstrap_sources: (!inner.discovery.topics().is_empty())
            .then(|| bootstrap_sources(&inner.discovery.sources_now())),
    }
}

/// The machine's interface addresses, loopback excluded.
async fn interface_addrs() -> BTreeSet<IpAddr> {
    let state = netwatch::interfaces::State::new().await;
    state
        .interfaces
        .values()
        .filter(|i| i.is_up())
        .flat_map(|i| i.addrs().map(|a| a.addr()).collect::<Vec<_>>())
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// The relays known from the home relay status and the net report's latencies.
fn relay_probes(inner: &Inner, report: Option<&iroh::unstable_net_report::NetReport>) -> Vec<RelayProbe> {
    let mut probes: Vec<RelayProbe> = inner
        .endpoint
        .home_relay_status()
        .get()
        .into_iter()
        .map(|status| RelayProbe {
            url: status.url().to_string(),
            home: true,
            connected: status.is_connected(),
            latency_ms: None,
            latency_probe: None,
            error: status.last_error().map(|e| e.to_string()),
        })
        .collect();
    if let Some(report) = report {
        for (probe, url, latency) in report.relay_latency.iter() {
            let url = url.to_string();
            let entry = match probes.iter().position(|p| p.url == url) {
                Some(i) => &mut probes[i],
                None => {
                    probes.push(RelayProbe {
                        url,
                        home: false,
                        connected: false,
                        latency_ms: None,
                        latency_probe: None,
                        error: None,
                    });
                    probes.last_mut().expect("just pushed")
                }
            };
            let ms = millis(latency);
            if entry.latency_ms.is_none_or(|best| ms < best) {
                entry.latency_ms = Some(ms);
                entry.latency_probe = Some(probe_name(probe).to_string());
            }
        }
    }
    probes
}

fn probe_name(probe: Probe) -> &'static str {
    match probe {
        Probe::Https => "https",
        Probe::QadIpv4 => "qad-ipv4",
        Probe::QadIpv6 => "qad-ipv6",
        _ => "other",
    }
}

/// What the public addresses say about a NAT (see the module docs).
fn nat_verdict(
    interfaces: &BTreeSet<IpAddr>,
    bound: &[SocketAddr],
    report: Option<&iroh::unstable_net_report::NetReport>,
    relays_enabled: bool,
) -> NatReport {
    let public_v4 = report.and_then(|r| r.global_v4).map(SocketAddr::V4);
    let public_v6 = report.and_then(|r| r.global_v6).map(SocketAddr::V6);
    let varies = report.and_then(|r| r.mapping_varies_by_dest());
    // IPv4 first: that is where NATs are; an IPv6 address is usually global.
    let public = public_v4.or(public_v6);
    let port_preserved =
        public.map(|p| bound.iter().any(|b| b.is_ipv4() == p.is_ipv4() && b.port() == p.port()));
    let (kind, explanation) = match public {
        None if !relays_enabled => (
            NatKind::Unknown,
            "relays are disabled (p2p.relay = disabled): no relay reports a public address, so whether a NAT \
             is in the way is unknown; peers reach this node only at the addresses they are given"
                .to_string(),
        ),
        None => (
            NatKind::Unknown,
            "no relay answered a QUIC address discovery probe (UDP blocked, or the relays are unreachable): \
             the public address and NAT are unknown"
                .to_string(),
        ),
        Some(p) if interfaces.contains(&p.ip()) => (
            NatKind::None,
            format!("the relays see {p}, an address of this machine: no NAT in the way"),
        ),
        Some(p) => match varies {
            Some(true) => (
                NatKind::Symmetric,
                format!(
                    "behind a NAT (the relays see {p}, not an address of this machine) that maps each \
                     destination to a different public port (symmetric): direct paths through it are \
                     unlikely, so peers are reached through the relay"
                ),
            ),
            Some(false) => (
                NatKind::EndpointIndependent,
                format!(
                    "behind a NAT (the relays see {p}, not an address of this machine) that keeps the same \
                     public address for every relay (endpoint-independent): hole punching should work"
                ),
            ),
            None => (
                NatKind::BehindUnknownMapping,
                format!(
                    "behind a NAT (the relay sees {p}, not an address of this machine); only one relay \
                     answered, so whether the NAT changes the mapping per destination (symmetric) is unknown"
                ),
            ),
        },
    };
    NatReport {
        kind,
        public_v4,
        public_v6,
        mapping_varies_by_destination: varies,
        port_preserved,
        explanation,
    }
}

fn lan_report(lan: &LanDiscovery) -> LanReport {
    let (state, error) = match lan.state() {
        LanState::Off => ("off", None),
        LanState::Running => ("running", None),
        LanState::Failed(e) => ("failed", Some(e.clone())),
    };
    let peers = lan.peers().borrow().iter().map(PublicId::to_hex).collect();
    LanReport { state: state.to_string(), error, peers }
}

/// The path to `peer`: an open connection's, else one opened now; then up to `patience` for it to
/// turn direct (hole punching happens after the first packets through the relay).
async fn peer_path(node: &Node, inner: &Arc<Inner>, peer: &PublicId, patience: Duration) -> PeerReport {
    let mut report =
        PeerReport { id: peer.to_hex(), kind: "none".into(), path: None, rtt_ms: None, error: None };
    if node.path_to(peer).is_none() {
        let hints = inner.hints_for(peer).await;
        if let Err(e) = inner.connection(peer, &hints).await {
            report.error = Some(e.to_string());
            return report;
        }
    }
    let deadline = Instant::now() + patience;
    let mut path = node.path_to(peer);
    while !matches!(path, Some(PeerPath::Direct(_))) && Instant::now() < deadline {
        tokio::time::sleep(PATH_POLL).await;
        path = node.path_to(peer);
    }
    report.kind = match &path {
        Some(PeerPath::Direct(_)) => "direct",
        Some(PeerPath::Relay(_)) => "relay",
        None => "none",
    }
    .into();
    report.path = path.as_ref().map(PeerPath::to_string);
    report.rtt_ms = selected_rtt(inner, peer).map(millis);
    if path.is_none() {
        report.error = Some("the connection closed before its path could be read".into());
    }
    report
}

/// The round trip of the selected path of a connection to `peer` (the lowest if several).
fn selected_rtt(inner: &Inner, peer: &PublicId) -> Option<Duration> {
    let conns = inner.pool.live(peer).into_iter().chain(inner.registry.of(peer));
    conns.filter_map(|c| c.paths().iter().find(|p| p.is_selected()).map(|p| p.rtt())).min()
}

/// A duration in milliseconds, to the microsecond: short enough that `--json` reads back exactly.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Discovery's bootstrap sources at the last join, as the doctor reports them.
fn bootstrap_sources(s: &crate::discovery::Sources) -> Vec<BootstrapSource> {
    let one = |name: &str, st: &crate::discovery::SourceStatus| BootstrapSource {
        source: name.to_string(),
        answered: st.enabled && st.found > 0,
        detail: match (st.enabled, &st.note) {
            (false, _) => "off".to_string(),
            (true, Some(note)) => format!("{} found; {note}", st.found),
            (true, None) => format!("{} found", st.found),
        },
    };
    vec![
        one("static (discover.bootstrap)", &s.static_nodes),
        one("known peers", &s.known_peers),
        one("LAN (mDNS)", &s.mdns),
        one("mainline DHT", &s.dht),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(global: Option<&str>, varies: Option<bool>) -> iroh::unstable_net_report::NetReport {
        let mut r = iroh::unstable_net_report::NetReport::default();
        r.global_v4 = global.map(|g| g.parse().unwrap());
        r.udp_v4 = global.is_some();
        r.mapping_varies_by_dest_ipv4 = varies;
        r
    }

    #[test]
    fn the_nat_verdict_says_what_the_addresses_say_and_no_more() {
        let interfaces: BTreeSet<IpAddr> = ["192.168.1.2".parse().unwrap()].into();
        let bound: Vec<SocketAddr> = vec!["0.0.0.0:4000".parse().unwrap()];
        let verdict = |g, v, on| nat_verdict(&interfaces, &bound, Some(&report(g, v)), on);

        let open = verdict(Some("192.168.1.2:4000"), None, true);
        assert_eq!(open.kind, NatKind::None);
        assert_eq!(open.port_preserved, Some(true));
        assert_eq!(verdict(Some("10.0.0.2:4000"), Some(false), true).kind, NatKind::EndpointIndependent);
        let symmetric = verdict(Some("10.0.0.2:61234"), Some(true), true);
        assert_eq!(symmetric.kind, NatKind::Symmetric);
        assert_eq!(symmetric.port_preserved, Some(false));
        // One relay: behind a NAT, mapping unknown; never called symmetric or not.
        let one = verdict(Some("10.0.0.2:4000"), None, true);
        assert_eq!(one.kind, NatKind::BehindUnknownMapping);
        assert_eq!(one.mapping_varies_by_destination, None);
        // No public address: unknown, and the reason differs with relays off.
        let off = nat_verdict(&interfaces, &bound, None, false);
        assert_eq!(off.kind, NatKind::Unknown);
        assert!(off.explanation.contains("relays are disabled"), "{}", off.explanation);
        let silent = verdict(None, None, true);
        assert_eq!(silent.kind, NatKind::Unknown);
        assert!(silent.explanation.contains("no relay answered"), "{}", silent.explanation);
    }

    #[test]
    fn nat_kinds_are_kebab_case_in_json() {
        assert_eq!(serde_json::to_value(NatKind::BehindUnknownMapping).unwrap(), "behind-unknown-mapping");
        assert_eq!(serde_json::to_value(NatKind::EndpointIndependent).unwrap(), "endpoint-independent");
    }
}
