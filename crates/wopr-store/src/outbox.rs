//! The outbox in `wopr.db`: messages owed to a peer that could not be delivered yet.
//!
//! A key rotation must reach every known peer, including peers that are offline when it happens. Each
//! (peer, kind, payload) is queued once; the transport retries pending items and deletes them when the
//! peer has them, counting failed attempts with the last error so `daemon status` can show them.

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
";

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
}
