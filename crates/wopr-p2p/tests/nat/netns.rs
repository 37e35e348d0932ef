//! A small internet in network namespaces: a WAN segment with the relay, two routers doing source NAT,
//! one host behind each. Everything is created per test run under unique names and deleted on drop,
//! also when the test panics.
//!
//! ```text
//!   hostA 192.168.1.2 ── natA 192.168.1.1 | 10.0.0.2 ──┐
//!                                                      br0 10.0.0.1 (wan: the relay)
//!   hostB 192.168.2.2 ── natB 192.168.2.1 | 10.0.0.3 ──┘
//! ```
//!
//! Code runs inside a namespace on an [`NsThread`]: a thread moved into it with `setns`, driving a
//! single-threaded tokio runtime, so every socket its tasks open lives in that namespace.

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The relay's address on the WAN.
pub const RELAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// A second address of the WAN namespace, for a second relay (`doctor net` compares what two relays
/// see to tell the NAT's kind).
pub const SECOND_RELAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

/// How a router maps its LAN hosts' UDP flows to its WAN address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Plain Linux masquerade: the source port is kept, so one host socket has the same public address
    /// towards every destination (endpoint-independent mapping); only replies to flows the host opened
    /// get in. Hole punching works through it.
    EndpointIndependent,
    /// Masquerade with `fully-random`: every new destination gets a fresh random public port (a
    /// "symmetric" NAT), so the address the relay observes is useless to the peer.
    Symmetric,
}

/// Fails the test, with what to do, unless it runs as root with `ip` and `nft` installed. Never skips:
/// CI runs as root, and a NAT test that silently passes without NATs would prove nothing.
pub fn require_root_and_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the NAT test builds network namespaces and NAT rules, which needs root: run it as root (CI does) \
         or in a container with CAP_NET_ADMIN and CAP_SYS_ADMIN"
    );
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            found.is_ok_and(|s| s.success()),
            "the NAT test needs `{tool}`: install the `{package}` package (apt-get install {package})"
        );
    }
}

/// Runs `program args`, feeding it `stdin`; panics with its error output if it fails.
fn run(program: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// `ip -n <ns> <args>`.
fn ip(ns: &str, args: &str) {
    let mut all = vec!["-n", ns];
    all.extend(args.split_whitespace());
    run("ip", &all, None);
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn add(name: String) -> Netns {
        run("ip", &["netns", "add", &name], None);
        let ns = Netns { name };
        ip(&ns.name, "link set lo up");
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Devices in it (veth ends, the bridge) go with it.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

/// The whole topology. Fields drop in order: hosts, routers, then the WAN.
#[derive(Debug)]
pub struct Topology {
    hosts: [Netns; 2],
    routers: [Netns; 2],
    wan: Netns,
}

impl Topology {
    /// Builds the WAN with its bridge, and two `nat`-ed LANs with one host each.
    pub fn build(nat: Nat) -> Topology {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tag = format!("wopr{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
        let wan = Netns::add(format!("{tag}-wan"));
        ip(&wan.name, "link add br0 type bridge");
        ip(&wan.name, &format!("addr add {RELAY_IP}/24 dev br0"));
        ip(&wan.name, &format!("addr add {SECOND_RELAY_IP}/24 dev br0"));
        ip(&wan.name, "link set br0 up");
        let (mut routers, mut hosts) = (Vec::new(), Vec::new());
        for (i, side) in ["a", "b"].into_iter().enumerate() {
            let router = Netns::add(format!("{tag}-nat{side}"));
            let host = Netns::add(format!("{tag}-host{side}"));
            let (r, h, w) = (&router.name, &host.name, &wan.name);
            let (public, lan) = (Self::public_ip(i), format!("192.168.{}", i + 1));
            // The router's WAN side on the bridge.
            ip(r, &format!("link add wan type veth peer name port{i} netns {w}"));
            ip(w, &format!("link set port{i} master br0"));
            ip(w, &format!("link set port{i} up"));
            ip(r, &format!("addr add {public}/24 dev wan"));
            ip(r, "link set wan up");
            // The LAN: router .1, host .2, the host's default route through the router.
            ip(r, &format!("link add lan type veth peer name eth0 netns {h}"));
            ip(r, &format!("addr add {lan}.1/24 dev lan"));
            ip(r, "link set lan up");
            ip(h, &format!("addr add {lan}.2/24 dev eth0"));
            ip(h, "link set eth0 up");
            ip(h, &format!("route add default via {lan}.1"));
            let forward = "echo 1 > /proc/sys/net/ipv4/ip_forward";
            run("ip", &["netns", "exec", r, "sh", "-c", forward], None);
            run("ip", &["netns", "exec", r, "nft", "-f", "-"], Some(&nat_rules(nat)));
            routers.push(router);
            hosts.push(host);
        }
        let routers = <[Netns; 2]>::try_from(routers).expect("two routers");
        let hosts = <[Netns; 2]>::try_from(hosts).expect("two hosts");
        Topology { hosts, routers, wan }
    }

    /// The namespace of the relay.
    pub fn wan(&self) -> &str {
        &self.wan.name
    }

    /// The namespace of host `i` (0: behind natA, 1: behind natB).
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i].name
    }

    /// The public (WAN) address of the router in front of host `i`.
    pub fn public_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, 2 + i as u8)
    }

    /// Namespace names, for messages.
    pub fn describe(&self) -> String {
        let mut names = vec![self.wan.name.clone()];
        names.extend(self.routers.iter().chain(&self.hosts).map(|n| n.name.clone()));
        names.join(", ")
    }
}

