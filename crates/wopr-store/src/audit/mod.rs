//! The audit log and the used-invite-nonce set, in `wopr.db`.
//!
//! Every P2P request a node accepts or refuses is one `audit` row: when, which peer key, what it asked
//! (`inject`, `log`, `claim`, `rotation`...), for which session, the decision and its reason, the SHA-256
//! of its payload with a short printable excerpt, and the author's signature. An accepted request also
//! keeps the exact signed bytes, so anyone can re-verify later who asked what; a refused one never does,
//! so refusals cost a few hundred bytes whatever a stranger sends. The log is bounded
//! ([`AuditRetention`]): each write drops the oldest rows past the bound, touching only the rows it
//! drops. `used_invite_nonces` makes invites single-use: the nonce is the primary key, so recording it
//! twice fails.

mod retention;
mod summary;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::{Serialize, Serializer};
use wopr_identity::PublicId;

pub use retention::AuditRetention;
pub use summary::{EXCERPT_MAX, PayloadSummary};

use crate::{StoreError, StoreResult};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms     INTEGER NOT NULL,
    peer        TEXT NOT NULL,
    action      TEXT NOT NULL,
    session     TEXT,
    decision    TEXT NOT NULL,
    reason      TEXT,
    signature   BLOB,
    signed      BLOB,
    digest      BLOB,
    excerpt     TEXT,
    bytes       INTEGER NOT NULL DEFAULT 0,
    total_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS audit_by_peer ON audit(peer, id);
CREATE TABLE IF NOT EXISTS used_invite_nonces (
    nonce      BLOB PRIMARY KEY,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER NOT NULL,
    claimant   TEXT NOT NULL
);
";

/// Columns added after the first release, with their definitions, for logs created before them.
const ADDED_COLUMNS: [(&str, &str); 4] = [
    ("digest", "BLOB"),
    ("excerpt", "TEXT"),
    ("bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("total_bytes", "INTEGER NOT NULL DEFAULT 0"),
];

/// Whether a request was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Done as asked.
    Accepted,
    /// Refused; the reason says why.
    Refused,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Refused => "refused",
        }
    }
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Row id (increasing; 0 before it is stored).
    pub id: i64,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
    /// The peer's key, hex (the transport-authenticated key of the connection).
    pub peer: String,
    /// What was asked: `inject`, `log`, `claim`, `rotation`, `handshake`, `frame`...
    pub action: String,
    /// The session concerned, if any.
    pub session: Option<String>,
    /// Accepted or refused.
    pub decision: Decision,
    /// Why it was refused (or a note), for a person.
    pub reason: Option<String>,
    /// The author's signature over `signed` (for rotations, the old then the new key's signature).
    #[serde(serialize_with = "hex_opt")]
    #[schema(value_type = Option<String>)]
    pub signature: Option<Vec<u8>>,
    /// The exact bytes the signature covers, without the signature domain prefix. Kept for accepted
    /// requests only: [`AuditLog::record`] drops them from a refused one.
    #[serde(serialize_with = "hex_opt")]
    #[schema(value_type = Option<String>)]
    pub signed: Option<Vec<u8>>,
    /// SHA-256 of the payload (the text of an inject or log, the signed bytes of other requests).
    #[serde(serialize_with = "hex_opt")]
    #[schema(value_type = Option<String>)]
    pub digest: Option<Vec<u8>>,
    /// The start of the payload, printable, at most [`EXCERPT_MAX`] bytes.
    pub excerpt: Option<String>,
}

impl AuditEntry {
    /// A record of `decision` on `action` by `peer` at `time_ms`, with no session, reason, payload or
    /// signature.
    pub fn new(time_ms: u64, peer: &PublicId, action: &str, decision: Decision) -> Self {
        AuditEntry {
            id: 0,
            time_ms,
            peer: peer.to_hex(),
            action: action.to_string(),
            session: None,
            decision,
            reason: None,
            signature: None,
            signed: None,
            digest: None,
            excerpt: None,
        }
    }

