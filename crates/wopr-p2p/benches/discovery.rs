//! Discovery on real endpoints: N [`Node`]s in one process on 127.0.0.1 (relays, mDNS and the DHT off),
//! each bootstrapping from node 0 through its ticket. All join one topic at once; the figure is the wall
//! time from the joins until every node lists all N-1 others, with the gossip traffic per node.
//!
//! - **Time.** Each node's watcher counts the distinct peers its `Appeared` events name (recounting from
//!   `discovered` if it lags); the run's figure is the time at which the last node reaches N-1.
//! - **Traffic.** iroh-gossip's own counters ([`Node::gossip_traffic`]), read before the joins, when
//!   the last node converges, and after [`SETTLE`] more (the shares coalesced by the neighbour rule
//!   land by then). Data messages carry profiles; control messages are HyParView and Plumtree.
//! - **Reference.** In the same run, before each sample, N-1 plain iroh endpoints connect at once to
//!   one plain endpoint and each echoes 1 KiB on a new stream: the least network work a star bootstrap
//!   needs. Discovery's time is printed as a ratio to it, and as a ratio to the 3-node figure.
//!
//! Each N runs a few times (fresh nodes each time) and the median is printed. `-- --quick` runs N = 3,
//! 10 and 30 only. Run with `cargo bench -p wopr-p2p --bench discovery`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use wopr_identity::PublicId;
use wopr_p2p::discovery::{DiscoveryEvent, GossipTraffic};
use wopr_p2p::{BoxFuture, Node, NodeConfig, SessionBackend};
use wopr_store::{Config, ConfigKey, Home};

const TOPIC: &str = "bench-discovery";
/// How long a sample may take before it is reported as not converged.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long after convergence the traffic is read again.
const SETTLE: Duration = Duration::from_secs(2);
const ECHO_ALPN: &[u8] = b"wopr-bench/echo";
const KIB: usize = 1024;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // (N, samples): fewer samples where one takes long.
    let plan: &[(usize, usize)] =
        if quick { &[(3, 3), (10, 3), (30, 3)] } else { &[(3, 5), (10, 3), (30, 3), (100, 2)] };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "Discovery on real endpoints (release build, 127.0.0.1, relays/mDNS/DHT off, one bootstrap node)"
    );
    println!("time: from the joins until every node lists all N-1 others; median of the samples");
    println!("reference: N-1 plain iroh endpoints connect at once to one and echo 1 KiB each");
    let mut results = Vec::new();
    for &(n, samples) in plan {
        let mut runs = Vec::new();
        for _ in 0..samples {
            runs.push(runtime.block_on(sample(n)));
        }
        let summary = Summary::of(n, runs);
        summary.print(results.first());
        results.push(summary);
    }
    println!("\ntargets");
    for (n, limit_ms) in [(3, 200.0), (30, 1000.0)] {
        if let Some(s) = results.iter().find(|s| s.n == n) {
            let ok = s.converged == s.samples && s.all_ms <= limit_ms;
            println!("   {n:>3} nodes within {limit_ms:.0} ms: {:.0} ms, {}", s.all_ms, met(ok));
        }
    }
}

/// One sample of N fresh nodes, and the reference before it.
async fn sample(n: usize) -> Run {
    let reference_ms = star_echo(n - 1).await;
    let nodes = start_nodes(n).await;
    let before: Vec<GossipTraffic> = nodes.iter().map(|b| b.node.gossip_traffic()).collect();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut watchers = Vec::new();
    for (i, b) in nodes.iter().enumerate() {
        let others: HashSet<String> =
            nodes.iter().filter(|o| o.id() != b.id()).map(|o| o.id().to_hex()).collect();
        let events = b.node.discovery_events();
        watchers.push(tokio::spawn(watch(b.node.clone(), events, others, i, done_tx.clone())));
    }
    drop(done_tx);
    let start = Instant::now();
    let joins = futures::future::join_all(nodes.iter().map(|b| b.node.join(TOPIC))).await;
    for j in joins {
        assert!(j.expect("join"), "joined twice");
    }
    let mut node_ms = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while node_ms.len() < n {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some((_, at))) => node_ms.push(ms(at - start)),
            Ok(None) | Err(_) => break,
        }
    }
    let converged = node_ms.len() == n;
    for w in watchers {
        w.abort();
        let _ = w.await;
    }
    let at_convergence: Vec<GossipTraffic> = nodes.iter().map(|b| b.node.gossip_traffic()).collect();
    tokio::time::sleep(SETTLE).await;
    let settled: Vec<GossipTraffic> = nodes.iter().map(|b| b.node.gossip_traffic()).collect();
    let listed: usize = nodes.iter().map(|b| b.node.discovered(Some(TOPIC), false).len()).sum();
    futures::future::join_all(nodes.into_iter().map(|b| b.shutdown())).await;
    node_ms.sort_by(f64::total_cmp);
    Run {
        converged,
        all_ms: if converged { node_ms[n - 1] } else { f64::INFINITY },
        first_ms: node_ms.first().copied().unwrap_or(f64::INFINITY),
        reference_ms,
        to_convergence: Traffic::of(&before, &at_convergence),
        settled: Traffic::of(&before, &settled),
        listed_after_settle: listed,
    }
}

