//! What FASP `data_sharing` keeps durably: the queue of announced URIs waiting to be fetched (an
//! announcement is answered 204 only once its URIs are here, so a crash loses nothing accepted), the
//! event subscriptions and backfill requests Plaza holds at each server (to recognise the `source` of
//! an announcement, to ask for continuations, and to cancel them when the server leaves), and the
//! `trending` signals servers sent, and the instances shared content was indexed from (the indexer's
//! scheduled consent re-check and a block's purge reach them, though the relay has no subscription
//! from them).
//!
//! The queue is bounded per server: [`Store::enqueue_shares`] checks the bound and inserts in one
//! write, so concurrent announcements cannot overshoot it.

use crate::store::db::params;

use super::{Store, now_ms};
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fasp_share_queue (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id   TEXT NOT NULL,
    uri         TEXT NOT NULL,
    category    TEXT NOT NULL,
    event       TEXT NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_ms      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS fasp_share_queue_server ON fasp_share_queue(server_id);
CREATE TABLE IF NOT EXISTS fasp_share_sources (
    server_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    remote_id      TEXT NOT NULL,
    category       TEXT NOT NULL,
    detail         TEXT NOT NULL,
    more           INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (server_id, kind, remote_id)
);
CREATE TABLE IF NOT EXISTS fasp_trend_signals (
    uri       TEXT NOT NULL,
    server_id TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (uri, server_id)
);
CREATE INDEX IF NOT EXISTS fasp_trend_signals_at ON fasp_trend_signals(at_ms);
CREATE TABLE IF NOT EXISTS fasp_shared_instances (
    authority TEXT PRIMARY KEY,
    last_ms   INTEGER NOT NULL
);
";

/// One announced URI waiting to be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedShare {
    /// Its place in the queue.
    pub seq: i64,
    /// The server that announced it.
    pub server_id: String,
    /// The announced object or actor URI.
    pub uri: String,
    /// `content` or `account`.
    pub category: String,
    /// `new`, `update`, `delete`, `trending` (events) or `backfill`.
    pub event: String,
    /// When it was accepted, in milliseconds since the epoch.
    pub enqueued_ms: i64,
    /// Fetches of it that failed so far.
    pub attempts: u32,
}

/// A URI to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    /// See [`QueuedShare::uri`].
    pub uri: String,
    /// See [`QueuedShare::category`].
    pub category: String,
    /// See [`QueuedShare::event`].
    pub event: String,
}

/// A subscription or backfill request Plaza holds at a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSource {
    /// The server.
    pub server_id: String,
    /// `subscription` or `backfill`.
    pub kind: String,
    /// The id the server gave it.
    pub remote_id: String,
    /// `content` or `account`.
    pub category: String,
    /// The subscription type (`lifecycle`, `trends`) or the backfill's `maxCount`.
    pub detail: String,
    /// For a backfill: whether the last delivery said more objects are available.
    pub more: bool,
}

/// The `kind` of an event subscription.
pub const SUBSCRIPTION: &str = "subscription";
/// The `kind` of a backfill request.
pub const BACKFILL: &str = "backfill";

impl Store {
    /// Queues `shares` from `server_id` unless that would put more than `bound` of its URIs in the
    /// queue; `false` (nothing queued) when it would.
    pub async fn enqueue_shares(
        &self,
        server_id: &str,
        shares: Vec<NewShare>,
        bound: u64,
    ) -> Result<bool> {
        let server = server_id.to_string();
        self.write(move |conn, _| {
            let queued: i64 = conn.query_row(
                "SELECT COUNT(*) FROM fasp_share_queue WHERE server_id = ?1",
                params![&server],
                |r| r.get(0),
            )?;
            if queued.max(0) as u64 + shares.len() as u64 > bound {
                return Ok(false);
            }
            let now = now_ms();
            for s in shares {
                conn.execute(
                    "INSERT INTO fasp_share_queue (server_id, uri, category, event, enqueued_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![server, s.uri, s.category, s.event, now],
                )?;
            }
            Ok(true)
        })
        .await
    }

    /// The oldest `limit` queued URIs that are due (not waiting for a retry).
    pub async fn queued_shares(&self, limit: usize) -> Result<Vec<QueuedShare>> {
        let now = now_ms();
        self.read(move |conn| {
            conn.query_rows(
                "SELECT seq, server_id, uri, category, event, enqueued_ms, attempts
                 FROM fasp_share_queue WHERE due_ms <= ?2 ORDER BY seq LIMIT ?1",
                params![limit as i64, now],
                |r| {
                    Ok(QueuedShare {
                        seq: r.get(0)?,
                        server_id: r.get(1)?,
                        uri: r.get(2)?,
                        category: r.get(3)?,
                        event: r.get(4)?,
                        enqueued_ms: r.get(5)?,
                        attempts: r.get_u32(6)?,
                    })
                },
            )
        })
        .await
    }