    /// Sets the digest and excerpt from a payload's summary.
    pub fn with_payload(mut self, summary: &PayloadSummary) -> Self {
        self.digest = Some(summary.digest.to_vec());
        self.excerpt = Some(summary.excerpt.clone());
        self
    }

    /// The bytes this record takes in the log, as counted against [`AuditRetention::max_bytes`].
    fn size(&self) -> u64 {
        let len = |b: Option<usize>| b.unwrap_or(0) as u64;
        // Row header and the integer columns.
        const FIXED: u64 = 48;
        FIXED
            + (self.peer.len() + self.action.len()) as u64
            + len(self.session.as_ref().map(String::len))
            + len(self.reason.as_ref().map(String::len))
            + len(self.signature.as_ref().map(Vec::len))
            + len(self.signed.as_ref().map(Vec::len))
            + len(self.digest.as_ref().map(Vec::len))
            + len(self.excerpt.as_ref().map(String::len))
    }
}

fn hex_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

/// The audit tables of `wopr.db`.
pub struct AuditLog {
    conn: Connection,
    path: PathBuf,
    retention: AuditRetention,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).field("retention", &self.retention).finish()
    }
}

impl AuditLog {
    /// Opens `wopr.db` at `path` with the default retention, creating the tables if needed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, AuditRetention::default())
    }

    /// Opens `wopr.db` at `path`, keeping at most `retention`'s worth of records.
    pub fn open_with(path: &Path, retention: AuditRetention) -> StoreResult<Self> {
        let conn = crate::db::open(path, SCHEMA)?;
        let log = AuditLog { conn, path: path.into(), retention };
        log.migrate()?;
        Ok(log)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Db { path: self.path.clone(), source }
    }

    /// Adds the columns a log from before digests and retention lacks, and drops the signed bytes such
    /// a log kept of refused requests (whole payloads of strangers).
    fn migrate(&self) -> StoreResult<()> {
        let missing = |conn: &Connection| -> rusqlite::Result<Vec<(&str, &str)>> {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('audit')")?;
            let have = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok(ADDED_COLUMNS.into_iter().filter(|(c, _)| !have.iter().any(|h| h == c)).collect())
        };
        if missing(&self.conn).map_err(self.err())?.is_empty() {
            return Ok(());
        }
        // Another process may be migrating at the same time: decide again under the write lock.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err())?;
        for (column, definition) in missing(&tx).map_err(self.err())? {
            tx.execute_batch(&format!("ALTER TABLE audit ADD COLUMN {column} {definition}"))
                .map_err(self.err())?;
        }
        tx.execute("UPDATE audit SET signed = NULL WHERE decision = 'refused' AND signed IS NOT NULL", [])
            .map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    /// Appends a record (without its signed bytes if it was refused), dropping the oldest records past
    /// the retention bound; returns its id.
    pub fn record(&self, e: &AuditEntry) -> StoreResult<i64> {
        Ok(self.record_all(std::slice::from_ref(e))?.into_iter().next().unwrap_or_default())
    }

    /// Appends `entries` in one transaction (as [`AuditLog::record`] each); returns their ids.
    pub fn record_all(&self, entries: &[AuditEntry]) -> StoreResult<Vec<i64>> {
        let Some(newest) = entries.iter().map(|e| e.time_ms).max() else { return Ok(Vec::new()) };
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        let mut ids = Vec::with_capacity(entries.len());
        for e in entries {
            ids.push(self.insert(&tx, e).map_err(self.err())?);
        }
        self.prune(&tx, newest).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(ids)
    }

    fn insert(&self, conn: &Connection, e: &AuditEntry) -> rusqlite::Result<i64> {
        let refused = e.decision == Decision::Refused;
        let e = &AuditEntry { signed: if refused { None } else { e.signed.clone() }, ..e.clone() };
        let size = e.size() as i64;
        conn.prepare_cached(
            "INSERT INTO audit (time_ms, peer, action, session, decision, reason, signature, signed, digest,
                                excerpt, bytes, total_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                     ?11 + COALESCE((SELECT total_bytes FROM audit ORDER BY id DESC LIMIT 1), 0))",
        )?
        .execute(params![
            e.time_ms as i64,
            e.peer,
            e.action,
            e.session,
            e.decision.as_str(),
            e.reason,
            e.signature,
            e.signed,
            e.digest,
            e.excerpt,
            size
        ])?;
        Ok(conn.last_insert_rowid())
    }

    /// Drops the oldest records past the bound. Each statement walks the table from its oldest row and
    /// stops at the first row it keeps, so the cost is the rows dropped, not the rows kept.
    fn prune(&self, conn: &Connection, newest_ms: u64) -> rusqlite::Result<()> {
        let r = &self.retention;
        let newest: Option<(i64, i64)> = conn
            .prepare_cached("SELECT id, total_bytes FROM audit ORDER BY id DESC LIMIT 1")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((last_id, total)) = newest else { return Ok(()) };
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        // Most commits drop nothing: the oldest row alone says whether any bound is passed (ids only
        // grow, so the id range bounds the row count), which costs one index lookup, not three deletes.
        let (first_id, first_base, first_ms): (i64, i64, i64) = conn
            .prepare_cached("SELECT id, total_bytes - bytes, time_ms FROM audit ORDER BY id LIMIT 1")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        let within = last_id - first_id < clamp(r.max_rows)
            && total - first_base <= clamp(r.max_bytes)
            && first_ms >= clamp(newest_ms.saturating_sub(r.max_age_ms));
        if within {
            return Ok(());
        }
        // Ids only grow and only the oldest rows are deleted, so the newest `max_rows` ids are the rows.
        conn.prepare_cached("DELETE FROM audit WHERE id <= ?1")?
            .execute(params![last_id.saturating_sub(clamp(r.max_rows))])?;
        // A row is kept if it and every newer row fit in `max_bytes` (the newest is always kept).
        conn.prepare_cached(
            "DELETE FROM audit WHERE id < COALESCE(
                (SELECT id FROM audit WHERE total_bytes - bytes >= ?1 ORDER BY id LIMIT 1), ?2)",
        )?
        .execute(params![total.saturating_sub(clamp(r.max_bytes)), last_id])?;
        conn.prepare_cached(
            "DELETE FROM audit WHERE id < COALESCE(
                (SELECT id FROM audit WHERE time_ms >= ?1 ORDER BY id LIMIT 1), ?2)",
        )?
        .execute(params![clamp(newest_ms.saturating_sub(r.max_age_ms)), last_id])?;
        Ok(())
    }

    /// Stops this connection's commits from copying the write-ahead log back into the database (SQLite's
    /// automatic checkpoint, which fsyncs): a writer on a latency-sensitive path leaves that to
    /// [`AuditLog::checkpoint`] on another connection and thread.
    pub fn defer_checkpoints(&self) -> StoreResult<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(self.err())
    }

    /// Copies what it can of the write-ahead log back into the database without waiting for readers
    /// or writers; once all of it is copied, the next commit starts the log over from its beginning.
    pub fn checkpoint(&self) -> StoreResult<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(self.err())
    }

    /// Bytes in the write-ahead log file now (0 without one).
    pub fn wal_len(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// The last `limit` records (all if `None`), of `peer` only if given, oldest first.
    pub fn list(&self, peer: Option<&PublicId>, limit: Option<usize>) -> StoreResult<Vec<AuditEntry>> {
        let limit = limit.map(|l| l as i64).unwrap_or(-1);
        let peer = peer.map(PublicId::to_hex);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, time_ms, peer, action, session, decision, reason, signature, signed, digest,
                        excerpt FROM (
                    SELECT * FROM audit WHERE ?1 IS NULL OR peer = ?1 ORDER BY id DESC LIMIT ?2
                 ) ORDER BY id ASC",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![peer, limit], |r| {
                let decision: String = r.get(5)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    time_ms: r.get::<_, i64>(1)? as u64,
                    peer: r.get(2)?,
                    action: r.get(3)?,
                    session: r.get(4)?,
                    decision: if decision == "accepted" { Decision::Accepted } else { Decision::Refused },
                    reason: r.get(6)?,
                    signature: r.get(7)?,
                    signed: r.get(8)?,
                    digest: r.get(9)?,
                    excerpt: r.get(10)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Records an invite nonce as used by `claimant`. Returns `false` if it was already used. The row is
    /// kept at least until `expires_ms` (see [`AuditLog::prune_nonces`]).
    pub fn mark_nonce_used(
        &self,
        nonce: &[u8],
        expires_ms: u64,
        claimant: &PublicId,
        now_ms: u64,
    ) -> StoreResult<bool> {
        let inserted = self.conn.execute(
            "INSERT INTO used_invite_nonces (nonce, expires_ms, used_ms, claimant) VALUES (?1, ?2, ?3, ?4)",
            params![nonce, expires_ms as i64, now_ms as i64, claimant.to_hex()],
        );
        match inserted {
            Ok(_) => Ok(true),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                Ok(false)
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    /// Whether an invite nonce was used.
    pub fn nonce_used(&self, nonce: &[u8]) -> StoreResult<bool> {
        self.conn
            .query_row("SELECT COUNT(*) FROM used_invite_nonces WHERE nonce = ?1", params![nonce], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Forgets nonces of invites that expired before `now_ms` (they are refused as expired anyway).
    pub fn prune_nonces(&self, now_ms: u64) -> StoreResult<usize> {
        self.conn
            .execute("DELETE FROM used_invite_nonces WHERE expires_ms < ?1", params![now_ms as i64])
            .map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicId {
        wopr_identity::Identity::generate().public_id()
    }

    #[test]
    fn records_keep_signature_and_signed_bytes_and_filter_by_peer() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&d.path().join("wopr.db")).unwrap();
        let (bob, eve) = (key(), key());
        let mut e = AuditEntry::new(10, &bob, "inject", Decision::Accepted);
        e.session = Some("dev".into());
        e.signature = Some(vec![1; 64]);
        e.signed = Some(b"bytes".to_vec());
        log.record(&e).unwrap();
        let mut refused = AuditEntry::new(11, &eve, "inject", Decision::Refused);
        refused.reason = Some("no grant".into());
        log.record(&refused).unwrap();
        let all = log.list(None, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], AuditEntry { id: all[0].id, ..e.clone() });
        assert_eq!(log.list(Some(&eve), None).unwrap()[0].reason.as_deref(), Some("no grant"));
        assert_eq!(log.list(None, Some(1)).unwrap()[0].peer, eve.to_hex());
        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(json["signed"], hex::encode(b"bytes"));
        assert_eq!(json["decision"], "accepted");
    }

    #[test]
    fn an_invite_nonce_can_be_used_once_and_survives_reopening() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wopr.db");
        let bob = key();
        {
            let log = AuditLog::open(&path).unwrap();
            assert!(log.mark_nonce_used(&[1; 16], 100, &bob, 1).unwrap());
            assert!(!log.mark_nonce_used(&[1; 16], 100, &bob, 2).unwrap());
        }
        let log = AuditLog::open(&path).unwrap();
        assert!(log.nonce_used(&[1; 16]).unwrap());
        assert!(!log.mark_nonce_used(&[1; 16], 100, &key(), 3).unwrap());
        assert!(log.mark_nonce_used(&[2; 16], 50, &bob, 3).unwrap());
        assert_eq!(log.prune_nonces(60).unwrap(), 1);
        assert!(log.nonce_used(&[1; 16]).unwrap() && !log.nonce_used(&[2; 16]).unwrap());
    }

    #[test]
    fn the_log_keeps_at_most_the_configured_rows_dropping_the_oldest() {
        let d = tempfile::tempdir().unwrap();
        let home = crate::Home::at(d.path().join("home"));
        let config = crate::Config::of(&home);
        config.set(&crate::ConfigKey::parse("audit.maxRows").unwrap(), serde_json::json!(10)).unwrap();
        let log = home.audit().unwrap();
        let bob = key();
        for i in 0..25 {
            let mut e = AuditEntry::new(1_000 + i, &bob, "inject", Decision::Refused);
            e.reason = Some(format!("request {i}"));
            log.record(&e).unwrap();
        }
        let kept = log.list(None, None).unwrap();
        assert_eq!(kept.len(), 10, "the log grew past audit.maxRows");
        let reasons: Vec<_> = kept.iter().map(|e| e.reason.clone().unwrap()).collect();
        assert_eq!(reasons.first().map(String::as_str), Some("request 15"), "the oldest go first");
        assert_eq!(reasons.last().map(String::as_str), Some("request 24"));
    }

    #[test]
    fn a_refused_record_keeps_the_digest_and_excerpt_but_never_the_signed_bytes() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&d.path().join("wopr.db")).unwrap();
        let payload = vec![b'x'; 1 << 20];
        let summary = PayloadSummary::of(&payload);
        let mut e = AuditEntry::new(1, &key(), "inject", Decision::Refused).with_payload(&summary);
        e.signature = Some(vec![2; 64]);
        e.signed = Some(payload);
        log.record(&e).unwrap();
        let stored = &log.list(None, None).unwrap()[0];
        assert_eq!(stored.signed, None);
        assert_eq!(stored.signature, e.signature);
        assert_eq!(stored.digest.as_deref(), Some(&summary.digest[..]));
        assert_eq!(stored.excerpt.as_deref(), Some(summary.excerpt.as_str()));
        let json = serde_json::to_value(stored).unwrap();
        assert_eq!(json["digest"], hex::encode(summary.digest));
    }

    #[test]
    fn the_byte_and_age_bounds_drop_the_oldest_records_and_keep_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wopr.db");
        let bob = key();
        let entry = |time_ms: u64, signed: usize| {
            let mut e = AuditEntry::new(time_ms, &bob, "log", Decision::Accepted);
            e.signed = Some(vec![7; signed]);
            e
        };
        let by_bytes = AuditRetention { max_bytes: 10_000, ..AuditRetention::default() };
        let log = AuditLog::open_with(&path, by_bytes).unwrap();
        for i in 0..20 {
            log.record(&entry(i, 1_000)).unwrap();
        }
        let kept = log.list(None, None).unwrap();
        let bytes: u64 = kept.iter().map(AuditEntry::size).sum();
        assert!(bytes <= 10_000, "{bytes} bytes kept");
        assert!(kept.len() >= 8, "only {} records kept", kept.len());
        assert_eq!(kept.last().unwrap().time_ms, 19);
        // A record larger than the whole bound replaces everything, but is itself kept.
        log.record(&entry(20, 50_000)).unwrap();
        assert_eq!(log.list(None, None).unwrap().iter().map(|e| e.time_ms).collect::<Vec<_>>(), [20]);
        drop(log);

        let by_age = AuditRetention { max_age_ms: 100, ..AuditRetention::default() };
        let log = AuditLog::open_with(&path, by_age).unwrap();
        for t in [1_000, 1_050, 1_120, 1_200] {
            log.record(&entry(t, 10)).unwrap();
        }
        let times: Vec<u64> = log.list(None, None).unwrap().iter().map(|e| e.time_ms).collect();
        assert_eq!(times, [1_120, 1_200]);
    }

    #[test]
    fn a_log_from_before_digests_is_migrated_and_loses_the_payloads_of_refusals() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wopr.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
                    peer TEXT NOT NULL, action TEXT NOT NULL, session TEXT, decision TEXT NOT NULL,
                    reason TEXT, signature BLOB, signed BLOB);
                 INSERT INTO audit (time_ms, peer, action, decision, signed) VALUES
                    (1, 'aa', 'inject', 'refused', x'0102'), (2, 'aa', 'inject', 'accepted', x'0304');",
            )
            .unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        let rows = log.list(None, None).unwrap();
        assert_eq!(rows.iter().map(|e| e.signed.clone()).collect::<Vec<_>>(), [None, Some(vec![3, 4])]);
        log.record(&AuditEntry::new(3, &key(), "log", Decision::Accepted)).unwrap();
        assert_eq!(log.list(None, None).unwrap().len(), 3);
        drop(log);
        AuditLog::open(&path).unwrap();
    }
}
