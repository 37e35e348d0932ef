//! NAT traversal: two nodes, each behind its own NAT router, with a self-hosted relay on the "internet"
//! between them (all in network namespaces, see `netns`). Neither node can reach the other's address:
//! the relay is what connects them, and where the NATs allow it they punch a direct path.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); fails, never skips, without them.

#[path = "../common/mod.rs"]
mod common;
mod discover;
mod doctor;
mod mdns;
mod netns;
mod relay;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestNode, words};
use netns::{Nat, NsThread, Topology, require_root_and_tools};
use wopr_p2p::{DoneStatus, NodeConfig, PeerPath, RelayChoice, create_invite};
use wopr_store::{Capability, Home};

/// How long a node may take to reach its relay and learn its public address.
const ONLINE: Duration = Duration::from_secs(10);
/// How long hole punching may take once the peers talk through the relay.
const PUNCH: Duration = Duration::from_secs(15);
/// How long a dial without the relay is given to (wrongly) get through.
const DIRECT_ONLY: Duration = Duration::from_secs(3);
/// How long a symmetric NAT is watched for a direct path that must not appear.
const WATCH: Duration = Duration::from_secs(5);

/// A node running on a thread inside its host's namespace.
struct Host {
    node: Arc<TestNode>,
    ns: NsThread,
    name: String,
}

impl Host {
    /// Starts a node in `ns` using the relay, and waits until it is connected to the relay and knows
    /// the public address its NAT gives it (`public_ip`, learnt by QUIC address discovery).
    async fn start(name: &str, relay: &relay::Relay, public_ip: IpAddr) -> Host {
        let ns = NsThread::start(name);
        let config = NodeConfig {
            relay: RelayChoice::Custom(vec![relay.url.clone()]),
            bind: Some(SocketAddr::from(([0, 0, 0, 0], 0))),
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
        let host = Host { node: Arc::new(node), ns, name: name.to_string() };
        let online = host.run(|n| async move { n.node.wait_online(ONLINE).await }).await;
        assert!(online, "the node in {} never connected to the relay", host.name);
        let learnt = poll(ONLINE, || {
            let hints = host.node.node.addr_hints();
            hints.iter().any(|h| h.parse::<SocketAddr>().is_ok_and(|a| a.ip() == public_ip)).then_some(hints)
        })
        .await;
        assert!(learnt.is_some(), "the relay never told the node in {name} its public address {public_ip}");
        host
    }

    /// Runs `f` with the node, on its namespace's thread.
    async fn run<T, F>(&self, f: impl FnOnce(Arc<TestNode>) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.ns.run(f(self.node.clone())).await
    }

    async fn shutdown(self) {
        let Host { node, ns, .. } = self;
        let node = Arc::into_inner(node).expect("no request still holds the node");
        ns.run(async move { node.node.shutdown().await }).await;
    }
}

/// Calls `check` every 50 ms until it returns something, at most `limit`.
async fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The topology, the relay in the WAN, a node behind each NAT; B has invited A to its session `dev` and
/// A has claimed the invite. Before that, checks that A cannot claim an invite without the relay in it.
struct Scene {
    a: Host,
    b: Host,
    relay: relay::Relay,
    wan: NsThread,
    topology: Topology,
}

impl Scene {
    async fn set_up(nat: Nat) -> Scene {
        require_root_and_tools();
        let topology = Topology::build(nat);
        let wan = NsThread::start(topology.wan());
        let relay = wan.run(relay::start()).await;
        let a = Host::start(topology.host(0), &relay, Topology::public_ip(0).into()).await;
        let b = Host::start(topology.host(1), &relay, Topology::public_ip(1).into()).await;

        // B's socket addresses, private and public, without the relay: A cannot get through.
        let hints = b.node.node.addr_hints();
        let direct: Vec<String> = hints.iter().filter(|h| h.parse::<SocketAddr>().is_ok()).cloned().collect();
        assert!(direct.len() < hints.len(), "B's hints do not name its relay: {hints:?}");
        let sessions = ["dev".to_string()];
        let token =
            create_invite(&b.node.identity(), &a.node.id(), &sessions, &[Capability::Inject], None, direct)
                .unwrap();
        let direct_claim =
            a.run(|n| async move { tokio::time::timeout(DIRECT_ONLY, n.node.claim(&token)).await }).await;
        assert!(
            !matches!(direct_claim, Ok(Ok(_))),
            "A reached B behind its NAT without the relay (namespaces {}): the NATs are not in the way",
            topology.describe()
        );

        // A new invite whose hints include the relay URL goes through.
        let token = b.node.invite(&a.node.id(), &["dev"], &[Capability::Inject]);
        let issuer = a.run(|n| async move { n.node.claim(&token).await }).await.expect("claim via the relay");
        assert_eq!(issuer.public_key, b.node.id());
        Scene { a, b, relay, wan, topology }
    }

