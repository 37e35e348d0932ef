//! The outbox in `wopr.db`: messages owed to a peer that could not be delivered yet.
//!
//! A key rotation must reach every known peer, including peers that are offline when it happens. Each
//! (peer, kind, payload) is queued once; the transport retries pending items and deletes them when the
//! peer has them, counting failed attempts with the last error so `daemon status` can show them.
//! `rotations_noted` remembers which of this identity's rotations were queued (or deliberately kept
//! local), so a rotation whose broadcast a crash interrupted is queued when the node starts again.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde::Serialize;
use wopr_identity::PublicId;

use crate::{StoreError, StoreResult};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    peer            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_ms INTEGER,
    last_error      TEXT,
    UNIQUE (peer, kind, payload)
);
CREATE TABLE IF NOT EXISTS rotations_noted (
    new_key  TEXT PRIMARY KEY,
    noted_ms INTEGER NOT NULL
);
";

/// Outbox kind of key rotation records.
pub const ROTATION_KIND: &str = "rotation";

/// One undelivered message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    /// Row id (delivery order).
    pub id: i64,
    /// To whom.
    pub peer: PublicId,
    /// What it is (`rotation`).
    pub kind: String,
    /// The message, as JSON text.
    pub payload: String,
    /// When it was queued.
    pub created_ms: u64,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The outbox table of `wopr.db`.
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

impl Outbox {
    /// Opens `wopr.db` at `path`, creating the table if needed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(Outbox { conn: crate::db::open(path, SCHEMA)?, path: path.into() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Db { path: self.path.clone(), source }
    }

    /// Queues `payload` of `kind` for `peer`; queuing the same item again does nothing. Returns whether
    /// it was new.
    pub fn push(&self, peer: &PublicId, kind: &str, payload: &str, now_ms: u64) -> StoreResult<bool> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO outbox (peer, kind, payload, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![peer.to_hex(), kind, payload, now_ms as i64],
            )
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Queues the rotation record `payload` (to `new_key`) for every one of `peers` and notes the rotation
    /// as announced, in one transaction: a crash leaves both or neither.
    pub fn push_rotation<'a>(
        &self,
        new_key: &PublicId,
        peers: impl IntoIterator<Item = &'a PublicId>,
        payload: &str,
        now_ms: u64,
    ) -> StoreResult<()> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        for peer in peers {
            tx.execute(
                "INSERT OR IGNORE INTO outbox (peer, kind, payload, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![peer.to_hex(), ROTATION_KIND, payload, now_ms as i64],
            )
            .map_err(self.err())?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO rotations_noted (new_key, noted_ms) VALUES (?1, ?2)",
            params![new_key.to_hex(), now_ms as i64],
        )
        .map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    /// Notes the rotation to `new_key` as settled without queuing it (a rotation the owner keeps local).
    pub fn note_rotation(&self, new_key: &PublicId, now_ms: u64) -> StoreResult<()> {
        self.push_rotation(new_key, [], "", now_ms)
    }

    /// Whether the rotation to `new_key` was queued for the peers or noted as local.
    pub fn rotation_noted(&self, new_key: &PublicId) -> StoreResult<bool> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM rotations_noted WHERE new_key = ?1",
                params![new_key.to_hex()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Pending items, for `peer` only if given, in the order they were queued.
    pub fn pending(&self, peer: Option<&PublicId>) -> StoreResult<Vec<OutboxItem>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, peer, kind, payload, created_ms, attempts, last_error FROM outbox
                 WHERE ?1 IS NULL OR peer = ?1 ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![peer.map(PublicId::to_hex)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, peer, kind, payload, created, attempts, last_error) = row.map_err(self.err())?;
            // A row whose key does not parse was not written by us; skip it rather than fail every retry.
            if let Ok(peer) = PublicId::parse(&peer) {
                out.push(OutboxItem {
                    id,
                    peer,
                    kind,
                    payload,
                    created_ms: created as u64,
                    attempts: attempts as u32,
                    last_error,
                });
            }
        }
        Ok(out)
    }

    /// Removes a delivered item.
    pub fn delivered(&self, id: i64) -> StoreResult<()> {
        self.conn.execute("DELETE FROM outbox WHERE id = ?1", params![id]).map_err(self.err())?;
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn failed(&self, id: i64, error: &str, now_ms: u64) -> StoreResult<()> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, now_ms as i64, error],
            )
            .map_err(self.err())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_queued_once_retried_and_removed_when_delivered() {
        let d = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&d.path().join("wopr.db")).unwrap();
        let (b, c) = (
            wopr_identity::Identity::generate().public_id(),
            wopr_identity::Identity::generate().public_id(),
        );
        assert!(outbox.push(&b, "rotation", "{}", 1).unwrap());
        assert!(!outbox.push(&b, "rotation", "{}", 2).unwrap());
        assert!(outbox.push(&c, "rotation", "{}", 3).unwrap());
        let pending = outbox.pending(None).unwrap();
        assert_eq!(pending.iter().map(|i| i.peer).collect::<Vec<_>>(), [b, c]);
        outbox.failed(pending[0].id, "peer offline", 4).unwrap();
        let for_b = outbox.pending(Some(&b)).unwrap();
        assert_eq!((for_b[0].attempts, for_b[0].last_error.as_deref()), (1, Some("peer offline")));
        outbox.delivered(for_b[0].id).unwrap();
        assert_eq!(outbox.pending(None).unwrap().len(), 1);
    }

    #[test]
    fn a_rotation_is_queued_for_every_peer_and_noted_at_once() {
        let d = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&d.path().join("wopr.db")).unwrap();
        let key = || wopr_identity::Identity::generate().public_id();
        let (new, local, b, c) = (key(), key(), key(), key());
        assert!(!outbox.rotation_noted(&new).unwrap());
        outbox.push_rotation(&new, [&b, &c], "{\"r\":1}", 1).unwrap();
        outbox.push_rotation(&new, [&b], "{\"r\":1}", 2).unwrap();
        assert!(outbox.rotation_noted(&new).unwrap());
        let pending = outbox.pending(None).unwrap();
        assert_eq!(
            pending.iter().map(|i| (i.peer, i.kind.as_str())).collect::<Vec<_>>(),
            [(b, ROTATION_KIND), (c, ROTATION_KIND)]
        );
        outbox.note_rotation(&local, 3).unwrap();
        assert!(outbox.rotation_noted(&local).unwrap());
        assert_eq!(outbox.pending(None).unwrap().len(), 2);
    }
}
