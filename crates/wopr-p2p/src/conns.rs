//! Open connections: incoming ones by peer (so a revoke can close them at once), and the pool of
//! outgoing ones with their handshake sessions (so requests reuse a connection).

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

type Incoming = HashMap<PublicId, HashMap<usize, Connection>>;

/// Incoming connections by remote key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    conns: Arc<Mutex<Incoming>>,
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
        if let Some(of_peer) = conns.get_mut(&self.peer) {
            of_peer.remove(&self.id);
            if of_peer.is_empty() {
                conns.remove(&self.peer);
            }
        }
    }
}

impl Registry {
    /// Remembers `conn` from `peer` until the returned guard is dropped.
    pub(crate) fn add(&self, peer: PublicId, conn: &Connection) -> Registered {
        let id = conn.stable_id();
        lock(&self.conns).entry(peer).or_default().insert(id, conn.clone());
        Registered { conns: self.conns.clone(), peer, id }
    }

    /// Closes every incoming connection from `peer` with `code`; returns how many.
    pub(crate) fn close(&self, peer: &PublicId, code: VarInt, reason: &[u8]) -> usize {
        let conns = lock(&self.conns).remove(peer).unwrap_or_default();
        for conn in conns.values() {
            conn.close(code, reason);
        }
        conns.len()
    }

    /// The open incoming connections from `peer`.
    pub(crate) fn of(&self, peer: &PublicId) -> Vec<Connection> {
        lock(&self.conns).get(peer).map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// Keys with at least one open incoming connection.
    pub(crate) fn peers(&self) -> Vec<PublicId> {
        lock(&self.conns).keys().copied().collect()
    }
}

/// An outgoing connection and its handshake session.
pub(crate) struct PeerConn {
    pub(crate) conn: Connection,
    session: tokio::sync::Mutex<Session>,
}

impl PeerConn {
    pub(crate) fn new(conn: Connection, session: Session) -> Self {
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
