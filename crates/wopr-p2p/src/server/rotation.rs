//! Inbound `Rotation`: a peer moved to a new key.
//!
//! `verify_from` already checked both record signatures (the record authenticates itself, so the
//! connection may be any key: after two rotations the newest key delivers both). A rotation this node
//! already applied is answered as done again and changes nothing (the outbox may deliver twice).
//! Otherwise, in order:
//! 1. the record's time must be within 5 minutes of this node's clock when first seen: one dated far
//!    ahead would keep the old key alive for as long, one from long ago is no longer news (3);
//! 2. the old key must be the current key of a peer in `peers.json` or of a grant in `access.json`, else
//!    the rotation is refused (2) and nothing is written;
//! 3. the peer's records move to the new key; the old key stays accepted until 24 hours after the
//!    record's time, and each earlier key of the chain keeps the grace its own rotation gave it;
//! 4. the peer's rate-limit counters and replay window move to the new key, so rotating never refills a
//!    budget.

use std::sync::Arc;

use iroh::endpoint::{Connection, VarInt};
use wopr_identity::{PublicId, RotationRecord};
use wopr_proto::MAX_SKEW_MS;
use wopr_proto::message::{DoneStatus, Message};
use wopr_store::{Decision, OldKey};

use super::limits::Refusal;
use crate::endpoint::{endpoint_addr, observed_hints};
use crate::error::human_ms;
use crate::inner::{Audited, Inner, lock, off_workers};
use crate::wire::SealedStream;

/// How long a rotated-away key stays accepted: 24 hours after the rotation.
pub const ROTATION_GRACE_MS: u64 = 24 * 60 * 60 * 1000;

/// Where the old key of a rotation is somebody's current key.
#[derive(Clone, Copy)]
struct Holders {
    peer: bool,
    grant: bool,
}

impl Inner {
    pub(super) async fn rotation(
        self: &Arc<Self>,
        remote: PublicId,
        conn: &Connection,
        r: &RotationRecord,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        if self.already_rotated(r).await? {
            let note = format!("{} is already {}", r.old_key, r.new_key);
            self.rotated(remote, what, note, stream).await;
            return Ok(());
        }
        let now = self.now();
        if r.timestamp.abs_diff(now) > MAX_SKEW_MS {
            let when = if r.timestamp > now {
                format!("{} ahead of", human_ms(r.timestamp - now))
            } else {
                format!("{} behind", human_ms(now - r.timestamp))
            };
            return Err(Refusal::invalid(format!(
                "rotation record dated {when} this node's clock; a rotation is accepted only within 5 \
                 minutes of its time (check the clock of the machine that rotated)"
            )));
        }
        let holders = self.holders(&r.old_key).await?;
        if !holders.peer && !holders.grant {
            return Err(Refusal::rejected(format!(
                "key {} is not a peer of this node; nothing to rotate",
                r.old_key.short()
            )));
        }
        let until = r.timestamp.saturating_add(ROTATION_GRACE_MS);
        let hints = if remote == r.new_key { observed_hints(conn) } else { Vec::new() };
        let (home, record, moved_hints) = (self.home.clone(), r.clone(), hints.clone());
        off_workers(move || -> Result<(), wopr_store::StoreError> {
            let r = &record;
            if holders.peer {
                home.peers().rotate_key(&r.old_key, &r.new_key, r.new_encrypt_pub, until, &moved_hints)?;
            }
            if holders.grant {
                home.access().rotate_key(&r.old_key, &r.new_key, until)?;
            }
            // A friend has both; its friends.json record follows too.
            home.friends().rotate_key(&r.old_key, &r.new_key, r.new_encrypt_pub, until)?;
            Ok(())
        })
        .await
        .map_err(store_failed)?;
        lock(&self.limits).follow_rotation(&r.old_key, &r.new_key);
        // A new key delivering its own rotation is a known peer from now on, on this connection.
        if remote == r.new_key {
            self.registry.promote(&remote, conn);
        }
        if let Ok(addr) = endpoint_addr(&r.new_key, &hints) {
            self.lookup.add_endpoint_info(addr);
        }
        self.pool.forget(&r.old_key, VarInt::from_u32(0), b"key rotated");
        let note = format!("{} is now {}", r.old_key, r.new_key);
        self.rotated(remote, what, note, stream).await;
        Ok(())
    }

    /// Audits an accepted rotation and answers it.
    async fn rotated(&self, remote: PublicId, what: &Audited, note: String, stream: &mut SealedStream) {
        self.record(&remote, what, Decision::Accepted, Some(note)).await;
        let _ = stream.send_message(Message::InjectDone { status: DoneStatus::Completed }).await;
        stream.finish();
    }

    /// Whether this rotation was applied before (a re-delivery): its new key is current and lists the
    /// old one.
    async fn already_rotated(&self, r: &RotationRecord) -> Result<bool, Refusal> {
        let knows = |old: &[OldKey]| old.iter().any(|o| o.key == r.old_key);
        let peers = self.peers_doc().await.map_err(store_failed)?;
        let access = self.access_doc().await.map_err(Refusal::rejected)?;
        Ok(peers.peers.iter().any(|p| p.public_key == r.new_key && knows(&p.old_keys))
            || access.grants.iter().any(|g| g.peer_key == r.new_key && knows(&g.old_keys)))
    }

    /// Where `old` is a current key, read from the cached documents (so a refusal writes nothing).
    async fn holders(&self, old: &PublicId) -> Result<Holders, Refusal> {
        let peers = self.peers_doc().await.map_err(store_failed)?;
        let access = self.access_doc().await.map_err(Refusal::rejected)?;
        Ok(Holders {
            peer: peers.peers.iter().any(|p| p.public_key == *old),
            grant: access.grants.iter().any(|g| g.peer_key == *old),
        })
    }
}

fn store_failed(e: wopr_store::StoreError) -> Refusal {
    tracing::error!(%e, "cannot record a key rotation");
    Refusal::rejected("this node could not record the rotation; try again later")
}
