//! The embedded store: one SQLite database in the data directory holding the subscribers, the append-only
//! activity log, each subscriber's delivery cursor and the ids already seen (deduplication).
//!
//! Why this shape: every accepted activity is written once, whatever the number of subscribers, and each
//! subscriber only keeps a cursor into the log (DESIGN.md section 2). Writes go through one writer thread
//! that commits whatever is queued in one transaction (group commit), so many inbox requests share one
//! fsync while each still learns that its own write is durable before it answers 202. Reads use their own
//! connection (WAL mode: readers never wait for the writer). The async API is narrow on purpose, so that a
//! PostgreSQL backend can implement the same calls later.

pub mod moderation;
pub mod published;
pub mod reader;
pub mod schemes;
pub mod tail;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::store::tail::Tail;
use crate::{Error, Result};

/// How a subscriber speaks to relays; decides what shape it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Mastodon, Misskey, GoToSocial…: follow `as:Public`, get LD-signed Creates verbatim, else Announces.
    Mastodon,
    /// Pleroma, Akkoma: the instance relay actor follows the relay actor; always gets Announce of object id.
    LitePub,
}

impl Style {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Style::Mastodon => "mastodon",
            Style::LitePub => "litepub",
        }
    }

    pub(crate) fn parse(s: &str) -> Style {
        if s == "litepub" {
            Style::LitePub
        } else {
            Style::Mastodon
        }
    }
}

/// An instance subscribed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The instance's identity: host and non-default port of its actor id.
    pub authority: String,
    /// The actor that followed the relay.
    pub actor_id: String,
    /// Where deliveries go (shared inbox when the actor has one).
    pub inbox: String,
    /// Which relay protocol it uses.
    pub style: Style,
    /// Highest log sequence delivered (or skipped) in order.
    pub cursor: u64,
    /// Entries the subscriber never got because they were pruned or refused permanently.
    pub skipped: u64,
    /// Unix seconds of the subscription.
    pub created_at: i64,
    /// The id of the Follow that subscribed (what its Undo names); empty when unknown.
    pub follow_id: String,
}

/// One accepted activity (or a reply addressed to one subscriber) in the log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the log; strictly increasing, never reused.
    pub seq: u64,
    /// Authority of the instance it came from; never delivered back there.
    pub origin: String,
    /// When set, only this subscriber receives the entry (Accept, Follow back).
    pub target: Option<String>,
    /// Activity type, for logs and metrics.
    pub kind: String,
    /// Unix milliseconds when it was accepted.
    pub received_ms: i64,
    /// Body sent to Mastodon-style subscribers.
    pub mastodon_body: Bytes,
    /// Body sent to LitePub subscribers.
    pub litepub_body: Bytes,
    /// The actor whose key HTTP-signed the request that brought the activity; `None` for the relay's
    /// own entries (Accept, Follow back). See [`Entry::received`].
    pub signer: Option<String>,
    /// The activity as received, when it is not [`Entry::mastodon_body`] itself (kept once, not twice).
    pub original: Option<Bytes>,
    /// `Digest` header values of the two bodies, computed on first use: a body sent to hundreds of
    /// subscribers is hashed once.
    pub digests: [std::sync::OnceLock<String>; 2],
}

impl Entry {
    /// The `Digest` header value of [`Entry::body_for`]`(style)`.
    pub fn digest_for(&self, style: Style) -> &str {
        let slot = match style {
            Style::Mastodon => &self.digests[0],
            Style::LitePub => &self.digests[1],
        };
        slot.get_or_init(|| crate::httpsig::digest_header(self.body_for(style)))
    }

    /// Whether `subscriber` should receive this entry.
    pub fn is_for(&self, subscriber: &str) -> bool {
        match &self.target {
            Some(target) => target == subscriber,
            None => self.origin != subscriber,
        }
    }

    /// The body for a subscriber of `style`.
    pub fn body_for(&self, style: Style) -> &Bytes {
        match style {
            Style::Mastodon => &self.mastodon_body,
            Style::LitePub => &self.litepub_body,
        }
    }

    /// The activity as received and the actor whose key signed it (what the indexer reads); `None`
    /// for entries the relay wrote itself.
    pub fn received(&self) -> Option<(&Bytes, &str)> {
        let signer = self.signer.as_deref()?;
        Some((
            self.original.as_ref().unwrap_or(&self.mastodon_body),
            signer,
        ))
    }
}

