//! One SQL connection, SQLite's or PostgreSQL's, behind one small API: the store's parts write each
//! statement once and it runs on either engine.
//!
//! Why: the store has two backends (SQLite in the data directory, the default; PostgreSQL for a relay
//! on several machines) and a hundred statements; written twice they would drift apart. The statements
//! use the dialect both engines share — `?N` placeholders (turned into PostgreSQL's `$N` here), `INSERT
//! … ON CONFLICT`, `RETURNING`, `COALESCE`, `CAST(… AS BIGINT)` — and [`Conn::is_postgres`] picks a
//! variant for the few places where they differ (the log's head, SQLite's pragmas).
//!
//! The calls are synchronous, as the store's threads are: SQLite's run on the writer thread and the
//! read pool's blocking threads; PostgreSQL's (tokio-postgres, an async driver, pooled by
//! deadpool-postgres with its statement cache) are driven on the same threads with the runtime's
//! `block_on`, so the group commit and the read pool work the same way over both.

use std::cell::Cell;

use crate::{Error, Result};

/// A value bound to a statement's placeholder. Only types both engines store alike: 64-bit integers
/// (PostgreSQL would take a `u32` for an OID and a `bool` for a BOOLEAN column, neither of which the
/// schema has: convert with `i64::from`), floats, text, bytes, and `Option`s of them (NULL).
pub trait Param: Sync {
    /// The value for SQLite.
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    /// The value for PostgreSQL.
    fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync);
}

/// A column value read back: the types of [`Param`], owned.
pub trait Column: rusqlite::types::FromSql + tokio_postgres::types::FromSqlOwned {}

macro_rules! portable {
    ($($t:ty),+ $(,)?) => {
        $(
            impl Param for $t {
                fn sqlite(&self) -> &dyn rusqlite::ToSql {
                    self
                }
                fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
                    self
                }
            }
            impl Param for Option<$t> {
                fn sqlite(&self) -> &dyn rusqlite::ToSql {
                    self
                }
                fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
                    self
                }
            }
        )+
    };
}
portable!(i64, f64, String, &str, Vec<u8>, &[u8]);

impl<T: Param + ?Sized> Param for &T
where
    for<'a> &'a T: Sync,
{
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        (**self).sqlite()
    }
    fn pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        (**self).pg()
    }
}

macro_rules! column {
    ($($t:ty),+ $(,)?) => {
        $(
            impl Column for $t {}
            impl Column for Option<$t> {}
        )+
    };
}
column!(i64, f64, String, Vec<u8>);

/// The placeholders' values of one statement: `params![a, b]`.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::store::db::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::Param),+] as &[&dyn $crate::store::db::Param] };
}
pub use crate::sql_params as params;

/// One row of a result.
pub enum Row<'a> {
    /// A row of SQLite's.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A row of PostgreSQL's.
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (from 0) as a `T`; an error when it holds something else (a NULL into a
    /// non-`Option`, text into an integer).
    pub fn get<T: Column>(&self, idx: usize) -> Result<T> {
        match self {
            Row::Sqlite(row) => Ok(row.get(idx)?),
            Row::Postgres(row) => Ok(row.try_get(idx)?),
        }
    }

    /// Column `idx`, an integer, as a flag (non-zero: true).
    pub fn get_bool(&self, idx: usize) -> Result<bool> {
        Ok(self.get::<i64>(idx)? != 0)
    }

    /// Column `idx`, an integer, as a `u32`; an error when out of range.
    pub fn get_u32(&self, idx: usize) -> Result<u32> {
        let n = self.get::<i64>(idx)?;
        u32::try_from(n).map_err(|_| Error::Database(format!("column {idx}: {n} is not a u32")))
    }
}

/// What runs a PostgreSQL connection's calls for a thread outside the async runtime's workers.
#[derive(Clone)]
pub enum Driver {
    /// The relay's runtime, whose workers drive the connection: each round trip wakes a worker, then
    /// the calling thread (reads, from blocking threads).
    Shared(tokio::runtime::Handle),
    /// A current-thread runtime of the calling thread's own, which drives the connection itself: a
    /// round trip wakes only that thread (the writer, whose statements follow one another).
    Own(std::sync::Arc<tokio::runtime::Runtime>),
}

impl Driver {
    /// Runs `future` to its end on this thread.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match self {
            Driver::Shared(handle) => handle.block_on(future),
            Driver::Own(runtime) => runtime.block_on(future),
        }
    }
}

/// A PostgreSQL connection taken from a pool, with what drives it.
pub struct Pg {
    pub(super) client: deadpool_postgres::Object,
    pub(super) rt: Driver,
    /// Rows written through this connection, for [`Conn::total_changes`].
    changes: Cell<u64>,
}

impl Pg {
    /// `client`, driven by `rt` (from a thread outside the runtime's workers).
    pub fn new(client: deadpool_postgres::Object, rt: Driver) -> Pg {
        Pg {
            client,
            rt,
            changes: Cell::new(0),
        }
    }

    /// Whether the connection is closed (the server ended it, the network failed): every call on it
    /// would fail.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn prepared(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        let sql = placeholders(sql);
        Ok(self.rt.block_on(self.client.prepare_cached(&sql))?)
    }

    fn args<'p>(params: &'p [&dyn Param]) -> Vec<&'p (dyn tokio_postgres::types::ToSql + Sync)> {
        params.iter().map(|p| p.pg()).collect()
    }

    fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<tokio_postgres::Row>> {
        let statement = self.prepared(sql)?;
        let rows = self
            .rt
            .block_on(self.client.query(&statement, &Self::args(params)))?;
        if writes(sql) {
            self.changes.set(self.changes.get() + rows.len() as u64);
        }
        Ok(rows)
    }
}

