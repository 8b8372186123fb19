//! The store: one database (SQLite in the data directory, or PostgreSQL) holding the subscribers, the append-only
//! activity log, each subscriber's delivery cursor and the ids already seen (deduplication).
//!
//! Why this shape: every accepted activity is written once, whatever the number of subscribers, and each
//! subscriber only keeps a cursor into the log (DESIGN.md section 2). Writes go through one writer thread
//! that commits whatever is queued in one transaction (group commit), so many inbox requests share one
//! fsync while each still learns that its own write is durable before it answers 202. Reads use a few
//! connections of their own ([`read_pool`]; WAL mode: readers never wait for the writer nor for each
//! other).
//!
//! Two backends run the same statements: SQLite (the default) and PostgreSQL (`database_url`), through
//! one connection API ([`db`]); [`postgres`] holds what only PostgreSQL needs (its pool, migrations
//! under a lock, the writer's connection) and [`ddl`] runs the tables' DDL on either. Several stores
//! (nodes) may share one PostgreSQL database: their writers take turns batch by batch (see [`writer`]),
//! and each keeps its own tail and subscriber mirror of its own commits.
//!
//! This file is the [`Store`] facade; its parts add their calls to it:
//! [`writer`] (the writer thread, group commit, checkpoints), [`schema`] (tables and migrations),
//! [`log`] (entries: append, read, prune), [`subscribers`] (subscriptions, cursors, the in-memory
//! mirror), [`discovery_state`] (the indexer's cursor, instances and authors), [`moderation`],
//! [`published`], [`schemes`] and [`fasp`] (FASP registrations and activations), [`fasp_shares`] (FASP data_sharing: the
//! announced-URI queue, subscriptions, backfills), [`relay_key`] (the relay's key, on PostgreSQL);
//! [`tail`] is the log's in-memory end and [`reader`] follows the log from a cursor; [`copy`] moves a
//! SQLite store into PostgreSQL (`plaza store copy`).

pub mod activity;
pub mod cluster;
pub mod copy;
pub mod db;
pub mod ddl;
pub mod discovery_state;
pub mod fasp;
pub mod fasp_shares;
pub mod health;
pub mod log;
pub mod moderation;
pub mod notice;
pub mod notices;
pub mod postgres;
pub mod published;
pub mod read_pool;
pub mod reader;
pub mod relay_key;
pub mod schema;
pub mod schemes;
pub mod shares;
pub mod subscribers;
pub mod tail;
pub mod timings;
pub mod topics;
pub mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::store::db::{Conn, params};
use crate::store::health::WriteHealth;
use crate::store::log::head_seq;
pub use crate::store::log::{CarryAppend, Entry, NewEntry, Style};
use crate::store::read_pool::{READERS, ReadPool};
use crate::store::schema::open_connection;
use crate::store::subscribers::{Member, all_subscribers};
pub use crate::store::subscribers::{Subscribed, Subscriber};
use crate::store::tail::Tail;
use crate::store::writer::{Job, Shared, WriterConn, checkpoint_loop, open_writer, writer_loop};
use crate::{Error, Result};

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The read connections.
    readers: Arc<ReadPool>,
    tail: Arc<Tail>,
    /// The subscribers, mirrored in memory: every inbox request asks whether its instance is subscribed,
    /// and a database read (a thread hop and a lock) per request showed in the inbound benchmark.
    members: Arc<RwLock<HashMap<String, Subscriber>>>,
    /// Whether the last commit that wrote went through, as the writer saw it.
    health: Arc<WriteHealth>,
    /// Held while the tail or the mirror take what another node committed, and while the writer
    /// pushes its own commits (PostgreSQL only), so both land in commit order.
    feed: Arc<tokio::sync::Mutex<()>>,
    /// Other nodes' notices for the relay ([`Store::notices`]).
    notices: tokio::sync::broadcast::Sender<notice::Notice>,
    /// Tells this store's notices from other nodes' (random per store).
    tag: u64,
    /// How long reads and commits take.
    timings: Arc<timings::Timings>,
    /// Dropped with the last handle; the checkpoint thread and the listener then end.
    _alive: Arc<()>,
}

/// How many recent entries the in-memory tail keeps: enough for every healthy subscriber to read from
/// memory during a burst, small enough that a tail full of large posts stays a few tens of MB.
const TAIL_CAPACITY: usize = 4096;

