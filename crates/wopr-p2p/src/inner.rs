//! The state one node's server and client share.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use iroh::Endpoint;
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::Connection;
use wopr_identity::{Identity, PublicId};
use wopr_store::{
    AccessFile, AuditEntry, AuditLog, Capability, Decision, Home, Outbox, PayloadSummary, PeersFile,
};

use crate::conns::{Pool, Registry};
use crate::discovery::Discovery;
use crate::endpoint::observed_hints;
use crate::recorder::Recorder;
use crate::server::limits::{Limits, Standing, truncate};
use crate::{NodeConfig, SessionBackend};

/// How often `last_seen` is written for one peer at most.
const TOUCH_INTERVAL_MS: u64 = 60_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every guarded value stays consistent between statements, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Longest refusal reason kept in an audit record, in bytes.
const MAX_AUDIT_REASON: usize = 1024;

/// What an audit record says about a request, taken from its envelope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audited {
    pub(crate) action: &'static str,
    pub(crate) session: Option<String>,
    pub(crate) signature: Option<Vec<u8>>,
    /// The signed bytes; recorded only if the request is accepted.
    pub(crate) signed: Option<Vec<u8>>,
    /// Digest and excerpt of the payload, recorded either way.
    pub(crate) payload: Option<PayloadSummary>,
}

pub(crate) struct Inner {
    pub(crate) identity: Identity,
    pub(crate) me: PublicId,
    pub(crate) home: Home,
    pub(crate) config: NodeConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) lookup: MemoryLookup,
    pub(crate) backend: Arc<dyn SessionBackend>,
    pub(crate) limits: Mutex<Limits>,
    /// Used invite nonces (claims); audit records go through `recorder`.
    pub(crate) audit: Mutex<AuditLog>,
    recorder: Recorder,
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    /// Whether the outbox may hold something owed: set at start and when a rotation is queued, so a new
    /// connection looks in `wopr.db` only if it may be owed something.
    pub(crate) may_owe: AtomicBool,
    pub(crate) registry: Registry,
    pub(crate) pool: Pool,
    touched: Mutex<HashMap<(bool, PublicId), u64>>,
    /// `access.json` and `peers.json` as last parsed.
    access: DocCache<AccessFile>,
    peers: DocCache<PeersFile>,
    /// Topics, the peers seen there, and the spam layers.
    pub(crate) discovery: Discovery,
    /// Peers whose incoming connection just passed the handshake, for watchers (the daemon's bus).
    pub(crate) connected: tokio::sync::broadcast::Sender<PublicId>,
}

/// What tells two versions of a file apart: inode, change time and size. Every write of a WOPR JSON
/// document replaces the file (temp file + rename), so every change changes the stamp.
type FileStamp = (u64, i64, i64, u64);

/// A JSON document parsed again only when its file changed: one `stat` per request instead of a read
/// and a parse, while a grant, revoke or rename still counts from the next request on. The read and
/// parse, when needed, run on the blocking pool.
#[derive(Default)]
struct DocCache<T>(Mutex<Option<(FileStamp, Arc<T>)>>);

impl<T: Send + Sync + 'static> DocCache<T> {
    async fn get<E: Send + 'static>(
        &self,
        path: &std::path::Path,
        load: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<Arc<T>, E> {
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::metadata(path).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        if let (Some(now), Some((seen, doc))) = (stamp, lock(&self.0).as_ref())
            && now == *seen
        {
            return Ok(doc.clone());
        }
        // Stamped before reading: if the file changes in between, the next call reads it again.
        let doc = Arc::new(off_workers(load).await?);
        *lock(&self.0) = stamp.map(|stamp| (stamp, doc.clone()));
        Ok(doc)
    }
}

