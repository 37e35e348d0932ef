//! The audit log and the used-invite-nonce set, in `wopr.db`.
//!
//! Every P2P request a node accepts or refuses is one `audit` row: when, which peer key, what it asked
//! (`inject`, `log`, `claim`, `rotation`...), for which session, the decision and its reason, and, when
//! the request was author-signed, the signature and the exact signed bytes, so anyone can re-verify later
//! who asked what. `used_invite_nonces` makes invites single-use: the nonce is the primary key, so
//! recording it twice fails.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, params};
use serde::{Serialize, Serializer};
use wopr_identity::PublicId;

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
    signed      BLOB
);
CREATE INDEX IF NOT EXISTS audit_by_peer ON audit(peer, id);
CREATE TABLE IF NOT EXISTS used_invite_nonces (
    nonce      BLOB PRIMARY KEY,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER NOT NULL,
    claimant   TEXT NOT NULL
);
";

/// Whether a request was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    pub signature: Option<Vec<u8>>,
    /// The exact bytes the signature covers, without the signature domain prefix.
    #[serde(serialize_with = "hex_opt")]
    pub signed: Option<Vec<u8>>,
}

impl AuditEntry {
    /// A record of `decision` on `action` by `peer` at `time_ms`, with no session, reason or signature.
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
        }
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
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish()
    }
}

impl AuditLog {
    /// Opens `wopr.db` at `path`, creating the tables if needed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(AuditLog { conn: crate::db::open(path, SCHEMA)?, path: path.into() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Db { path: self.path.clone(), source }
    }

    /// Appends a record; returns its id.
    pub fn record(&self, e: &AuditEntry) -> StoreResult<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO audit (time_ms, peer, action, session, decision, reason, signature, signed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    e.time_ms as i64,
                    e.peer,
                    e.action,
                    e.session,
                    e.decision.as_str(),
                    e.reason,
                    e.signature,
                    e.signed
                ])
            })
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The last `limit` records (all if `None`), of `peer` only if given, oldest first.
    pub fn list(&self, peer: Option<&PublicId>, limit: Option<usize>) -> StoreResult<Vec<AuditEntry>> {
        let limit = limit.map(|l| l as i64).unwrap_or(-1);
        let peer = peer.map(PublicId::to_hex);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, time_ms, peer, action, session, decision, reason, signature, signed FROM (
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
}