/// Reports when node `i` lists every one of `others` (by their keys).
async fn watch(
    node: Arc<Node>,
    mut events: broadcast::Receiver<DiscoveryEvent>,
    others: HashSet<String>,
    i: usize,
    done: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let mut seen = HashSet::new();
    loop {
        match events.recv().await {
            Ok(DiscoveryEvent::Appeared { peer }) if peer.topic == TOPIC => {
                if others.contains(&peer.public_key) {
                    seen.insert(peer.public_key);
                }
            }
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                seen = node
                    .discovered(Some(TOPIC), false)
                    .into_iter()
                    .map(|p| p.public_key)
                    .filter(|k| others.contains(k))
                    .collect();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
        if seen.len() == others.len() {
            let _ = done.send((i, Instant::now()));
            return;
        }
    }
}

// ---- nodes --------------------------------------------------------------------------------------

/// A benchmark node in a temporary home.
struct BenchNode {
    node: Arc<Node>,
    _dir: tempfile::TempDir,
}

impl BenchNode {
    /// A node whose only discovery source is `bootstrap`, with the content filter off (no AI here).
    async fn start(bootstrap: &[String], name: String) -> BenchNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = Home::at(dir.path().join("wopr"));
        let identity = home.init_identity(false).expect("identity");
        let settings = [
            ("discover.mdns", json!(false)),
            ("discover.dht", json!(false)),
            ("discover.knownPeers", json!(false)),
            ("discover.filter", json!("off")),
            ("discover.bootstrap", json!(bootstrap)),
            ("discover.profile", json!({ "name": name, "skills": ["benchmarking"] })),
        ];
        for (key, value) in settings {
            set(&home, key, value);
        }
        let node = Node::start(identity, home, NodeConfig::loopback(), Arc::new(NoSessions)).await;
        BenchNode { node: Arc::new(node.expect("node")), _dir: dir }
    }

    fn id(&self) -> PublicId {
        self.node.id()
    }

    async fn shutdown(self) {
        match Arc::try_unwrap(self.node) {
            Ok(node) => node.shutdown().await,
            Err(_) => panic!("a watcher still holds the node"),
        }
    }
}

fn set(home: &Home, key: &str, value: Value) {
    let key = ConfigKey::parse(key).expect("config key");
    Config::of(home).set(&key, value).expect("config set");
}

/// Node 0 with no bootstrap, then N-1 nodes bootstrapping from its ticket (not timed).
async fn start_nodes(n: usize) -> Vec<BenchNode> {
    let hub = BenchNode::start(&[], "node0".into()).await;
    let ticket = vec![hub.node.ticket()];
    let rest = (1..n).map(|i| BenchNode::start(&ticket, format!("node{i}")));
    let mut nodes = vec![hub];
    nodes.extend(futures::future::join_all(rest).await);
    nodes
}

/// Sessions are not part of this benchmark.
#[derive(Debug)]
struct NoSessions;

impl SessionBackend for NoSessions {
    fn inject<'a>(
        &'a self,
        _: PublicId,
        _: &'a str,
        _: &'a str,
        _: u8,
        _: mpsc::Sender<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("no sessions in this benchmark".into()) })
    }

    fn log<'a>(&'a self, _: PublicId, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

// ---- the reference ------------------------------------------------------------------------------

/// Milliseconds for `clients` fresh plain endpoints to connect at once to one plain endpoint and each
/// echo 1 KiB on a new stream (the endpoints are bound before the clock starts).
async fn star_echo(clients: usize) -> f64 {
    let router = Router::builder(loopback_endpoint().await).accept(ECHO_ALPN, Echo).spawn();
    let socket = router.endpoint().bound_sockets()[0];
    let server = EndpointAddr::from_parts(router.endpoint().id(), [TransportAddr::Ip(socket)]);
    let endpoints = futures::future::join_all((0..clients).map(|_| loopback_endpoint())).await;
    let start = Instant::now();
    let conns =
        futures::future::join_all(endpoints.iter().map(|e| connect_and_echo(e, server.clone()))).await;
    let took = ms(start.elapsed());
    for c in conns {
        c.close(VarInt::from_u32(0), b"done");
    }
    for e in endpoints {
        e.close().await;
    }
    router.shutdown().await.expect("router shutdown");
    took
}