/// Runs blocking store work (SQLite, JSON files, fsync) on tokio's blocking pool, off the async workers.
pub(crate) async fn off_workers<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels blocking work; the request dies with it.
        Err(_) => std::future::pending().await,
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.me).finish_non_exhaustive()
    }
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        home: Home,
        config: NodeConfig,
        endpoint: Endpoint,
        lookup: MemoryLookup,
        backend: Arc<dyn SessionBackend>,
        audit: AuditLog,
        recorder: Recorder,
        outbox: Outbox,
        discovery: Discovery,
    ) -> Self {
        let limits = Mutex::new(Limits::new(config.limits));
        Inner {
            recorder,
            me: identity.public_id(),
            identity,
            home,
            config,
            endpoint,
            lookup,
            backend,
            limits,
            audit: Mutex::new(audit),
            outbox: Arc::new(Mutex::new(outbox)),
            may_owe: AtomicBool::new(false),
            registry: Registry::default(),
            pool: Pool::default(),
            touched: Mutex::new(HashMap::new()),
            access: DocCache::default(),
            peers: DocCache::default(),
            discovery,
            connected: tokio::sync::broadcast::channel(64).0,
        }
    }

    /// How to reach this node: direct socket addresses, then the home relay URL (bound sockets before
    /// the endpoint knows its addresses).
    pub(crate) fn addr_hints(&self) -> Vec<String> {
        let hints = crate::endpoint::hints(&self.endpoint);
        if !hints.is_empty() {
            return hints;
        }
        self.endpoint
            .bound_sockets()
            .into_iter()
            .filter(|a| !a.ip().is_unspecified())
            .map(|a| a.to_string())
            .collect()
    }

    /// Audit records from now on, as they are queued.
    pub(crate) fn audit_events(&self) -> tokio::sync::broadcast::Receiver<wopr_store::AuditEntry> {
        self.recorder.watch()
    }

    /// Writes an audit record, off the async workers; the future completes once it is committed (await it
    /// before answering the request). A failure is logged, never fatal to the request. A refused request
    /// keeps only its payload's digest and excerpt.
    pub(crate) fn record(
        &self,
        peer: &PublicId,
        what: &Audited,
        decision: Decision,
        reason: Option<String>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let mut e = AuditEntry::new(wopr_store::now_ms(), peer, what.action, decision);
        if let Some(summary) = &what.payload {
            e = e.with_payload(summary);
        }
        e.session = what.session.clone();
        e.reason = reason.map(|r| truncate(&r, MAX_AUDIT_REASON));
        e.signature = what.signature.clone();
        if decision == Decision::Accepted {
            e.signed = what.signed.clone();
        }
        self.recorder.record(e)
    }

    /// Queues an audit record without waiting for its commit. For accepted injects and logs: the record
    /// is committed, in order with the others, while the work runs, and the answer does not wait on the
    /// disk (refusals, claims and rotations wait). A kill in the moment between can lose this one record;
    /// the session's history still holds the message and its source.
    pub(crate) fn record_soon(
        &self,
        peer: &PublicId,
        what: &Audited,
        decision: Decision,
        reason: Option<String>,
    ) {
        drop(self.record(peer, what, decision, reason));
    }

    /// The time on the node's clock.
    pub(crate) fn now(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Runs `f` on the outbox, off the async workers.
    pub(crate) async fn with_outbox<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox) -> R + Send + 'static,
    ) -> R {
        let outbox = self.outbox.clone();
        off_workers(move || f(&lock(&outbox))).await
    }

    /// What `peer` may do in `session` now, per `access.json` (checked on every request, so revokes count
    /// at once).
    pub(crate) async fn capabilities(
        &self,
        peer: &PublicId,
        session: &str,
    ) -> Result<BTreeSet<Capability>, String> {
        Ok(self.access_doc().await?.capabilities(peer, session, self.now()))
    }

    /// Whom `key`'s requests count against: the peer whose grant or `peers.json` record answers to it
    /// (by the current key of its chain), or the key itself as a stranger. Unreadable files make
    /// strangers: the tightest budget.
    pub(crate) async fn standing(&self, key: &PublicId) -> Standing {
        let now = self.now();
        if let Ok(access) = self.access_doc().await {
            let mut grants = access.grants_of(key, now);
            // A grant held under this very key wins over one of a chain this key was rotated out of.
            let current = access.grants.iter().find(|g| g.peer_key == *key);
            if let Some(grant) = current.or_else(|| grants.next()) {
                return Standing::Known(grant.peer_key);
            }
        }
        if let Ok(peers) = self.peers_doc().await
            && let Some(peer) = peers.by_key(key, now)
        {
            return Standing::Known(peer.public_key);
        }
        Standing::Stranger(*key)
    }

    /// `access.json`, parsed again only when it changed.
    pub(crate) async fn access_doc(&self) -> Result<Arc<AccessFile>, String> {
        let path = self.home.root().join(wopr_store::ACCESS_FILE);
        let home = self.home.clone();
        self.access.get(&path, move || home.access().load()).await.map_err(|e| {
            tracing::error!(%e, "cannot read access.json");
            "this node cannot read its grants right now".to_string()
        })
    }

    /// `peers.json`, parsed again only when it changed.
    pub(crate) async fn peers_doc(&self) -> Result<Arc<PeersFile>, wopr_store::StoreError> {
        let path = self.home.root().join(wopr_store::PEERS_FILE);
        let home = self.home.clone();
        self.peers.get(&path, move || home.peers().load()).await
    }

    fn due(&self, inbound: bool, peer: &PublicId, now: u64) -> bool {
        let mut touched = lock(&self.touched);
        let last = touched.entry((inbound, *peer)).or_insert(0);
        if now.saturating_sub(*last) < TOUCH_INTERVAL_MS {
            return false;
        }
        *last = now;
        true
    }

    /// Notes in `access.json` that a granted peer made a request, and from where (throttled; written in
    /// the background, off the async workers).
    pub(crate) fn touch_grant(&self, peer: &PublicId, conn: &Connection) {
        let now = wopr_store::now_ms();
        if self.due(true, peer, now) {
            let (home, peer, hints) = (self.home.clone(), *peer, observed_hints(conn));
            tokio::task::spawn_blocking(move || {
                if let Err(e) = home.access().touch(&peer, now, &hints) {
                    tracing::warn!(%e, "could not update last-seen in access.json");
                }
            });
        }
    }

    /// Notes in `peers.json` that a peer was reached (throttled; written in the background).
    pub(crate) fn touch_peer(&self, peer: &PublicId) {
        let now = wopr_store::now_ms();
        if self.due(false, peer, now) {
            let (home, peer) = (self.home.clone(), *peer);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = home.peers().touch(&peer, now) {
                    tracing::warn!(%e, "could not update last-seen in peers.json");
                }
            });
        }
    }

    /// Addresses known for `peer`: its `peers.json` hints, then where it last connected from.
    pub(crate) async fn hints_for(&self, peer: &PublicId) -> Vec<String> {
        let now = wopr_store::now_ms();
        let mut hints = Vec::new();
        if let Ok(peers) = self.peers_doc().await
            && let Some(p) = peers.by_key(peer, now)
        {
            hints.extend(p.addrs.iter().cloned());
        }
        if let Ok(access) = self.access_doc().await {
            for g in access.grants_of(peer, now) {
                hints.extend(g.addrs.iter().filter(|a| !hints.contains(a)).cloned().collect::<Vec<_>>());
            }
        }
        hints
    }
}