/// An entry about to be appended (the store assigns `seq`).
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// See [`Entry::origin`].
    pub origin: String,
    /// See [`Entry::target`].
    pub target: Option<String>,
    /// See [`Entry::kind`].
    pub kind: String,
    /// See [`Entry::mastodon_body`].
    pub mastodon_body: Bytes,
    /// See [`Entry::litepub_body`].
    pub litepub_body: Bytes,
    /// See [`Entry::signer`].
    pub signer: Option<String>,
    /// See [`Entry::original`]: `None` when `mastodon_body` is the activity as received.
    pub original: Option<Bytes>,
}

/// What [`Store::subscribe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A new subscriber; delivery starts after the current head of the log.
    New,
    /// The instance was already subscribed with another actor, inbox or protocol, now replaced; its
    /// cursor is unchanged.
    Again,
    /// The same actor followed again with the same inbox and protocol: only the Follow id was updated,
    /// no reply was stored, and its delivery worker need not change.
    Unchanged,
}

type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: std::sync::mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    tail: Arc<Tail>,
    /// The subscribers, mirrored in memory: every inbox request asks whether its instance is subscribed,
    /// and a database read (a thread hop and a lock) per request showed in the inbound benchmark.
    members: Arc<RwLock<HashMap<String, Subscriber>>>,
    /// Dropped with the last handle; the checkpoint thread then ends.
    _alive: Arc<()>,
}

/// How often the checkpoint thread moves committed pages from the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many recent entries the in-memory tail keeps: enough for every healthy subscriber to read from
/// memory during a burst, small enough that a tail full of large posts stays a few tens of MB.
const TAIL_CAPACITY: usize = 4096;

/// How many bytes of bodies the in-memory tail keeps at most, whatever the entry count: 4,096 entries
/// of 1 MB each would otherwise be 4 GB. Workers that fall behind it read the store.
const TAIL_MAX_BYTES: usize = 32 * 1024 * 1024;

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

/// Columns added to the log after its first release, with their declarations; [`open_writer`] adds
/// the missing ones to an older database.
const LOG_ADDED_COLUMNS: &[(&str, &str)] = &[("signer", "TEXT"), ("original", "BLOB")];

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

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

/// The writer's connection, with the schema in place. SQLite would checkpoint inside the commit that
/// fills the log past 1,000 pages, so one inbox batch in a thousand would wait for the copy and its
/// fsync; the checkpoint thread does it instead. The write-ahead log file is truncated back to 64 MiB
/// when it restarts.
fn open_writer(path: &Path) -> Result<Connection> {
    let writer = open_connection(path)?;
    writer.execute_batch(SCHEMA)?;
    migrate(&writer)?;
    migrate_log(&writer)?;
    writer.execute_batch(published::SCHEMA)?;
    writer.execute_batch(schemes::SCHEMA)?;
    moderation::migrate(&writer)?;
    writer.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")?;
    Ok(writer)
}

/// What a write changes outside the database, applied once it is committed.
#[derive(Default)]
struct Changes {
    /// Log entries for the in-memory tail.
    appended: Vec<Entry>,
    /// Changes to the in-memory subscriber mirror.
    members: Vec<Member>,
}

/// One change to the subscriber mirror, the same as the write made to the `subscribers` table.
enum Member {
    Upsert(Subscriber),
    Remove(String),
    Cursor {
        authority: String,
        cursor: u64,
        skipped: u64,
    },
}