    /// A injects into B's `dev` session and gets the streamed answer.
    async fn inject(&self, text: &'static str) {
        let peer = self.b.node.id().to_hex();
        let (r, deltas) = self.a.run(|n| async move { common::inject(&n, &peer, "dev", text).await }).await;
        assert_eq!(r.expect("the inject completes"), DoneStatus::Completed);
        assert_eq!(deltas, words(text));
    }

    /// How A reaches B, and B reaches A.
    fn paths(&self) -> (Option<PeerPath>, Option<PeerPath>) {
        (self.a.node.node.path_to(&self.b.node.id()), self.b.node.node.path_to(&self.a.node.id()))
    }

    async fn tear_down(self) {
        let Scene { a, b, relay, wan, topology } = self;
        a.shutdown().await;
        b.shutdown().await;
        wan.run(async move { relay.server.shutdown().await }).await.expect("the relay stops cleanly");
        drop(wan);
        drop(topology);
    }
}

fn is_direct_to(path: &Option<PeerPath>, ip: IpAddr) -> bool {
    matches!(path, Some(PeerPath::Direct(a)) if a.ip() == ip)
}

#[tokio::test]
async fn behind_two_cone_nats_peers_meet_through_the_relay_then_punch_a_direct_path() {
    let started = Instant::now();
    let scene = Scene::set_up(Nat::EndpointIndependent).await;
    let claimed = started.elapsed();
    scene.inject("hello through two NATs").await;

    // Each side ends up sending straight to the other's NAT (its public address, never its LAN one).
    let (a_ip, b_ip) = (IpAddr::from(Topology::public_ip(0)), IpAddr::from(Topology::public_ip(1)));
    let direct = poll(PUNCH, || {
        let (ab, ba) = scene.paths();
        (is_direct_to(&ab, b_ip) && is_direct_to(&ba, a_ip)).then_some(())
    })
    .await;
    assert!(direct.is_some(), "no direct path within {PUNCH:?}: A→B {:?}", scene.paths());
    let punched = started.elapsed();

    // And the session still answers, over the direct path.
    scene.inject("and now directly").await;
    assert!(is_direct_to(&scene.paths().0, b_ip), "{:?}", scene.paths());
    scene.tear_down().await;
    eprintln!("claimed via relay after {claimed:?}, direct after {punched:?}, total {:?}", started.elapsed());
}

#[tokio::test]
async fn behind_two_symmetric_nats_peers_stay_on_the_relay_and_still_inject() {
    let started = Instant::now();
    let scene = Scene::set_up(Nat::Symmetric).await;
    scene.inject("hello through two symmetric NATs").await;

    // Every new destination gets a new public port, so the punches miss: the relay carries everything.
    let relayed = Some(PeerPath::Relay(scene.relay.url.clone()));
    let deadline = Instant::now() + WATCH;
    while Instant::now() < deadline {
        assert_eq!(scene.paths(), (relayed.clone(), relayed.clone()), "a direct path through symmetric NATs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scene.inject("still relayed").await;
    scene.tear_down().await;
    eprintln!("symmetric NATs: total {:?}", started.elapsed());
}
