//! The database's shape: the tables, and the migrations that bring a database created by an earlier
//! release up to it — on SQLite and on PostgreSQL alike (one DDL text, SQLite's, which
//! [`crate::store::ddl::postgres`] turns into PostgreSQL's types).

use std::path::Path;

use rusqlite::Connection;

use crate::store::db::{Conn, params};
use crate::store::ddl::{add_column, create_tables};
use crate::store::{
    activity, cluster, fasp, fasp_shares, moderation, now_ms, published, relay_key, schemes,
    shares, topics,
};
use crate::{Error, Result};

/// The schema version this release writes. A database at a higher one was written by a newer
/// release, which may have changed what a table means: it is refused, not used.
///
/// 2: `nodes` and `leases`, what the nodes sharing a database know of each other.
pub const SCHEMA_VERSION: i64 = 2;

/// Creates what is missing of the tables of the store and of its parts, and migrates older databases.
pub(super) fn create(conn: &Conn<'_>) -> Result<()> {
    let version = check_version(conn)?;
    create_tables(conn, SCHEMA)?;
    migrate(conn)?;
    for (name, declaration) in LOG_ADDED_COLUMNS {
        add_column(conn, "log", name, declaration)?;
    }
    for part in [
        published::SCHEMA,
        activity::SCHEMA,
        schemes::SCHEMA,
        fasp::SCHEMA,
        fasp_shares::SCHEMA,
        shares::SCHEMA,
        topics::SCHEMA,
        relay_key::SCHEMA,
        cluster::SCHEMA,
    ] {
        create_tables(conn, part)?;
    }
    topics::migrate(conn)?;
    moderation::migrate(conn)?;
    if version < SCHEMA_VERSION {
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            params![SCHEMA_VERSION, now_ms()],
        )?;
    }
    Ok(())
}

/// The database's schema version (0: new, or made before versions were recorded); an error when a
/// newer release wrote it.
pub(super) fn check_version(conn: &Conn<'_>) -> Result<i64> {
    create_tables(
        conn,
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER NOT NULL,
            applied_at INTEGER NOT NULL
        );",
    )?;
    let version = conn
        .query_row("SELECT MAX(version) FROM schema_version", params![], |r| {
            r.get::<Option<i64>>(0)
        })?
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(Error::Database(format!(
            "the database's schema is version {version}, newer than this release's \
             ({SCHEMA_VERSION}): run the release that wrote it, or a newer one"
        )));
    }
    Ok(version)
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
/// filled from the stored Follow (SQLite only: every PostgreSQL database was made with it).
fn migrate(conn: &Conn<'_>) -> Result<()> {
    if add_column(conn, "subscribers", "follow_id", "TEXT NOT NULL DEFAULT ''")?
        && !conn.is_postgres()
    {
        conn.execute_batch(
            "UPDATE subscribers SET follow_id = COALESCE(json_extract(follow, '$.id'), '')
              WHERE json_valid(follow);",
        )?;
    }
    Ok(())
}

/// Columns added to the log after its first release, with their declarations; [`create`] adds
/// the missing ones to an older database.
const LOG_ADDED_COLUMNS: &[(&str, &str)] =
    &[("signer", "TEXT"), ("original", "BLOB"), ("carry", "TEXT")];

/// How many prepared statements each SQLite connection keeps (the store has about 150).
const STATEMENTS_CACHED: usize = 256;

/// A connection to the SQLite database at `path`, set up as the store needs it.
pub(super) fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // Every statement of the store goes through the statement cache (src/store/db.rs): room for
    // all of them, so a busy path never prepares a statement twice.
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    // `temp_store = MEMORY` keeps the statement journal in memory: every writer job runs in a savepoint
    // of the batch's transaction (so a failing job undoes only itself), and SQLite copies each page a
    // job changes into that journal, which past 64 KiB a transaction went to a temporary file, a
    // write(2) per page (3.6% of the relay's CPU taking inbound posts). It is emptied at each commit.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}