/// One LAN: a bridge in its own namespace and hosts on it, with no router and no NAT, so multicast
/// (mDNS) reaches every host, which loopback does not give. Deleted on drop.
///
/// ```text
///   lan0 10.7.0.2 ──┐
///   lan1 10.7.0.3 ──┼── br0 (namespace "switch")
///   lan2 10.7.0.4 ──┘
/// ```
#[derive(Debug)]
pub struct LanSegment {
    /// Dropped first: the hosts' veth ends go with them, then the switch.
    hosts: Vec<Netns>,
    /// Held for its drop, which deletes the bridge.
    _switch: Netns,
}

impl LanSegment {
    /// Builds the switch and `hosts` hosts, each with a route for multicast on its LAN interface.
    pub fn build(hosts: usize) -> LanSegment {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tag = format!("woprlan{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
        let switch = Netns::add(format!("{tag}-sw"));
        ip(&switch.name, "link add br0 type bridge");
        ip(&switch.name, "link set br0 up");
        let hosts = (0..hosts)
            .map(|i| {
                let host = Netns::add(format!("{tag}-{i}"));
                let (h, w) = (&host.name, &switch.name);
                ip(h, &format!("link add eth0 type veth peer name port{i} netns {w}"));
                ip(w, &format!("link set port{i} master br0"));
                ip(w, &format!("link set port{i} up"));
                ip(h, &format!("addr add {}/24 dev eth0", Self::ip(i)));
                ip(h, "link set eth0 up");
                // Where mDNS's 224.0.0.251 goes: without a route the send fails (no default route here).
                ip(h, "route add 224.0.0.0/4 dev eth0");
                host
            })
            .collect();
        LanSegment { hosts, _switch: switch }
    }

    /// The namespace of host `i`.
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i].name
    }

    /// The address of host `i`.
    pub fn ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 7, 0, 2 + i as u8)
    }
}

/// The router's rules: masquerade LAN→WAN; forward only what the LAN opened; let nothing unsolicited
/// from the WAN reach the router itself (unmatched punches are dropped silently, as home routers do).
fn nat_rules(nat: Nat) -> String {
    let masquerade = match nat {
        Nat::EndpointIndependent => "masquerade",
        Nat::Symmetric => "masquerade fully-random",
    };
    format!(
        "table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" {masquerade}
  }}
}}
table ip filter {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname \"lan\" oifname \"wan\" accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }}
}}
"
    )
}

/// A thread inside a namespace, driving a single-threaded tokio runtime; stopped and joined on drop.
#[derive(Debug)]
pub struct NsThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsThread {
    /// Starts a thread in namespace `ns`.
    pub fn start(ns: &str) -> NsThread {
        let path = format!("/var/run/netns/{ns}");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(ns.to_string())
            .spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
                // Current-thread: every task (and every blocking thread it spawns) stays in the namespace.
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let (stop_tx, stop_rx) = oneshot::channel::<()>();
                ready_tx.send((rt.handle().clone(), stop_tx)).unwrap();
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .unwrap();
        let (handle, stop) = ready_rx.recv().expect("the namespace thread failed to start");
        NsThread { handle, stop: Some(stop), thread: Some(thread) }
    }

    /// Runs `fut` on this namespace's runtime and returns its output (re-raising its panic).
    pub async fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        match self.handle.spawn(fut).await {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the task in the namespace was cancelled: {e}"),
        }
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