async fn connect_and_echo(client: &Endpoint, server: EndpointAddr) -> Connection {
    let conn = client.connect(server, ECHO_ALPN).await.expect("connect");
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    send.write_all(&[0x5a; KIB]).await.expect("write");
    send.finish().expect("finish");
    let back = recv.read_to_end(2 * KIB).await.expect("read");
    assert_eq!(back.len(), KIB);
    conn
}

async fn loopback_endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("bind address")
        .bind()
        .await
        .expect("endpoint")
}

#[derive(Debug, Clone)]
struct Echo;

impl ProtocolHandler for Echo {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                if let Ok(data) = recv.read_to_end(2 * KIB).await {
                    let _ = send.write_all(&data).await;
                    let _ = send.finish();
                }
            });
        }
        Ok(())
    }
}

// ---- figures ------------------------------------------------------------------------------------

/// One sample's figures.
struct Run {
    converged: bool,
    all_ms: f64,
    first_ms: f64,
    reference_ms: f64,
    to_convergence: Traffic,
    settled: Traffic,
    /// Peers listed over all nodes after [`SETTLE`] (N(N-1) when nothing was lost).
    listed_after_settle: usize,
}

/// Gossip traffic received per node over one interval: mean and the busiest node.
#[derive(Clone, Copy)]
struct Traffic {
    data_msgs: (f64, u64),
    data_bytes: (f64, u64),
    control_msgs: (f64, u64),
    control_bytes: (f64, u64),
}

impl Traffic {
    fn of(before: &[GossipTraffic], after: &[GossipTraffic]) -> Traffic {
        let delta = |f: fn(&GossipTraffic) -> u64| {
            let d: Vec<u64> = before.iter().zip(after).map(|(b, a)| f(a) - f(b)).collect();
            (d.iter().sum::<u64>() as f64 / d.len() as f64, d.iter().copied().max().unwrap_or(0))
        };
        Traffic {
            data_msgs: delta(|t| t.data_received.0),
            data_bytes: delta(|t| t.data_received.1),
            control_msgs: delta(|t| t.control_received.0),
            control_bytes: delta(|t| t.control_received.1),
        }
    }
}

/// The median sample of one N.
struct Summary {
    n: usize,
    samples: usize,
    converged: usize,
    all_ms: f64,
    first_ms: f64,
    reference_ms: f64,
    to_convergence: Traffic,
    settled: Traffic,
    listed_after_settle: usize,
}

impl Summary {
    fn of(n: usize, mut runs: Vec<Run>) -> Summary {
        let samples = runs.len();
        let converged = runs.iter().filter(|r| r.converged).count();
        let reference_ms = median(runs.iter().map(|r| r.reference_ms).collect());
        let first_ms = median(runs.iter().map(|r| r.first_ms).collect());
        // The traffic shown is the median-time sample's.
        runs.sort_by(|a, b| a.all_ms.total_cmp(&b.all_ms));
        let mid = runs.swap_remove((samples - 1) / 2);
        Summary {
            n,
            samples,
            converged,
            all_ms: mid.all_ms,
            first_ms,
            reference_ms,
            to_convergence: mid.to_convergence,
            settled: mid.settled,
            listed_after_settle: mid.listed_after_settle,
        }
    }

    fn print(&self, unit: Option<&Summary>) {
        let n = self.n;
        println!("\nN = {n} ({} of {} samples converged within {DEADLINE:?})", self.converged, self.samples);
        println!(
            "   every node lists all {} others  {:>8.1} ms   (first node {:.1} ms)",
            n - 1,
            self.all_ms,
            self.first_ms
        );
        println!(
            "   reference star connect + echo  {:>8.1} ms   ratio {:.1}",
            self.reference_ms,
            self.all_ms / self.reference_ms
        );
        if let Some(u) = unit {
            let log_ratio = (n as f64).ln() / (u.n as f64).ln();
            println!(
                "   vs N = {}: time {:.2}x (log N ratio {log_ratio:.2}), data received per node {:.2}x (N-1 ratio {:.1})",
                u.n,
                self.all_ms / u.all_ms,
                self.settled.data_bytes.0 / u.settled.data_bytes.0,
                (n - 1) as f64 / (u.n - 1) as f64
            );
        }
        for (label, t) in [("until converged", &self.to_convergence), ("incl. 2 s settle", &self.settled)] {
            println!(
                "   received per node, {label:<17} data {:>6.1} msgs {:>7.0} B (max {:>4} msgs {:>6} B), control {:>6.1} msgs {:>6.0} B (max {})",
                t.data_msgs.0,
                t.data_bytes.0,
                t.data_msgs.1,
                t.data_bytes.1,
                t.control_msgs.0,
                t.control_bytes.0,
                t.control_msgs.1
            );
        }
        println!(
            "   data messages received per profile listed {:.2}; peers listed after the settle {} of {}",
            self.settled.data_msgs.0 / (n - 1) as f64,
            self.listed_after_settle,
            n * (n - 1)
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