/// How many bytes of bodies the in-memory tail keeps at most, whatever the entry count: 4,096 entries
/// of 1 MB each would otherwise be 4 GB. Workers that fall behind it read the store.
const TAIL_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Starts one of the store's threads for the database `what`.
fn spawn_thread(name: &str, what: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|source| Error::Io {
            path: what.to_string(),
            source,
        })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating when needed) the SQLite database at `path` and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store> {
        let writer = open_writer(path)?;
        let checkpointer = open_connection(path)?;
        let readers = ReadPool::open(path, READERS)?;
        let (head, members) =
            readers.run_blocking(|conn| Ok((head_seq(conn)?, all_subscribers(conn)?)))?;
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let health = Arc::new(WriteHealth::default());
        let writer_health = health.clone();
        let store = Store::assemble(jobs, Arc::new(readers), head, members, health);
        let shared = Shared {
            tag: None,
            tail: store.tail.clone(),
            feed: store.feed.clone(),
            timings: store.timings.clone(),
        };
        spawn_thread(
            "plaza-store-writer",
            &path.display().to_string(),
            move || writer_loop(WriterConn::Sqlite(writer), rx, writer_health, shared),
        )?;
        let handle = Arc::downgrade(&store._alive);
        spawn_thread(
            "plaza-store-checkpoint",
            &path.display().to_string(),
            move || checkpoint_loop(checkpointer, handle),
        )?;
        Ok(store)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`), brings its schema up to date
    /// and starts the writer thread. Called on the async runtime, which then drives the connections.
    pub async fn connect(url: &str) -> Result<Store> {
        let backend = postgres::Backend::connect(url, READERS).await?;
        let backend_config = backend.config().clone();
        let writer = postgres::Writer::connect(&backend)?;
        let readers = Arc::new(ReadPool::postgres(backend));
        let (head, members) = readers
            .run(|conn| Ok((head_seq(conn)?, all_subscribers(conn)?)))
            .await?;
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let health = Arc::new(WriteHealth::default());
        let store = Store::assemble(jobs, readers, head, members, health.clone());
        let shared = Shared {
            tag: Some(store.tag),
            tail: store.tail.clone(),
            feed: store.feed.clone(),
            timings: store.timings.clone(),
        };
        spawn_thread("plaza-store-writer", "PostgreSQL", move || {
            writer_loop(WriterConn::Postgres(writer), rx, health, shared)
        })?;
        tokio::spawn(notices::listen(
            Arc::downgrade(&store._alive),
            store.detached(),
            backend_config,
        ));
        Ok(store)
    }

    /// A handle to this store that does not keep it open (for its own background tasks).
    fn detached(&self) -> Store {
        Store {
            _alive: Arc::new(()),
            ..self.clone()
        }
    }

    /// The store around its writer's queue and its read pool, whatever the backend.
    fn assemble(
        jobs: std::sync::mpsc::Sender<Job>,
        readers: Arc<ReadPool>,
        head: u64,
        members: Vec<Subscriber>,
        health: Arc<WriteHealth>,
    ) -> Store {
        Store {
            jobs,
            readers,
            tail: Arc::new(Tail::new(head, TAIL_CAPACITY, TAIL_MAX_BYTES)),
            members: Arc::new(RwLock::new(
                members
                    .into_iter()
                    .map(|s| (s.authority.clone(), s))
                    .collect(),
            )),
            health,
            feed: Arc::new(tokio::sync::Mutex::new(())),
            notices: notices::channel(),
            tag: fastrand::u64(..),
            timings: Arc::new(timings::Timings::default()),
            _alive: Arc::new(()),
        }
    }

    /// The schema version the database records (see [`schema::SCHEMA_VERSION`]).
    pub async fn schema_version(&self) -> Result<i64> {
        self.read(|conn| {
            conn.query_row("SELECT MAX(version) FROM schema_version", params![], |r| {
                r.get::<Option<i64>>(0)
            })
            .map(|v| v.unwrap_or(0))
        })
        .await
    }

    /// Whether this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.readers.is_postgres()
    }

    /// Whether the store can take writes (what every inbox POST needs) and answer reads:
    /// [`Error::Unavailable`] with the reason when its last write failed and none succeeded since (see
    /// [`health`]: while failing, checks start a probe write now and then) or a read fails.
    pub async fn check(&self) -> Result<()> {
        if self.health.probe_due(std::time::Instant::now()) {
            // In the background, so a check never waits out a locked database's busy timeout; the
            // outcome lands in the health record through the writer, like any commit's, and the next
            // check reads it.
            let store = self.clone();
            tokio::spawn(async move {
                let probed = store
                    .write(|conn, _| {
                        conn.execute(
                            "INSERT INTO settings (key, value) VALUES ('health_probe', ?1)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            params![now_ms().to_string()],
                        )?;
                        Ok(())
                    })
                    .await;
                if let Err(e) = probed {
                    tracing::warn!(error = %e, "health probe: the store still cannot write");
                }
            });
        }
        if let Some(reason) = self.health.failure() {
            return Err(Error::Unavailable(format!(
                "the store cannot write: {reason}"
            )));
        }
        self.head().await.map(drop)
    }

    /// The in-memory tail of the log, fed by this store's commits.
    pub fn tail(&self) -> &Arc<Tail> {
        &self.tail
    }

    /// Runs a read on one of the read connections off the async runtime; reads run side by side, up
    /// to [`READERS`] at once.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let read = self.readers.run(f).await;
        self.timings.read(started.elapsed());
        read
    }

    /// How long reads and commits took so far, and the connection pool's state.
    pub fn timings(&self) -> timings::Figures {
        self.timings.figures(self.readers.pool_status())
    }
}

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
