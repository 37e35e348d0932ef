//! Opening `wopr.db`: one place for the connection settings every table module shares.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::{StoreError, StoreResult};

/// Pages of write-ahead log after which a commit copies the log back into the database. Small, so the
/// log stays a few dozen KiB instead of growing to SQLite's default 4 MiB between checkpoints: every
/// audited request is a commit of its own. (The P2P audit writer checkpoints on a thread of its own.)
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16;

/// Size the write-ahead log is cut back to once a checkpoint has copied it (a large history message can
/// make one transaction's log big; it does not stay that big).
const WAL_SIZE_LIMIT: u32 = 32 * 1024;

/// Opens (creating if needed) the SQLite database at `path` in WAL mode with a 30 s busy timeout, and
/// creates `schema`'s tables if they do not exist.
pub(crate) fn open(path: &Path, schema: &str) -> StoreResult<Connection> {
    let db = |source| StoreError::Db { path: path.into(), source };
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES).map_err(db)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(db)?;
    conn.execute_batch(schema).map_err(db)?;
    Ok(conn)
}