    /// Keeps queued URIs whose fetch failed for another try, not before `after_ms` from now.
    pub async fn retry_shares(&self, seqs: Vec<i64>, after_ms: i64) -> Result<()> {
        let due = now_ms() + after_ms;
        self.write(move |conn, _| {
                        for seq in seqs {
                conn.execute("UPDATE fasp_share_queue SET attempts = attempts + 1, due_ms = ?2 WHERE seq = ?1", params![seq, due])?;
            }
            Ok(())
        })
        .await
    }

    /// Takes handled URIs out of the queue.
    pub async fn dequeue_shares(&self, seqs: Vec<i64>) -> Result<()> {
        self.write(move |conn, _| {
            for seq in seqs {
                conn.execute("DELETE FROM fasp_share_queue WHERE seq = ?1", params![seq])?;
            }
            Ok(())
        })
        .await
    }

    /// Queued URIs, per server.
    pub async fn share_queue_depths(&self) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            conn.query_rows(
"SELECT server_id, COUNT(*) FROM fasp_share_queue GROUP BY server_id ORDER BY server_id",
                params![],
                |r| Ok((r.get(0)?, r.get::<i64>(1)?.max(0) as u64)),
            )
        })
        .await
    }

    /// Records a subscription or backfill request a server created for Plaza.
    pub async fn add_share_source(&self, source: ShareSource) -> Result<()> {
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO fasp_share_sources
                    (server_id, kind, remote_id, category, detail, more, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (server_id, kind, remote_id) DO UPDATE SET category = excluded.category,
                    detail = excluded.detail, more = excluded.more, created_at = excluded.created_at",
                params![
                    source.server_id,
                    source.kind,
                    source.remote_id,
                    source.category,
                    source.detail,
                    i64::from(source.more),
                    now_ms()
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The subscriptions and backfill requests held at `server_id`.
    pub async fn share_sources(&self, server_id: &str) -> Result<Vec<ShareSource>> {
        let server = server_id.to_string();
        self.read(move |conn| {
            conn.query_rows(
                "SELECT server_id, kind, remote_id, category, detail, more
                 FROM fasp_share_sources WHERE server_id = ?1 ORDER BY created_at, remote_id",
                params![&server],
                |r| {
                    Ok(ShareSource {
                        server_id: r.get(0)?,
                        kind: r.get(1)?,
                        remote_id: r.get(2)?,
                        category: r.get(3)?,
                        detail: r.get(4)?,
                        more: r.get_bool(5)?,
                    })
                },
            )
        })
        .await
    }

    /// The category of the source `kind`/`remote_id` of `server_id`, if Plaza holds it.
    pub async fn share_source_category(
        &self,
        server_id: &str,
        kind: &'static str,
        remote_id: &str,
    ) -> Result<Option<String>> {
        let (server, id) = (server_id.to_string(), remote_id.to_string());
        self.read(move |conn| {
            conn.query_opt(
                "SELECT category FROM fasp_share_sources
                     WHERE server_id = ?1 AND kind = ?2 AND remote_id = ?3",
                params![server, kind, id],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Marks whether a backfill has more objects to ask for.
    pub async fn set_backfill_more(
        &self,
        server_id: &str,
        remote_id: &str,
        more: bool,
    ) -> Result<()> {
        let (server, id) = (server_id.to_string(), remote_id.to_string());
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE fasp_share_sources SET more = ?3
                 WHERE server_id = ?1 AND kind = 'backfill' AND remote_id = ?2",
                params![server, id, i64::from(more)],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets every source held at `server_id` and drops its queued URIs (deactivation, removal).
    pub async fn forget_share_sources(&self, server_id: &str) -> Result<()> {
        let server = server_id.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "DELETE FROM fasp_share_sources WHERE server_id = ?1",
                params![&server],
            )?;
            conn.execute(
                "DELETE FROM fasp_share_queue WHERE server_id = ?1",
                params![&server],
            )?;
            Ok(())
        })
        .await
    }

    /// Records that something of `authority` was indexed through data_sharing.
    pub async fn note_shared_instance(&self, authority: &str) -> Result<()> {
        let authority = authority.to_ascii_lowercase();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO fasp_shared_instances (authority, last_ms) VALUES (?1, ?2)
                 ON CONFLICT (authority) DO UPDATE SET last_ms = excluded.last_ms",
                params![authority, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// The instances something was indexed from through data_sharing.
    pub async fn shared_instances(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT authority FROM fasp_shared_instances ORDER BY authority",
                params![],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Forgets shared-content instances (blocked: their authors are no longer refreshed).
    pub async fn forget_shared_instances(&self, authorities: Vec<String>) -> Result<()> {
        self.write(move |conn, _| {
            for authority in authorities {
                conn.execute(
                    "DELETE FROM fasp_shared_instances WHERE authority = ?1",
                    params![authority],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Records that `server_id` announced `uri` as trending (the latest time per server counts).
    pub async fn record_trend_signal(&self, uri: &str, server_id: &str) -> Result<()> {
        let (uri, server) = (uri.to_string(), server_id.to_string());
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO fasp_trend_signals (uri, server_id, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (uri, server_id) DO UPDATE SET at_ms = excluded.at_ms",
                params![uri, server, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// How many servers announced each URI as trending since `since_ms`, most first.
    pub async fn trend_signals_since(&self, since_ms: i64) -> Result<Vec<(String, u64)>> {
        self.read(move |conn| {
            conn.query_rows(
                "SELECT uri, COUNT(*) AS n FROM fasp_trend_signals WHERE at_ms >= ?1
                 GROUP BY uri ORDER BY n DESC, uri",
                params![since_ms],
                |r| Ok((r.get(0)?, r.get::<i64>(1)?.max(0) as u64)),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    fn share(uri: &str) -> NewShare {
        NewShare {
            uri: uri.into(),
            category: "content".into(),
            event: "new".into(),
        }
    }

    async fn the_queue_is_bounded_per_server_and_survives_a_reopen(db: TestDb) {
        {
            let store = db.open().await;
            assert!(
                store
                    .enqueue_shares("a", vec![share("https://x/1"), share("https://x/2")], 3)
                    .await
                    .unwrap()
            );
            // Two more would make four: nothing of it is queued.
            assert!(
                !store
                    .enqueue_shares("a", vec![share("https://x/3"), share("https://x/4")], 3)
                    .await
                    .unwrap()
            );
            // Another server has a bound of its own.
            assert!(
                store
                    .enqueue_shares("b", vec![share("https://x/1")], 1)
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .enqueue_shares("a", vec![share("https://x/3")], 3)
                    .await
                    .unwrap()
            );
        }
        let store = db.open().await;
        assert_eq!(
            store.share_queue_depths().await.unwrap(),
            vec![("a".to_string(), 3), ("b".to_string(), 1)]
        );
        let queued = store.queued_shares(10).await.unwrap();
        let uris: Vec<_> = queued.iter().map(|q| q.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["https://x/1", "https://x/2", "https://x/1", "https://x/3"]
        );
        store
            .dequeue_shares(queued.iter().take(2).map(|q| q.seq).collect())
            .await
            .unwrap();
        assert_eq!(store.queued_shares(10).await.unwrap().len(), 2);
        // One kept for a retry later: counted, not due.
        let retried = store.queued_shares(1).await.unwrap()[0].seq;
        store.retry_shares(vec![retried], 60_000).await.unwrap();
        let due = store.queued_shares(10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_ne!(due[0].seq, retried);
        assert_eq!(due[0].attempts, 0);
        store.retry_shares(vec![retried], -1).await.unwrap();
        let again = store.queued_shares(10).await.unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again.iter().find(|q| q.seq == retried).unwrap().attempts, 2);
        store.forget_share_sources("a").await.unwrap();
        assert_eq!(
            store.share_queue_depths().await.unwrap(),
            vec![("b".to_string(), 1)]
        );
    }

    async fn sources_are_known_per_server_and_kind(db: TestDb) {
        let store = db.open().await;
        let source = ShareSource {
            server_id: "a".into(),
            kind: BACKFILL.into(),
            remote_id: "7".into(),
            category: "account".into(),
            detail: "100".into(),
            more: false,
        };
        store.add_share_source(source.clone()).await.unwrap();
        assert_eq!(
            store
                .share_source_category("a", BACKFILL, "7")
                .await
                .unwrap()
                .as_deref(),
            Some("account")
        );
        assert_eq!(
            store
                .share_source_category("a", SUBSCRIPTION, "7")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .share_source_category("b", BACKFILL, "7")
                .await
                .unwrap(),
            None
        );
        store.set_backfill_more("a", "7", true).await.unwrap();
        assert!(store.share_sources("a").await.unwrap()[0].more);
        store.note_shared_instance("B.example:8080").await.unwrap();
        store.note_shared_instance("a.example").await.unwrap();
        store.note_shared_instance("a.example").await.unwrap();
        assert_eq!(
            store.shared_instances().await.unwrap(),
            ["a.example", "b.example:8080"]
        );
        store
            .forget_shared_instances(vec!["a.example".into()])
            .await
            .unwrap();
        assert_eq!(store.shared_instances().await.unwrap(), ["b.example:8080"]);
        store.record_trend_signal("https://x/1", "a").await.unwrap();
        store.record_trend_signal("https://x/1", "a").await.unwrap();
        store.record_trend_signal("https://x/1", "b").await.unwrap();
        assert_eq!(
            store.trend_signals_since(0).await.unwrap(),
            vec![("https://x/1".to_string(), 2)]
        );
    }

    crate::on_both_backends!(
        the_queue_is_bounded_per_server_and_survives_a_reopen,
        sources_are_known_per_server_and_kind,
    );
}
