//! Discovery: topics over iroh-gossip, the profiles seen there, and the spam layers around them.
//!
//! A node joins a topic under its id (`wopr_proto::discovery::topic_id`), bootstrapping from the nodes
//! its sources name ([`bootstrap`]): static `discover.bootstrap` entries, known peers' addresses, LAN
//! and DHT rendezvous. In each topic it announces its signed profile to the whole topic once it has a
//! neighbour (again whenever it had lost them all) and every [`ANNOUNCE_EVERY`]; a neighbour coming up
//! gets its profile and the ones it lists (coalesced to once a second); it withdraws it on leaving.
//! Everything it receives goes through the [`PeerTable`] (layer 1, signatures; layer 2, the `only`
//! list; bounds and expiry), then, where it runs, the AI content filter (layer 3, [`filter`]). Connect-requests (layer 4) are in `server::connect`,
//! and grants stay bound to the requester's key (layer 5).

mod api;
mod bootstrap;
pub(crate) mod filter;
mod friend_post;
pub(crate) mod gate;
pub mod settings;
mod sources;
mod view;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use iroh::EndpointId;
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use iroh_gossip::{Gossip, TopicId};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use wopr_identity::PublicId;
use wopr_proto::Encode;
use wopr_proto::discovery::{
    MAX_TOPIC_MESSAGE, Offer, PeerTable, Profile, Share, TopicMessage, Verdict, Withdraw, check_topic_name,
    topic_id,
};
use wopr_store::Decision;

use crate::inner::{Audited, Inner, lock};
use crate::{P2pError, PeerPath};
pub use api::{Connected, DiscoverStatus, GossipTraffic};
pub use bootstrap::{SourceStatus, Sources};
pub use settings::{AcceptPolicy, DiscoverSettings, FilterMode};
pub(crate) use sources::lan_task;
pub use view::{DiscoveryEvent, GoneWhy, PeerView, PendingView, TopicStatus, VerdictWord};

/// Connect-requests held for the owner at once (`discover.accept = ask`); more are refused.
pub const MAX_PENDING_CONNECTS: usize = 32;

/// A connect-request held for the owner's decision.
pub(crate) struct PendingConnect {
    pub(crate) peer: PeerView,
    pub(crate) note: String,
    pub(crate) decide: tokio::sync::oneshot::Sender<bool>,
}

/// Most topics one node is in at once.
pub const MAX_JOINED_TOPICS: usize = 16;
/// How often a node repeats its profile in each topic (peers expire after three silent periods).
pub const ANNOUNCE_EVERY: Duration = Duration::from_millis(wopr_proto::discovery::PEER_TTL_MS / 3);
/// Shortest gap between two shares with the neighbours, however many come up.
const REANNOUNCE_GAP: Duration = Duration::from_millis(250);
/// Gaps between the extra announces right after a node connects to a topic's swarm (then every
/// [`ANNOUNCE_EVERY`]): members that joined at the same moment were not in the swarm yet when its first
/// announce went out, and neither they nor their neighbours had its profile to share.
const EARLY_ANNOUNCES: [Duration; 3] =
    [Duration::from_millis(500), Duration::from_millis(1000), Duration::from_millis(2000)];
/// How long a node with no neighbour in a topic waits before it dials its bootstrap nodes and the
/// topic's listed members again (doubling up to [`REJOIN_MAX`]): a join that found no one, or a node the
/// overlay dropped (a full neighbour evicts one while the swarm's passive views are still empty).
const REJOIN_FIRST: Duration = Duration::from_secs(1);
const REJOIN_MAX: Duration = Duration::from_secs(30);
/// How long after connecting a member first checks that it lists its static bootstrap nodes, then the
/// gap between checks while one is missing (doubling up to [`ISLAND_MAX`]) and once all are there. A
/// member of a connected swarm hears every member's announces; one that does not hear a bootstrap
/// node's is in an island the overlay formed (a few nodes whose neighbours are all each other, seen
/// when many join at once), and dialling the bootstrap node again joins it to the rest.
const ISLAND_FIRST: Duration = Duration::from_secs(3);
const ISLAND_MAX: Duration = Duration::from_secs(300);
const ISLAND_SETTLED: Duration = Duration::from_secs(60);
/// How long a member must have been listed before a link to it brings no share: by then it has heard
/// the early announces of everyone who joined with it (the last comes 3.5 s after connecting).
const SETTLED_MEMBER: Duration = Duration::from_secs(10);
/// How often silent peers are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);
/// How long leaving waits for the withdrawal to go out before dropping the topic.
const WITHDRAW_GRACE: Duration = Duration::from_millis(300);

