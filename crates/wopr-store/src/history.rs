//! Conversation history in SQLite (`wopr.db`, WAL).
//!
//! A turn is written in two steps: the user's message first, as `pending`, then (in one transaction) the
//! answer together with the user message's final status. A process killed in between leaves a `pending`
//! message that later reads show as interrupted; nothing is ever half-written.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{SessionName, StoreError, StoreResult, now_ms};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session    TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    status     TEXT NOT NULL,
    source     TEXT NOT NULL,
    error      TEXT,
    meta       TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session, id);
";

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user, a peer, cron, or a plugin.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Stored and, for an inject, answered.
    Ok,
    /// Waiting for an answer (or interrupted, if nobody is waiting any more).
    Pending,
    /// The provider call failed; the message is kept.
    Failed,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* }) => {
        impl $t {
            /// Stored text form.
            pub fn as_str(self) -> &'static str { match self { $(Self::$v => $s),* } }
            fn parse(s: &str) -> Option<Self> { match s { $($s => Some(Self::$v),)* _ => None } }
        }
    };
}
text_enum!(Role { User = "user", Assistant = "assistant", Tool = "tool" });
text_enum!(MessageStatus { Ok = "ok", Pending = "pending", Failed = "failed" });

/// One stored message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryMessage {
    /// Row id (increasing).
    pub id: i64,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// Where it stands.
    pub status: MessageStatus,
    /// `cli`, `p2p:<key>`, `cron:<job>`, ...
    pub source: String,
    /// Why it failed, for failed messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Provider, model, usage, tool calls (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// When, ms since the Unix epoch.
    pub created: u64,
}

/// The history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// Opens `wopr.db`, creating the schema if needed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = crate::db::open(path, SCHEMA)?;
        Ok(History { conn, path: path.into() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Db { path: self.path.clone(), source }
    }

    /// Appends a message; returns its id.
    pub fn append(
        &self,
        session: &SessionName,
        role: Role,
        content: &str,
        status: MessageStatus,
        source: &str,
        meta: Option<&serde_json::Value>,
    ) -> StoreResult<i64> {
        self.conn
            .execute(
                "INSERT INTO messages (session, role, content, status, source, meta, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    session.as_str(),
                    role.as_str(),
                    content,
                    status.as_str(),
                    source,
                    meta.map(|m| m.to_string()),
                    now_ms() as i64
                ],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a turn's outcome atomically: marks the user message `ok` and appends the answer (and any
    /// tool messages) in one transaction.
    pub fn complete_turn(
        &mut self,
        session: &SessionName,
        user_message_id: i64,
        replies: &[(Role, String, Option<serde_json::Value>)],
    ) -> StoreResult<()> {
        let path = self.path.clone();
        let err = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("UPDATE messages SET status = 'ok' WHERE id = ?1", params![user_message_id])
            .map_err(err)?;
        for (role, content, meta) in replies {
            tx.execute(
                "INSERT INTO messages (session, role, content, status, source, meta, created_ms)
                 VALUES (?1, ?2, ?3, 'ok', 'ai', ?4, ?5)",
                params![
                    session.as_str(),
                    role.as_str(),
                    content,
                    meta.as_ref().map(|m| m.to_string()),
                    now_ms() as i64
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Marks a message failed with the reason.
    pub fn mark_failed(&self, id: i64, error: &str) -> StoreResult<()> {
        self.conn
            .execute("UPDATE messages SET status = 'failed', error = ?2 WHERE id = ?1", params![id, error])
            .map_err(self.err())?;
        Ok(())
    }

    /// The last `limit` messages of a session (all if `None`), oldest first.
    pub fn messages(&self, session: &SessionName, limit: Option<usize>) -> StoreResult<Vec<HistoryMessage>> {
        let limit = limit.map(|l| l as i64).unwrap_or(-1);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, role, content, status, source, error, meta, created_ms FROM (
                    SELECT * FROM messages WHERE session = ?1 ORDER BY id DESC LIMIT ?2
                 ) ORDER BY id ASC",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![session.as_str(), limit], |r| {
                let role: String = r.get(1)?;
                let status: String = r.get(3)?;
                let meta: Option<String> = r.get(6)?;
                Ok(HistoryMessage {
                    id: r.get(0)?,
                    role: Role::parse(&role).unwrap_or(Role::User),
                    content: r.get(2)?,
                    status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Failed),
                    source: r.get(4)?,
                    error: r.get(5)?,
                    meta: meta.and_then(|m| serde_json::from_str(&m).ok()),
                    created: r.get::<_, i64>(7)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Number of messages in a session.
    pub fn count(&self, session: &SessionName) -> StoreResult<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM messages WHERE session = ?1", params![session.as_str()], |r| {
                r.get(0)
            })
            .map_err(self.err())?;
        Ok(n as u64)
    }

    /// Time of the last message in a session.
    pub fn last_activity(&self, session: &SessionName) -> StoreResult<Option<u64>> {
        self.conn
            .query_row(
                "SELECT MAX(created_ms) FROM messages WHERE session = ?1",
                params![session.as_str()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|o| o.flatten().map(|v| v as u64))
            .map_err(self.err())
    }

    /// Deletes a session's history.
    pub fn delete_session(&self, session: &SessionName) -> StoreResult<u64> {
        let n = self
            .conn
            .execute("DELETE FROM messages WHERE session = ?1", params![session.as_str()])
            .map_err(self.err())?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_lifecycle_and_limits() {
        let d = tempfile::tempdir().unwrap();
        let mut h = History::open(&d.path().join("wopr.db")).unwrap();
        let s = SessionName::new("s").unwrap();
        h.append(&s, Role::User, "context line", MessageStatus::Ok, "cli", None).unwrap();
        let u = h.append(&s, Role::User, "question", MessageStatus::Pending, "cli", None).unwrap();
        h.complete_turn(
            &s,
            u,
            &[(Role::Assistant, "answer".into(), Some(serde_json::json!({"provider": "local"})))],
        )
        .unwrap();
        let f = h.append(&s, Role::User, "again", MessageStatus::Pending, "cli", None).unwrap();
        h.mark_failed(f, "unreachable").unwrap();
        let all = h.messages(&s, None).unwrap();
        let shown: Vec<_> = all.iter().map(|m| (m.content.as_str(), m.status)).collect();
        assert_eq!(
            shown,
            [
                ("context line", MessageStatus::Ok),
                ("question", MessageStatus::Ok),
                ("answer", MessageStatus::Ok),
                ("again", MessageStatus::Failed)
            ]
        );
        assert_eq!(all[3].error.as_deref(), Some("unreachable"));
        let last2 = h.messages(&s, Some(2)).unwrap();
        assert_eq!(last2.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["answer", "again"]);
        assert_eq!(h.count(&s).unwrap(), 4);
        assert_eq!(h.delete_session(&s).unwrap(), 4);
    }
}
