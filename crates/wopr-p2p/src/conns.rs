//! Open connections: incoming ones by peer (so a revoke can close them at once), admitted within caps
//! per key and per kind (known peer or stranger), and the pool of outgoing ones with their handshake
//! sessions (so requests reuse a connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use iroh::endpoint::{Connection, VarInt};
use wopr_identity::PublicId;
use wopr_proto::ErrorCode;
use wopr_proto::channel::ChannelError;
use wopr_proto::handshake::Session;

use crate::wire::SealedStream;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps inconsistent; keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The QUIC application close code for "your access was revoked" (the Unauthorized exit code).
pub(crate) fn revoked_code() -> VarInt {
    VarInt::from_u32(u32::from(ErrorCode::Unauthorized.as_u8()))
}

/// The QUIC application close code for "too many connections" (the RateLimited exit code).
pub(crate) fn crowded_code() -> VarInt {
    VarInt::from_u32(u32::from(ErrorCode::RateLimited.as_u8()))
}

/// Incoming connections one known key may hold at once; a newer one replaces its oldest.
pub(crate) const MAX_CONNS_PER_KEY: usize = 4;
/// Incoming connections one stranger key may hold at once; a newer one replaces its oldest.
pub(crate) const MAX_STRANGER_CONNS_PER_KEY: usize = 2;
/// Incoming connections of known peers at once; more are refused.
pub(crate) const MAX_KNOWN_CONNS: usize = 256;
/// Incoming connections of strangers at once; more are refused. Each holds at most the stranger
/// connection window, so this bounds what strangers together can make this node hold.
pub(crate) const MAX_STRANGER_CONNS: usize = 16;

/// One admitted incoming connection.
struct Entry {
    conn: Connection,
    known: bool,
    /// Whether its handshake completed (only those count as connected peers).
    ready: bool,
    /// Admission order, to find a key's oldest connection.
    seq: u64,
}

#[derive(Default)]
struct Incoming {
    by_key: HashMap<PublicId, HashMap<usize, Entry>>,
    known: usize,
    strangers: usize,
    seq: u64,
}

impl Incoming {
    fn count(&mut self, known: bool) -> &mut usize {
        if known { &mut self.known } else { &mut self.strangers }
    }
}

/// Incoming connections by remote key, within the caps above.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    conns: Arc<Mutex<Incoming>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conns = lock(&self.conns);
        f.debug_struct("Registry").field("known", &conns.known).field("strangers", &conns.strangers).finish()
    }
}

/// Unregisters a connection when dropped.
pub(crate) struct Registered {
    conns: Arc<Mutex<Incoming>>,
    peer: PublicId,
    id: usize,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut conns = lock(&self.conns);
        let Some(of_peer) = conns.by_key.get_mut(&self.peer) else { return };
        let Some(entry) = of_peer.remove(&self.id) else { return };
        if of_peer.is_empty() {
            conns.by_key.remove(&self.peer);
        }
        *conns.count(entry.known) -= 1;
    }
}