impl Changes {
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

/// Starts one of the store's threads for the database at `path`.
fn spawn_thread(name: &str, path: &Path, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|source| Error::Io {
            path: path.display().to_string(),
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
    /// Opens (creating when needed) the database at `path` and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store> {
        let writer = open_writer(path)?;
        let checkpointer = open_connection(path)?;
        let reader = open_connection(path)?;
        let tail = Arc::new(Tail::new(head_seq(&reader)?, TAIL_CAPACITY, TAIL_MAX_BYTES));
        let members = all_subscribers(&reader)?
            .into_iter()
            .map(|s| (s.authority.clone(), s))
            .collect();
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        spawn_thread("plaza-store-writer", path, move || writer_loop(writer, rx))?;
        let alive = Arc::new(());
        let handle = Arc::downgrade(&alive);
        spawn_thread("plaza-store-checkpoint", path, move || {
            checkpoint_loop(checkpointer, handle)
        })?;
        Ok(Store {
            jobs,
            reader: Arc::new(Mutex::new(reader)),
            tail,
            members: Arc::new(RwLock::new(members)),
            _alive: alive,
        })
    }

    /// The in-memory tail of the log, fed by this store's commits.
    pub fn tail(&self) -> &Arc<Tail> {
        &self.tail
    }

    /// Runs `f` inside the next group-commit transaction and returns its result once committed.
    /// A failing `f` rolls back only its own changes. What `f` records in [`Changes`] (log entries for
    /// the tail, subscriber changes for the in-memory mirror) is applied after the commit, in commit
    /// order, before the caller hears back.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Changes) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let (tail, members) = (self.tail.clone(), self.members.clone());
        let job: Job = Box::new(move |conn: &Connection| {
            let mut changes = Changes::default();
            let outcome = conn
                .execute_batch("SAVEPOINT job")
                .map_err(Error::from)
                .and_then(|()| f(conn, &mut changes));
            let undo = if outcome.is_err() {
                "ROLLBACK TO job; RELEASE job"
            } else {
                "RELEASE job"
            };
            let outcome = match conn.execute_batch(undo) {
                Ok(()) => outcome,
                Err(e) => Err(Error::from(e)),
            };
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
        rx.await
            .map_err(|_| Error::Unavailable("store writer stopped".into()))?
    }

    /// Runs a read on the reader connection off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| Error::Unavailable("store reader poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("store read task: {e}")))?
    }

    /// Appends `entry` unless one of `dedup_ids` was seen before; records them as seen.
    /// Returns the assigned sequence, or `None` for a duplicate.
    pub async fn append_unless_seen(
        &self,
        entry: NewEntry,
        dedup_ids: Vec<String>,
    ) -> Result<Option<u64>> {
        self.write(move |conn, changes| {
            let now = now_ms();
            for id in &dedup_ids {
                let seen: Option<i64> = conn
                    .query_row("SELECT at FROM seen WHERE id = ?1", [id], |r| r.get(0))
                    .optional()?;
                if seen.is_some() {
                    return Ok(None);
                }
            }
            for id in &dedup_ids {
                conn.execute(
                    "INSERT INTO seen (id, at) VALUES (?1, ?2)",
                    params![id, now],
                )?;
            }
            insert_entry(conn, entry, now, &mut changes.appended).map(Some)
        })
        .await
    }

    /// Appends `entry` with no deduplication (replies to one subscriber).
    pub async fn append(&self, entry: NewEntry) -> Result<u64> {
        self.write(move |conn, changes| insert_entry(conn, entry, now_ms(), &mut changes.appended))
            .await
    }

    /// Records a subscription and appends the replies it needs (`replies`, each targeted at the new
    /// subscriber) in the same transaction. A new subscriber's cursor starts at the head of the log.
    ///
    /// A Follow again by the same actor with the same inbox and protocol ([`Subscribed::Unchanged`])
    /// stores only its Follow (the one its Undo will name) and none of `replies`: a re-Follow costs no
    /// log space, and the caller answers it without touching the delivery worker. A blocked instance is
    /// refused with [`Error::InstanceBlocked`], in the same transaction, so a Follow racing an admin
    /// removal cannot slip in after it.
    pub async fn subscribe(
        &self,
        sub: Subscriber,
        follow: String,
        replies: Vec<NewEntry>,
    ) -> Result<(Subscribed, Subscriber)> {
        self.write(move |conn, changes| {
            if moderation::blocked_in(conn, &sub.authority)? {
                return Err(Error::InstanceBlocked(sub.authority));
            }
            let existing = load_subscriber(conn, &sub.authority)?;
            let (state, stored) = match existing {
                Some(old)
                    if old.actor_id == sub.actor_id
                        && old.inbox == sub.inbox
                        && old.style == sub.style =>
                {
                    conn.execute(
                        "UPDATE subscribers SET follow = ?2, follow_id = ?3 WHERE authority = ?1",
                        params![sub.authority, follow, sub.follow_id],
                    )?;
                    let stored = Subscriber {
                        follow_id: sub.follow_id,
                        ..old
                    };
                    changes.members.push(Member::Upsert(stored.clone()));
                    return Ok((Subscribed::Unchanged, stored));
                }
                Some(mut old) => {
                    conn.execute(
                        "UPDATE subscribers SET actor_id = ?2, inbox = ?3, style = ?4, follow = ?5, follow_id = ?6 WHERE authority = ?1",
                        params![sub.authority, sub.actor_id, sub.inbox, sub.style.as_str(), follow, sub.follow_id],
                    )?;
                    old.actor_id = sub.actor_id;
                    old.inbox = sub.inbox;
                    old.style = sub.style;
                    old.follow_id = sub.follow_id;
                    (Subscribed::Again, old)
                }
                None => {
                    let head = head_seq(conn)?;
                    let created_at = now_ms() / 1000;
                    conn.execute(
                        "INSERT INTO subscribers (authority, actor_id, inbox, style, follow, cursor, created_at, follow_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![sub.authority, sub.actor_id, sub.inbox, sub.style.as_str(), follow, head as i64, created_at, sub.follow_id],
                    )?;
                    (Subscribed::New, Subscriber { cursor: head, created_at, skipped: 0, ..sub })
                }
            };
            let now = now_ms();
            for reply in replies {
                insert_entry(conn, reply, now, &mut changes.appended)?;
            }
            changes.members.push(Member::Upsert(stored.clone()));
            Ok((state, stored))
        })
        .await
    }

    /// Removes a subscription; returns whether there was one.
    pub async fn unsubscribe(&self, authority: &str) -> Result<bool> {
        let key = authority.to_string();
        self.write(move |conn, changes| {
            let removed = conn.execute("DELETE FROM subscribers WHERE authority = ?1", [&key])? > 0;
            changes.members.push(Member::Remove(key));
            Ok(removed)
        })
        .await
    }

    /// Moves a subscriber's cursor forward (never backward) and adds to its skipped count.
    pub async fn advance_cursor(&self, authority: &str, cursor: u64, skipped: u64) -> Result<()> {
        let key = authority.to_string();
        self.write(move |conn, changes| {
            conn.execute(
                "UPDATE subscribers SET cursor = MAX(cursor, ?2), skipped = skipped + ?3 WHERE authority = ?1",
                params![key, cursor as i64, skipped as i64],
            )?;
            changes.members.push(Member::Cursor {
                authority: key,
                cursor,
                skipped,
            });
            Ok(())
        })
        .await
    }

    /// One subscriber by authority (from memory; the database is the source it mirrors).
    pub fn subscriber(&self, authority: &str) -> Option<Subscriber> {
        self.members.read().ok()?.get(authority).cloned()
    }

    /// How `authority` is subscribed, if it is: what every inbox request asks, without copying the
    /// whole subscriber.
    pub fn subscribed_style(&self, authority: &str) -> Option<Style> {
        self.members.read().ok()?.get(authority).map(|s| s.style)
    }

    /// All subscribers, by authority, as stored (cursors as last persisted).
    pub async fn subscribers(&self) -> Result<Vec<Subscriber>> {
        self.read(all_subscribers).await
    }

    /// How many instances are subscribed.
    pub fn subscriber_count(&self) -> usize {
        self.members.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Up to `limit` log entries with `seq > after`, in order.
    pub async fn read_log(&self, after: u64, limit: usize) -> Result<Vec<Entry>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, origin, target, kind, received_ms, mastodon_body, litepub_body, signer, original
                 FROM log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
                Ok(Entry {
                    seq: r.get::<_, i64>(0)? as u64,
                    origin: r.get(1)?,
                    target: r.get(2)?,
                    kind: r.get(3)?,
                    received_ms: r.get(4)?,
                    mastodon_body: Bytes::from(r.get::<_, Vec<u8>>(5)?),
                    litepub_body: Bytes::from(r.get::<_, Vec<u8>>(6)?),
                    signer: r.get(7)?,
                    original: r.get::<_, Option<Vec<u8>>>(8)?.map(Bytes::from),
                    digests: Default::default(),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Up to `limit` entries after `cursor`: from the in-memory tail when it still holds them (a reader
    /// that keeps up), else from the database.
    pub async fn entries_after(&self, cursor: u64, limit: usize) -> Result<Vec<Arc<Entry>>> {
        if let Some(entries) = self.tail.after(cursor, limit) {
            return Ok(entries);
        }
        Ok(self
            .read_log(cursor, limit)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// The highest sequence ever assigned (0 for an empty log).
    pub async fn head(&self) -> Result<u64> {
        self.read(head_seq).await
    }

    /// Deletes log entries and seen ids older than `max_age_ms`; returns how many entries went.
    pub async fn prune(&self, max_age_ms: i64) -> Result<usize> {
        self.write(move |conn, _| {
            let cutoff = now_ms() - max_age_ms;
            let n = conn.execute("DELETE FROM log WHERE received_ms < ?1", [cutoff])?;
            conn.execute("DELETE FROM seen WHERE at < ?1", [cutoff])?;
            published::prune(conn, cutoff)?;
            Ok(n)
        })
        .await
    }

    /// The authorities of all subscribers (from memory).
    pub fn subscriber_authorities(&self) -> Vec<String> {
        self.members
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The position of a named log reader that is not a subscriber (the indexer), if it has saved one.
    pub async fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let key = name.to_string();
        self.read(move |conn| {
            let seq: Option<i64> = conn
                .query_row("SELECT seq FROM cursors WHERE name = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(seq.map(|s| s as u64))
        })
        .await
    }

    /// Saves the position of a named log reader (never moves it backward).
    pub async fn set_cursor(&self, name: &str, seq: u64) -> Result<()> {
        let key = name.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                params![key, seq as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// The instances the index holds (their NodeInfo, their posts), with the Unix seconds of their
    /// last NodeInfo fetch; what the indexer compares with the subscribers to add and purge instances.
    pub async fn index_instances(&self) -> Result<Vec<(String, i64)>> {
        self.read(|conn| {
            query_rows(
                conn,
                "SELECT authority, nodeinfo_at FROM index_instances ORDER BY authority",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Records that the index holds `authority`, its NodeInfo fetched at `nodeinfo_at` (Unix seconds).
    pub async fn mark_index_instance(&self, authority: &str, nodeinfo_at: i64) -> Result<()> {
        let key = authority.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO index_instances (authority, nodeinfo_at) VALUES (?1, ?2)
                 ON CONFLICT(authority) DO UPDATE SET nodeinfo_at = excluded.nodeinfo_at",
                params![key, nodeinfo_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Records that an author of indexed posts was fetched at `fetched_at` (Unix seconds): the
    /// indexer fetches authors again on a schedule to re-check their consent, across restarts.
    pub async fn note_author(&self, id: &str, fetched_at: i64) -> Result<()> {
        let key = id.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO index_authors (id, fetched_at) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET fetched_at = excluded.fetched_at",
                params![key, fetched_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` authors last fetched before `before` (Unix seconds), oldest first.
    pub async fn stale_authors(&self, before: i64, limit: usize) -> Result<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM index_authors WHERE fetched_at < ?1 ORDER BY fetched_at LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }

    /// Forgets an author (deleted, or of an instance that left).
    pub async fn forget_author(&self, id: &str) -> Result<()> {
        let key = id.to_string();
        self.write(move |conn, _| {
            conn.execute("DELETE FROM index_authors WHERE id = ?1", [&key])?;
            Ok(())
        })
        .await
    }

    /// Records that the index no longer holds `authority`.
    pub async fn forget_index_instance(&self, authority: &str) -> Result<()> {
        let key = authority.to_string();
        self.write(move |conn, _| {
            conn.execute("DELETE FROM index_instances WHERE authority = ?1", [&key])?;
            Ok(())
        })
        .await
    }
}

const SUBSCRIBER_COLUMNS: &str = "SELECT authority, actor_id, inbox, style, cursor, skipped, created_at, follow_id FROM subscribers";

fn subscriber_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        authority: r.get(0)?,
        actor_id: r.get(1)?,
        inbox: r.get(2)?,
        style: Style::parse(&r.get::<_, String>(3)?),
        cursor: r.get::<_, i64>(4)? as u64,
        skipped: r.get::<_, i64>(5)? as u64,
        created_at: r.get(6)?,
        follow_id: r.get(7)?,
    })
}

fn all_subscribers(conn: &Connection) -> Result<Vec<Subscriber>> {
    query_rows(
        conn,
        &format!("{SUBSCRIBER_COLUMNS} ORDER BY authority"),
        [],
        subscriber_from_row,
    )
}

/// Every row `sql` returns for `params`, each made by `row`: the prepare, map and collect a listing
/// query needs, written once.
pub(crate) fn query_rows<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn load_subscriber(conn: &Connection, authority: &str) -> Result<Option<Subscriber>> {
    Ok(conn
        .query_row(
            &format!("{SUBSCRIBER_COLUMNS} WHERE authority = ?1"),
            [authority],
            subscriber_from_row,
        )
        .optional()?)
}

fn head_seq(conn: &Connection) -> Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'log'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

fn insert_entry(
    conn: &Connection,
    e: NewEntry,
    now: i64,
    appended: &mut Vec<Entry>,
) -> Result<u64> {
    conn.prepare_cached(
        "INSERT INTO log (origin, target, kind, received_ms, mastodon_body, litepub_body, signer, original)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.origin,
        e.target,
        e.kind,
        now,
        &e.mastodon_body[..],
        &e.litepub_body[..],
        e.signer,
        e.original.as_deref()
    ])?;
    let seq = conn.last_insert_rowid() as u64;
    published::record_entry(conn, seq, &e.litepub_body, now)?;
    appended.push(Entry {
        seq,
        origin: e.origin,
        target: e.target,
        kind: e.kind,
        received_ms: now,
        mastodon_body: e.mastodon_body,
        litepub_body: e.litepub_body,
        signer: e.signer,
        original: e.original,
        digests: Default::default(),
    });
    Ok(seq)
}

/// Commits queued jobs in batches: one transaction (one fsync) for everything waiting.
fn writer_loop(conn: Connection, rx: std::sync::mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 1024;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs answers each waiting caller with Error::Unavailable.
            tracing::error!(error = %e, refused = jobs.len(), "store: cannot begin a transaction");
            continue;
        }
        let completions: Vec<Completion> = jobs.into_iter().map(|job| job(&conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for completion in completions {
            completion(commit.clone());
        }
    }
}

/// Checkpoints the write-ahead log every [`CHECKPOINT_EVERY`] while the store is open. PASSIVE: it copies
/// what no reader still needs and never makes the writer wait.
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<()>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(origin: &str, n: u32) -> NewEntry {
        NewEntry {
            origin: origin.into(),
            target: None,
            kind: "Create".into(),
            mastodon_body: Bytes::from(format!("{{\"n\":{n}}}")),
            litepub_body: Bytes::from(format!("{{\"announce\":{n}}}")),
            signer: None,
            original: None,
        }
    }

    fn subscriber(authority: &str) -> Subscriber {
        Subscriber {
            authority: authority.into(),
            actor_id: format!("https://{authority}/actor"),
            inbox: format!("https://{authority}/inbox"),
            style: Style::Mastodon,
            cursor: 0,
            skipped: 0,
            created_at: 0,
            follow_id: format!("https://{authority}/follows/1"),
        }
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_outside_the_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let autocheckpoint: i64 = open_writer(&path)
            .unwrap()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0, "commits never checkpoint themselves");
        let store = Store::open(&path).unwrap();
        let big = |n: u32| NewEntry {
            mastodon_body: Bytes::from(vec![b'x'; 64 * 1024]),
            ..entry("a.example", n)
        };
        for n in 0..80 {
            store
                .append_unless_seen(big(n), vec![format!("id-{n}")])
                .await
                .unwrap();
        }
        // About 5 MB committed, past the 1,000 pages at which SQLite would checkpoint by itself. With
        // that off, only the checkpoint thread moves the log into the database file.
        let db_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while db_size() < 5_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint thread did not copy the log into the database"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_subscriber_mirror_follows_commit_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        for round in 0..30 {
            // A Follow racing an Undo (or an admin removal) of the same instance.
            let (a, b) = (store.clone(), store.clone());
            let follow = tokio::spawn(async move {
                a.subscribe(subscriber("b.example"), "{}".into(), vec![])
                    .await
                    .unwrap()
            });
            let undo = tokio::spawn(async move { b.unsubscribe("b.example").await.unwrap() });
            follow.await.unwrap();
            undo.await.unwrap();
            let stored = store.subscribers().await.unwrap();
            assert_eq!(
                store.subscriber("b.example").is_some(),
                stored.iter().any(|s| s.authority == "b.example"),
                "round {round}: memory and database disagree"
            );
            assert_eq!(store.subscriber_count(), stored.len());
        }
    }

    #[tokio::test]
    async fn appends_are_durable_deduplicated_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            let tasks: Vec<_> = (0..50)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .append_unless_seen(entry("a.example", n), vec![format!("id-{n}")])
                            .await
                    })
                })
                .collect();
            for t in tasks {
                assert!(t.await.unwrap().unwrap().is_some());
            }
            assert_eq!(
                store
                    .append_unless_seen(entry("a.example", 7), vec!["id-7".into()])
                    .await
                    .unwrap(),
                None
            );
            let seqs: Vec<u64> = store
                .tail()
                .after(0, 100)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect();
            assert_eq!(
                seqs,
                (1..=50).collect::<Vec<_>>(),
                "the tail sees commits in sequence order"
            );
        }
        let reopened = Store::open(&path).unwrap();
        assert_eq!(reopened.head().await.unwrap(), 50);
        let log = reopened.read_log(48, 10).await.unwrap();
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![49, 50]);
        assert_eq!(
            log[0].digest_for(Style::Mastodon),
            crate::httpsig::digest_header(&log[0].mastodon_body)
        );
        assert_eq!(
            reopened
                .append_unless_seen(entry("a.example", 1), vec!["id-1".into()])
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_refollow_stores_nothing_but_its_follow_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let accept = || NewEntry {
            target: Some("b.example".into()),
            ..entry("relay.example", 1)
        };
        store
            .subscribe(subscriber("b.example"), "{}".into(), vec![accept()])
            .await
            .unwrap();
        store.advance_cursor("b.example", 1, 0).await.unwrap();
        let head = store.head().await.unwrap();
        let refollow = Subscriber {
            follow_id: "https://b.example/follows/2".into(),
            ..subscriber("b.example")
        };
        let (state, stored) = store
            .subscribe(refollow, "{}".into(), vec![accept()])
            .await
            .unwrap();
        assert_eq!(state, Subscribed::Unchanged);
        assert_eq!(store.head().await.unwrap(), head, "no Accept entry stored");
        assert_eq!(stored.cursor, 1, "the cursor stays where it was");
        assert_eq!(
            store.subscriber("b.example").unwrap().follow_id,
            "https://b.example/follows/2",
            "the newest Follow is the one its Undo will name"
        );
        // A new inbox is a real change: replies are stored and the caller restarts the worker.
        let moved = Subscriber {
            inbox: "https://b.example/new-inbox".into(),
            ..subscriber("b.example")
        };
        let (state, _) = store
            .subscribe(moved, "{}".into(), vec![accept()])
            .await
            .unwrap();
        assert_eq!(state, Subscribed::Again);
        assert_eq!(store.head().await.unwrap(), head + 1);
    }

    #[tokio::test]
    async fn a_block_refuses_follows_until_lifted_and_survives_a_restart() {
        use crate::moderation::audit::NewAudit;
        use crate::moderation::blocks::{Block, BlockKind};
        let audit = |action| NewAudit {
            admin: "admin".into(),
            action,
            target: "example.org".into(),
            detail: serde_json::Value::Null,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let block = Block::new(BlockKind::Domain, "example.org", "spam").unwrap();
        store
            .add_blocks(vec![block], vec![], audit("block"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .subscribe(subscriber("social.example.org:8443"), "{}".into(), vec![])
                .await,
            Err(Error::InstanceBlocked(_))
        ));
        assert!(store.subscriber("social.example.org:8443").is_none());
        drop(store);
        let store = Store::open(&path).unwrap();
        let kept = store.blocks().await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].reason, "spam");
        assert!(kept[0].created_at > 0);
        assert!(
            store
                .remove_block(BlockKind::Domain, "example.org", audit("unblock"))
                .await
                .unwrap()
        );
        store
            .subscribe(subscriber("social.example.org:8443"), "{}".into(), vec![])
            .await
            .unwrap();
        assert!(store.subscriber("social.example.org:8443").is_some());
    }

    #[tokio::test]
    async fn an_older_database_gets_follow_ids_from_its_stored_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE subscribers (authority TEXT PRIMARY KEY, actor_id TEXT NOT NULL,
                    inbox TEXT NOT NULL, style TEXT NOT NULL, follow TEXT NOT NULL,
                    cursor INTEGER NOT NULL, skipped INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
                 INSERT INTO subscribers VALUES ('b.example', 'https://b.example/actor', 'https://b.example/inbox',
                    'mastodon', '{\"id\":\"https://b.example/f/7\",\"type\":\"Follow\"}', 0, 0, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.subscriber("b.example").unwrap().follow_id,
            "https://b.example/f/7"
        );
    }

    #[tokio::test]
    async fn subscriptions_start_at_the_head_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        store.append(entry("x.example", 1)).await.unwrap();
        let accept = NewEntry {
            target: Some("b.example".into()),
            ..entry("relay.example", 2)
        };
        let (state, stored) = store
            .subscribe(subscriber("b.example"), "{}".into(), vec![accept])
            .await
            .unwrap();
        assert_eq!(state, Subscribed::New);
        assert_eq!(
            stored.cursor, 1,
            "history before the subscription is not delivered"
        );
        let (again, _) = store
            .subscribe(subscriber("b.example"), "{}".into(), vec![])
            .await
            .unwrap();
        assert_eq!(again, Subscribed::Unchanged);
        store.advance_cursor("b.example", 2, 0).await.unwrap();
        assert_eq!(store.subscriber("b.example").unwrap().cursor, 2);
        let log = store.read_log(1, 10).await.unwrap();
        assert!(log[0].is_for("b.example") && !log[0].is_for("c.example"));
        drop(store);
        let reopened = Store::open(&path).unwrap();
        assert_eq!(reopened.subscriber("b.example").unwrap().cursor, 2);
        assert!(reopened.unsubscribe("b.example").await.unwrap());
        assert!(reopened.subscriber("b.example").is_none());
        assert_eq!(reopened.subscriber_count(), 0);
    }

    #[tokio::test]
    async fn entries_keep_what_was_received_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let verbatim = NewEntry {
            signer: Some("https://a.example/users/alice".into()),
            ..entry("a.example", 1)
        };
        let announced = NewEntry {
            signer: Some("https://a.example/actor".into()),
            original: Some(Bytes::from_static(b"{\"as\":\"received\"}")),
            ..entry("a.example", 2)
        };
        store.append(verbatim).await.unwrap();
        store.append(announced).await.unwrap();
        store.append(entry("relay.example", 3)).await.unwrap();
        let from_tail = store.tail().after(0, 10).unwrap();
        drop(store);
        let reopened = Store::open(&path).unwrap();
        let from_disk = reopened.read_log(0, 10).await.unwrap();
        for log in [
            from_tail.iter().map(|e| (**e).clone()).collect::<Vec<_>>(),
            from_disk,
        ] {
            let (body, signer) = log[0].received().unwrap();
            assert_eq!(
                (&body[..], signer),
                (&b"{\"n\":1}"[..], "https://a.example/users/alice"),
                "the delivered body is the original"
            );
            let (body, signer) = log[1].received().unwrap();
            assert_eq!(
                (&body[..], signer),
                (&b"{\"as\":\"received\"}"[..], "https://a.example/actor")
            );
            assert!(log[2].received().is_none(), "the relay's own entries");
        }
    }

    #[tokio::test]
    async fn an_older_log_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, target TEXT,
                 kind TEXT NOT NULL, received_ms INTEGER NOT NULL, mastodon_body BLOB NOT NULL,
                 litepub_body BLOB NOT NULL);
                 INSERT INTO log (origin, kind, received_ms, mastodon_body, litepub_body)
                 VALUES ('a.example', 'Create', 1, x'7b7d', x'7b7d');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let old = store.read_log(0, 10).await.unwrap();
        assert_eq!(old.len(), 1);
        assert!(old[0].received().is_none());
        store.append(entry("a.example", 2)).await.unwrap();
        assert_eq!(store.read_log(0, 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn named_cursors_and_index_instances_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.cursor("indexer").await.unwrap(), None);
            store.set_cursor("indexer", 7).await.unwrap();
            store.set_cursor("indexer", 5).await.unwrap();
            store.mark_index_instance("a.example", 100).await.unwrap();
            store.mark_index_instance("b.example", 100).await.unwrap();
            store.mark_index_instance("a.example", 200).await.unwrap();
            store.forget_index_instance("b.example").await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.cursor("indexer").await.unwrap(),
            Some(7),
            "a cursor never moves backward"
        );
        assert_eq!(
            store.index_instances().await.unwrap(),
            vec![("a.example".to_string(), 200)]
        );
        assert_eq!(store.cursor("other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn authors_due_for_a_refresh_are_listed_oldest_first_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            store
                .note_author("https://a.example/users/new", 300)
                .await
                .unwrap();
            store
                .note_author("https://a.example/users/old", 100)
                .await
                .unwrap();
            store
                .note_author("https://a.example/users/mid", 200)
                .await
                .unwrap();
            store
                .note_author("https://a.example/users/gone", 50)
                .await
                .unwrap();
            store
                .forget_author("https://a.example/users/gone")
                .await
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.stale_authors(250, 10).await.unwrap(),
            vec!["https://a.example/users/old", "https://a.example/users/mid"]
        );
        assert_eq!(store.stale_authors(250, 1).await.unwrap().len(), 1);
        store
            .note_author("https://a.example/users/old", 400)
            .await
            .unwrap();
        assert_eq!(
            store.stale_authors(250, 10).await.unwrap(),
            vec!["https://a.example/users/mid"]
        );
    }
}
