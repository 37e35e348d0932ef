//! The door gossip connections come through: at most [`MAX_GOSSIP_CONNECTIONS`] at once.
//!
//! HyParView keeps only a handful of neighbours per topic, but anyone may dial the gossip ALPN, and
//! each connection costs memory. Beyond the cap a new connection is closed at once; the swarm routes
//! around a full node, as it does around an offline one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh_gossip::Gossip;

/// Gossip connections open at once, all topics and peers together.
pub const MAX_GOSSIP_CONNECTIONS: usize = 128;

/// The gossip protocol handler behind a connection cap.
#[derive(Debug, Clone)]
pub(crate) struct GossipGate {
    pub(crate) gossip: Gossip,
    pub(crate) open: Arc<AtomicUsize>,
}

impl ProtocolHandler for GossipGate {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= MAX_GOSSIP_CONNECTIONS {
            self.open.fetch_sub(1, Ordering::AcqRel);
            conn.close(VarInt::from_u32(1), b"too many gossip connections");
            return Ok(());
        }
        let open = self.open.clone();
        let watched = conn.clone();
        tokio::spawn(async move {
            watched.closed().await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
        self.gossip.handle_connection(conn).await.map_err(AcceptError::from_err)
    }

    async fn shutdown(&self) {
        if let Err(e) = self.gossip.shutdown().await {
            tracing::debug!(%e, "gossip shutdown");
        }
    }
}
