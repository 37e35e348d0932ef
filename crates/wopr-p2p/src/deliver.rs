//! Telling peers about a key rotation, now or as soon as they are reachable.
//!
//! A rotation is queued in the outbox (`wopr.db`) for every known peer: those in `peers.json` (whom I
//! reach) and those in `access.json` (who reach me). Delivery is tried at once; what fails stays queued
//! and is retried when a connection to that peer opens in either direction, and periodically by the node.
//! A peer that refuses the record outright (it does not know the old key) is not asked again.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::task::JoinSet;
use wopr_identity::{PublicId, RotationRecord};
use wopr_proto::ErrorCode;
use wopr_proto::message::Message;

use crate::P2pError;
use crate::client::REPLY_TIMEOUT;
use crate::conns::PeerConn;
use crate::inner::{Inner, lock};

use wopr_store::ROTATION_KIND as ROTATION;

/// What happened to a rotation broadcast (or an outbox flush).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Peers that have the rotation now.
    pub delivered: Vec<PublicId>,
    /// Peers that refused it (they do not know the old key); not retried.
    pub refused: Vec<(PublicId, String)>,
    /// Peers still owed the rotation, with the last error; retried later.
    pub pending: Vec<(PublicId, String)>,
}

/// What one delivery run to one peer achieved.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    delivered: usize,
    refused: Option<String>,
}

impl Inner {
    /// Queues `record` for every known peer; returns them.
    pub(crate) fn queue_rotation(&self, record: &RotationRecord) -> Result<BTreeSet<PublicId>, P2pError> {
        let now = wopr_store::now_ms();
        let mut targets: BTreeSet<PublicId> = self.home.access().load()?.keys();
        targets.extend(self.home.peers().load()?.peers.iter().map(|p| p.public_key));
        for me in [record.old_key, record.new_key, self.me] {
            targets.remove(&me);
        }
        let payload =
            serde_json::to_string(record).map_err(|e| P2pError::Invalid(format!("rotation record: {e}")))?;
        lock(&self.outbox).push_rotation(&record.new_key, &targets, &payload, now)?;
        self.may_owe.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(targets)
    }

    /// Queues every rotation in `identity.json` that was never queued nor kept local: a process killed
    /// between saving a rotated identity and queuing its broadcast would otherwise leave every peer
    /// knowing only the old key.
    pub(crate) fn queue_interrupted_rotations(&self) -> Result<(), P2pError> {
        let Some(loaded) = self.home.load_identity()? else { return Ok(()) };
        for record in &loaded.rotations {
            if !lock(&self.outbox).rotation_noted(&record.new_key)? {
                tracing::info!(new_key = %record.new_key.short(), "queuing a key rotation whose broadcast was interrupted");
                self.queue_rotation(record)?;
            }
        }
        Ok(())
    }

    /// Connects to `peer` and delivers what it is owed (see [`Inner::deliver_on`]).
    pub(crate) async fn deliver_to(self: &Arc<Self>, peer: &PublicId) -> Result<Delivery, P2pError> {
        let hints = self.hints_for(peer).await;
        let pc = match self.connection(peer, &hints).await {
            Ok(pc) => pc,
            Err(e) => {
                self.note_failure(peer, &e).await;
                return Err(e);
            }
        };
        self.deliver_on(peer, &pc).await
    }

    async fn note_failure(&self, peer: &PublicId, e: &P2pError) {
        let (peer, error) = (*peer, e.to_string());
        self.with_outbox(move |outbox| {
            for item in outbox.pending(Some(&peer)).unwrap_or_default() {
                let _ = outbox.failed(item.id, &error, wopr_store::now_ms());
            }
        })
        .await;
    }

    /// Delivers `peer`'s owed items on an open connection, in the order they were queued. Stops at the
    /// first transport failure (the rest stay queued).
    pub(crate) async fn deliver_on(&self, peer: &PublicId, pc: &PeerConn) -> Result<Delivery, P2pError> {
        let owner = *peer;
        let items = self.with_outbox(move |o| o.pending(Some(&owner))).await?;
        let mut delivery = Delivery::default();
        for item in items.into_iter().filter(|i| i.kind == ROTATION) {
            let id = item.id;
            let Ok(record) = serde_json::from_str::<RotationRecord>(&item.payload) else {
                tracing::warn!(id, "dropping an unreadable rotation from the outbox");
                self.with_outbox(move |o| o.delivered(id)).await?;
                continue;
            };
            let sent = match pc.open().await {
                Ok(mut stream) => {
                    let r = self
                        .exchange(peer, &mut stream, Message::Rotation(record), REPLY_TIMEOUT, &mut |_| {})
                        .await;
                    stream.finish();
                    r
                }
                Err(e) => Err(P2pError::ConnectionLost { peer: peer.short(), reason: format!("{e:?}") }),
            };
            match sent {
                Ok(_) => delivery.delivered += 1,
                Err(e @ P2pError::Refused { code, .. }) if code != ErrorCode::RateLimited => {
                    tracing::info!(peer = %peer.short(), %e, "peer refused our key rotation; not retrying");
                    delivery.refused = Some(e.to_string());
                }
                Err(e) => {
                    let error = e.to_string();
                    self.with_outbox(move |o| o.failed(id, &error, wopr_store::now_ms())).await?;
                    return Err(e);
                }
            }
            self.with_outbox(move |o| o.delivered(id)).await?;
        }
        Ok(delivery)
    }

    /// Tries every peer with owed items, concurrently, and reports the outcome per peer.
    pub(crate) async fn flush(self: &Arc<Self>) -> Result<RotationReport, P2pError> {
        let peers: BTreeSet<PublicId> =
            self.with_outbox(|o| o.pending(None)).await?.into_iter().map(|i| i.peer).collect();
        self.deliver_all(peers).await
    }

    pub(crate) async fn deliver_all(
        self: &Arc<Self>,
        peers: BTreeSet<PublicId>,
    ) -> Result<RotationReport, P2pError> {
        let mut tasks = JoinSet::new();
        for peer in peers {
            let inner = self.clone();
            tasks.spawn(async move { (peer, inner.deliver_to(&peer).await) });
        }
        let mut report = RotationReport::default();
        while let Some(joined) = tasks.join_next().await {
            let Ok((peer, outcome)) = joined else { continue };
            let still_owed = !self.with_outbox(move |o| o.pending(Some(&peer))).await?.is_empty();
            match outcome {
                Err(e) => report.pending.push((peer, e.to_string())),
                Ok(_) if still_owed => report.pending.push((peer, "not delivered yet".into())),
                Ok(Delivery { refused: Some(why), .. }) => report.refused.push((peer, why)),
                Ok(_) => report.delivered.push(peer),
            }
        }
        report.delivered.sort();
        report.pending.sort();
        report.refused.sort();
        Ok(report)
    }
}
