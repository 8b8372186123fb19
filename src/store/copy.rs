//! `plaza store copy`: moves a stopped relay's state from its SQLite store into an empty PostgreSQL
//! database, so that a relay that outgrew one machine keeps its subscribers, its log and every cursor
//! into it, what it published, its moderation and FASP state, and its key.
//!
//! Every table is copied, whatever it holds: the list is read from SQLite's own catalogue
//! (`sqlite_master`), not written down here, so a table a later release adds is copied without
//! anyone remembering to; only [`NOT_COPIED`] is left out, each for a stated reason. Columns are
//! matched by name against the PostgreSQL schema (made from the same DDL by `schema::create`), and
//! each value is read as the type its column declares (integer, float, text, bytes, or NULL) and bound
//! with the store's own [`Conn`] calls. Rows go in batches, all of them in one PostgreSQL transaction:
//! a copy that fails leaves the database as empty as it found it. A database whose tables already hold
//! rows is refused.
//!
//! Then each identity column (an integer primary key, which [`crate::store::ddl::postgres`] turns
//! into one) gets its sequence set past what SQLite had handed out (the larger of the highest
//! copied value and SQLite's `sqlite_sequence`, which remembers pruned entries), so the log's seq
//! continues where the subscribers' cursors expect it. Last, the data directory's key is stored as
//! the relay's key ([`crate::store::relay_key`]), since on PostgreSQL the key lives in the
//! database.

use std::path::Path;

use crate::store::db::{Conn, Param, Row, params};
use crate::store::{postgres, relay_key, schema};
use crate::{Error, Result};

/// Tables of the SQLite store that are not copied, and why.
pub const NOT_COPIED: &[(&str, &str)] = &[(
    "schema_version",
    "the PostgreSQL database records its own, when its schema is made",
)];

/// Rows read and written at a time: a few MB even when every row is a large activity.
const BATCH_ROWS: i64 = 64;

/// How far a copy got: after each batch of a table, and once when the table is done.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The table being copied.
    pub table: &'a str,
    /// Its rows copied so far.
    pub rows: u64,
    /// Whether the table is done.
    pub done: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// Each table copied, with its rows, in the order copied.
    pub tables: Vec<(String, u64)>,
    /// The identity sequences set, each with its table, column and last value handed out.
    pub sequences: Vec<(String, String, i64)>,
    /// Whether a relay key was stored in the database.
    pub key_stored: bool,
}

impl Copied {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Copies the SQLite store at `source` (the data directory's database file) into the empty
/// PostgreSQL database at `url`, whose schema is made or brought up to date first; `relay_key_pem`,
/// the data directory's key, becomes the relay's key there. `progress` hears of each batch.
///
/// The source's schema is brought up to date first too, as starting the relay on it would.
pub async fn sqlite_to_postgres(
    source: &Path,
    url: &str,
    relay_key_pem: Option<String>,
    progress: impl FnMut(Progress<'_>) + Send + 'static,
) -> Result<Copied> {
    if !source.is_file() {
        return Err(Error::NotFound(format!(
            "no SQLite store at {}",
            source.display()
        )));
    }
    let backend = postgres::Backend::connect(url, 1).await?;
    let target = backend.writer().await?;
    let source = source.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let sqlite = schema::open_connection(&source)?;
        let from = Conn::Sqlite(&sqlite);
        schema::create(&from)?;
        copy_store(
            &from,
            &Conn::Postgres(&target),
            relay_key_pem.as_deref(),
            progress,
        )
    })
    .await
    .map_err(|e| Error::Unavailable(format!("store copy task: {e}")))?
}

/// One table to copy: its name and its columns with their kinds, as the source declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Its columns, in the source's order.
    pub columns: Vec<(String, Kind)>,
}

