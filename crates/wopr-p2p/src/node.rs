//! [`Node`]: one running P2P endpoint and everything the CLI and daemon ask of it.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::VarInt;
use iroh::protocol::Router;
use wopr_identity::{Identity, PublicId, RotationRecord};
use wopr_proto::frame::MAX_PAYLOAD;
use wopr_proto::message::{Claim, DoneStatus, Inject, Log, Message};
use wopr_store::{Home, PeerRecord, SessionName, StoreError};

use crate::client::{INJECT_IDLE_TIMEOUT, REPLY_TIMEOUT};
use crate::conns::revoked_code;
use crate::deliver::RotationReport;
use crate::discovery::gate::GossipGate;
use crate::discovery::{DiscoverSettings, Discovery};
use crate::endpoint::{self, endpoint_addr};
use crate::inner::{Inner, lock};
use crate::invite::{parse_invite, store_capabilities};
use crate::lan::LanDiscovery;
use crate::recorder::Recorder;
use crate::server::Handler;
use crate::{NodeConfig, P2pError, PeerPath, SessionBackend};

/// How often undelivered rotations are retried.
const OUTBOX_RETRY: Duration = Duration::from_secs(30);

/// A running P2P node: the iroh endpoint answering `wopr/3`, and the client side of claims, injects and
/// rotations. One per identity: the daemon owns it, or the CLI runs one in-process.
#[derive(Debug)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
    router: Router,
    retry: tokio::task::JoinHandle<()>,
    lan: LanDiscovery,
}

impl Node {
    /// Binds the endpoint with `identity`'s key (the endpoint id is the WOPR id) and starts answering
    /// peers. Inbound work that passes the checks goes to `backend`. Addresses of known peers
    /// (`peers.json`, `access.json`) are loaded so they are reachable without discovery.
    pub async fn start(
        identity: Identity,
        home: Home,
        config: NodeConfig,
        backend: Arc<dyn SessionBackend>,
    ) -> Result<Node, P2pError> {
        home.ensure()?;
        let lookup = MemoryLookup::new();
        seed_lookup(&home, &lookup);
        let (endpoint, lan) = endpoint::bind(&identity, &config, lookup.clone()).await?;
        let audit = home.audit()?;
        if let Err(e) = audit.prune_nonces(wopr_store::now_ms()) {
            tracing::warn!(%e, "could not prune expired invite nonces");
        }
        let recorder = Recorder::start(home.audit()?, home.audit()?)
            .map_err(|e| P2pError::Offline(format!("cannot start the audit log writer: {e}")))?;
        let outbox = home.outbox()?;
        let settings = DiscoverSettings::load(&home)?;
        let discovery = Discovery::new(endpoint.clone(), identity.public_id(), settings, lan.peers());
        let gate = GossipGate { gossip: discovery.gossip.clone(), open: discovery.open.clone() };
        let inner = Arc::new(Inner::new(
            identity,
            home,
            config,
            endpoint.clone(),
            lookup,
            backend,
            audit,
            recorder,
            outbox,
            discovery,
        ));
        inner.queue_interrupted_rotations()?;
        let owes = !lock(&inner.outbox).pending(None)?.is_empty();
        inner.may_owe.store(owes, std::sync::atomic::Ordering::Relaxed);
        let router = Router::builder(endpoint)
            .accept(wopr_proto::ALPN, Handler(inner.clone()))
            .accept(iroh_gossip::ALPN, gate)
            .spawn();
        let retry = tokio::spawn(retry_outbox(Arc::downgrade(&inner)));
        tokio::spawn(crate::discovery::lan_task(Arc::downgrade(&inner), inner.discovery.lan_watch()));
        Ok(Node { inner, router, retry, lan })
    }

    /// This node's WOPR id (also its iroh endpoint id).
    pub fn id(&self) -> PublicId {
        self.inner.me
    }

    /// The network settings the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// How to reach this node, for invites: direct socket addresses, then the home relay URL.
    pub fn addr_hints(&self) -> Vec<String> {
        self.inner.addr_hints()
    }

    /// An iroh endpoint ticket for `daemon status`, usable by standard iroh tools.
    pub fn ticket(&self) -> String {
        endpoint::ticket(&self.inner.endpoint)
    }

