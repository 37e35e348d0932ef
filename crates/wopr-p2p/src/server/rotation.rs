//! Inbound `Rotation`: a peer moved to a new key.
//!
//! `verify_from` already checked both record signatures (the record authenticates itself, so the
//! connection may be any key: after two rotations the newest key delivers both). The peer's records move to the new key in `peers.json` and `access.json`, and the old key stays
//! accepted for 24 hours after the rotation. A rotation of a key this node never heard of is refused.

use std::sync::Arc;

use iroh::endpoint::Connection;
use wopr_identity::{PublicId, RotationRecord};
use wopr_proto::message::{DoneStatus, Message};
use wopr_store::Decision;

use super::limits::Refusal;
use crate::endpoint::{endpoint_addr, observed_hints};
use crate::inner::{Audited, Inner, off_workers};
use crate::wire::SealedStream;
use iroh::endpoint::VarInt;

/// How long a rotated-away key stays accepted: 24 hours after the rotation.
pub const ROTATION_GRACE_MS: u64 = 24 * 60 * 60 * 1000;

impl Inner {
    pub(super) async fn rotation(
        self: &Arc<Self>,
        remote: PublicId,
        conn: &Connection,
        r: &RotationRecord,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        let until = r.timestamp.saturating_add(ROTATION_GRACE_MS);
        let hints = if remote == r.new_key { observed_hints(conn) } else { Vec::new() };
        let store_failed = |e: wopr_store::StoreError| {
            tracing::error!(%e, "cannot record a key rotation");
            Refusal::rejected("this node could not record the rotation; try again later")
        };
        let (inner, record, moved_hints) = (self.clone(), r.clone(), hints.clone());
        let known = off_workers(move || -> Result<bool, wopr_store::StoreError> {
            let (r, home) = (&record, &inner.home);
            let moved_peer =
                home.peers().rotate_key(&r.old_key, &r.new_key, r.new_encrypt_pub, until, &moved_hints)?;
            let moved_grants = home.access().rotate_key(&r.old_key, &r.new_key, until)?;
            Ok(moved_peer || moved_grants > 0 || inner.already_rotated(r))
        })
        .await
        .map_err(store_failed)?;
        if !known {
            return Err(Refusal::rejected(format!(
                "key {} is not a peer of this node; nothing to rotate",
                r.old_key.short()
            )));
        }
        if let Ok(addr) = endpoint_addr(&r.new_key, &hints) {
            self.lookup.add_endpoint_info(addr);
        }
        self.pool.forget(&r.old_key, VarInt::from_u32(0), b"key rotated");
        self.record(&remote, what, Decision::Accepted, Some(format!("{} is now {}", r.old_key, r.new_key)))
            .await;
        let _ = stream.send_message(Message::InjectDone { status: DoneStatus::Completed }).await;
        stream.finish();
        Ok(())
    }

    /// Whether this rotation was applied before (a re-delivery).
    fn already_rotated(&self, r: &RotationRecord) -> bool {
        let knows = |old: &[wopr_store::OldKey]| old.iter().any(|o| o.key == r.old_key);
        let in_peers = self
            .home
            .peers()
            .load()
            .is_ok_and(|d| d.peers.iter().any(|p| p.public_key == r.new_key && knows(&p.old_keys)));
        in_peers
            || self
                .home
                .access()
                .load()
                .is_ok_and(|d| d.grants.iter().any(|g| g.peer_key == r.new_key && knows(&g.old_keys)))
    }
}
