//! The append-only log: the entries every subscriber and the indexer read (each with a body per relay
//! [`Style`]), appending (deduplicated by activity id), reading after a cursor (from the in-memory tail
//! while it holds them) and pruning past the retention window.

use std::sync::Arc;

use crate::store::db::{Conn, Param, params};
use axum::body::Bytes;

use crate::Result;
use crate::store::{Store, now_ms, published, shares, topics};
use crate::topics::carry::Carry;

/// How a subscriber speaks to relays; decides what shape it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// When set, the entry is a post carried by topics, for their followers only (see
    /// [`crate::topics::carry`]): no subscriber receives it.
    pub carry: Option<Arc<Carry>>,
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
        if self.carry.is_some() {
            return false;
        }
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

/// One carry for [`Store::append_carries`]: the origin its entry is filed under, what the topics
/// carry, the author's activity when it goes verbatim (else empty), and the id that deduplicates it.
#[derive(Debug)]
pub struct CarryAppend {
    pub origin: String,
    pub carry: Carry,
    pub body: Bytes,
    pub dedup_id: String,
}

impl Store {
    /// Appends `entry` unless one of `dedup_ids` was seen before; records them as seen.
    /// Returns the assigned sequence, or `None` for a duplicate (which records nothing).
    ///
    /// An id is taken by whichever transaction claimed it first, of this node or another sharing the
    /// database, so a retry landing on another node at the same moment is a duplicate there, not a
    /// unique violation: on SQLite each id is claimed by one `INSERT … ON CONFLICT DO NOTHING`; on
    /// PostgreSQL the check, the claims and the append are one statement under the writers' lock
    /// (`pg_append`).
    pub async fn append_unless_seen(
        &self,
        entry: NewEntry,
        dedup_ids: Vec<String>,
    ) -> Result<Option<u64>> {
        self.write(move |conn, changes| {
            let now = now_ms();
            insert_entry_unless_seen(conn, entry, None, now, &dedup_ids, &mut changes.appended)
        })
        .await
    }

    /// Appends what topics carry (see [`crate::topics::carry`]), `body` being the author's activity
    /// when it goes verbatim, unless `dedup_id` was seen before (the indexer replaying entries after a
    /// restart); then `None`. What the topics remember of the post (which carried it, for their
    /// outboxes and its later edits) commits in the same transaction.
    pub async fn append_carry(
        &self,
        origin: String,
        carry: Carry,
        body: Bytes,
        dedup_id: String,
    ) -> Result<Option<u64>> {
        let appended = self
            .append_carries(vec![CarryAppend {
                origin,
                carry,
                body,
                dedup_id,
            }])
            .await?;
        Ok(appended.into_iter().next().flatten())
    }

    /// [`Store::append_carry`] for several carries in order, in one job of one transaction: the
    /// carries of an indexer batch cost one commit, not one each.
    pub async fn append_carries(&self, carries: Vec<CarryAppend>) -> Result<Vec<Option<u64>>> {
        if carries.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn, changes| {
            let now = now_ms();
            let mut seqs = Vec::with_capacity(carries.len());
            for CarryAppend {
                origin,
                carry,
                body,
                dedup_id,
            } in carries
            {
                let entry = NewEntry {
                    origin,
                    target: None,
                    kind: format!("carry:{}", carry.kind.as_str()),
                    mastodon_body: body,
                    litepub_body: Bytes::new(),
                    signer: None,
                    original: None,
                };
                let appended = &mut changes.appended;
                let seq = insert_entry_unless_seen(
                    conn,
                    entry,
                    Some(&carry),
                    now,
                    &[dedup_id],
                    appended,
                )?;
                if let Some(seq) = seq {
                    topics::record_carried(conn, seq, &carry, now)?;
                }
                seqs.push(seq);
            }
            Ok(seqs)
        })
        .await
    }

    /// Appends `entry` with no deduplication (replies to one subscriber).
    pub async fn append(&self, entry: NewEntry) -> Result<u64> {
        self.write(move |conn, changes| {
            insert_entry(conn, entry, None, now_ms(), &mut changes.appended)
        })
        .await
    }

    /// Up to `limit` log entries with `seq > after`, in order.
    pub async fn read_log(&self, after: u64, limit: usize) -> Result<Vec<Entry>> {
        self.read(move |conn| read_entries(conn, after, limit))
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
            let n = conn.execute("DELETE FROM log WHERE received_ms < ?1", params![cutoff])?;
            conn.execute("DELETE FROM seen WHERE at < ?1", params![cutoff])?;
            published::prune(conn, cutoff)?;
            shares::prune(conn)?;
            topics::prune(conn, cutoff)?;
            Ok(n)
        })
        .await
    }
}

