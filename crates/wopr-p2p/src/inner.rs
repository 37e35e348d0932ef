//! The state one node's server and client share.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use iroh::Endpoint;
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::Connection;
use wopr_identity::{Identity, PublicId};
use wopr_store::{AccessFile, AuditEntry, AuditLog, Capability, Decision, Home, Outbox, PeersFile};

use crate::conns::{Pool, Registry};
use crate::endpoint::observed_hints;
use crate::server::limits::{Limits, Standing};
use crate::{NodeConfig, SessionBackend};

/// How often `last_seen` is written for one peer at most.
const TOUCH_INTERVAL_MS: u64 = 60_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every guarded value stays consistent between statements, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What an audit record says about a request, taken from its envelope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audited {
    pub(crate) action: &'static str,
    pub(crate) session: Option<String>,
    pub(crate) signature: Option<Vec<u8>>,
    pub(crate) signed: Option<Vec<u8>>,
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
    pub(crate) audit: Mutex<AuditLog>,
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) registry: Registry,
    pub(crate) pool: Pool,
    touched: Mutex<HashMap<(bool, PublicId), u64>>,
    /// `access.json` and `peers.json` as last parsed.
    access: DocCache<AccessFile>,
    peers: DocCache<PeersFile>,
}

/// What tells two versions of a file apart: inode, change time and size. Every write of a WOPR JSON
/// document replaces the file (temp file + rename), so every change changes the stamp.
type FileStamp = (u64, i64, i64, u64);

/// A JSON document parsed again only when its file changed: one `stat` per request instead of a read
/// and a parse, while a grant, revoke or rename still counts from the next request on.
#[derive(Default)]
struct DocCache<T>(Mutex<Option<(FileStamp, Arc<T>)>>);

impl<T> DocCache<T> {
    fn get<E>(&self, path: &std::path::Path, load: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::metadata(path).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        let mut cache = lock(&self.0);
        if let (Some(now), Some((seen, doc))) = (stamp, cache.as_ref())
            && now == *seen
        {
            return Ok(doc.clone());
        }
        // Stamped before reading: if the file changes in between, the next call reads it again.
        let doc = Arc::new(load()?);
        *cache = stamp.map(|stamp| (stamp, doc.clone()));
        Ok(doc)
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
        outbox: Outbox,
    ) -> Self {
        let limits = Mutex::new(Limits::new(config.limits));
        Inner {
            me: identity.public_id(),
            identity,
            home,
            config,
            endpoint,
            lookup,
            backend,
            limits,
            audit: Mutex::new(audit),
            outbox: Mutex::new(outbox),
            registry: Registry::default(),
            pool: Pool::default(),
            touched: Mutex::new(HashMap::new()),
            access: DocCache::default(),
            peers: DocCache::default(),
        }
    }

    /// Writes an audit record; a failure is logged, never fatal to the request.
    pub(crate) fn record(&self, peer: &PublicId, what: &Audited, decision: Decision, reason: Option<String>) {
        let mut e = AuditEntry::new(wopr_store::now_ms(), peer, what.action, decision);
        e.session = what.session.clone();
        e.reason = reason;
        e.signature = what.signature.clone();
        e.signed = what.signed.clone();
        if let Err(err) = lock(&self.audit).record(&e) {
            tracing::warn!(%err, "could not write the audit log");
        }
    }

    /// The time on the node's clock.
    pub(crate) fn now(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// What `peer` may do in `session` now, per `access.json` (read fresh, so revokes count at once).
    pub(crate) fn capabilities(
        &self,
        peer: &PublicId,
        session: &str,
    ) -> Result<BTreeSet<Capability>, String> {
        Ok(self.access_doc()?.capabilities(peer, session, self.now()))
    }

    /// Whom `key`'s requests count against: the peer whose grant or `peers.json` record answers to it
    /// (by the current key of its chain), or the key itself as a stranger. Unreadable files make
    /// strangers: the tightest budget.
    pub(crate) fn standing(&self, key: &PublicId) -> Standing {
        let now = self.now();
        if let Ok(access) = self.access_doc() {
            let mut grants = access.grants_of(key, now);
            // A grant held under this very key wins over one of a chain this key was rotated out of.
            let current = access.grants.iter().find(|g| g.peer_key == *key);
            if let Some(grant) = current.or_else(|| grants.next()) {
                return Standing::Known(grant.peer_key);
            }
        }
        if let Ok(peers) = self.peers_doc()
            && let Some(peer) = peers.by_key(key, now)
        {
            return Standing::Known(peer.public_key);
        }
        Standing::Stranger(*key)
    }

    /// `access.json`, parsed again only when it changed.
    pub(crate) fn access_doc(&self) -> Result<Arc<AccessFile>, String> {
        let path = self.home.root().join(wopr_store::ACCESS_FILE);
        self.access.get(&path, || self.home.access().load()).map_err(|e| {
            tracing::error!(%e, "cannot read access.json");
            "this node cannot read its grants right now".to_string()
        })
    }

    /// `peers.json`, parsed again only when it changed.
    pub(crate) fn peers_doc(&self) -> Result<Arc<PeersFile>, wopr_store::StoreError> {
        let path = self.home.root().join(wopr_store::PEERS_FILE);
        self.peers.get(&path, || self.home.peers().load())
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

    /// Notes in `access.json` that a granted peer made a request, and from where (throttled).
    pub(crate) fn touch_grant(&self, peer: &PublicId, conn: &Connection) {
        let now = wopr_store::now_ms();
        if self.due(true, peer, now)
            && let Err(e) = self.home.access().touch(peer, now, &observed_hints(conn))
        {
            tracing::warn!(%e, "could not update last-seen in access.json");
        }
    }

    /// Notes in `peers.json` that a peer was reached (throttled).
    pub(crate) fn touch_peer(&self, peer: &PublicId) {
        let now = wopr_store::now_ms();
        if self.due(false, peer, now)
            && let Err(e) = self.home.peers().touch(peer, now)
        {
            tracing::warn!(%e, "could not update last-seen in peers.json");
        }
    }

    /// Addresses known for `peer`: its `peers.json` hints, then where it last connected from.
    pub(crate) fn hints_for(&self, peer: &PublicId) -> Vec<String> {
        let now = wopr_store::now_ms();
        let mut hints = Vec::new();
        if let Ok(peers) = self.home.peers().load()
            && let Some(p) = peers.by_key(peer, now)
        {
            hints.extend(p.addrs.iter().cloned());
        }
        if let Ok(access) = self.home.access().load() {
            for g in access.grants_of(peer, now) {
                hints.extend(g.addrs.iter().filter(|a| !hints.contains(a)).cloned().collect::<Vec<_>>());
            }
        }
        hints
    }
}