/// Whether `sql` changes rows (for the count [`Conn::total_changes`] keeps on PostgreSQL): it starts
/// with `INSERT`, `UPDATE` or `DELETE`, or is a `WITH` whose clauses do.
fn writes(sql: &str) -> bool {
    let head = sql.trim_start();
    let starts = |word: &str| {
        head.get(..word.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(word))
    };
    if starts("WITH") {
        let upper = head.to_ascii_uppercase();
        return ["INSERT INTO", "UPDATE ", "DELETE FROM"]
            .iter()
            .any(|verb| upper.contains(verb));
    }
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|verb| starts(verb))
}

/// `sql` with SQLite's `?N` (and bare `?`) placeholders written as PostgreSQL's `$N`; text inside
/// single quotes is left alone.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let (mut quoted, mut next) = (false, 1usize);
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A connection of either engine, as the store's parts see it.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    /// SQLite (the data directory's `plaza.db`).
    Sqlite(&'a rusqlite::Connection),
    /// PostgreSQL.
    Postgres(&'a Pg),
}

impl Conn<'_> {
    /// Whether this is PostgreSQL, for the few statements the engines spell differently.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// Runs one statement (prepared once per connection and kept); how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        match self {
            Conn::Sqlite(conn) => {
                Ok(conn
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(
                        params.iter().map(|p| p.sqlite()),
                    ))?)
            }
            Conn::Postgres(pg) => {
                let statement = pg.prepared(sql)?;
                let n = pg
                    .rt
                    .block_on(pg.client.execute(&statement, &Pg::args(params)))?;
                pg.changes.set(pg.changes.get() + n);
                Ok(n as usize)
            }
        }
    }

    /// Runs statements separated by `;`, without parameters (schema, transactions).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(pg) => Ok(pg.rt.block_on(pg.client.batch_execute(sql))?),
        }
    }

    /// Hands `f` the rows `sql` returns, in order, until `f` answers `false` or they run out.
    fn visit(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        match self {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(
                    params.iter().map(|p| p.sqlite()),
                ))?;
                while let Some(row) = rows.next()? {
                    if !f(&Row::Sqlite(row))? {
                        break;
                    }
                }
            }
            Conn::Postgres(pg) => {
                for row in &pg.query(sql, params)? {
                    if !f(&Row::Postgres(row))? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every row `sql` returns, each made by `f`.
    pub fn query_rows<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.visit(sql, params, |row| {
            out.push(f(row)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row `sql` returns, made by `f`; `None` when there is none.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let (mut f, mut first) = (Some(f), None);
        self.visit(sql, params, |row| {
            if let Some(f) = f.take() {
                first = Some(f(row)?);
            }
            Ok(false)
        })?;
        Ok(first)
    }

    /// The first row `sql` returns, made by `f`: for statements that always return one (`COUNT`,
    /// `INSERT … RETURNING`); none is an error.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| Error::Database(format!("no row returned by: {}", sql.trim())))
    }

    /// Rows changed through this connection so far (inserted, updated or deleted).
    pub fn total_changes(&self) -> u64 {
        match self {
            Conn::Sqlite(conn) => conn.total_changes(),
            Conn::Postgres(pg) => pg.changes.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c > ?12"),
            "SELECT a FROM t WHERE b = $1 AND c > $12"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(
            placeholders("SELECT '?1' || ?1"),
            "SELECT '?1' || $1",
            "text in quotes is left alone"
        );
    }

    #[test]
    fn writes_are_told_from_reads() {
        assert!(writes("  insert into t values (1) returning seq"));
        assert!(writes("DELETE FROM t"));
        assert!(!writes("SELECT 1"));
        assert!(!writes(""));
        assert!(writes(
            "WITH e AS (INSERT INTO t VALUES (1) RETURNING n) SELECT n FROM e"
        ));
        assert!(!writes(
            "with recent as (select * from t) select * from recent"
        ));
    }

    #[test]
    fn sqlite_calls_bind_and_read_each_type() -> Result<()> {
        let conn = rusqlite::Connection::open_in_memory()?;
        let conn = Conn::Sqlite(&conn);
        conn.execute_batch("CREATE TABLE t (n INTEGER, s TEXT, b BLOB, o TEXT)")?;
        let none: Option<String> = None;
        let n = conn.execute(
            "INSERT INTO t (n, s, b, o) VALUES (?1, ?2, ?3, ?4)",
            params![7i64, "seven", &b"\x07"[..], none],
        )?;
        assert_eq!(n, 1);
        let row = conn.query_row("SELECT n, s, b, o FROM t", params![], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<Vec<u8>>(2)?,
                r.get::<Option<String>>(3)?,
            ))
        })?;
        assert_eq!(row, (7, "seven".into(), vec![7], None));
        assert!(
            conn.query_opt("SELECT n FROM t WHERE n = ?1", params![8i64], |r| r
                .get::<i64>(0))?
                .is_none()
        );
        assert!(
            conn.query_row("SELECT n FROM t WHERE n = 8", params![], |r| r
                .get::<i64>(0))
                .is_err()
        );
        assert_eq!(conn.total_changes(), 1);
        Ok(())
    }
}