/// Up to `limit` log entries with `seq > after`, in order, on `conn`.
pub(super) fn read_entries(conn: &Conn<'_>, after: u64, limit: usize) -> Result<Vec<Entry>> {
    conn.query_rows(
        "SELECT seq, origin, target, kind, received_ms, mastodon_body, litepub_body, signer, original, carry
         FROM log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        params![after as i64, limit as i64],
        |r| {
            Ok(Entry {
                seq: r.get::<i64>(0)? as u64,
                origin: r.get(1)?,
                target: r.get(2)?,
                kind: r.get(3)?,
                received_ms: r.get(4)?,
                mastodon_body: Bytes::from(r.get::<Vec<u8>>(5)?),
                litepub_body: Bytes::from(r.get::<Vec<u8>>(6)?),
                signer: r.get(7)?,
                original: r.get::<Option<Vec<u8>>>(8)?.map(Bytes::from),
                digests: Default::default(),
                carry: r
                    .get::<Option<String>>(9)?
                    .and_then(|c| Carry::from_json(&c))
                    .map(Arc::new),
            })
        },
    )
}

/// Claims every one of `ids` as seen at `now`, each by one `INSERT … ON CONFLICT DO NOTHING` (an
/// atomic claim): `true` when all were free; otherwise gives back those it took, so that a duplicate
/// records nothing, and `false`. (SQLite's way; PostgreSQL's is in [`pg_append`].)
fn claim_all_seen(conn: &Conn<'_>, ids: &[String], now: i64) -> Result<bool> {
    for (n, id) in ids.iter().enumerate() {
        let claimed = conn.execute(
            "INSERT INTO seen (id, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, now],
        )? > 0;
        if !claimed {
            for taken in &ids[..n] {
                conn.execute("DELETE FROM seen WHERE id = ?1", params![taken])?;
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// The highest sequence ever assigned to a log entry, even one pruned since (0 for a new log).
pub(super) fn head_seq(conn: &Conn<'_>) -> Result<u64> {
    let seq: Option<i64> = if conn.is_postgres() {
        // The identity's sequence; NULL until it gave a first value.
        conn.query_row(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('log', 'seq')::regclass)",
            params![],
            |r| r.get(0),
        )?
    } else {
        conn.query_opt(
            "SELECT seq FROM sqlite_sequence WHERE name = 'log'",
            params![],
            |r| r.get(0),
        )?
    };
    Ok(seq.unwrap_or(0) as u64)
}

/// Appends `e` (what topics carry when `carry` is set) and records the relay's own document id of its
/// LitePub body among the published; returns its sequence number.
pub(super) fn insert_entry(
    conn: &Conn<'_>,
    e: NewEntry,
    carry: Option<&Carry>,
    now: i64,
    appended: &mut Vec<Entry>,
) -> Result<u64> {
    insert_entry_unless_seen(conn, e, carry, now, &[], appended)?.ok_or_else(|| {
        crate::Error::Database("an append with nothing to deduplicate was refused".into())
    })
}

/// The append on SQLite: the entry, then its published id (two statements; no round trips there).
const APPEND: &str = "INSERT INTO log (origin, target, kind, received_ms, mastodon_body, litepub_body, signer, original, carry)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq";

/// The append on PostgreSQL, claiming `ids` ids: one statement, so one round trip to the server per
/// activity (the three or four it took were most of an inbox activity's time on a busy machine). The ids
/// are checked as not seen, then claimed, and the entry and its published id inserted, all only if none
/// was seen — safe as one check-then-write because every writer holds
/// [`crate::store::postgres::WRITE_LOCK`], so nothing else claims an id in between. Placeholders: the
/// entry's nine columns, the published id (`?10`), then the ids. No row back: a duplicate.
fn pg_append(ids: usize) -> String {
    let listed: Vec<String> = (11..11 + ids).map(|i| format!("?{i}")).collect();
    let (fresh, claims) = if ids == 0 {
        ("SELECT TRUE AS ok".to_string(), String::new())
    } else {
        let rows: Vec<String> = listed
            .iter()
            .map(|p| format!("(CAST({p} AS TEXT))"))
            .collect();
        (
            format!(
                "SELECT NOT EXISTS (SELECT 1 FROM seen WHERE id IN ({})) AS ok",
                listed.join(", ")
            ),
            format!(
                "claimed AS (INSERT INTO seen (id, at) SELECT v.id, CAST(?4 AS BIGINT)
                     FROM (VALUES {}) AS v(id), fresh WHERE fresh.ok ON CONFLICT DO NOTHING),",
                rows.join(", ")
            ),
        )
    };
    format!(
        "WITH fresh AS ({fresh}), {claims}
         e AS (INSERT INTO log (origin, target, kind, received_ms, mastodon_body, litepub_body, signer, original, carry)
             SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS BIGINT), CAST(?5 AS BYTEA),
                    CAST(?6 AS BYTEA), CAST(?7 AS TEXT), CAST(?8 AS BYTEA), CAST(?9 AS TEXT)
             FROM fresh WHERE fresh.ok RETURNING seq),
         {}
         SELECT seq FROM e",
        published::RECORD_WITH_APPEND
    )
}

/// [`insert_entry`] unless one of `dedup_ids` was seen before: then nothing is recorded and `None`
/// comes back; otherwise the ids are claimed as seen with the append.
pub(super) fn insert_entry_unless_seen(
    conn: &Conn<'_>,
    e: NewEntry,
    carry: Option<&Carry>,
    now: i64,
    dedup_ids: &[String],
    appended: &mut Vec<Entry>,
) -> Result<Option<u64>> {
    let published_id = published::id_in(&e.litepub_body);
    let carry_json = carry.map(Carry::to_json);
    let (mastodon, litepub) = (&e.mastodon_body[..], &e.litepub_body[..]);
    let original = e.original.as_deref();
    let mut args: Vec<&dyn Param> = vec![
        &e.origin,
        &e.target,
        &e.kind,
        &now,
        &mastodon,
        &litepub,
        &e.signer,
        &original,
        &carry_json,
    ];
    let seq = if conn.is_postgres() {
        args.push(&published_id);
        args.extend(dedup_ids.iter().map(|id| id as &dyn Param));
        // Built once per number of ids (an activity has one or two), not once per append.
        static BUILT: [std::sync::OnceLock<String>; 3] = [const { std::sync::OnceLock::new() }; 3];
        let built;
        let sql = match BUILT.get(dedup_ids.len()) {
            Some(cell) => cell.get_or_init(|| pg_append(dedup_ids.len())).as_str(),
            None => {
                built = pg_append(dedup_ids.len());
                built.as_str()
            }
        };
        match conn.query_opt(sql, &args, |r| r.get::<i64>(0))? {
            Some(seq) => seq as u64,
            None => return Ok(None),
        }
    } else {
        if !claim_all_seen(conn, dedup_ids, now)? {
            return Ok(None);
        }
        let seq = conn.query_row(APPEND, &args, |r| r.get::<i64>(0))? as u64;
        if let Some(id) = &published_id {
            published::record_id(conn, seq, id, now)?;
        }
        seq
    };
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
        carry: carry.cloned().map(Arc::new),
    });
    Ok(Some(seq))
}
