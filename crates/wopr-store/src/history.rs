//! Conversation history in SQLite (`wopr.db`, WAL).
//!
//! A turn is written in two steps: the user's message first, as `pending`, then (in one transaction) the
//! answer together with the user message's final status. A process killed in between leaves a `pending`
//! message that later reads show as interrupted; nothing is ever half-written.
//!
//! Every row records its [`Source`]. A turn reads only its newest rows ([`History::newest_first`], the
//! `(session, id)` index) and the distinct sources of the whole session ([`History::sources`], a skip
//! over the `(session, source)` index): both cost the same with 100 rows or 100,000.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::{SessionName, Source, StoreError, StoreResult, now_ms};

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
CREATE INDEX IF NOT EXISTS messages_by_source ON messages(session, source);
CREATE TABLE IF NOT EXISTS history_migrations (
    name       TEXT PRIMARY KEY,
    applied_ms INTEGER NOT NULL
);
";

const COLUMNS: &str = "id, role, content, status, source, error, meta, created_ms";

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
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
    /// Who wrote it: `cli`, `p2p:<key>`, `cron:<job>`, ... For answers and tool results, the least
    /// trusted source their turn saw.
    pub source: Source,
    /// Why it failed, for failed messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Provider, model, usage, tool calls (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// When, ms since the Unix epoch.
    pub created: u64,
}

/// Where a source first appears in a session's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSeen {
    /// The source.
    pub source: Source,
    /// Its first message (row id).
    pub first_id: i64,
    /// When that message was stored, ms since the Unix epoch.
    pub first_ms: u64,
}

