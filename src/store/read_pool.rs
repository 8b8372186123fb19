//! The store's read connections: a few, so that one slow read (a lagging delivery worker reading a
//! batch, a public `/outbox` page) does not hold up every other read behind one lock. SQLite in WAL
//! mode lets readers run beside each other and beside the writer; each read takes an idle connection,
//! waiting (asynchronously) only when all are busy.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::store::schema::open_connection;
use crate::{Error, Result};

/// How many reads run at once: enough for the public reads and the workers that fell behind the tail
/// on a small server, few enough that the connections' page caches stay small.
pub const READERS: usize = 4;

/// Idle read connections, and a permit per connection.
pub(super) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool; it goes back when dropped, even when the read panicked.
struct Lease<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl ReadPool {
    /// `n` connections to the database at `path`.
    pub(super) fn open(path: &Path, n: usize) -> Result<ReadPool> {
        let idle = (0..n.max(1))
            .map(|_| open_connection(path))
            .collect::<Result<Vec<_>>>()?;
        Ok(ReadPool {
            permits: Arc::new(Semaphore::new(idle.len())),
            idle: Mutex::new(idle),
        })
    }

    /// Runs `f` on an idle connection, on the current thread (for opening the store).
    pub(super) fn run_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let lease = self.take()?;
        f(lease.conn.as_ref().ok_or_else(Self::gone)?)
    }

    /// Runs `f` on an idle connection off the async runtime, waiting for one when all are busy.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Self::gone())?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let lease = pool.take()?;
            f(lease.conn.as_ref().ok_or_else(Self::gone)?)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("store read task: {e}")))?
    }

    /// An idle connection; there is one for every permit handed out.
    fn take(&self) -> Result<Lease<'_>> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(Self::gone)?;
        Ok(Lease {
            pool: self,
            conn: Some(conn),
        })
    }

    fn gone() -> Error {
        Error::Unavailable("no store read connection".into())
    }
}
