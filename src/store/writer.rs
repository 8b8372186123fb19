//! The store's writes: one writer thread commits whatever is queued in one transaction (group commit), so
//! many inbox requests share one fsync while each still learns that its own write is durable before it
//! answers; what a write changes outside the database (the tail, the subscriber mirror) is applied right
//! after its commit, in commit order. A second thread checkpoints the write-ahead log.
//!
//! Each transaction first takes the database's write lock: SQLite's (`BEGIN IMMEDIATE`), or on
//! PostgreSQL an advisory lock that the writers of every node sharing the database take
//! ([`postgres::WRITE_LOCK`], which says why): writers, on one node or several, commit one batch at a
//! time, so log sequence numbers are assigned in commit order and a job's reads see everything
//! committed before it. On PostgreSQL the writer takes a new connection from the pool when its own
//! broke ([`postgres::Writer`]); the batch that was on it is refused with [`Error::Unavailable`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

use crate::store::db::Conn;
use tokio::sync::oneshot;

use crate::store::Store;
use crate::store::health::WriteHealth;
use crate::store::log::{Entry, read_entries};
use crate::store::notice::Notice;
use crate::store::notices::{BatchNotices, payload};
use crate::store::postgres;
use crate::store::schema::{self, open_connection};
use crate::store::subscribers::{Member, Subscriber};
use crate::store::tail::Tail;
use crate::{Error, Result};

pub(super) type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
pub(super) type Job = Box<dyn FnOnce(&Conn<'_>, &mut BatchNotices) -> Completion + Send>;

/// How often the checkpoint thread moves committed pages from the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer's connection, with the schema in place. SQLite would checkpoint inside the commit that
/// fills the log past 1,000 pages, so one inbox batch in a thousand would wait for the copy and its
/// fsync; the checkpoint thread does it instead. The write-ahead log file is truncated back to 64 MiB
/// when it restarts.
pub(super) fn open_writer(path: &Path) -> Result<Connection> {
    let writer = open_connection(path)?;
    schema::create(&Conn::Sqlite(&writer))?;
    writer.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")?;
    Ok(writer)
}

/// The writer thread's connection, whatever the backend.
pub(super) enum WriterConn {
    /// SQLite's, for the life of the store.
    Sqlite(Connection),
    /// PostgreSQL's, replaced when it breaks.
    Postgres(postgres::Writer),
}

impl WriterConn {
    /// The connection for the next batch.
    fn conn(&mut self) -> Result<Conn<'_>> {
        match self {
            WriterConn::Sqlite(conn) => Ok(Conn::Sqlite(conn)),
            WriterConn::Postgres(writer) => writer.conn().map(Conn::Postgres),
        }
    }

    /// What opens a group-commit transaction and takes the write lock. SQLite: `BEGIN IMMEDIATE` takes
    /// it now rather than at the first write (no deadlock with a reader upgrading). PostgreSQL: see
    /// [`postgres::WRITE_LOCK`].
    fn begin(&self) -> String {
        match self {
            WriterConn::Sqlite(_) => "BEGIN IMMEDIATE".into(),
            WriterConn::Postgres(_) => postgres::Writer::begin(),
        }
    }
}

/// What a write changes outside the database, applied once it is committed.
#[derive(Default)]
pub(super) struct Changes {
    /// Log entries for the in-memory tail.
    pub(super) appended: Vec<Entry>,
    /// Changes to the in-memory subscriber mirror.
    pub(super) members: Vec<Member>,
    /// What the other nodes must hear of besides new entries and subscribers (which are noted from
    /// the two fields above).
    pub(super) notices: Vec<Notice>,
}

impl Changes {
    /// Notes for the other nodes what this job changed.
    fn note(&mut self, batch: &mut BatchNotices) {
        for end in [self.appended.first(), self.appended.last()]
            .into_iter()
            .flatten()
        {
            batch.add(Notice::Log(end.seq));
        }
        for member in &self.members {
            match member {
                Member::Upsert(sub) => batch.add(Notice::Subscriber(sub.authority.clone())),
                Member::Remove(authority) => batch.add(Notice::Subscriber(authority.clone())),
                Member::Cursor { .. } => {}
            }
        }
        for notice in self.notices.drain(..) {
            batch.add(notice);
        }
    }

    /// Runs on the writer thread right after the commit, so the mirror and the tail change in
    /// commit order whatever order the callers wake up in.
    fn apply(self, tail: &Tail, members: &RwLock<HashMap<String, Subscriber>>) {
        if !self.members.is_empty()
            && let Ok(mut members) = members.write()
        {
            for change in self.members {
                match change {
                    Member::Upsert(sub) => {
                        members.insert(sub.authority.clone(), sub);
                    }
                    Member::Remove(authority) => {
                        members.remove(&authority);
                    }
                    Member::Cursor {
                        authority,
                        cursor,
                        skipped,
                    } => {
                        if let Some(member) = members.get_mut(&authority) {
                            member.cursor = member.cursor.max(cursor);
                            member.skipped += skipped;
                        }
                    }
                }
            }
        }
        tail.push(self.appended);
    }
}

