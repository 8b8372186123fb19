//! The database's shape: the tables, and the migrations that bring a database created by an earlier
//! release up to it.

use std::path::Path;

use rusqlite::Connection;

use crate::Result;
use crate::store::{activity, fasp, fasp_shares, moderation, published, schemes, shares, topics};

/// Creates what is missing of the tables of the store and of its parts, and migrates older databases.
pub(super) fn create(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    migrate(conn)?;
    migrate_log(conn)?;
    conn.execute_batch(published::SCHEMA)?;
    conn.execute_batch(activity::SCHEMA)?;
    conn.execute_batch(schemes::SCHEMA)?;
    conn.execute_batch(fasp::SCHEMA)?;
    conn.execute_batch(fasp_shares::SCHEMA)?;
    conn.execute_batch(shares::SCHEMA)?;
    conn.execute_batch(topics::SCHEMA)?;
    topics::migrate(conn)?;
    moderation::migrate(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscribers (
    authority  TEXT PRIMARY KEY,
    actor_id   TEXT NOT NULL,
    inbox      TEXT NOT NULL,
    style      TEXT NOT NULL,
    follow     TEXT NOT NULL,
    cursor     INTEGER NOT NULL,
    skipped    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    origin        TEXT NOT NULL,
    target        TEXT,
    kind          TEXT NOT NULL,
    received_ms   INTEGER NOT NULL,
    mastodon_body BLOB NOT NULL,
    litepub_body  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_received ON log(received_ms);
CREATE TABLE IF NOT EXISTS seen (
    id  TEXT PRIMARY KEY,
    at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_at ON seen(at);
CREATE TABLE IF NOT EXISTS blocks (
    domain     TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS index_instances (
    authority   TEXT PRIMARY KEY,
    nodeinfo_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS index_authors (
    id         TEXT PRIMARY KEY,
    fetched_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS index_authors_fetched ON index_authors(fetched_at);
";

/// Brings a database created by an earlier version up to [`SCHEMA`]: adds `subscribers.follow_id`,
/// filled from the stored Follow.
fn migrate(conn: &Connection) -> Result<()> {
    let has_follow_id: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('subscribers') WHERE name = 'follow_id'",
        [],
        |r| r.get(0),
    )?;
    if !has_follow_id {
        conn.execute_batch(
            "ALTER TABLE subscribers ADD COLUMN follow_id TEXT NOT NULL DEFAULT '';
             UPDATE subscribers SET follow_id = COALESCE(json_extract(follow, '$.id'), '')
              WHERE json_valid(follow);",
        )?;
    }
    Ok(())
}

/// Columns added to the log after its first release, with their declarations; [`create`] adds
/// the missing ones to an older database.
const LOG_ADDED_COLUMNS: &[(&str, &str)] =
    &[("signer", "TEXT"), ("original", "BLOB"), ("carry", "TEXT")];

/// Adds the [`LOG_ADDED_COLUMNS`] a database created by an older release lacks.
fn migrate_log(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('log')")?;
    let present = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (name, declaration) in LOG_ADDED_COLUMNS {
        if !present.iter().any(|p| p == name) {
            conn.execute_batch(&format!("ALTER TABLE log ADD COLUMN {name} {declaration}"))?;
        }
    }
    Ok(())
}

pub(super) fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}