impl Registered {
    /// Marks the handshake as done: the peer now counts as connected.
    pub(crate) fn ready(&self) {
        let mut conns = lock(&self.conns);
        if let Some(entry) = conns.by_key.get_mut(&self.peer).and_then(|c| c.get_mut(&self.id)) {
            entry.ready = true;
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crowded {
    /// How many connections of that kind are open.
    pub(crate) open: usize,
}

impl Registry {
    /// Admits `conn` from `peer` (known or a stranger) until the returned guard is dropped. If the key
    /// already holds as many connections as it may, its oldest is closed: the newest is the one in use.
    /// If its kind holds as many as it may, the newcomer is refused.
    pub(crate) fn admit(
        &self,
        peer: PublicId,
        known: bool,
        conn: &Connection,
    ) -> Result<Registered, Crowded> {
        let (per_key, total) = if known {
            (MAX_CONNS_PER_KEY, MAX_KNOWN_CONNS)
        } else {
            (MAX_STRANGER_CONNS_PER_KEY, MAX_STRANGER_CONNS)
        };
        let mut guard = lock(&self.conns);
        let conns = &mut *guard;
        let of_peer = conns.by_key.entry(peer).or_default();
        if of_peer.len() >= per_key
            && let Some(oldest) = of_peer.iter().min_by_key(|(_, e)| e.seq).map(|(id, _)| *id)
            && let Some(entry) = of_peer.remove(&oldest)
        {
            entry.conn.close(VarInt::from_u32(0), b"replaced by a newer connection");
            *conns.count(entry.known) -= 1;
        }
        let open = *conns.count(known);
        if open >= total {
            if conns.by_key.get(&peer).is_some_and(HashMap::is_empty) {
                conns.by_key.remove(&peer);
            }
            return Err(Crowded { open });
        }
        conns.seq += 1;
        let id = conn.stable_id();
        let entry = Entry { conn: conn.clone(), known, ready: false, seq: conns.seq };
        conns.by_key.entry(peer).or_default().insert(id, entry);
        *conns.count(known) += 1;
        Ok(Registered { conns: self.conns.clone(), peer, id })
    }

    /// Counts `conn` from `peer` as a known peer's from now on (its key was granted, or rotated into a
    /// grant, while it was open) and gives it a known peer's budget. Returns whether it is known.
    pub(crate) fn promote(&self, peer: &PublicId, conn: &Connection) -> bool {
        let mut conns = lock(&self.conns);
        let Some(entry) = conns.by_key.get_mut(peer).and_then(|c| c.get_mut(&conn.stable_id())) else {
            return false;
        };
        if !entry.known {
            entry.known = true;
            conns.strangers -= 1;
            conns.known += 1;
            crate::endpoint::widen(conn);
        }
        true
    }

    /// Closes every incoming connection from `peer` with `code`; returns how many.
    pub(crate) fn close(&self, peer: &PublicId, code: VarInt, reason: &[u8]) -> usize {
        let mut conns = lock(&self.conns);
        let closed = conns.by_key.remove(peer).unwrap_or_default();
        for entry in closed.values() {
            entry.conn.close(code, reason);
            *conns.count(entry.known) -= 1;
        }
        closed.len()
    }

    /// The open incoming connections from `peer` whose handshake completed.
    pub(crate) fn of(&self, peer: &PublicId) -> Vec<Connection> {
        let conns = lock(&self.conns);
        let ready = conns.by_key.get(peer).into_iter().flat_map(|c| c.values()).filter(|e| e.ready);
        ready.map(|e| e.conn.clone()).collect()
    }

    /// Keys with at least one open incoming connection whose handshake completed.
    pub(crate) fn peers(&self) -> Vec<PublicId> {
        let conns = lock(&self.conns);
        conns.by_key.iter().filter(|(_, c)| c.values().any(|e| e.ready)).map(|(k, _)| *k).collect()
    }
}

/// An outgoing connection and its handshake session.
pub(crate) struct PeerConn {
    pub(crate) conn: Connection,
    session: tokio::sync::Mutex<Session>,
}

impl PeerConn {
    /// A connection this node dialed: it chose the peer, so the replies get a known peer's window; the
    /// peer has no reason to open streams towards us, so it may open no more.
    pub(crate) fn new(conn: Connection, session: Session) -> Self {
        crate::endpoint::widen(&conn);
        conn.set_max_concurrent_bi_streams(VarInt::from_u32(0));
        PeerConn { conn, session: tokio::sync::Mutex::new(session) }
    }

    /// Opens a request stream with its own keys. The session lock is held while the stream is opened, so
    /// stream ids reach `stream_channel` in increasing order, as the responder derives them.
    pub(crate) async fn open(&self) -> Result<SealedStream, OpenError> {
        let mut session = self.session.lock().await;
        let (send, recv) = self.conn.open_bi().await.map_err(OpenError::Connection)?;
        let keys = session.stream_channel(u64::from(send.id())).map_err(OpenError::Keys)?;
        Ok(SealedStream::new(send, recv, keys))
    }

    pub(crate) fn is_open(&self) -> bool {
        self.conn.close_reason().is_none()
    }
}

/// Why a request stream could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    Connection(iroh::endpoint::ConnectionError),
    Keys(ChannelError),
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<PeerConn>>>>;

/// Outgoing connections by peer. Each peer has a slot locked while connecting, so concurrent requests to
/// one peer share one connection and requests to different peers do not wait for each other.
#[derive(Default)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<PublicId, Slot>>,
    live: Mutex<HashMap<PublicId, Connection>>,
}

impl Pool {
    pub(crate) fn slot(&self, peer: &PublicId) -> Slot {
        lock(&self.slots).entry(*peer).or_default().clone()
    }

    pub(crate) fn mark_live(&self, peer: &PublicId, conn: &Connection) {
        lock(&self.live).insert(*peer, conn.clone());
    }

    /// Drops (and closes) the connection to `peer`.
    pub(crate) fn forget(&self, peer: &PublicId, code: VarInt, reason: &[u8]) {
        lock(&self.slots).remove(peer);
        if let Some(conn) = lock(&self.live).remove(peer) {
            conn.close(code, reason);
        }
    }

    /// The open outgoing connection to `peer`, if any.
    pub(crate) fn live(&self, peer: &PublicId) -> Option<Connection> {
        lock(&self.live).get(peer).filter(|c| c.close_reason().is_none()).cloned()
    }

    /// Keys with an open outgoing connection.
    pub(crate) fn peers(&self) -> Vec<PublicId> {
        let mut live = lock(&self.live);
        live.retain(|_, c| c.close_reason().is_none());
        live.keys().copied().collect()
    }

    /// Closes every outgoing connection.
    pub(crate) fn close_all(&self) {
        lock(&self.slots).clear();
        for (_, conn) in lock(&self.live).drain() {
            conn.close(VarInt::from_u32(0), b"shutting down");
        }
    }
}
