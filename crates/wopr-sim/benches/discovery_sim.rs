//! How discovery's cost grows with the size of a topic: a deterministic, sans-IO simulation of N nodes
//! (N = 100, 300, 1,000) running iroh-gossip's own protocol state machine (`iroh_gossip::proto::State`,
//! HyParView membership and Plumtree broadcast, default config and WOPR's 4,096-byte messages), each
//! with WOPR's real `PeerTable` fed real signed announces (`TopicMessage::Announce` of a `Profile` with
//! address hints, 400 to 2,300 bytes).
//!
//! The network: every message is serialized with postcard as iroh-gossip's transport does, counted in
//! the bytes it takes on a topic stream (the topic id travels once in the stream header, then a u32
//! length before each message; QUIC/TLS overhead not counted), and deserialized by the receiver after
//! a one-way latency fixed per pair of nodes, drawn uniformly from 10 to 100 ms. Timers fire in
//! simulated time. One seed fixes everything (`WOPR_SIM_SEED`, default 1).
//!
//! Three phases per N:
//! 1. membership: node 0 opens the topic, every other node joins through the same 3 bootstrap nodes
//!    (`discover.bootstrap`) at a random moment of the first 5 s; 5 s more to settle;
//! 2. the announce wave: every node broadcasts its profile once, at a random moment of one second;
//!    measured until every node's table lists every other node ("converged"), counted for 10 s, then
//!    memory is measured again 35 s after the wave, once Plumtree's 30 s payload cache has emptied;
//! 3. a newcomer under WOPR's join rule (`wopr_p2p::discovery::run_topic`: a member that sees a neighbour
//!    come up that it does not list, or listed less than 10 s ago, sends its direct neighbours a share of
//!    the profiles it lists, at once and then at most every 250 ms; the newcomer announces on its first neighbour and 0.5, 1.5 and 3.5 s later): one node
//!    joins the converged topic; measured until it lists everyone and everyone lists it, counted for
//!    10 s. The shares cost O(N) bytes on each of the newcomer's few links; the announces, one delivery
//!    per member each. It runs up to N = 300 unless `WOPR_SIM_FULL=1`. (Periodic re-announces, every
//!    20 s, are not simulated: each is one more wave.)
//!
//! "Rounds" are delivery hops: the number of message deliveries along the path by which a profile
//! first reached a node (Plumtree's delivery round), the simulated time is the latency model's. Every
//! node must receive N - 1 profiles, so its received bytes grow at least like N; what should grow like
//! log N is the gossip overhead: bytes a node receives per profile it lists (and the same in messages),
//! and the rounds. Memory is measured with a counting allocator that tags every allocation with the
//! node (and the part of it: gossip state or peer table) whose code made it.
//!
//! `cargo bench -p wopr-sim --bench discovery_sim` (about 2 to 4 minutes on 2 cores, most of it the
//! 2 x N² signature checks at N = 1,000); `-- --quick` (or `WOPR_SIM_QUICK=1`) runs N = 100 and 300.
#![allow(unsafe_code)] // The counting allocator; nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_gossip::proto::state::MessageKind;
use iroh_gossip::proto::{
    Command, Config, DeliveryScope, Event, InEvent, Message, OutEvent, PeerData, Scope, State, Timer, TopicId,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wopr_identity::{Identity, PublicId};
use wopr_proto::Encode;
use wopr_proto::discovery::{MAX_TOPIC_MESSAGE, Offer, PeerTable, Profile, Share, TopicMessage, topic_id};

// ---------------------------------------------------------------------------------------------------
// Memory: a counting allocator that charges each allocation to an owner.

/// Largest N the owner table holds.
const MAX_NODES: usize = 1_024;
/// Owner 0 is the harness (network queue, bookkeeping); node `i` owns `1 + 2i` (its gossip state) and
/// `2 + 2i` (its peer table).
const OWNERS: usize = 1 + 2 * MAX_NODES;
/// Room in front of each allocation for its owner (at least the allocation's alignment).
const HEADER: usize = 16;

static LIVE: [AtomicI64; OWNERS] = [const { AtomicI64::new(0) }; OWNERS];

thread_local! {
    static OWNER: Cell<u32> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes each owner holds (as requested: the allocator's own
/// rounding and bookkeeping are not counted).
struct Counting;

/// The layout really allocated for `layout` and the offset of the caller's bytes in it.
fn outer(layout: Layout) -> Option<(Layout, usize)> {
    let offset = layout.align().max(HEADER);
    let outer = Layout::from_size_align(layout.size().checked_add(offset)?, offset).ok()?;
    Some((outer, offset))
}

fn charge(owner: u32, bytes: i64) {
    if let Some(counter) = LIVE.get(owner as usize) {
        counter.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every block handed out is `offset` bytes into a block of `outer(layout)` from `System`, with
// the owner written in the 4 bytes just before it (inside the header); `dealloc` and `realloc` receive
// the same `layout` (the `GlobalAlloc` contract), so they recompute the same `outer` and `offset`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((outer, offset)) = outer(layout) else { return std::ptr::null_mut() };
        // SAFETY: `outer` has a non-zero size (it includes the header).
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let owner = OWNER.with(Cell::get);
        // SAFETY: `offset` is within the block, and the 4 bytes before it are in the header.
        unsafe {
            let user = base.add(offset);
            user.sub(4).cast::<u32>().write_unaligned(owner);
            charge(owner, layout.size() as i64);
            user
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((outer, offset)) = outer(layout) else { return };
        // SAFETY: `ptr` came from `alloc`/`realloc` with this layout (see above).
        unsafe {
            let owner = ptr.sub(4).cast::<u32>().read_unaligned();
            charge(owner, -(layout.size() as i64));
            System.dealloc(ptr.sub(offset), outer);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((outer, offset)) = outer(layout) else { return std::ptr::null_mut() };
        let Some(grown) = new_size.checked_add(offset) else { return std::ptr::null_mut() };
        // SAFETY: as in `dealloc`; `System.realloc` keeps the header, which moves with the block.
        unsafe {
            let owner = ptr.sub(4).cast::<u32>().read_unaligned();
            let base = System.realloc(ptr.sub(offset), outer, grown);
            if base.is_null() {
                return base;
            }
            charge(owner, new_size as i64 - layout.size() as i64);
            base.add(offset)
        }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` with its allocations charged to `owner`.
fn as_owner<T>(owner: u32, f: impl FnOnce() -> T) -> T {
    let before = OWNER.with(|o| o.replace(owner));
    let out = f();
    OWNER.with(|o| o.set(before));
    out
}

fn gossip_owner(node: usize) -> u32 {
    (1 + 2 * node) as u32
}

fn table_owner(node: usize) -> u32 {
    (2 + 2 * node) as u32
}

fn live(owner: u32) -> i64 {
    LIVE[owner as usize].load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------------
// The simulated network.

type Peer = [u8; 32];
type Gossip = State<Peer, StdRng>;

const TOPIC: &str = "distributed-systems";
const BOOTSTRAP: usize = 3;
const JOIN_WINDOW_US: u64 = 5_000_000;
const SETTLE_US: u64 = 5_000_000;
const ANNOUNCE_JITTER_US: u64 = 1_000_000;
const PHASE_US: u64 = 10_000_000;
/// After the announce wave, long enough for Plumtree's 30 s payload cache to empty.
const CACHE_EMPTIED_US: u64 = 35_000_000;
const LATENCY_MIN_US: u64 = 10_000;
const LATENCY_MAX_US: u64 = 100_000;
/// WOPR's join rule (`wopr_p2p::discovery::run_topic`): a share to the neighbours when one comes up, at
/// most every 250 ms; the newcomer's announce on its first neighbour, then 0.5, 1.5 and 3.5 s later.
const SHARE_GAP_US: u64 = 250_000;
const EARLY_ANNOUNCES_US: [u64; 3] = [500_000, 1_000_000, 2_000_000];
/// A member listed for longer than this gets no share when a link to it comes up.
const SETTLED_MEMBER_MS: u64 = 10_000;
/// Milliseconds since the Unix epoch at simulated time zero (the profiles' clock).
const EPOCH_MS: u64 = 1_800_000_000_000;

enum Input {
    Join(Vec<Peer>),
    Announce,
    Share,
    Deliver { from: usize, wire: Vec<u8> },
    Timer(Timer<Peer>),
    Disconnected(usize),
}

struct Scheduled {
    at_us: u64,
    seq: u64,
    node: usize,
    input: Input,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_us, self.seq).cmp(&(other.at_us, other.seq))
    }
}

/// What one node sent and received.
#[derive(Clone, Copy, Default)]
struct Traffic {
    sent_msgs: u64,
    sent_bytes: u64,
    recv_msgs: u64,
    recv_bytes: u64,
    recv_data_msgs: u64,
    recv_data_bytes: u64,
}

impl Traffic {
    fn minus(self, o: Traffic) -> Traffic {
        Traffic {
            sent_msgs: self.sent_msgs - o.sent_msgs,
            sent_bytes: self.sent_bytes - o.sent_bytes,
            recv_msgs: self.recv_msgs - o.recv_msgs,
            recv_bytes: self.recv_bytes - o.recv_bytes,
            recv_data_msgs: self.recv_data_msgs - o.recv_data_msgs,
            recv_data_bytes: self.recv_data_bytes - o.recv_data_bytes,
        }
    }
}

struct Node {
    identity: Identity,
    content: String,
    gossip: Box<Gossip>,
    table: PeerTable,
    traffic: Traffic,
    /// Profiles this node listed (new peers).
    listed: usize,
    last_announce_us: Option<u64>,
    pending_announce_us: Option<u64>,
    neighbors: usize,
    /// Early announces still to come (the join rule).
    early: std::slice::Iter<'static, u64>,
    last_share_us: Option<u64>,
    share_pending: bool,
}

/// A first delivery of a profile: its hops and its latency since the author broadcast it.
struct Delivery {
    hops: u16,
    latency_us: u64,
}

struct Sim {
    nodes: Vec<Node>,
    index: HashMap<Peer, usize>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    now_us: u64,
    start: Instant,
    topic: TopicId,
    seed: u64,
    conns: HashSet<(usize, usize)>,
    /// When each author last broadcast, for delivery latencies.
    announced_at_us: Vec<u64>,
    deliveries: Vec<Delivery>,
    broadcasts: u64,
    announce_bytes: u64,
    /// WOPR's join rule is on (phase 3).
    join_rule: bool,
    /// Shares sent and their bytes (phase 3).
    shares: u64,
    share_bytes: u64,
    /// The newcomer of phase 3, and how many nodes listed it.
    newcomer: Option<usize>,
    listing_newcomer: usize,
    refused: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bytes a message takes on a topic stream: its postcard encoding without the topic id (sent once, in
/// the stream header), plus the u32 length in front of it.
fn wire_len(encoded: usize) -> u64 {
    (encoded - 32 + 4) as u64
}

/// Plumtree's delivery round (hops from the author), read through its serde form.
fn hops(scope: &DeliveryScope) -> u16 {
    match scope {
        DeliveryScope::Swarm(round) => postcard::to_stdvec(round)
            .ok()
            .and_then(|b| postcard::from_bytes::<u16>(&b).ok())
            .map_or(0, |r| r + 1),
        DeliveryScope::Neighbors => 1,
    }
}

/// A self-description of the kind an owner (or their AI) writes, of about `len` bytes of JSON.
fn content_of(i: usize, len: usize) -> String {
    const WORDS: &str = "reads papers on gossip protocols and distributed systems, reviews Rust code, \
                         summarises long threads, answers questions about HyParView, Plumtree and Kademlia, ";
    let head = format!(r#"{{"name":"node-{i}","skills":["review","summarise","rust"],"description":""#);
    let mut description = String::new();
    while head.len() + description.len() + 2 < len {
        description.push_str(WORDS);
    }
    description.truncate(len.saturating_sub(head.len() + 2).max(1));
    format!("{head}{}\"}}", description.trim_end())
}

impl Sim {
    fn new(n: usize, seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = Config { max_message_size: MAX_TOPIC_MESSAGE, ..Config::default() };
        let mut nodes = Vec::with_capacity(n);
        let mut index = HashMap::new();
        for i in 0..n {
            let identity = Identity::from_seeds(seed_bytes(seed, i, 1), seed_bytes(seed, i, 2), 0);
            // Most self-descriptions are short, some use much of the 2,048 bytes allowed.
            let len = match rng.random_range(0..10) {
                0..6 => rng.random_range(150..500),
                6..9 => rng.random_range(500..1_200),
                _ => rng.random_range(1_200..2_000),
            };
            let me = *identity.public_id().as_bytes();
            index.insert(me, i);
            let node_rng = StdRng::seed_from_u64(splitmix(seed ^ i as u64));
            // iroh-gossip's peer data is the endpoint's relay URL and direct addresses (postcard).
            let data = PeerData::new(vec![0x5a; 64]);
            let gossip =
                as_owner(gossip_owner(i), || Box::new(Gossip::new(me, data, config.clone(), node_rng)));
            let table = as_owner(table_owner(i), || {
                let mut t = PeerTable::new(identity.public_id());
                t.join(TOPIC);
                t
            });
            nodes.push(Node {
                content: content_of(i, len),
                identity,
                gossip,
                table,
                traffic: Traffic::default(),
                listed: 0,
                last_announce_us: None,
                pending_announce_us: None,
                neighbors: 0,
                early: [].iter(),
                last_share_us: None,
                share_pending: false,
            });
        }
        Sim {
            nodes,
            index,
            queue: BinaryHeap::new(),
            seq: 0,
            now_us: 0,
            start: Instant::now(),
            topic: TopicId::from(topic_id(TOPIC)),
            seed,
            conns: HashSet::new(),
            announced_at_us: vec![0; n],
            deliveries: Vec::new(),
            broadcasts: 0,
            announce_bytes: 0,
            join_rule: false,
            shares: 0,
            share_bytes: 0,
            newcomer: None,
            listing_newcomer: 0,
            refused: 0,
        }
    }

    fn schedule(&mut self, at_us: u64, node: usize, input: Input) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at_us, seq: self.seq, node, input }));
    }

    /// One-way latency between two nodes, fixed per pair.
    fn latency_us(&self, a: usize, b: usize) -> u64 {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let h = splitmix(self.seed ^ splitmix((lo << 32) | hi));
        LATENCY_MIN_US + h % (LATENCY_MAX_US - LATENCY_MIN_US)
    }

    fn now(&self) -> Instant {
        self.start + Duration::from_micros(self.now_us)
    }

    /// Runs every event up to `until_us`, or until `done` says so (checked after each event).
    fn run_until(&mut self, until_us: u64, mut done: impl FnMut(&Sim) -> bool) -> Option<u64> {
        while self.queue.peek().is_some_and(|Reverse(e)| e.at_us <= until_us) {
            let Some(Reverse(event)) = self.queue.pop() else { break };
            self.now_us = event.at_us;
            self.step(event.node, event.input);
            if done(self) {
                return Some(self.now_us);
            }
        }
        self.now_us = until_us;
        None
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.now();
        let event = match input {
            Input::Join(peers) => InEvent::Command(self.topic, Command::Join(peers)),
            Input::Announce => {
                if self.nodes[node].pending_announce_us != Some(self.now_us) {
                    return; // superseded by an earlier announce
                }
                self.nodes[node].pending_announce_us = None;
                if let Some(gap) = self.nodes[node].early.next() {
                    self.announce_at(node, self.now_us + gap);
                }
                let bytes = self.announce_of(node);
                InEvent::Command(self.topic, Command::Broadcast(bytes, Scope::Swarm))
            }
            Input::Share => {
                self.nodes[node].share_pending = false;
                self.nodes[node].last_share_us = Some(self.now_us);
                return self.share(node);
            }
            Input::Deliver { from, wire } => {
                let t = &mut self.nodes[node].traffic;
                let len = wire_len(wire.len());
                let message: Message<Peer> = as_owner(gossip_owner(node), || postcard::from_bytes(&wire))
                    .expect("a message we encoded");
                t.recv_msgs += 1;
                t.recv_bytes += len;
                if matches!(message.kind(), MessageKind::Data) {
                    t.recv_data_msgs += 1;
                    t.recv_data_bytes += len;
                }
                self.conns.insert((from.min(node), from.max(node)));
                InEvent::RecvMessage(*self.nodes[from].gossip.me(), message)
            }
            Input::Timer(timer) => InEvent::TimerExpired(timer),
            Input::Disconnected(from) => InEvent::PeerDisconnected(*self.nodes[from].gossip.me()),
        };
        // iroh-gossip's clock type (tokio's, through n0-future) converts from the standard one.
        let out: Vec<OutEvent<Peer>> = as_owner(gossip_owner(node), || {
            self.nodes[node].gossip.handle(event, now.into(), None).collect()
        });
        self.handle_out(node, out);
    }

    /// What the node's gossip state asked for: messages, timers, disconnects and events.
    fn handle_out(&mut self, node: usize, out: Vec<OutEvent<Peer>>) {
        for event in out {
            match event {
                OutEvent::SendMessage(to, message) => {
                    let to = self.index[&to];
                    let wire = postcard::to_stdvec(&message).expect("messages encode");
                    let t = &mut self.nodes[node].traffic;
                    t.sent_msgs += 1;
                    t.sent_bytes += wire_len(wire.len());
                    let at = self.now_us + self.latency_us(node, to);
                    self.schedule(at, to, Input::Deliver { from: node, wire });
                }
                OutEvent::ScheduleTimer(delay, timer) => {
                    let at = self.now_us + u64::try_from(delay.as_micros()).unwrap_or(u64::MAX / 2);
                    self.schedule(at, node, Input::Timer(timer));
                }
                OutEvent::DisconnectPeer(peer) => {
                    let other = self.index[&peer];
                    if self.conns.remove(&(node.min(other), node.max(other))) {
                        // After any message already on its way, as a closing connection would.
                        let at = self.now_us + self.latency_us(node, other) + 1;
                        self.schedule(at, other, Input::Disconnected(node));
                    }
                }
                OutEvent::EmitEvent(_, Event::Received(received)) => {
                    let hops = hops(&received.scope);
                    self.receive(node, &received.content, hops);
                }
                OutEvent::EmitEvent(_, Event::NeighborUp(peer)) => self.neighbor_up(node, peer),
                OutEvent::EmitEvent(_, Event::NeighborDown(_)) => {
                    self.nodes[node].neighbors = self.nodes[node].neighbors.saturating_sub(1);
                }
                OutEvent::PeerData(..) => {}
            }
        }
    }

    /// The node's announce, signed now (a re-announce is a newer profile, as in `wopr_p2p`).
    /// The node's profile, signed now.
    fn profile_of(&self, node: usize) -> Profile {
        let updated = EPOCH_MS + self.now_us / 1_000;
        let n = &self.nodes[node];
        let hints = vec![format!("203.0.113.{}:40123", node % 250), format!("[2001:db8::{node:x}]:40123")];
        Profile::with_hints(&n.identity, n.content.clone(), vec![TOPIC.into()], hints, updated)
            .expect("a valid profile")
    }

    fn announce_of(&mut self, node: usize) -> Bytes {
        let profile = self.profile_of(node);
        self.nodes[node].last_announce_us = Some(self.now_us);
        self.announced_at_us[node] = self.now_us;
        self.broadcasts += 1;
        // The author's gossip state keeps it in its payload cache.
        let bytes = as_owner(gossip_owner(node), || TopicMessage::Announce(profile).to_bytes());
        self.announce_bytes += bytes.len() as u64;
        Bytes::from(bytes)
    }

    /// A gossip payload reached `node`: through its peer table, as `wopr_p2p` does.
    fn receive(&mut self, node: usize, content: &[u8], hops: u16) {
        let now_ms = EPOCH_MS + self.now_us / 1_000;
        let table = &mut self.nodes[node].table;
        let offers: Vec<(Offer, PublicId)> = as_owner(table_owner(node), || {
            let message = TopicMessage::parse(content).expect("our own messages parse");
            let listings = message.into_listings();
            listings
                .iter()
                .map(|m| (table.offer(TOPIC, m, now_ms), m.author().expect("a listing names its author")))
                .collect()
        });
        for (offer, author) in offers {
            self.offered(node, offer, author, hops);
        }
    }

    fn offered(&mut self, node: usize, offer: Offer, author: PublicId, hops: u16) {
        match offer {
            Offer::New => {
                self.nodes[node].listed += 1;
                let author = self.index[author.as_bytes()];
                if self.newcomer == Some(author) {
                    self.listing_newcomer += 1;
                }
                let latency_us = self.now_us - self.announced_at_us[author];
                self.deliveries.push(Delivery { hops, latency_us });
            }
            Offer::Refused(_) | Offer::Stale | Offer::Full => self.refused += 1,
            _ => {}
        }
    }

    /// WOPR's join rule, when a neighbour comes up: the first one brings this node's announce (and the
    /// early ones after it); one this node does not list, or listed less than 10 s ago, brings a share,
    /// at once or after the gap.
    fn neighbor_up(&mut self, node: usize, peer: Peer) {
        let n = &mut self.nodes[node];
        n.neighbors += 1;
        if !self.join_rule {
            return;
        }
        if n.neighbors == 1 {
            n.early = EARLY_ANNOUNCES_US.iter();
            self.announce_at(node, self.now_us);
        }
        let n = &mut self.nodes[node];
        let now_ms = EPOCH_MS + self.now_us / 1_000;
        let settled =
            n.table.get(TOPIC, &PublicId(peer)).is_some_and(|e| now_ms - e.since_ms > SETTLED_MEMBER_MS);
        if !settled && !n.share_pending {
            n.share_pending = true;
            let at = n.last_share_us.map_or(self.now_us, |t| t + SHARE_GAP_US).max(self.now_us);
            self.schedule(at, node, Input::Share);
        }
    }

    /// This node's profile and the profiles it lists, in shares to its direct neighbours.
    fn share(&mut self, node: usize) {
        let mine = self.profile_of(node);
        let listed: Vec<Profile> =
            self.nodes[node].table.peers(Some(TOPIC)).map(|(_, e)| e.profile.clone()).collect();
        let mut nonce = splitmix(self.seed ^ self.now_us ^ node as u64);
        let shares = Share::pack([&mine].into_iter().chain(&listed), || {
            nonce = splitmix(nonce);
            nonce
        });
        for share in shares {
            let bytes = Bytes::from(TopicMessage::Share(share).to_bytes());
            self.shares += 1;
            self.share_bytes += bytes.len() as u64;
            let event = InEvent::Command(self.topic, Command::Broadcast(bytes, Scope::Neighbors));
            let now = self.now();
            let out: Vec<OutEvent<Peer>> = as_owner(gossip_owner(node), || {
                self.nodes[node].gossip.handle(event, now.into(), None).collect()
            });
            self.handle_out(node, out);
        }
    }

    fn announce_at(&mut self, node: usize, at_us: u64) {
        self.nodes[node].pending_announce_us = Some(at_us);
        self.schedule(at_us, node, Input::Announce);
    }

    fn peer(&self, i: usize) -> Peer {
        *self.nodes[i].gossip.me()
    }

    fn snapshot(&self) -> Vec<Traffic> {
        self.nodes.iter().map(|n| n.traffic).collect()
    }
}

fn seed_bytes(seed: u64, node: usize, which: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        let v = splitmix(seed ^ splitmix((node as u64) << 8 | which << 4 | k as u64));
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// One run and its figures.

#[derive(Clone, Copy, Default)]
struct Stat {
    mean: f64,
    max: f64,
}

fn stat(values: impl Iterator<Item = f64>) -> Stat {
    let (mut sum, mut max, mut count) = (0.0, 0.0f64, 0usize);
    for v in values {
        sum += v;
        max = max.max(v);
        count += 1;
    }
    Stat { mean: sum / count.max(1) as f64, max }
}

struct Wave {
    converged_us: Option<u64>,
    listed_fraction: f64,
    max_hops: u16,
    mean_hops: f64,
    max_latency_us: u64,
    mean_latency_us: f64,
    recv_msgs: Stat,
    recv_bytes: Stat,
    sent_msgs: Stat,
    sent_bytes: Stat,
    /// Received bytes per profile listed, and the same over the profiles' own size.
    bytes_per_profile: Stat,
    overhead: Stat,
    msgs_per_profile: Stat,
    broadcasts: u64,
    /// Shares sent (phase 3) and their bytes.
    shares: u64,
    share_bytes: u64,
}

struct Run {
    n: usize,
    join_recv_msgs: Stat,
    join_recv_bytes: Stat,
    wave: Wave,
    newcomer: Option<Wave>,
    mean_announce_bytes: f64,
    gossip_after_wave: Stat,
    table_after_wave: Stat,
    gossip_later: Stat,
    table_later: Stat,
    table_content: f64,
    refused: u64,
    wall: Duration,
}

/// The figures of a phase over its `members` (the first nodes; `listed` has one count per member).
fn wave(
    sim: &mut Sim,
    before: &[Traffic],
    start_us: u64,
    converged_us: Option<u64>,
    listed: &[usize],
) -> Wave {
    let members = listed.len();
    let after = sim.snapshot();
    let per_node: Vec<Traffic> = after[..members].iter().zip(before).map(|(a, b)| a.minus(*b)).collect();
    let deliveries = std::mem::take(&mut sim.deliveries);
    let total_listed: usize = listed.iter().sum();
    let expected = members * (members - 1);
    let profile_bytes = sim.announce_bytes as f64 / sim.broadcasts.max(1) as f64;
    let per_profile = |t: &Traffic, n: usize, f: fn(&Traffic) -> u64| f(t) as f64 / n.max(1) as f64;
    Wave {
        converged_us: converged_us.map(|t| t - start_us),
        listed_fraction: total_listed as f64 / expected as f64,
        max_hops: deliveries.iter().map(|d| d.hops).max().unwrap_or(0),
        mean_hops: deliveries.iter().map(|d| f64::from(d.hops)).sum::<f64>() / deliveries.len().max(1) as f64,
        max_latency_us: deliveries.iter().map(|d| d.latency_us).max().unwrap_or(0),
        mean_latency_us: deliveries.iter().map(|d| d.latency_us as f64).sum::<f64>()
            / deliveries.len().max(1) as f64,
        recv_msgs: stat(per_node.iter().map(|t| t.recv_msgs as f64)),
        recv_bytes: stat(per_node.iter().map(|t| t.recv_bytes as f64)),
        sent_msgs: stat(per_node.iter().map(|t| t.sent_msgs as f64)),
        sent_bytes: stat(per_node.iter().map(|t| t.sent_bytes as f64)),
        bytes_per_profile: stat(
            per_node
                .iter()
                .zip(listed)
                .filter(|(_, l)| **l > 0)
                .map(|(t, l)| per_profile(t, *l, |t| t.recv_bytes)),
        ),
        overhead: stat(
            per_node
                .iter()
                .zip(listed)
                .filter(|(_, l)| **l > 0)
                .map(|(t, l)| per_profile(t, *l, |t| t.recv_bytes) / profile_bytes),
        ),
        msgs_per_profile: stat(
            per_node
                .iter()
                .zip(listed)
                .filter(|(_, l)| **l > 0)
                .map(|(t, l)| per_profile(t, *l, |t| t.recv_msgs)),
        ),
        broadcasts: sim.broadcasts,
        shares: sim.shares,
        share_bytes: sim.share_bytes,
    }
}

/// Bytes held per known peer by the first `members` nodes, each knowing `known` peers.
fn memory(members: usize, known: usize, owner: fn(usize) -> u32) -> Stat {
    stat((0..members).map(|i| live(owner(i)) as f64 / known as f64))
}

/// Mean content bytes per table entry of the first `members` nodes.
fn content_per_entry(sim: &Sim, members: usize) -> f64 {
    let (mut bytes, mut entries) = (0usize, 0usize);
    for node in &sim.nodes[..members] {
        for (_, e) in node.table.peers(Some(TOPIC)) {
            bytes += e.profile.content.len();
            entries += 1;
        }
    }
    bytes as f64 / entries.max(1) as f64
}

fn listed_counts(sim: &mut Sim) -> Vec<usize> {
    sim.nodes.iter_mut().map(|n| std::mem::take(&mut n.listed)).collect()
}

fn run(n: usize, seed: u64, newcomer_phase: bool) -> Run {
    let wall = Instant::now();
    // One more node than N: the newcomer of phase 3.
    let mut sim = Sim::new(n + 1, seed);
    let newcomer = n;
    let mut rng = StdRng::seed_from_u64(splitmix(seed ^ 0x5eed));
    let bootstrap: Vec<Peer> = (0..BOOTSTRAP).map(|i| sim.peer(i)).collect();

    // Phase 1: membership.
    sim.schedule(0, 0, Input::Join(Vec::new()));
    for i in 1..n {
        let at = if i < BOOTSTRAP { i as u64 * 1_000 } else { rng.random_range(10_000..JOIN_WINDOW_US) };
        let contacts = bootstrap.iter().copied().filter(|p| *p != sim.peer(i)).collect();
        sim.schedule(at, i, Input::Join(contacts));
    }
    let wave_start = JOIN_WINDOW_US + SETTLE_US;
    sim.run_until(wave_start, |_| false);
    let joined = sim.snapshot();
    let join_recv_msgs = stat(joined[..n].iter().map(|t| t.recv_msgs as f64));
    let join_recv_bytes = stat(joined[..n].iter().map(|t| t.recv_bytes as f64));

    // Phase 2: every node announces once.
    for i in 0..n {
        let at = wave_start + rng.random_range(0..ANNOUNCE_JITTER_US);
        sim.announce_at(i, at);
    }
    // Each first delivery is one more listed profile.
    let goal = n * (n - 1);
    let converged = sim.run_until(wave_start + PHASE_US, |s| s.deliveries.len() >= goal);
    sim.run_until(wave_start + PHASE_US, |_| false);
    let listed = listed_counts(&mut sim);
    let wave2 = wave(&mut sim, &joined, wave_start, converged, &listed[..n]);
    let mean_announce_bytes = sim.announce_bytes as f64 / sim.broadcasts.max(1) as f64;
    let gossip_after_wave = memory(n, n - 1, gossip_owner);
    let table_after_wave = memory(n, n - 1, table_owner);

    // Memory once Plumtree's payload cache (30 s) has emptied; its message ids stay for 90 s.
    sim.run_until(wave_start + CACHE_EMPTIED_US, |_| false);
    let gossip_later = memory(n, n - 1, gossip_owner);
    let table_later = memory(n, n - 1, table_owner);
    let table_content = content_per_entry(&sim, n);

    // Phase 3: a newcomer under WOPR's re-announce rule.
    let newcomer_wave = newcomer_phase.then(|| {
        sim.broadcasts = 0;
        sim.shares = 0;
        sim.share_bytes = 0;
        sim.announce_bytes = 0;
        sim.join_rule = true;
        sim.newcomer = Some(newcomer);
        let before = sim.snapshot();
        let t1 = sim.now_us;
        sim.schedule(t1, newcomer, Input::Join(bootstrap.clone()));
        let converged =
            sim.run_until(t1 + PHASE_US, |s| s.nodes[newcomer].listed == n && s.listing_newcomer == n);
        sim.run_until(t1 + PHASE_US, |_| false);
        let listed = listed_counts(&mut sim);
        let mut w = wave(&mut sim, &before, t1, converged, &listed);
        // Phase 3's goal is 2N listings: the newcomer lists N peers and N peers list it.
        w.listed_fraction = (listed[newcomer] + sim.listing_newcomer) as f64 / (2 * n) as f64;
        w
    });
    Run {
        n,
        join_recv_msgs,
        join_recv_bytes,
        wave: wave2,
        newcomer: newcomer_wave,
        mean_announce_bytes,
        gossip_after_wave,
        table_after_wave,
        gossip_later,
        table_later,
        table_content,
        refused: sim.refused,
        wall: wall.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Report.

fn kib(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

fn ms(us: u64) -> String {
    format!("{:.0} ms", us as f64 / 1_000.0)
}

fn print_run(r: &Run) {
    let w = &r.wave;
    println!("\nN = {} (simulated in {:.1} s of wall time)", r.n, r.wall.as_secs_f64());
    println!(
        "  membership (join through {BOOTSTRAP} bootstrap nodes): received per node {:.0} messages / {} (max {:.0} / {}, a bootstrap node)",
        r.join_recv_msgs.mean,
        kib(r.join_recv_bytes.mean),
        r.join_recv_msgs.max,
        kib(r.join_recv_bytes.max)
    );
    println!("  announce wave ({} announces, {:.0} B each on average):", w.broadcasts, r.mean_announce_bytes);
    println!(
        "    converged: {} after the first announce ({:.2}% of the N(N-1) listings); rounds (delivery hops) max {}, mean {:.1}; latency author->node max {}, mean {}",
        w.converged_us.map_or("NOT within 10 s".to_string(), ms),
        100.0 * w.listed_fraction,
        w.max_hops,
        w.mean_hops,
        ms(w.max_latency_us),
        ms(w.mean_latency_us as u64)
    );
    println!(
        "    per node received {:.0} messages / {} (max {:.0} / {}); sent {:.0} / {} (max {:.0} / {})",
        w.recv_msgs.mean,
        kib(w.recv_bytes.mean),
        w.recv_msgs.max,
        kib(w.recv_bytes.max),
        w.sent_msgs.mean,
        kib(w.sent_bytes.mean),
        w.sent_msgs.max,
        kib(w.sent_bytes.max)
    );
    println!(
        "    per profile listed: {:.0} B received (max node {:.0}), {:.2} messages (max {:.2}); overhead factor {:.2}x the profile's size (max {:.2}x)",
        w.bytes_per_profile.mean,
        w.bytes_per_profile.max,
        w.msgs_per_profile.mean,
        w.msgs_per_profile.max,
        w.overhead.mean,
        w.overhead.max
    );
    if let Some(c) = &r.newcomer {
        println!(
            "  a newcomer under WOPR's join rule: {} announces (the newcomer's, 4), {} shares ({}) to neighbours, {}; {:.1}% of the 2N listings",
            c.broadcasts,
            c.shares,
            kib(c.share_bytes as f64),
            c.converged_us
                .map_or("NOT converged within 10 s".to_string(), |t| format!("converged in {}", ms(t))),
            100.0 * c.listed_fraction
        );
        println!(
            "    per node received {:.0} messages / {} (max {:.0} / {}), {:.2}x N announces' bytes",
            c.recv_msgs.mean,
            kib(c.recv_bytes.mean),
            c.recv_msgs.max,
            kib(c.recv_bytes.max),
            c.recv_bytes.mean / (r.n as f64 * r.mean_announce_bytes)
        );
    }
    println!("  memory per known peer (N - 1 = {}), heap bytes requested:", r.n - 1);
    println!(
        "    right after the wave: gossip state {:.0} B (max {:.0}), peer table {:.0} B (max {:.0}) of which content {:.0} B",
        r.gossip_after_wave.mean,
        r.gossip_after_wave.max,
        r.table_after_wave.mean,
        r.table_after_wave.max,
        r.table_content
    );
    println!(
        "    35 s after the wave (payload cache emptied, message ids kept): gossip state {:.0} B (max {:.0}), peer table {:.0} B (max {:.0}); table without content {:.0} B",
        r.gossip_later.mean,
        r.gossip_later.max,
        r.table_later.mean,
        r.table_later.max,
        r.table_later.mean - r.table_content
    );
    if r.refused > 0 {
        println!("  !! {} announces refused by the peer table", r.refused);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick") || std::env::var_os("WOPR_SIM_QUICK").is_some();
    let seed = std::env::var("WOPR_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let sizes: &[usize] = if quick { &[100, 300] } else { &[100, 300, 1_000] };
    // The newcomer phase: up to 300 nodes by default.
    let newcomer_up_to = if std::env::var_os("WOPR_SIM_FULL").is_some() { usize::MAX } else { 300 };
    println!("discovery at scale: iroh-gossip's state machine + WOPR's peer table, simulated (seed {seed})");
    println!("latency 10-100 ms one way per pair; join through {BOOTSTRAP} bootstrap nodes; one topic");
    let runs: Vec<Run> = sizes
        .iter()
        .map(|&n| {
            let r = run(n, seed, n <= newcomer_up_to);
            print_run(&r);
            r
        })
        .collect();
    let (Some(small), Some(big)) = (runs.first(), runs.last()) else { return };
    let log_ratio = (big.n as f64).ln() / (small.n as f64).ln();
    println!(
        "\ngrowth from N = {} to N = {} (log N grows {:.2}x, N grows {:.0}x); target: within 2x of the {}-node figure times {:.2}",
        small.n,
        big.n,
        log_ratio,
        big.n as f64 / small.n as f64,
        small.n,
        log_ratio
    );
    let row = |what: &str, a: f64, b: f64| {
        let ratio = b / (a * log_ratio);
        println!(
            "  {what:<46} {a:>9.2} -> {b:>9.2}: {:.2}x, {ratio:.2}x of (figure x log ratio): {}",
            b / a,
            if ratio <= 2.0 { "within 2x" } else { "MISSED" }
        );
    };
    row(
        "bytes received per node per profile listed",
        small.wave.bytes_per_profile.mean,
        big.wave.bytes_per_profile.mean,
    );
    row("  same, busiest node", small.wave.bytes_per_profile.max, big.wave.bytes_per_profile.max);
    row(
        "messages received per node per profile listed",
        small.wave.msgs_per_profile.mean,
        big.wave.msgs_per_profile.mean,
    );
    row("overhead factor (bytes received / profile bytes)", small.wave.overhead.mean, big.wave.overhead.mean);
    row(
        "rounds to convergence (max delivery hops)",
        f64::from(small.wave.max_hops),
        f64::from(big.wave.max_hops),
    );
    row("mean delivery hops", small.wave.mean_hops, big.wave.mean_hops);
    if let (Some(a), Some(b)) = (small.wave.converged_us, big.wave.converged_us) {
        row("simulated time to convergence (ms)", a as f64 / 1e3, b as f64 / 1e3);
    }
    row("membership messages received per node", small.join_recv_msgs.mean, big.join_recv_msgs.mean);
    println!(
        "  (total bytes received per node in the wave: {} -> {}, {:.1}x: every node must receive all N profiles, so this grows like N)",
        kib(small.wave.recv_bytes.mean),
        kib(big.wave.recv_bytes.mean),
        big.wave.recv_bytes.mean / small.wave.recv_bytes.mean
    );
    // Per known peer: what the node holds divided by the peers it knows; and the marginal cost, the
    // growth of a node's holdings per extra peer from the smallest run to the largest.
    let total = |r: &Run, f: fn(&Run) -> f64| f(r) * (r.n - 1) as f64;
    let marginal = |f: fn(&Run) -> f64| (total(big, f) - total(small, f)) / (big.n - small.n) as f64;
    let gossip = |r: &Run| r.gossip_later.mean;
    let table_bare = |r: &Run| r.table_later.mean - r.table_content;
    let per_peer = gossip(big) + table_bare(big);
    println!(
        "memory per known peer at N = {} (heap bytes, content aside): gossip state {:.0} B + peer table {:.0} B = {:.0} B; \
         target < 2 KiB: {}",
        big.n,
        gossip(big),
        table_bare(big),
        per_peer,
        if per_peer < 2048.0 { "met" } else { "MISSED" }
    );
    println!(
        "  with the content: {:.0} B; while the payload cache still holds the wave's announces: {:.0} B",
        big.gossip_later.mean + big.table_later.mean,
        big.gossip_after_wave.mean + big.table_after_wave.mean
    );
    println!(
        "  marginal cost of one more peer ({} -> {} nodes): gossip state {:.0} B, peer table {:.0} B without content",
        small.n,
        big.n,
        marginal(gossip),
        marginal(table_bare)
    );
}