    /// Waits until the node has a home relay (with relays enabled), at most `timeout`. Returns whether it
    /// did; call before printing an invite for someone outside the LAN.
    pub async fn wait_online(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.inner.endpoint.online()).await.is_ok()
    }

    /// Peers with an open connection, in either direction.
    pub fn connected_peers(&self) -> Vec<PublicId> {
        let mut peers = self.inner.registry.peers();
        peers.extend(self.inner.pool.peers());
        peers.sort();
        peers.dedup();
        peers
    }

    /// How packets to `peer` travel now: direct or through a relay (a direct path wins when several
    /// connections are open). `None` without an open connection to it.
    pub fn path_to(&self, peer: &PublicId) -> Option<PeerPath> {
        self.inner.path_of(peer)
    }

    /// Endpoint ids found on the LAN by mDNS (`discover.mdns`), as a set that changes as peers appear and
    /// expire (at most [`crate::MAX_LAN_PEERS`]). Unauthenticated hints: an id is proven only by
    /// connecting to it. The channel is closed when mDNS is off or could not start.
    pub fn lan_peers(&self) -> tokio::sync::watch::Receiver<BTreeSet<PublicId>> {
        self.lan.peers()
    }

    /// What `wopr doctor net` shows: addresses, relays, NAT, mDNS, and the path to `peer` (dialled if no
    /// connection is open, then watched up to `settle` for a direct path; relays and the net report are
    /// waited for up to `settle` too). See [`crate::NetReport`].
    pub async fn net_report(&self, peer: Option<&PublicId>, settle: Duration) -> crate::NetReport {
        crate::netcheck::probe(self, &self.inner, &self.lan, peer, settle).await
    }

    /// Claims an invite: connects to the issuer using the token's address hints, proves we are its
    /// subject, and on success records the issuer in `peers.json`. Returns the stored peer record.
    pub async fn claim(&self, token: &str) -> Result<PeerRecord, P2pError> {
        let token = parse_invite(token)?;
        if token.issuer == self.inner.me {
            return Err(P2pError::Invalid(
                "this invite was issued by this node; give it to its subject".into(),
            ));
        }
        let claim = Message::Claim(Claim::new(token.clone()));
        let reply =
            self.inner.request(&token.issuer, &token.hints, claim, REPLY_TIMEOUT, &mut |_| {}).await?;
        let Message::ClaimAccepted { sessions, capabilities } = reply else {
            return Err(P2pError::Protocol {
                peer: token.issuer.short(),
                reason: "claim answered without a grant".into(),
            });
        };
        let sessions = crate::invite::accepted_sessions(&token, sessions)?;
        let now = wopr_store::now_ms();
        let mut record = PeerRecord::new(token.issuer, token.issuer_encrypt_pub, now);
        record.sessions = sessions.into_iter().collect();
        record.capabilities = store_capabilities(capabilities);
        record.addrs = token.hints.clone();
        record.last_seen = Some(now);
        Ok(self.inner.home.peers().upsert(record)?)
    }

    /// Sends `text` to `session` on `peer` (a name, short id or full id from `peers.json`). With the
    /// `inject` capability the remote AI's answer streams to `on_delta` as it is generated and the result
    /// is [`DoneStatus::Completed`]; with only `message` the text is logged there and the result is
    /// [`DoneStatus::Logged`].
    pub async fn inject(
        &self,
        peer: &str,
        session: &str,
        text: &str,
        on_delta: impl FnMut(&str) + Send,
    ) -> Result<DoneStatus, P2pError> {
        self.inject_forwarded(peer, session, text, 0, on_delta).await
    }

    /// [`Node::inject`] for work that already travelled `hop_count` P2P hops (peers refuse more than 8).
    pub async fn inject_forwarded(
        &self,
        peer: &str,
        session: &str,
        text: &str,
        hop_count: u8,
        mut on_delta: impl FnMut(&str) + Send,
    ) -> Result<DoneStatus, P2pError> {
        check_request(session, text)?;
        let (key, hints) = self.target(peer).await?;
        let inject = Message::Inject(Inject::new(session, text, hop_count));
        match self.inner.request(&key, &hints, inject, INJECT_IDLE_TIMEOUT, &mut on_delta).await? {
            Message::InjectDone { status } => Ok(status),
            _ => Err(P2pError::Protocol {
                peer: key.short(),
                reason: "inject answered with something else".into(),
            }),
        }
    }

    /// Appends `text` to `session` on `peer` without asking its AI (needs `message` or `inject`).
    pub async fn log(&self, peer: &str, session: &str, text: &str) -> Result<(), P2pError> {
        check_request(session, text)?;
        let (key, hints) = self.target(peer).await?;
        self.inner
            .request(&key, &hints, Message::Log(Log::new(session, text)), REPLY_TIMEOUT, &mut |_| {})
            .await?;
        Ok(())
    }

    /// Tells every known peer (in `peers.json` and `access.json`) that this identity rotated. Call it on
    /// the node started with the *new* identity. Peers that cannot be reached now stay queued in the
    /// outbox and get the record as soon as a connection with them opens (or at the periodic retry).
    pub async fn broadcast_rotation(&self, record: &RotationRecord) -> Result<RotationReport, P2pError> {
        record.verify().map_err(|e| P2pError::Invalid(format!("rotation record: {e}")))?;
        if record.new_key != self.inner.me {
            return Err(P2pError::Invalid(
                "broadcast a rotation from the node running the new key (restart it with the rotated identity)".into(),
            ));
        }
        let targets = self.inner.queue_rotation(record)?;
        self.inner.deliver_all(targets).await
    }

    /// Retries everything the outbox still owes, now.
    pub async fn flush_outbox(&self) -> Result<RotationReport, P2pError> {
        self.inner.flush().await
    }

    /// Revokes `peer` (any key of its chain): removes its grants from `access.json` and closes the open
    /// connections of every key of the peer at once, rotated-away keys still in their grace period
    /// included, so an answer in progress stops and the next request is refused. Returns how many grants
    /// were removed (0 if they were already gone; the connections are closed anyway).
    pub fn revoke(&self, peer: &PublicId) -> Result<usize, P2pError> {
        let now = self.inner.now();
        let mut keys = self.inner.home.access().load()?.chain_of(peer, now);
        keys.insert(*peer);
        let removed = match self.inner.home.access().revoke(&peer.to_hex(), None, now) {
            Ok((_, n)) => n,
            Err(StoreError::NotFound(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        for key in &keys {
            self.inner.registry.close(key, revoked_code(), b"access revoked");
        }
        Ok(removed)
    }

    /// Closes the outgoing connection to `peer`, if one is open, so the next request to it dials again and
    /// runs a fresh handshake (connection set-up benchmarks use this). Incoming connections stay open.
    pub fn disconnect(&self, peer: &PublicId) {
        self.inner.pool.forget(peer, VarInt::from_u32(0), b"disconnected");
    }

    /// Audit records from now on, as they are made (accepted and refused requests, handshakes).
    pub fn audit_events(&self) -> tokio::sync::broadcast::Receiver<wopr_store::AuditEntry> {
        self.inner.audit_events()
    }

    /// Peers from now on whose incoming connection passed the handshake.
    pub fn connection_events(&self) -> tokio::sync::broadcast::Receiver<PublicId> {
        self.inner.connected.subscribe()
    }

    /// The longest one step of closing a node may take.
    pub const CLOSE_STEP: std::time::Duration = std::time::Duration::from_secs(3);

    /// Stops answering, closes every connection and the endpoint, and lets the sockets go.
    pub async fn shutdown(self) {
        self.close().await;
    }

    /// [`Node::shutdown`] for a node others may still hold: their requests end with an error; the
    /// sockets go when the last holder drops it.
    /// Each step is bounded (withdrawals, then the router, then the endpoint, at most
    /// [`Node::CLOSE_STEP`] each): a peer that never acknowledges cannot hold up a Ctrl+C or `daemon stop`.
    pub async fn close(&self) {
        let bounded = |what: &'static str| {
            move |r: Result<(), tokio::time::error::Elapsed>| {
                if r.is_err() {
                    tracing::warn!(what, step = ?Node::CLOSE_STEP, "closing took longer than its step; going on");
                }
            }
        };
        self.retry.abort();
        bounded("withdrawing from topics")(
            tokio::time::timeout(Self::CLOSE_STEP, self.inner.leave_all()).await,
        );
        self.inner.pool.close_all();
        let router = async {
            if let Err(e) = self.router.shutdown().await {
                tracing::debug!(%e, "router shutdown");
            }
        };
        bounded("the router's shutdown")(tokio::time::timeout(Self::CLOSE_STEP, router).await);
        bounded("closing the endpoint")(
            tokio::time::timeout(Self::CLOSE_STEP, self.inner.endpoint.close()).await,
        );
    }

    pub(crate) async fn target(&self, query: &str) -> Result<(PublicId, Vec<String>), P2pError> {
        let now = wopr_store::now_ms();
        let peers = self.inner.peers_doc().await?;
        match peers.resolve(query, now) {
            Ok(p) => Ok((p.public_key, p.addrs.clone())),
            // A full id of a peer we have no record of: let the address lookup find it.
            Err(StoreError::NotFound(_)) if PublicId::looks_like_full_id(query.trim()) => {
                let key = PublicId::parse(query).map_err(|e| P2pError::Invalid(e.to_string()))?;
                Ok((key, self.inner.hints_for(&key).await))
            }
            Err(StoreError::NotFound(msg)) => Err(P2pError::NoSuchPeer(msg)),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.retry.abort();
    }
}

fn check_request(session: &str, text: &str) -> Result<(), P2pError> {
    SessionName::new(session)?;
    if text.len() > MAX_PAYLOAD {
        return Err(P2pError::Invalid(format!("message of {} bytes exceeds the 1 MiB limit", text.len())));
    }
    Ok(())
}

/// Adds the addresses of every known peer to the lookup.
fn seed_lookup(home: &Home, lookup: &MemoryLookup) {
    let mut known: Vec<(PublicId, Vec<String>)> = Vec::new();
    if let Ok(peers) = home.peers().load() {
        known.extend(peers.peers.into_iter().map(|p| (p.public_key, p.addrs)));
    }
    if let Ok(access) = home.access().load() {
        known.extend(access.grants.into_iter().map(|g| (g.peer_key, g.addrs)));
    }
    for (key, addrs) in known.into_iter().filter(|(_, a)| !a.is_empty()) {
        if let Ok(addr) = endpoint_addr(&key, &addrs) {
            lookup.add_endpoint_info(addr);
        }
    }
}

async fn retry_outbox(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(OUTBOX_RETRY).await;
        let Some(inner) = inner.upgrade() else { return };
        let owed = inner.with_outbox(|o| o.pending(None).is_ok_and(|p| !p.is_empty())).await;
        if owed && let Err(e) = inner.flush().await {
            tracing::warn!(%e, "retrying the outbox failed");
        }
    }
}