/// The history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// Opens `wopr.db`, creating the schema if needed (and bringing older rows up to date once).
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = crate::db::open(path, SCHEMA)?;
        let mut history = History { conn, path: path.into() };
        history.migrate_answer_sources()?;
        Ok(history)
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
        source: &Source,
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
                    source.to_string(),
                    meta.map(|m| m.to_string()),
                    now_ms() as i64
                ],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a turn's outcome atomically: marks the user message `ok` and appends the answer (and any
    /// tool messages) in one transaction, each marked with `source`: the least trusted source the turn
    /// saw, so an answer to a peer's words is never recorded as the owner's.
    pub fn complete_turn(
        &mut self,
        session: &SessionName,
        user_message_id: i64,
        replies: &[(Role, String, Option<serde_json::Value>)],
        source: &Source,
    ) -> StoreResult<()> {
        let path = self.path.clone();
        let err = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("UPDATE messages SET status = 'ok' WHERE id = ?1", params![user_message_id])
            .map_err(err)?;
        let source = source.to_string();
        for (role, content, meta) in replies {
            tx.execute(
                "INSERT INTO messages (session, role, content, status, source, meta, created_ms)
                 VALUES (?1, ?2, ?3, 'ok', ?4, ?5, ?6)",
                params![
                    session.as_str(),
                    role.as_str(),
                    content,
                    source,
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
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM (
                    SELECT * FROM messages WHERE session = ?1 ORDER BY id DESC LIMIT ?2
                 ) ORDER BY id ASC"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map(params![session.as_str(), limit], message_of_row).map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// The newest messages of a session, read newest first (at most `max_rows`) until `more` returns
    /// false for one; returned oldest first, without the one refused. Reads only the rows it returns
    /// (plus one), through the `(session, id)` index, however long the session is.
    pub fn newest_first(
        &self,
        session: &SessionName,
        max_rows: usize,
        mut more: impl FnMut(&HistoryMessage) -> bool,
    ) -> StoreResult<Vec<HistoryMessage>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE session = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(self.err())?;
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![session.as_str(), limit]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(self.err())? {
            let message = message_of_row(row).map_err(self.err())?;
            if !more(&message) {
                break;
            }
            out.push(message);
        }
        out.reverse();
        Ok(out)
    }

    /// Every distinct source in a session's history, with its first message, in no particular order.
    /// A skip scan over the `(session, source)` index: one index search per distinct source, not one
    /// row per message.
    pub fn sources(&self, session: &SessionName) -> StoreResult<Vec<SourceSeen>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE seen(source) AS (
                    SELECT MIN(source) FROM messages WHERE session = ?1
                    UNION ALL
                    SELECT (SELECT MIN(source) FROM messages WHERE session = ?1 AND source > seen.source)
                    FROM seen WHERE seen.source IS NOT NULL
                 )
                 SELECT m.source, m.id, m.created_ms FROM seen JOIN messages m ON m.id =
                    (SELECT MIN(id) FROM messages WHERE session = ?1 AND source = seen.source)",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![session.as_str()], |r| {
                Ok(SourceSeen {
                    source: Source::parse(&r.get::<_, String>(0)?),
                    first_id: r.get(1)?,
                    first_ms: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Runs `read` inside one read transaction, so that everything it reads comes from the same state
    /// of the database (a turn's history window and its sources agree, whatever is written meanwhile).
    pub fn consistent<T>(&self, read: impl FnOnce(&History) -> StoreResult<T>) -> StoreResult<T> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        let value = read(self)?;
        tx.commit().map_err(self.err())?;
        Ok(value)
    }

    /// Copies `from`'s history into `to` (whose own rows, if any were left behind, are dropped first),
    /// in order, keeping status, source, meta and time; only the messages of `only` if given. Returns
    /// how many were copied.
    pub fn copy_session(
        &mut self,
        from: &SessionName,
        to: &SessionName,
        only: Option<&Source>,
    ) -> StoreResult<u64> {
        let path = self.path.clone();
        let err = |source| StoreError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM messages WHERE session = ?1", params![to.as_str()]).map_err(err)?;
        let copied = tx
            .execute(
                "INSERT INTO messages (session, role, content, status, source, error, meta, created_ms)
                 SELECT ?2, role, content, status, source, error, meta, created_ms FROM messages
                 WHERE session = ?1 AND (?3 IS NULL OR source = ?3) ORDER BY id",
                params![from.as_str(), to.as_str(), only.map(Source::to_string)],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(copied as u64)
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

    /// Message count and time of the last message of every session with messages, in one query (a
    /// listing of many sessions).
    pub fn activity(&self) -> StoreResult<std::collections::HashMap<String, (u64, Option<u64>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT session, COUNT(*), MAX(created_ms) FROM messages GROUP BY session")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get::<_, i64>(1)? as u64, r.get::<_, Option<i64>>(2)?.map(|v| v as u64)),
                ))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Deletes a session's history.
    pub fn delete_session(&self, session: &SessionName) -> StoreResult<u64> {
        let n = self
            .conn
            .execute("DELETE FROM messages WHERE session = ?1", params![session.as_str()])
            .map_err(self.err())?;
        Ok(n as u64)
    }

    /// Earlier versions stored every answer and tool result as `ai`, whatever their turn saw. Once per
    /// database, each such row takes the first non-owner source before it in its session (the peer whose
    /// words the turn may have seen), or the owner's when there was none. Runs in one write transaction,
    /// so two processes opening the database at once migrate it once.
    fn migrate_answer_sources(&mut self) -> StoreResult<()> {
        const NAME: &str = "answer-sources";
        let path = self.path.clone();
        let err = |source| StoreError::Db { path: path.clone(), source };
        let applied = |conn: &Connection| {
            conn.query_row("SELECT 1 FROM history_migrations WHERE name = ?1", [NAME], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
        };
        if applied(&self.conn).map_err(err)? {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        if applied(&tx).map_err(err)? {
            return Ok(());
        }
        let firsts: Vec<(String, i64, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT session, MIN(id), source FROM messages
                     WHERE source NOT IN ('cli', 'ai') GROUP BY session",
                )
                .map_err(err)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        for (session, first_id, source) in firsts {
            tx.execute(
                "UPDATE messages SET source = ?3 WHERE session = ?1 AND source = 'ai' AND id > ?2",
                params![session, first_id, source],
            )
            .map_err(err)?;
        }
        tx.execute("UPDATE messages SET source = 'cli' WHERE source = 'ai'", []).map_err(err)?;
        tx.execute(
            "INSERT INTO history_migrations (name, applied_ms) VALUES (?1, ?2)",
            params![NAME, now_ms() as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}

fn message_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryMessage> {
    let role: String = r.get(1)?;
    let status: String = r.get(3)?;
    let meta: Option<String> = r.get(6)?;
    Ok(HistoryMessage {
        id: r.get(0)?,
        role: Role::parse(&role).unwrap_or(Role::User),
        content: r.get(2)?,
        status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Failed),
        source: Source::parse(&r.get::<_, String>(4)?),
        error: r.get(5)?,
        meta: meta.and_then(|m| serde_json::from_str(&m).ok()),
        created: r.get::<_, i64>(7)? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, History, SessionName) {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(&d.path().join("wopr.db")).unwrap();
        (d, h, SessionName::new("s").unwrap())
    }

    fn peer() -> Source {
        Source::Peer(wopr_identity::Identity::generate().public_id())
    }

    #[test]
    fn turn_lifecycle_and_limits() {
        let (_d, mut h, s) = open();
        h.append(&s, Role::User, "context line", MessageStatus::Ok, &Source::Owner, None).unwrap();
        let u = h.append(&s, Role::User, "question", MessageStatus::Pending, &Source::Owner, None).unwrap();
        h.complete_turn(
            &s,
            u,
            &[(Role::Assistant, "answer".into(), Some(serde_json::json!({"provider": "local"})))],
            &Source::Owner,
        )
        .unwrap();
        let f = h.append(&s, Role::User, "again", MessageStatus::Pending, &Source::Owner, None).unwrap();
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

    #[test]
    fn answers_carry_the_source_their_turn_was_given() {
        let (_d, mut h, s) = open();
        let p = peer();
        let u = h.append(&s, Role::User, "hi", MessageStatus::Pending, &Source::Owner, None).unwrap();
        h.complete_turn(&s, u, &[(Role::Tool, "out".into(), None), (Role::Assistant, "a".into(), None)], &p)
            .unwrap();
        let sources: Vec<_> = h.messages(&s, None).unwrap().into_iter().map(|m| m.source).collect();
        assert_eq!(sources, [Source::Owner, p.clone(), p]);
    }

    #[test]
    fn sources_lists_each_distinct_source_once_with_its_first_message() {
        let (_d, h, s) = open();
        let other = SessionName::new("other").unwrap();
        let (p, q) = (peer(), peer());
        h.append(&other, Role::User, "elsewhere", MessageStatus::Ok, &q, None).unwrap();
        assert!(h.sources(&s).unwrap().is_empty());
        let mut firsts = Vec::new();
        for (i, source) in
            [&Source::Owner, &p, &Source::Owner, &p, &Source::Cron("job".into())].iter().enumerate()
        {
            let id = h.append(&s, Role::User, &i.to_string(), MessageStatus::Ok, source, None).unwrap();
            if i != 2 && i != 3 {
                firsts.push(((*source).clone(), id));
            }
        }
        let mut seen: Vec<_> = h.sources(&s).unwrap().into_iter().map(|x| (x.source, x.first_id)).collect();
        seen.sort_by_key(|x| x.1);
        assert_eq!(seen, firsts);
        assert_eq!(h.delete_session(&s).unwrap(), 5);
        assert!(h.sources(&s).unwrap().is_empty(), "clearing the history clears its sources");
    }

    #[test]
    fn the_taint_and_window_queries_use_indexes_not_a_scan() {
        let (_d, h, _) = open();
        for sql in [
            "SELECT MIN(source) FROM messages WHERE session = 's' AND source > 'a'",
            "SELECT MIN(id) FROM messages WHERE session = 's' AND source = 'a'",
            "SELECT id FROM messages WHERE session = 's' ORDER BY id DESC LIMIT 10",
        ] {
            let plan: Vec<String> = h
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{sql}: {plan:?}");
            assert!(plan.iter().any(|step| step.contains("INDEX")), "{sql}: {plan:?}");
        }
    }

    #[test]
    fn newest_first_stops_where_asked_and_returns_oldest_first() {
        let (_d, h, s) = open();
        for i in 0..10 {
            h.append(&s, Role::User, &i.to_string(), MessageStatus::Ok, &Source::Owner, None).unwrap();
        }
        let texts = |v: Vec<HistoryMessage>| v.into_iter().map(|m| m.content).collect::<Vec<_>>();
        assert_eq!(texts(h.newest_first(&s, 3, |_| true).unwrap()), ["7", "8", "9"]);
        let mut budget = 4;
        let within = h
            .newest_first(&s, 100, |_| {
                budget -= 1;
                budget >= 0
            })
            .unwrap();
        assert_eq!(texts(within), ["6", "7", "8", "9"]);
    }

    #[test]
    fn copying_a_session_keeps_order_and_can_keep_only_one_source() {
        let (_d, mut h, s) = open();
        let (p, to) = (peer(), SessionName::new("copy").unwrap());
        h.append(&to, Role::User, "left behind", MessageStatus::Ok, &p, None).unwrap();
        h.append(&s, Role::User, "mine", MessageStatus::Ok, &Source::Owner, None).unwrap();
        h.append(&s, Role::User, "theirs", MessageStatus::Ok, &p, None).unwrap();
        let u = h.append(&s, Role::User, "q", MessageStatus::Pending, &Source::Owner, None).unwrap();
        h.complete_turn(&s, u, &[(Role::Assistant, "tainted answer".into(), None)], &p).unwrap();
        let f = h.append(&s, Role::User, "lost", MessageStatus::Pending, &Source::Owner, None).unwrap();
        h.mark_failed(f, "why").unwrap();

        assert_eq!(h.copy_session(&s, &to, Some(&Source::Owner)).unwrap(), 3);
        let copied = h.messages(&to, None).unwrap();
        let texts: Vec<_> = copied.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["mine", "q", "lost"], "no peer text, no tainted answer, nothing left behind");
        assert_eq!(copied[2].error.as_deref(), Some("why"));
        assert!(h.sources(&to).unwrap().iter().all(|x| x.source == Source::Owner));

        assert_eq!(h.copy_session(&s, &to, None).unwrap(), 5);
        assert_eq!(h.sources(&to).unwrap().len(), 2, "a full copy keeps the peer's text and its taint");
        assert_eq!(h.count(&s).unwrap(), 5, "the original is untouched");
    }

    #[test]
    fn legacy_answers_take_the_first_peer_source_before_them_once() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wopr.db");
        let p = peer();
        {
            let h = History::open(&path).unwrap();
            // What earlier versions wrote: answers as `ai`.
            let legacy = |session: &str, source: &str| {
                h.conn
                    .execute(
                        "INSERT INTO messages (session, role, content, status, source, created_ms)
                         VALUES (?1, 'user', 'x', 'ok', ?2, 0)",
                        params![session, source],
                    )
                    .unwrap();
            };
            let peer_text = p.to_string();
            for (session, source) in [
                ("clean", "cli"),
                ("clean", "ai"),
                ("mixed", "cli"),
                ("mixed", "ai"),
                ("mixed", peer_text.as_str()),
                ("mixed", "ai"),
                ("mixed", "cli"),
                ("mixed", "ai"),
            ] {
                legacy(session, source);
            }
            h.conn.execute("DELETE FROM history_migrations", []).unwrap();
        }
        let h = History::open(&path).unwrap();
        let sources = |name: &str| {
            h.messages(&SessionName::new(name).unwrap(), None)
                .unwrap()
                .into_iter()
                .map(|m| m.source)
                .collect::<Vec<_>>()
        };
        assert_eq!(sources("clean"), [Source::Owner, Source::Owner]);
        let o = Source::Owner;
        assert_eq!(sources("mixed"), [o.clone(), o.clone(), p.clone(), p.clone(), o, p]);
    }
}