/// Discovery's state in a node.
pub(crate) struct Discovery {
    pub(crate) gossip: Gossip,
    /// Gossip connections open now (see [`gate`]).
    pub(crate) open: Arc<AtomicUsize>,
    state: Mutex<State>,
    events: broadcast::Sender<DiscoveryEvent>,
    pub(crate) settings: Mutex<DiscoverSettings>,
    pub(crate) filter: filter::Filter,
    /// The `updated` of the last profile signed, so every new one is strictly newer.
    last_updated: AtomicU64,
    /// Where bootstrap nodes came from, for `discover status`.
    pub(crate) sources: Mutex<bootstrap::Sources>,
    pending: Mutex<HashMap<PublicId, PendingConnect>>,
    /// The DHT client, started when a topic is first joined with `discover.dht` on.
    rendezvous: tokio::sync::OnceCell<wopr_rendezvous::Rendezvous>,
    /// LAN peers found by mDNS (closed when mDNS is off).
    lan_peers: watch::Receiver<std::collections::BTreeSet<PublicId>>,
}

struct State {
    table: PeerTable,
    joined: HashMap<String, Joined>,
}

struct Joined {
    sender: GossipSender,
    wake: Arc<Notify>,
    neighbors: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery for the node `me` on `endpoint`, with `settings`.
    pub(crate) fn new(
        endpoint: iroh::Endpoint,
        me: PublicId,
        settings: DiscoverSettings,
        lan_peers: watch::Receiver<std::collections::BTreeSet<PublicId>>,
    ) -> Discovery {
        let gossip = Gossip::builder().max_message_size(MAX_TOPIC_MESSAGE).spawn(endpoint);
        let mut table = PeerTable::new(me);
        table.set_only(settings.only.clone());
        Discovery {
            gossip,
            open: Arc::default(),
            state: Mutex::new(State { table, joined: HashMap::new() }),
            events: broadcast::channel(1024).0,
            filter: filter::Filter::new(settings.filter),
            settings: Mutex::new(settings),
            last_updated: AtomicU64::new(0),
            sources: Mutex::default(),
            pending: Mutex::default(),
            rendezvous: tokio::sync::OnceCell::new(),
            lan_peers,
        }
    }

    /// The bootstrap sources as of the last join.
    pub(crate) fn sources_now(&self) -> Sources {
        lock(&self.sources).clone()
    }

    /// The gossip senders of every joined topic.
    fn senders(&self) -> Vec<GossipSender> {
        lock(&self.state).joined.values().map(|j| j.sender.clone()).collect()
    }

    /// LAN peers found so far.
    pub(crate) fn lan_now(&self) -> Vec<PublicId> {
        self.lan_peers.borrow().iter().copied().collect()
    }

    /// Whether mDNS is off or failed (its channel is closed).
    pub(crate) fn lan_peers_closed(&self) -> bool {
        self.lan_peers.has_changed().is_err()
    }

    /// A watcher of the LAN peers (for the task that feeds them to topics).
    pub(crate) fn lan_watch(&self) -> watch::Receiver<std::collections::BTreeSet<PublicId>> {
        self.lan_peers.clone()
    }

    /// Holds a connect-request of `peer` for the owner.
    pub(crate) fn hold(&self, peer: PublicId, request: PendingConnect) -> Result<(), String> {
        let mut pending = lock(&self.pending);
        if pending.contains_key(&peer) {
            return Err("your earlier request is still waiting for the owner".into());
        }
        if pending.len() >= MAX_PENDING_CONNECTS {
            return Err("too many requests are waiting for this node's owner; try later".into());
        }
        pending.insert(peer, request);
        Ok(())
    }

    pub(crate) fn drop_pending(&self, peer: &PublicId) {
        lock(&self.pending).remove(peer);
    }

