//! How long the store's work takes, for `/metrics`: reads (from asking to the answer, waiting for a
//! connection included) and group commits (from `BEGIN` to the commit), as counts and total seconds,
//! so a dashboard shows the mean latency and its trend; and, on PostgreSQL, the pool's connections in
//! use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts and total time of the store's reads and commits.
#[derive(Debug, Default)]
pub struct Timings {
    reads: AtomicU64,
    read_nanos: AtomicU64,
    commits: AtomicU64,
    commit_nanos: AtomicU64,
}

/// A snapshot of [`Timings`], with the pool's state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Reads done.
    pub reads: u64,
    /// Their total time, in seconds.
    pub read_seconds: f64,
    /// Group commits done (each one transaction, any number of writes).
    pub commits: u64,
    /// Their total time, in seconds.
    pub commit_seconds: f64,
    /// PostgreSQL: connections in the pool, in use, and the most it opens (SQLite: zeros).
    pub pool: (usize, usize, usize),
}

impl Timings {
    pub(super) fn read(&self, took: Duration) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.read_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn commit(&self, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commit_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn figures(&self, pool: (usize, usize, usize)) -> Figures {
        let seconds = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e9;
        Figures {
            reads: self.reads.load(Ordering::Relaxed),
            read_seconds: seconds(&self.read_nanos),
            commits: self.commits.load(Ordering::Relaxed),
            commit_seconds: seconds(&self.commit_nanos),
            pool,
        }
    }
}