/// What a column holds, from its declared type (the mapping [`crate::store::ddl::postgres`] makes of
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INTEGER`: a 64-bit integer.
    Integer,
    /// `REAL`: a float.
    Real,
    /// `TEXT`.
    Text,
    /// `BLOB`: bytes.
    Blob,
}

impl Kind {
    fn of(declared: &str) -> Result<Kind> {
        let declared = declared.to_ascii_uppercase();
        Ok(if declared.starts_with("INTEGER") {
            Kind::Integer
        } else if declared.starts_with("REAL") {
            Kind::Real
        } else if declared.starts_with("TEXT") {
            Kind::Text
        } else if declared.starts_with("BLOB") {
            Kind::Blob
        } else {
            return Err(Error::Database(format!(
                "column type {declared:?}: not one the store copies"
            )));
        })
    }

    /// Column `idx` of `row`, read as this kind.
    fn read(self, row: &Row<'_>, idx: usize) -> Result<Value> {
        Ok(match self {
            Kind::Integer => Value::Integer(row.get(idx)?),
            Kind::Real => Value::Real(row.get(idx)?),
            Kind::Text => Value::Text(row.get(idx)?),
            Kind::Blob => Value::Blob(row.get(idx)?),
        })
    }
}

/// One value on its way, of the column's kind.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Integer(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Param for Value {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        match self {
            Value::Integer(v) => v.sqlite(),
            Value::Real(v) => v.sqlite(),
            Value::Text(v) => v.sqlite(),
            Value::Blob(v) => v.sqlite(),
        }
    }
    fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Value::Integer(v) => v.pg(),
            Value::Real(v) => v.pg(),
            Value::Text(v) => v.pg(),
            Value::Blob(v) => v.pg(),
        }
    }
}

/// `name` quoted as an SQL identifier; the store's names never need escaping, so one that would is
/// refused rather than escaped.
fn quoted(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('"') {
        return Err(Error::Database(format!(
            "unexpected table or column name {name:?}"
        )));
    }
    Ok(format!("\"{name}\""))
}

/// The tables of the SQLite store `conn` to copy, in name order: every table of its catalogue except
/// SQLite's own and [`NOT_COPIED`].
pub fn plan(conn: &Conn<'_>) -> Result<Vec<Table>> {
    let names: Vec<String> = conn.query_rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
          ORDER BY name",
        params![],
        |r| r.get(0),
    )?;
    names
        .into_iter()
        .filter(|name| NOT_COPIED.iter().all(|(skipped, _)| skipped != name))
        .map(|name| {
            let columns = conn
                .query_rows(
                    "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid",
                    params![name],
                    |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
                )?
                .into_iter()
                .map(|(column, declared)| {
                    let kind = Kind::of(&declared)
                        .map_err(|e| Error::Database(format!("{name}.{column}: {e}")))?;
                    Ok((column, kind))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Table { name, columns })
        })
        .collect()
}

/// The columns of `table` in the PostgreSQL database `conn`, by name.
fn target_columns(conn: &Conn<'_>, table: &str) -> Result<Vec<String>> {
    let mut columns: Vec<String> = conn.query_rows(
        "SELECT column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = ?1",
        params![table],
        |r| r.get(0),
    )?;
    columns.sort();
    Ok(columns)
}

/// Checks that `to` has each table of `plan` with the same columns, and that none holds a row.
fn check_target(to: &Conn<'_>, plan: &[Table]) -> Result<()> {
    let mut holding = Vec::new();
    for table in plan {
        let mut expected: Vec<String> = table.columns.iter().map(|(c, _)| c.clone()).collect();
        expected.sort();
        let found = target_columns(to, &table.name)?;
        if found != expected {
            return Err(Error::Database(format!(
                "table {}: the PostgreSQL database has columns {found:?}, the SQLite store \
                 {expected:?}; run the same release on both",
                table.name
            )));
        }
        let sql = format!("SELECT 1 FROM {} LIMIT 1", quoted(&table.name)?);
        if to.query_opt(&sql, params![], |_| Ok(()))?.is_some() {
            holding.push(table.name.as_str());
        }
    }
    if !holding.is_empty() {
        return Err(Error::Refused(format!(
            "the PostgreSQL database is not empty (rows in {}): the store is copied only into an \
             empty database",
            holding.join(", ")
        )));
    }
    Ok(())
}

/// Copies every row of `table` from `from` to `to`, in batches in rowid order; how many.
fn copy_table(
    from: &Conn<'_>,
    to: &Conn<'_>,
    table: &Table,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<u64> {
    let name = quoted(&table.name)?;
    let columns = table
        .columns
        .iter()
        .map(|(c, _)| quoted(c))
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    let select = format!(
        "SELECT rowid, {columns} FROM {name} WHERE rowid > ?1 ORDER BY rowid LIMIT {BATCH_ROWS}"
    );
    let (mut after, mut copied) = (i64::MIN, 0u64);
    loop {
        let mut last = None;
        let rows: Vec<Vec<Value>> = from.query_rows(&select, params![after], |row| {
            last = Some(row.get::<i64>(0)?);
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| kind.read(row, i + 1))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| Error::Database(format!("table {}: {e}", table.name)))
        })?;
        let Some(last) = last else { break };
        after = last;
        let width = table.columns.len();
        let tuples = (0..rows.len())
            .map(|r| {
                let places: Vec<String> =
                    (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                format!("({})", places.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let values: Vec<&dyn Param> = rows.iter().flatten().map(|v| v as &dyn Param).collect();
        to.execute(
            &format!("INSERT INTO {name} ({columns}) VALUES {tuples}"),
            &values,
        )?;
        copied += rows.len() as u64;
        progress(Progress {
            table: &table.name,
            rows: copied,
            done: false,
        });
    }
    progress(Progress {
        table: &table.name,
        rows: copied,
        done: true,
    });
    Ok(copied)
}

/// Sets every identity sequence of the PostgreSQL database `to` past what the SQLite store `from`
/// handed out for that column: the highest value copied, or the one `sqlite_sequence` remembers
/// when it is higher (entries pruned from the end). Each sequence set, with its last value.
fn reset_sequences(from: &Conn<'_>, to: &Conn<'_>) -> Result<Vec<(String, String, i64)>> {
    let identities: Vec<(String, String)> = to.query_rows(
        "SELECT table_name, column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND is_identity = 'YES'
          ORDER BY table_name, column_name",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut set = Vec::new();
    for (table, column) in identities {
        let copied: Option<i64> = to.query_row(
            &format!("SELECT MAX({}) FROM {}", quoted(&column)?, quoted(&table)?),
            params![],
            |r| r.get(0),
        )?;
        let remembered: Option<i64> = from.query_opt(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            params![table],
            |r| r.get(0),
        )?;
        let last = copied.max(remembered).unwrap_or(0);
        if last > 0 {
            to.query_row(
                "SELECT setval(pg_get_serial_sequence(?1, ?2), ?3)",
                params![table, column, last],
                |r| r.get::<i64>(0),
            )?;
            set.push((table, column, last));
        }
    }
    Ok(set)
}

/// Copies the SQLite store `from` into the PostgreSQL database `to` (schema made, no rows) in one
/// transaction on each side: the tables, the sequences, then the relay key.
pub fn copy_store(
    from: &Conn<'_>,
    to: &Conn<'_>,
    relay_key_pem: Option<&str>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Copied> {
    let tables = plan(from)?;
    from.execute_batch("BEGIN")?;
    to.execute_batch("BEGIN")?;
    let outcome = (|| -> Result<Copied> {
        check_target(to, &tables)?;
        let mut copied = Copied::default();
        for table in &tables {
            let rows = copy_table(from, to, table, &mut progress)?;
            copied.tables.push((table.name.clone(), rows));
        }
        copied.sequences = reset_sequences(from, to)?;
        if let Some(pem) = relay_key_pem {
            relay_key::offer(to, pem)?;
            copied.key_stored = true;
        }
        Ok(copied)
    })();
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = to.execute_batch(end);
    // The source was only read.
    let _ = from.execute_batch("ROLLBACK");
    let copied = outcome?;
    ended?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;
    use crate::store::{NewEntry, Store};

    /// A fresh PostgreSQL database of the tests' cluster.
    fn postgres_url() -> String {
        match TestDb::postgres() {
            TestDb::Postgres(url) => url,
            TestDb::Sqlite(_) => unreachable!(),
        }
    }

    /// Runs `f` on a connection to the PostgreSQL database at `url`.
    async fn on_postgres<T: Send + 'static>(
        url: &str,
        f: impl FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    ) -> T {
        let pg = postgres::Backend::connect(url, 1)
            .await
            .unwrap()
            .writer()
            .await
            .unwrap();
        tokio::task::spawn_blocking(move || f(&Conn::Postgres(&pg)))
            .await
            .unwrap()
            .unwrap()
    }

    /// Every row of `table`, each column read as its kind, in primary key order.
    fn rows_of(conn: &Conn<'_>, table: &Table) -> Result<Vec<Vec<Value>>> {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|(c, _)| quoted(c))
            .collect::<Result<_>>()?;
        conn.query_rows(
            &format!(
                "SELECT {} FROM {} ORDER BY 1",
                columns.join(", "),
                quoted(&table.name)?
            ),
            params![],
            |row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| kind.read(row, i))
                    .collect()
            },
        )
    }

    /// A SQLite store file with the current schema, in `dir`.
    fn sqlite_store(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("plaza.db");
        let conn = schema::open_connection(&path).unwrap();
        schema::create(&Conn::Sqlite(&conn)).unwrap();
        path
    }

    fn entry(n: u32) -> NewEntry {
        NewEntry {
            origin: "a.example".into(),
            target: None,
            kind: "Create".into(),
            mastodon_body: format!("{{\"n\":{n}}}").into_bytes().into(),
            litepub_body: format!("{{\"n\":{n}}}").into_bytes().into(),
            signer: None,
            original: None,
        }
    }

    /// The copy's list is the schema's: every table SQLite's catalogue holds, but the ones
    /// [`NOT_COPIED`] names (each of which exists, so the list cannot go stale).
    #[test]
    fn the_plan_is_every_table_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open_connection(&sqlite_store(&dir)).unwrap();
        let conn = Conn::Sqlite(&conn);
        let catalogue: Vec<String> = conn
            .query_rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        let mut handled: Vec<String> = plan(&conn).unwrap().into_iter().map(|t| t.name).collect();
        handled.extend(NOT_COPIED.iter().map(|(name, _)| name.to_string()));
        handled.push("sqlite_sequence".into());
        handled.sort();
        assert_eq!(handled, catalogue);
        for table in [
            "subscribers",
            "log",
            "seen",
            "cursors",
            "published",
            "audit",
            "relay_key",
        ] {
            assert!(catalogue.iter().any(|t| t == table), "{table}");
        }
    }

    /// One row in every table of the SQLite store (whatever tables a release adds) arrives in
    /// PostgreSQL with every value, NULLs included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_table_arrives_with_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = sqlite_store(&dir);
        let conn = schema::open_connection(&path).unwrap();
        let tables = plan(&Conn::Sqlite(&conn)).unwrap();
        for table in &tables {
            let values: Vec<Value> = table
                .columns
                .iter()
                .map(|(_, kind)| match kind {
                    Kind::Integer => Value::Integer(Some(7)),
                    Kind::Real => Value::Real(Some(0.5)),
                    Kind::Text => Value::Text(Some(format!("{} text", table.name))),
                    Kind::Blob => Value::Blob(Some(vec![0, 159, 255])),
                })
                .collect();
            let places: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
            let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
            Conn::Sqlite(&conn)
                .execute(
                    &format!(
                        "INSERT INTO {} VALUES ({})",
                        quoted(&table.name).unwrap(),
                        places.join(", ")
                    ),
                    &params,
                )
                .unwrap();
        }
        // NULLs in the log's optional columns, and a second row.
        Conn::Sqlite(&conn)
            .execute(
                "INSERT INTO log (seq, origin, kind, received_ms, mastodon_body, litepub_body)
                 VALUES (8, 'o', 'Create', 1, x'01', x'02')",
                params![],
            )
            .unwrap();
        let expected: Vec<Vec<Vec<Value>>> = tables
            .iter()
            .map(|t| rows_of(&Conn::Sqlite(&conn), t).unwrap())
            .collect();
        drop(conn);

        let url = postgres_url();
        let copied = sqlite_to_postgres(&path, &url, None, |_| {}).await.unwrap();
        assert_eq!(copied.tables.len(), tables.len());
        assert!(
            copied
                .tables
                .iter()
                .all(|(name, rows)| *rows == if name == "log" { 2 } else { 1 }),
            "{copied:?}"
        );
        assert!(!copied.key_stored);
        let arrived = on_postgres(&url, move |pg| {
            tables
                .iter()
                .map(|t| rows_of(pg, t))
                .collect::<Result<Vec<_>>>()
        })
        .await;
        assert_eq!(arrived, expected);
    }

    /// The log's seq, and every identity, continue after what SQLite handed out, even when the
    /// last entries were pruned; the data directory's key is the database's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sequences_continue_after_what_sqlite_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plaza.db");
        let store = Store::open(&path).unwrap();
        for n in 0..5 {
            store.append(entry(n)).await.unwrap();
        }
        drop(store);
        let conn = schema::open_connection(&path).unwrap();
        Conn::Sqlite(&conn)
            .execute_batch(
                "DELETE FROM log WHERE seq > 3;
                 INSERT INTO audit (id, at, admin, action, target, detail) VALUES (41, 0, 'a', 'b', 'c', 'd');",
            )
            .unwrap();
        drop(conn);

        let url = postgres_url();
        let copied = sqlite_to_postgres(&path, &url, Some("PEM".into()), |_| {})
            .await
            .unwrap();
        assert!(
            copied.sequences.contains(&("log".into(), "seq".into(), 5)),
            "{copied:?}"
        );
        assert!(
            copied
                .sequences
                .contains(&("audit".into(), "id".into(), 41)),
            "{copied:?}"
        );
        assert!(copied.key_stored);

        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.tail().head(), 5);
        assert_eq!(store.append(entry(9)).await.unwrap(), 6);
        assert_eq!(store.relay_key().await.unwrap().as_deref(), Some("PEM"));
        let audit = on_postgres(&url, |pg| {
            pg.query_row(
                "INSERT INTO audit (at, admin, action, target, detail) VALUES (0, 'a', 'b', 'c', 'd') RETURNING id",
                params![],
                |r| r.get::<i64>(0),
            )
        })
        .await;
        assert_eq!(audit, 42);
    }

    /// A database that holds rows is refused, and left as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_with_rows_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plaza.db");
        let store = Store::open(&path).unwrap();
        store.append(entry(1)).await.unwrap();
        drop(store);
        let url = postgres_url();
        sqlite_to_postgres(&path, &url, None, |_| {}).await.unwrap();
        let again = sqlite_to_postgres(&path, &url, None, |_| {}).await;
        let Err(Error::Refused(reason)) = again else {
            panic!("a second copy went through: {again:?}");
        };
        assert!(reason.contains("not empty (rows in log"), "{reason}");
        let rows = on_postgres(&url, |pg| {
            pg.query_row("SELECT COUNT(*) FROM log", params![], |r| r.get::<i64>(0))
        })
        .await;
        assert_eq!(rows, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_store_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("plaza.db");
        let outcome = sqlite_to_postgres(&missing, "postgres://nowhere/x", None, |_| {}).await;
        assert!(
            matches!(outcome, Err(Error::NotFound(ref what)) if what.contains("no SQLite store"))
        );
        assert!(!missing.exists(), "nothing created");
    }
}