impl Store {
    /// Runs `f` inside the next group-commit transaction and returns its result once committed.
    /// A failing `f` rolls back only its own changes. What `f` records in [`Changes`] (log entries for
    /// the tail, subscriber changes for the in-memory mirror) is applied after the commit, in commit
    /// order, before the caller hears back.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>, &mut Changes) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let (tail, members) = (self.tail.clone(), self.members.clone());
        let job: Job = Box::new(move |conn: &Conn<'_>, batch: &mut BatchNotices| {
            let mut changes = Changes::default();
            let outcome = conn
                .execute_batch("SAVEPOINT job")
                .and_then(|()| f(conn, &mut changes));
            let undo = if outcome.is_err() {
                "ROLLBACK TO job; RELEASE job"
            } else {
                "RELEASE job"
            };
            let outcome = conn.execute_batch(undo).and(outcome);
            if outcome.is_ok() {
                changes.note(batch);
            }
            Box::new(move |commit: std::result::Result<(), String>| {
                let result = match commit {
                    Ok(()) => {
                        if outcome.is_ok() {
                            changes.apply(&tail, &members);
                        }
                        outcome
                    }
                    Err(reason) => {
                        Err(Error::Unavailable(format!("store commit failed: {reason}")))
                    }
                };
                let _ = tx.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Unavailable("store writer stopped".into()))?;
        rx.await.map_err(|_| {
            Error::Unavailable(
                "store write not done: the writer could not begin a transaction, or stopped".into(),
            )
        })?
    }
}

/// Commits queued jobs in batches: one transaction (one fsync) for everything waiting.
pub(super) fn writer_loop(
    mut writer: WriterConn,
    rx: std::sync::mpsc::Receiver<Job>,
    health: Arc<WriteHealth>,
    shared: Shared,
) {
    const MAX_BATCH: usize = 1024;
    let begin = writer.begin();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        // A connection that broke is replaced here; a transaction begun without its lock is ended.
        let begun = writer
            .conn()
            .and_then(|conn| match conn.execute_batch(&begin) {
                Ok(()) => Ok(conn),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            });
        let conn = match begun {
            Ok(conn) => conn,
            Err(e) => {
                // Dropping the jobs answers each waiting caller with Error::Unavailable.
                tracing::error!(error = %e, refused = jobs.len(), "store: cannot begin a transaction");
                health.record(&Err(format!("cannot begin a transaction: {e}")), false);
                continue;
            }
        };
        let before = conn.total_changes();
        let mut notices = BatchNotices::default();
        let completions: Vec<Completion> = jobs
            .into_iter()
            .map(|job| job(&conn, &mut notices))
            .collect();
        let wrote = conn.total_changes() != before;
        let mut first_seq = None;
        let commit = shared
            .notify(&conn, &mut notices, &mut first_seq)
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        health.record(&commit, wrote);
        shared.timings.commit(started.elapsed());
        // The tail first takes what other writers committed before this batch (none when this
        // store writes alone), then this batch's own entries, under the lock the store's listener
        // feeds it under.
        let _feeding = shared.feed.blocking_lock();
        if let (Ok(()), Some(first)) = (&commit, first_seq) {
            shared.read_in_before(&conn, first);
        }
        for completion in completions {
            completion(commit.clone());
        }
    }
}

/// What the writer needs to keep the tail complete when other writers share the database (the nodes
/// on one PostgreSQL database; two stores opened on one SQLite file): the tail, the lock it is fed
/// under, and on PostgreSQL the store's tag for its notices.
pub(super) struct Shared {
    /// The store's tag; `None`: no notices (SQLite, where no other node listens).
    pub(super) tag: Option<u64>,
    pub(super) tail: Arc<Tail>,
    pub(super) feed: Arc<tokio::sync::Mutex<()>>,
    /// Where the commits' time is counted.
    pub(super) timings: Arc<crate::store::timings::Timings>,
}

impl Shared {
    /// Sends the batch's notices (`pg_notify` is delivered at commit, only if the commit is) and
    /// notes the first sequence it appended, if it did.
    fn notify(
        &self,
        conn: &Conn<'_>,
        notices: &mut BatchNotices,
        first_seq: &mut Option<u64>,
    ) -> Result<()> {
        *first_seq = notices.first_log();
        let Some(tag) = self.tag else {
            return Ok(());
        };
        for notice in notices.drain() {
            conn.execute(
                "SELECT pg_notify(?1, ?2)",
                crate::store::db::params![super::notices::CHANNEL, payload(tag, &notice)],
            )?;
        }
        Ok(())
    }

    /// Reads into the tail what other nodes committed between its head and `first`, this batch's
    /// first entry (everything there committed before this batch did, under the write lock).
    fn read_in_before(&self, conn: &Conn<'_>, first: u64) {
        let head = self.tail.head();
        if first <= head + 1 {
            return;
        }
        if first - head > super::TAIL_CAPACITY as u64 {
            self.tail.skip_to(first - 1);
            return;
        }
        match read_entries(conn, head, (first - head - 1) as usize) {
            Ok(entries) => {
                self.tail
                    .push(entries.into_iter().filter(|e| e.seq < first).collect());
                self.tail.advance_to(first - 1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: reading other nodes' entries into the tail");
                self.tail.skip_to(first - 1);
            }
        }
    }
}

/// Checkpoints the write-ahead log every [`CHECKPOINT_EVERY`] while the store is open. PASSIVE: it copies
/// what no reader still needs and never makes the writer wait.
pub(super) fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<()>) {
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((log, copied)) if log > 0 => {
                tracing::debug!(log_pages = log, copied_pages = copied, "store checkpoint")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "store checkpoint failed"),
        }
    }
}
