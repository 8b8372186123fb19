//! The PostgreSQL backend: the pool of connections to the database `database_url` names, and the
//! schema there.
//!
//! Why PostgreSQL: a relay that outgrows one machine runs several `plaza serve` on one shared database,
//! an engine operators already run and back up. The store's statements are the same as on SQLite
//! ([`crate::store::db`]); what differs lives here: connecting, the schema's types (one DDL text,
//! SQLite's, turned into PostgreSQL's by [`crate::store::ddl::postgres`]) and applying it under an advisory lock, so that nodes
//! starting together do not race.
//!
//! Several nodes on one database: each node's writer thread takes [`WRITE_LOCK`] at the start of each
//! group-commit transaction (see [`Writer::begin`]), so the writers of all nodes commit one batch at a time, as
//! SQLite's `BEGIN IMMEDIATE` makes the writers of one file do. The writer's connection is taken from the
//! pool again when it broke ([`Writer`]); the pool itself never hands out a connection it knows is closed
//! (deadpool's recycling checks `is_closed` whatever the recycling method), and a statement on one that
//! broke since fails with [`crate::Error::Unavailable`] (see the crate error's conversion).

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};

use crate::store::db::{Conn, Driver, Pg};
use crate::store::schema;
use crate::{Error, Result};

/// Connections the pool keeps beyond the readers: for probes, migrations and the cluster's beats.
const SPARE_CONNECTIONS: usize = 2;

/// The advisory lock under which nodes starting together bring the schema up to date.
const MIGRATION_LOCK: i64 = 7370111;

/// The advisory lock every group-commit transaction of every node holds from its start to its end.
///
/// Why: log sequence numbers come from an identity, handed out when a row is inserted, not when its
/// transaction commits. Were two nodes' transactions to overlap, the one that took seq N+1 could commit
/// before the one that took N, and a reader at cursor N-1 would read N+1, move its cursor past N and
/// never see N. Under this lock a transaction takes its sequence numbers only after every earlier one
/// committed (the lock is released after the commit is visible), so sequence order is commit order; the
/// gaps left by rolled-back inserts (sequences are not transactional) are never filled later.
///
/// It also makes every check-then-write of a job (a subscription looked up then inserted, a capacity
/// counted then used) as safe across nodes as on SQLite's single writer: in `READ COMMITTED` each
/// statement sees everything committed before it started, so everything the other nodes committed
/// before the lock was granted, and nothing of theirs can commit until this transaction did.
/// The cost is one lock per batch (sent with its `BEGIN`, no extra round trip); the price is that the
/// nodes' writers take turns, one batch at a time, which group commit amortizes (a node that waits
/// gathers a larger batch).
pub const WRITE_LOCK: i64 = 7370112;

/// Set on the writer's connection: a transaction left waiting for its next statement this long (its
/// node died or lost the network in the middle of a batch) is ended by the server, which releases
/// [`WRITE_LOCK`] for the other nodes instead of holding it until TCP notices (hours). The writer runs
/// a batch's statements back to back, so its own transactions never come near it.
const WRITER_SESSION: &str = "SET idle_in_transaction_session_timeout = '30s'";

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Backend {
    pool: Pool,
    /// Shared, not copied: the config is large and the backend is cloned into every read.
    config: std::sync::Arc<tokio_postgres::Config>,
}

impl Backend {
    /// Connects to `url` with room for `readers` reads at once, and brings the schema up to date.
    pub async fn connect(url: &str, readers: usize) -> Result<Backend> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("database_url: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(readers + SPARE_CONNECTIONS)
            .build()
            .map_err(|e| Error::Database(format!("PostgreSQL pool: {e}")))?;
        let backend = Backend {
            pool,
            config: std::sync::Arc::new(config),
        };
        let migrator = backend.writer().await?;
        tokio::task::spawn_blocking(move || {
            let conn = Conn::Postgres(&migrator);
            conn.execute_batch(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
            ))?;
            match schema::create(&conn) {
                Ok(()) => conn.execute_batch("COMMIT"),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::Unavailable(format!("store migration task: {e}")))??;
        Ok(backend)
    }

    /// How to connect to the database (for a connection outside the pool, such as the listener's).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The pool's connections, those in use, and the most it opens.
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (
            status.size,
            status.size.saturating_sub(status.available),
            status.max_size,
        )
    }

    /// A connection from the pool, waiting for one when all are taken.
    pub async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("no PostgreSQL connection: {e}")))
    }

    /// A connection for a thread outside the runtime (the migration), driven on the current runtime.
    pub async fn writer(&self) -> Result<Pg> {
        Ok(Pg::new(
            self.client().await?,
            Driver::Shared(tokio::runtime::Handle::current()),
        ))
    }

    /// A pool of its own of `size` connections to the same database, whose connections are driven by
    /// the runtime that first asks it for one (deadpool spawns each connection's task there).
    fn separate_pool(&self, size: usize) -> Result<Pool> {
        let manager = Manager::from_config(
            (*self.config).clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| Error::Database(format!("PostgreSQL pool: {e}")))
    }
}

/// The writer thread's connection: kept from batch to batch, and replaced by a fresh one when it broke
/// (a server restart, `pg_terminate_backend`, a network failure), so that a lost connection costs the
/// batch that was on it (its callers get [`crate::Error::Unavailable`] and retry) and nothing more.
///
/// The connection is the writer thread's own, not the shared pool's: a runtime of the thread's own
/// drives it. A group commit is a run of statements, each waiting for the one before; driven by the
/// relay's runtime, every one of them woke a runtime worker to write the request and read the answer and
/// then the writer thread, two thread switches more per statement than the writer reading its own
/// socket (on a busy 2-core machine, about 1 ms per inbox activity went on them; see
/// `docs/performance.md`).
pub struct Writer {
    /// The writer's own pool (one connection), its connection's task on `rt`.
    pool: Pool,
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    held: Option<Pg>,
}

impl Writer {
    /// The writer's connection to `backend`'s database, made on the writer thread's own runtime at its
    /// first batch (the database was reached just before: the schema is in place).
    pub fn connect(backend: &Backend) -> Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                path: "the PostgreSQL writer's runtime".into(),
                source,
            })?;
        Ok(Writer {
            pool: backend.separate_pool(1)?,
            rt: std::sync::Arc::new(rt),
            held: None,
        })
    }

    /// A connection from the writer's pool, set up for the writer ([`WRITER_SESSION`]); on the
    /// writer's runtime.
    async fn client(pool: &Pool) -> Result<Object> {
        let client = pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("no PostgreSQL connection: {e}")))?;
        client.batch_execute(WRITER_SESSION).await?;
        Ok(client)
    }

    /// How the writer starts a group-commit transaction: `BEGIN` and [`WRITE_LOCK`], in one round trip.
    pub fn begin() -> String {
        format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
    }

    /// The connection for the next batch: the one held unless it is closed, else a new one from the
    /// pool (waiting for one when all are taken; [`crate::Error::Unavailable`] when the server cannot
    /// be reached, and the next batch tries again).
    pub fn conn(&mut self) -> Result<&Pg> {
        match self.held.take() {
            Some(pg) if !pg.is_closed() => return Ok(self.held.insert(pg)),
            // Dropped, it goes back to the pool, whose recycling discards it.
            Some(_) => {
                tracing::warn!("store: the writer's PostgreSQL connection broke; taking a new one")
            }
            None => {}
        }
        let client = self.rt.block_on(Writer::client(&self.pool))?;
        Ok(self
            .held
            .insert(Pg::new(client, Driver::Own(self.rt.clone()))))
    }
}
