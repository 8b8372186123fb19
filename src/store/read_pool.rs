//! The store's read connections: a few, so that one slow read (a lagging delivery worker reading a
//! batch, a public `/outbox` page) does not hold up every other read behind one lock. SQLite in WAL
//! mode lets readers run beside each other and beside the writer; each read takes an idle connection,
//! waiting (asynchronously) only when all are busy. On PostgreSQL the connections come from the
//! backend's pool, which waits the same way and never hands out a connection it knows is closed (its
//! recycling checks, whatever the method); a read on one that broke since fails with
//! [`Error::Unavailable`], and the pool drops it.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use crate::store::db::{Conn, Driver, Pg};
use crate::store::postgres::Backend;
use tokio::sync::Semaphore;

use crate::store::schema::open_connection;
use crate::{Error, Result};

/// How many reads run at once: enough for the public reads and the workers that fell behind the tail
/// on a small server, few enough that the connections' page caches stay small.
pub const READERS: usize = 4;

/// The read connections of either backend.
pub(super) enum ReadPool {
    /// SQLite's: idle connections, and a permit per connection.
    Sqlite {
        idle: Mutex<Vec<Connection>>,
        permits: Arc<Semaphore>,
    },
    /// PostgreSQL's pool.
    Postgres(Backend),
}

/// A connection taken from the pool; it goes back when dropped, even when the read panicked.
struct Lease<'a> {
    idle: &'a Mutex<Vec<Connection>>,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl ReadPool {
    /// `n` connections to the SQLite database at `path`.
    pub(super) fn open(path: &Path, n: usize) -> Result<ReadPool> {
        let idle = (0..n.max(1))
            .map(|_| open_connection(path))
            .collect::<Result<Vec<_>>>()?;
        Ok(ReadPool::Sqlite {
            permits: Arc::new(Semaphore::new(idle.len())),
            idle: Mutex::new(idle),
        })
    }

    /// Reads through PostgreSQL's pool.
    pub(super) fn postgres(backend: Backend) -> ReadPool {
        ReadPool::Postgres(backend)
    }

    /// PostgreSQL: the pool's connections, those in use, and the most it opens; SQLite: zeros.
    pub(super) fn pool_status(&self) -> (usize, usize, usize) {
        match self {
            ReadPool::Sqlite { .. } => (0, 0, 0),
            ReadPool::Postgres(backend) => backend.pool_status(),
        }
    }

    /// Whether the reads go to PostgreSQL.
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self, ReadPool::Postgres(_))
    }

    /// Runs `f` on an idle SQLite connection, on the current thread (for opening the store).
    pub(super) fn run_blocking<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        match self {
            ReadPool::Sqlite { idle, .. } => {
                let lease = take(idle)?;
                f(&Conn::Sqlite(lease.conn.as_ref().ok_or_else(gone)?))
            }
            ReadPool::Postgres(_) => Err(Error::Unavailable(
                "a PostgreSQL read runs on the async runtime".into(),
            )),
        }
    }

    /// Runs `f` on an idle connection off the async runtime, waiting for one when all are busy.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        let task = match &**self {
            ReadPool::Sqlite { permits, .. } => {
                let permit = permits.clone().acquire_owned().await.map_err(|_| gone())?;
                let pool = self.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let ReadPool::Sqlite { idle, .. } = &*pool else {
                        return Err(gone());
                    };
                    let lease = take(idle)?;
                    f(&Conn::Sqlite(lease.conn.as_ref().ok_or_else(gone)?))
                })
            }
            ReadPool::Postgres(backend) => {
                let client = backend.client().await?;
                let rt = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    f(&Conn::Postgres(&Pg::new(client, Driver::Shared(rt))))
                })
            }
        };
        task.await
            .map_err(|e| Error::Unavailable(format!("store read task: {e}")))?
    }
}

/// An idle SQLite connection; there is one for every permit handed out.
fn take(idle: &Mutex<Vec<Connection>>) -> Result<Lease<'_>> {
    let conn = idle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .ok_or_else(gone)?;
    Ok(Lease {
        idle,
        conn: Some(conn),
    })
}

fn gone() -> Error {
    Error::Unavailable("no store read connection".into())
}
