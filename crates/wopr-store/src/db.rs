//! Opening `wopr.db`: one place for the connection settings every table module shares.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::{StoreError, StoreResult};

/// Opens (creating if needed) the SQLite database at `path` in WAL mode with a 30 s busy timeout, and
/// creates `schema`'s tables if they do not exist.
pub(crate) fn open(path: &Path, schema: &str) -> StoreResult<Connection> {
    let db = |source| StoreError::Db { path: path.into(), source };
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    conn.execute_batch(schema).map_err(db)?;
    Ok(conn)
}