    /// The requests waiting for the owner.
    pub(crate) fn pending(&self) -> Vec<PendingView> {
        let mut out: Vec<PendingView> = lock(&self.pending)
            .values()
            .map(|p| PendingView { peer: p.peer.clone(), note: p.note.clone() })
            .collect();
        out.sort_by(|a, b| a.peer.id.cmp(&b.peer.id));
        out
    }

    /// The owner's answer to a waiting request of the peer `query` names (short or full id); returns
    /// the requester's key.
    pub(crate) fn decide(&self, query: &str, accept: bool) -> Result<PublicId, P2pError> {
        let mut pending = lock(&self.pending);
        let query = query.trim();
        let key = pending
            .keys()
            .find(|k| k.to_hex() == query || k.short() == query)
            .copied()
            .ok_or_else(|| P2pError::Invalid(format!("no connect request from {query:?} is waiting")))?;
        if let Some(p) = pending.remove(&key) {
            let _ = p.decide.send(accept);
        }
        Ok(key)
    }

    /// Events from every joined topic, from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: DiscoveryEvent) {
        // No subscriber is fine: events are for whoever watches.
        let _ = self.events.send(event);
    }

    /// The joined topics with their counts.
    pub(crate) fn topics(&self) -> Vec<TopicStatus> {
        let state = lock(&self.state);
        let mut out: Vec<TopicStatus> = state
            .joined
            .iter()
            .map(|(name, j)| TopicStatus {
                name: name.clone(),
                id: hex::encode(topic_id(name)),
                peers: state.table.peers(Some(name)).filter(|(_, e)| self.filter.shows(&e.verdict)).count(),
                neighbors: j.neighbors.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The peers listed in `topic` (or every topic): those the filters let through, or with `all`,
    /// everything held, filtered ones included with the reason.
    pub(crate) fn peers(&self, topic: Option<&str>, all: bool) -> Vec<PeerView> {
        let state = lock(&self.state);
        let mut out: Vec<PeerView> = state
            .table
            .peers(topic)
            .filter(|(_, e)| all || self.filter.shows(&e.verdict))
            .map(|(t, e)| PeerView::of(t, e))
            .collect();
        out.sort_by(|a, b| (&a.topic, &a.id).cmp(&(&b.topic, &b.id)));
        out
    }

    /// A listed peer by id, short id or profile name, with the topic it was seen in and its profile.
    pub(crate) fn find(&self, query: &str) -> Option<(String, Profile)> {
        let state = lock(&self.state);
        state
            .table
            .find(query)
            .filter(|(_, e)| self.filter.shows(&e.verdict))
            .map(|(t, e)| (t.to_string(), e.profile.clone()))
    }

    /// Whether this node is in `topic`.
    pub(crate) fn is_joined(&self, topic: &str) -> bool {
        lock(&self.state).joined.contains_key(topic)
    }

    fn next_updated(&self, now_ms: u64) -> u64 {
        let mut last = self.last_updated.load(Ordering::Relaxed);
        loop {
            let next = now_ms.max(last + 1);
            match self.last_updated.compare_exchange(last, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    fn wake_all(&self) {
        for j in lock(&self.state).joined.values() {
            j.wake.notify_one();
        }
    }
}

impl Inner {
    /// This node's signed profile for `topic`, with its current content and address hints.
    pub(crate) fn my_profile(&self, topic: &str) -> Result<Profile, P2pError> {
        let d = &self.discovery;
        let content = lock(&d.settings).content.clone();
        let updated = d.next_updated(self.now());
        Profile::with_hints(&self.identity, content, vec![topic.to_string()], self.addr_hints(), updated)
            .map_err(|e| P2pError::Invalid(format!("your profile: {e}")))
    }

    /// Joins `topic`; returns `false` if this node was already in it.
    pub(crate) async fn join_topic(self: &Arc<Self>, topic: &str) -> Result<bool, P2pError> {
        check_topic_name(topic).map_err(|e| P2pError::Invalid(format!("topic {topic:?}: {e}")))?;
        let d = &self.discovery;
        {
            let state = lock(&d.state);
            if state.joined.contains_key(topic) {
                return Ok(false);
            }
            if state.joined.len() >= MAX_JOINED_TOPICS {
                return Err(P2pError::Invalid(format!(
                    "this node is in {MAX_JOINED_TOPICS} topics already; leave one first"
                )));
            }
        }
        let bootstrap = self.bootstrap_ids().await;
        let id = TopicId::from_bytes(topic_id(topic));
        let sub = d
            .gossip
            .subscribe(id, bootstrap.clone())
            .await
            .map_err(|e| P2pError::Offline(format!("cannot join topic {topic:?}: {e}")))?;
        let (sender, receiver) = sub.split();
        let wake = Arc::new(Notify::new());
        let neighbors = Arc::new(AtomicUsize::new(0));
        let dht = lock(&d.settings).dht.then(|| {
            tokio::spawn(sources::dht_task(Arc::downgrade(self), topic.to_string(), sender.clone()))
        });
        let task = tokio::spawn(run_topic(
            Arc::downgrade(self),
            topic.to_string(),
            receiver,
            sender.clone(),
            wake.clone(),
            neighbors.clone(),
            dht,
        ));
        let mut state = lock(&d.state);
        state.table.join(topic);
        state.joined.insert(topic.to_string(), Joined { sender, wake, neighbors, task });
        drop(state);
        tracing::info!(topic, bootstrap = bootstrap.len(), "joined topic");
        d.emit(DiscoveryEvent::Joined { topic: topic.to_string() });
        Ok(true)
    }

    /// Leaves `topic`, withdrawing this node's profile first; returns `false` if it was not in it.
    pub(crate) async fn leave_topic(&self, topic: &str) -> Result<bool, P2pError> {
        let d = &self.discovery;
        let Some(joined) = lock(&d.state).joined.remove(topic) else { return Ok(false) };
        let withdraw =
            TopicMessage::Withdraw(Withdraw::new(&self.identity, topic, d.next_updated(self.now())));
        if joined.sender.broadcast(withdraw.to_bytes().into()).await.is_ok() {
            tokio::time::sleep(WITHDRAW_GRACE).await;
        }
        drop(joined);
        lock(&d.state).table.leave(topic);
        d.emit(DiscoveryEvent::Left { topic: topic.to_string() });
        Ok(true)
    }

    /// Leaves every topic (withdrawing), for a graceful stop.
    pub(crate) async fn leave_all(&self) {
        let topics: Vec<String> = lock(&self.discovery.state).joined.keys().cloned().collect();
        for t in topics {
            let _ = self.leave_topic(&t).await;
        }
    }

    /// Replaces the profile content (already checked) and re-announces it in every topic.
    pub(crate) fn set_profile_content(&self, content: String) {
        lock(&self.discovery.settings).content = content;
        self.discovery.wake_all();
    }

    /// Re-reads the discovery settings that can change while running: `only`, filter and policy.
    pub(crate) fn reload_discovery(&self, settings: DiscoverSettings) {
        let d = &self.discovery;
        lock(&d.state).table.set_only(settings.only.clone());
        d.filter.set_mode(settings.filter);
        let content_changed = lock(&d.settings).content != settings.content;
        *lock(&d.settings) = settings;
        if content_changed {
            d.wake_all();
        }
    }

    /// Sends this node's profile and the profiles it lists to its direct neighbours only, packed into
    /// shares (a share's bytes are its own, so gossip never takes it for a copy of an announce).
    async fn share_with_neighbors(&self, topic: &str, sender: &GossipSender) {
        let mut profiles: Vec<Profile> = self.my_profile(topic).into_iter().collect();
        {
            let state = lock(&self.discovery.state);
            let listed =
                state.table.peers(Some(topic)).filter(|(_, e)| !matches!(e.verdict, Verdict::Filtered(_)));
            profiles.extend(listed.map(|(_, e)| e.profile.clone()));
        }
        let nonce = || u64::from_be_bytes(wopr_identity::random_bytes());
        for share in Share::pack(&profiles, nonce) {
            if sender.broadcast_neighbors(TopicMessage::Share(share).to_bytes().into()).await.is_err() {
                return;
            }
        }
    }

    async fn announce(&self, topic: &str, sender: &GossipSender) {
        match self.my_profile(topic) {
            Ok(p) => {
                if let Err(e) = sender.broadcast(TopicMessage::Announce(p).to_bytes().into()).await {
                    tracing::debug!(%e, topic, "announce");
                }
            }
            Err(e) => tracing::warn!(%e, topic, "cannot announce"),
        }
    }

    /// Whether `key` has been listed in `topic` (filtered or not) for longer than [`SETTLED_MEMBER`]:
    /// long enough to have heard what this node lists.
    fn lists_settled(&self, topic: &str, key: &PublicId) -> bool {
        let now = self.now();
        lock(&self.discovery.state)
            .table
            .get(topic, key)
            .is_some_and(|e| now.saturating_sub(e.since_ms) > SETTLED_MEMBER.as_millis() as u64)
    }

    /// Whom a node with no neighbour in `topic` dials: its bootstrap nodes and the members it still
    /// lists there.
    async fn rejoin_ids(&self, topic: &str) -> Vec<EndpointId> {
        let mut ids = self.bootstrap_ids().await;
        let listed: Vec<(PublicId, Vec<String>)> = lock(&self.discovery.state)
            .table
            .peers(Some(topic))
            .map(|(_, e)| (e.profile.author, e.profile.hints.clone()))
            .collect();
        for (key, hints) in listed {
            if let Some(id) = self.learn_address(&key, &hints)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
    }

    /// The static bootstrap nodes (`discover.bootstrap`) `topic` does not list.
    fn unlisted_bootstrap(&self, topic: &str) -> Vec<EndpointId> {
        let entries = lock(&self.discovery.settings).bootstrap.clone();
        let state = lock(&self.discovery.state);
        let listed: Vec<EndpointId> =
            state.table.peers(Some(topic)).filter_map(|(_, e)| endpoint_of(&e.profile.author)).collect();
        let me = endpoint_of(&self.me);
        entries
            .iter()
            .filter_map(|e| bootstrap::parse_entry(e).ok().map(|(id, _)| id))
            .filter(|id| Some(*id) != me && !listed.contains(id))
            .collect()
    }

    /// Handles one gossip message of `topic` relayed by `from`; returns how many new peers it listed.
    pub(crate) fn on_topic_message(self: &Arc<Self>, topic: &str, bytes: &[u8], from: PublicId) -> usize {
        let message = match TopicMessage::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.audit_topic_refusal(&from, format!("malformed topic message in {topic}: {e}"));
                return 0;
            }
        };
        match message {
            TopicMessage::FriendRequest(request) => {
                self.friend_request_in_topic(topic, request, from);
                0
            }
            TopicMessage::FriendAccept(accept) => {
                self.friend_accept_in_topic(topic, accept, from);
                0
            }
            listings => listings.into_listings().iter().filter(|m| self.on_listing(topic, m, from)).count(),
        }
    }

    /// Offers one announce or withdrawal to the table; returns whether it listed a new peer.
    fn on_listing(self: &Arc<Self>, topic: &str, message: &TopicMessage, from: PublicId) -> bool {
        let now = self.now();
        let d = &self.discovery;
        let Some(author) = message.author() else { return false };
        let (offer, entry) = {
            let mut state = lock(&d.state);
            let offer = state.table.offer(topic, message, now);
            let listed = matches!(offer, Offer::New | Offer::Updated { .. });
            let entry = if listed { state.table.get(topic, &author).cloned() } else { None };
            (offer, entry)
        };
        match offer {
            Offer::New | Offer::Updated { .. } => {
                let is_new = offer == Offer::New;
                let Some(entry) = entry else { return false };
                if is_new {
                    let what = Audited { action: "profile", ..Audited::default() };
                    self.record_soon(
                        &author,
                        &what,
                        Decision::Accepted,
                        Some(format!("listed in topic {topic}")),
                    );
                }
                if d.filter.wants(&entry.verdict) {
                    filter::judge(self.clone(), topic.to_string(), entry.profile.clone(), is_new);
                } else if d.filter.shows(&entry.verdict) {
                    let peer = PeerView::of(topic, &entry);
                    d.emit(if is_new {
                        DiscoveryEvent::Appeared { peer }
                    } else {
                        DiscoveryEvent::Updated { peer }
                    });
                }
                is_new
            }
            Offer::Withdrawn => {
                d.emit(DiscoveryEvent::Gone {
                    topic: topic.to_string(),
                    id: author.short(),
                    public_key: author.to_hex(),
                    why: GoneWhy::Withdrawn,
                });
                false
            }
            Offer::Refused(e) => {
                self.audit_topic_refusal(
                    &from,
                    format!("refused a profile claiming to be {} in {topic}: {e}", author.short()),
                );
                false
            }
            Offer::Full => {
                self.audit_topic_refusal(
                    &from,
                    format!("topic {topic} is full; {} not listed", author.short()),
                );
                false
            }
            Offer::Stale | Offer::Unchanged | Offer::Ignored => false,
        }
    }

    /// Audits a refused topic message, at most once a minute per relaying neighbour (a flood of forged
    /// profiles must not fill the audit log).
    fn audit_topic_refusal(&self, from: &PublicId, reason: String) {
        if lock(&self.limits).audit_flood(from, self.now()) {
            let what = Audited { action: "profile", ..Audited::default() };
            self.record_soon(from, &what, Decision::Refused, Some(reason));
        }
    }

    /// Records layer 3's ruling on a profile and tells watchers.
    pub(crate) fn apply_verdict(&self, topic: &str, profile: &Profile, verdict: Verdict, is_new: bool) {
        let d = &self.discovery;
        let entry = {
            let mut state = lock(&d.state);
            state.table.set_verdict(topic, &profile.author, profile.updated_ms, verdict);
            state.table.get(topic, &profile.author).cloned()
        };
        let Some(entry) = entry else { return };
        let peer = PeerView::of(topic, &entry);
        d.emit(match &entry.verdict {
            Verdict::Filtered(_) => DiscoveryEvent::Filtered { peer },
            _ if is_new => DiscoveryEvent::Appeared { peer },
            _ => DiscoveryEvent::Updated { peer },
        });
    }

    fn expire_peers(&self) {
        let d = &self.discovery;
        let gone = lock(&d.state).table.expire(self.now());
        for (topic, key) in gone {
            d.emit(DiscoveryEvent::Gone {
                topic,
                id: key.short(),
                public_key: key.to_hex(),
                why: GoneWhy::Expired,
            });
        }
    }

    /// How this node's packets reach a peer, if a connection is open (for `doctor net`).
    pub(crate) fn path_of(&self, peer: &PublicId) -> Option<PeerPath> {
        let conns = self.pool.live(peer).into_iter().chain(self.registry.of(peer));
        let paths: Vec<PeerPath> = conns.filter_map(|c| crate::endpoint::selected_path(&c)).collect();
        paths.iter().find(|p| matches!(p, PeerPath::Direct(_))).or(paths.first()).cloned()
    }
}

/// One topic's loop: received messages, neighbour changes, periodic announces and expiry.
///
/// A newcomer learns the topic from its neighbours, not from the whole swarm: when a neighbour comes up
/// that this node does not list, or has listed for less than [`SETTLED_MEMBER`], this node sends it (and
/// its other direct neighbours, at most once per [`REANNOUNCE_GAP`]) its own profile and the signed
/// profiles it lists, packed in shares (PROTOCOL §14.3), which verify whoever relays them. A settled member that the overlay reconnects (HyParView
/// replaces links all the time) gets nothing: it has the same profiles.
///
/// Its own announce reaches everyone through the broadcast tree. It goes out when the first neighbour
/// comes up: made at the join itself, it would have no one to go to, and the swarm would learn the
/// newcomer only at its next periodic announce. So a join costs each member O(log N) messages, and only
/// only the newcomer's few neighbours send O(N).
async fn run_topic(
    inner: Weak<Inner>,
    topic: String,
    mut receiver: GossipReceiver,
    sender: GossipSender,
    wake: Arc<Notify>,
    neighbors: Arc<AtomicUsize>,
    dht: Option<tokio::task::JoinHandle<()>>,
) {
    struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(t) = &self.0 {
                t.abort();
            }
        }
    }
    let _dht = AbortOnDrop(dht);
    // The first announce waits for the first neighbour (see above).
    let mut next_announce = Instant::now() + ANNOUNCE_EVERY;
    let mut early = EARLY_ANNOUNCES.iter();
    let mut share_at: Option<Instant> = None;
    let mut last_share: Option<Instant> = None;
    let mut expiry = tokio::time::interval(EXPIRE_EVERY);
    let far = || Instant::now() + Duration::from_secs(3600);
    let mut rejoin_wait = REJOIN_FIRST;
    let mut rejoin_at = Some(Instant::now() + rejoin_wait);
    let mut island_wait = ISLAND_FIRST;
    let mut island_at: Option<Instant> = None;
    loop {
        let mut share = false;
        tokio::select! {
            event = receiver.next() => {
                let Some(inner) = inner.upgrade() else { return };
                match event {
                    Some(Ok(Event::Received(m))) => {
                        let from = PublicId(*m.delivered_from.as_bytes());
                        inner.on_topic_message(&topic, &m.content, from);
                    }
                    Some(Ok(Event::NeighborUp(peer))) => {
                        rejoin_at = None;
                        rejoin_wait = REJOIN_FIRST;
                        island_at.get_or_insert_with(|| Instant::now() + ISLAND_FIRST);
                        if neighbors.fetch_add(1, Ordering::Relaxed) == 0 {
                            // Connected to the swarm (again): tell all of it, through the broadcast tree,
                            // and again a few times soon, for those who are joining at this moment.
                            inner.announce(&topic, &sender).await;
                            early = EARLY_ANNOUNCES.iter();
                            next_announce = Instant::now() + *early.next().unwrap_or(&ANNOUNCE_EVERY);
                        }
                        // A settled member the overlay merely reconnected us to already has what we
                        // list; a newcomer (or one whose profile we lost) does not.
                        share = !inner.lists_settled(&topic, &PublicId(*peer.as_bytes()));
                    }
                    Some(Ok(Event::NeighborDown(_))) => {
                        let before = neighbors.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                        if before == Ok(1) {
                            rejoin_at = Some(Instant::now() + rejoin_wait);
                        }
                    }
                    Some(Ok(Event::Lagged)) => tracing::warn!(topic, "discovery fell behind; some messages were dropped"),
                    Some(Err(e)) => {
                        tracing::warn!(%e, topic, "topic subscription ended");
                        return;
                    }
                    None => return,
                }
            }
            () = tokio::time::sleep_until(next_announce) => {
                let Some(inner) = inner.upgrade() else { return };
                inner.announce(&topic, &sender).await;
                next_announce = Instant::now() + *early.next().unwrap_or(&ANNOUNCE_EVERY);
            }
            () = tokio::time::sleep_until(share_at.unwrap_or_else(far)), if share_at.is_some() => {
                let Some(inner) = inner.upgrade() else { return };
                inner.share_with_neighbors(&topic, &sender).await;
                last_share = Some(Instant::now());
                share_at = None;
            }
            () = tokio::time::sleep_until(rejoin_at.unwrap_or_else(far)), if rejoin_at.is_some() => {
                let Some(inner) = inner.upgrade() else { return };
                let ids = inner.rejoin_ids(&topic).await;
                tracing::debug!(topic, peers = ids.len(), "no neighbour in the topic; dialling again");
                if !ids.is_empty() {
                    let _ = sender.join_peers(ids).await;
                }
                rejoin_wait = (rejoin_wait * 2).min(REJOIN_MAX);
                rejoin_at = Some(Instant::now() + rejoin_wait);
            }
            () = tokio::time::sleep_until(island_at.unwrap_or_else(far)), if island_at.is_some() => {
                let Some(inner) = inner.upgrade() else { return };
                let missing = inner.unlisted_bootstrap(&topic);
                if missing.is_empty() {
                    island_wait = ISLAND_FIRST;
                    island_at = Some(Instant::now() + ISLAND_SETTLED);
                } else {
                    tracing::debug!(topic, missing = missing.len(), "a bootstrap node is not listed; dialling it again");
                    let _ = sender.join_peers(missing).await;
                    island_at = Some(Instant::now() + island_wait);
                    island_wait = (island_wait * 2).min(ISLAND_MAX);
                }
            }
            () = wake.notified() => next_announce = Instant::now(),
            _ = expiry.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                inner.expire_peers();
            }
        }
        if share && share_at.is_none() {
            // At once while the new link is still eager (gossip demotes links that carry duplicates,
            // and a share goes to eager neighbours only), else after the gap.
            let earliest = last_share.map_or(Instant::now(), |at| at + REANNOUNCE_GAP);
            share_at = Some(earliest.max(Instant::now()));
        }
    }
}

/// The endpoint id of a WOPR key (infallible for keys that came from a verified signature).
pub(crate) fn endpoint_of(key: &PublicId) -> Option<EndpointId> {
    EndpointId::from_bytes(key.as_bytes()).ok()
}
