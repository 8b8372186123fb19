//! Accepting a server's announcement: after [`super::data_sharing::read_announcement`] found it well
//! formed, its source must be a subscription or backfill request Plaza holds at THAT server, of the
//! same category; then its URIs go into the durable queue (bounded per server:
//! `fasp_share_queue_per_server`, full → 429) and nothing else happens on the request's time. The
//! [`super::share_worker`] drains the queue. The counters of both live here, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::Notify;

use super::data_sharing::{Announcement, Source, read_announcement};
use crate::store::Store;
use crate::store::fasp_shares::{BACKFILL, NewShare, SUBSCRIPTION};
use crate::web::histogram::Histogram;
use crate::{Error, Result};

/// Seconds a server is told to wait when its queue is full.
pub const RETRY_AFTER_SECS: u64 = 30;

/// Buckets of the announce→handed-to-the-index latency, in seconds (fetches take up to the fetch
/// timeout, and a queue may hold minutes of work).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];

/// How announcements and the URIs they carried fared.
#[derive(Default)]
pub struct Counters {
    /// Announcements queued (answered 204).
    pub accepted: AtomicU64,
    /// Announcements refused as malformed or of an unknown source (422).
    pub malformed: AtomicU64,
    /// Announcements refused because the server's queue was full (429).
    pub queue_full: AtomicU64,
    /// URIs handed to the index after a fetch.
    pub handed: AtomicU64,
    /// URIs removed from the index (gone at their origin).
    pub removed: AtomicU64,
    /// URIs not for the index (blocked domain, not public, not a post…).
    pub skipped: AtomicU64,
    /// URIs whose fetch failed.
    pub failed: AtomicU64,
    /// URIs not fetched again: fetched recently for another announcement (any server).
    pub deduplicated: AtomicU64,
}

/// The share queue's in-memory side: a wake-up for the worker, counters and the latency histogram.
pub struct ShareQueue {
    /// Rung when URIs are queued.
    pub queued: Notify,
    /// Counters.
    pub counters: Counters,
    /// Queued URIs, as of the worker's last look (and the announcements since).
    pub depth: AtomicU64,
    /// From an announcement's acceptance to its object handed to the index.
    pub latency: Histogram,
}

impl Default for ShareQueue {
    fn default() -> Self {
        ShareQueue {
            queued: Notify::new(),
            counters: Counters::default(),
            depth: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_BUCKETS),
        }
    }
}

/// What accepting an announcement came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Queued (204).
    Queued(Announcement),
    /// The server's queue has no room (429).
    Full,
}

impl ShareQueue {
    /// Reads, checks and queues an announcement from `server_id` (`body` as sent); malformed or of a
    /// source Plaza does not hold there: [`Error::Unprocessable`].
    pub async fn accept(
        &self,
        store: &Store,
        server_id: &str,
        body: &[u8],
        bound: u64,
    ) -> Result<Accepted> {
        let outcome = self.check_and_queue(store, server_id, body, bound).await;
        let counter = match &outcome {
            Ok(Accepted::Queued(a)) => {
                self.depth.fetch_add(a.uris.len() as u64, Ordering::Relaxed);
                self.queued.notify_one();
                &self.counters.accepted
            }
            Ok(Accepted::Full) => &self.counters.queue_full,
            Err(Error::Unprocessable(_)) => &self.counters.malformed,
            Err(_) => return outcome,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    async fn check_and_queue(
        &self,
        store: &Store,
        server_id: &str,
        body: &[u8],
        bound: u64,
    ) -> Result<Accepted> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::Unprocessable(format!("the body is not JSON: {e}")))?;
        let announcement = read_announcement(&value)?;
        let (kind, id) = match &announcement.source {
            Source::Subscription(id) => (SUBSCRIPTION, id),
            Source::Backfill(id) => (BACKFILL, id),
        };
        let category = store
            .share_source_category(server_id, kind, id)
            .await?
            .ok_or_else(|| Error::Unprocessable(format!("unknown {kind} {id}")))?;
        if category != announcement.category.as_str() {
            return Err(Error::Unprocessable(format!(
                "{kind} {id} is for {category}, not {}",
                announcement.category.as_str()
            )));
        }
        let shares = announcement
            .uris
            .iter()
            .map(|uri| NewShare {
                uri: uri.clone(),
                category: announcement.category.as_str().into(),
                event: announcement.event.as_str().into(),
            })
            .collect();
        if !store.enqueue_shares(server_id, shares, bound).await? {
            return Ok(Accepted::Full);
        }
        if let Source::Backfill(id) = &announcement.source {
            store
                .set_backfill_more(server_id, id, announcement.more)
                .await?;
        }
        Ok(Accepted::Queued(announcement))
    }

    /// The share series of `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        crate::prometheus::series(
            out,
            "plaza_fasp_announcements_total",
            "counter",
            "data_sharing announcements received, by outcome.",
            &[
                ("{outcome=\"accepted\"}", load(&c.accepted)),
                ("{outcome=\"malformed\"}", load(&c.malformed)),
                ("{outcome=\"queue_full\"}", load(&c.queue_full)),
            ],
        );
        crate::prometheus::series(
            out,
            "plaza_fasp_shared_uris_total",
            "counter",
            "Announced URIs the share worker handled, by outcome.",
            &[
                ("{outcome=\"handed\"}", load(&c.handed)),
                ("{outcome=\"removed\"}", load(&c.removed)),
                ("{outcome=\"skipped\"}", load(&c.skipped)),
                ("{outcome=\"failed\"}", load(&c.failed)),
                ("{outcome=\"deduplicated\"}", load(&c.deduplicated)),
            ],
        );
        crate::prometheus::series(
            out,
            "plaza_fasp_share_queue_depth",
            "gauge",
            "Announced URIs waiting to be fetched.",
            &[("", load(&self.depth))],
        );
        self.latency.render(
            "plaza_fasp_share_latency_seconds",
            "From an announcement's acceptance to its object handed to the index.",
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fasp_shares::ShareSource;
    use serde_json::json;

    async fn store_with_sources() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        for (kind, id, category) in [(SUBSCRIPTION, "s1", "content"), (BACKFILL, "b1", "account")] {
            store
                .add_share_source(ShareSource {
                    server_id: "a".into(),
                    kind: kind.into(),
                    remote_id: id.into(),
                    category: category.into(),
                    detail: "lifecycle".into(),
                    more: false,
                })
                .await
                .unwrap();
        }
        (dir, store)
    }

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[tokio::test]
    async fn announcements_are_queued_only_from_known_sources_and_within_the_bound() {
        let (_dir, store) = store_with_sources().await;
        let queue = ShareQueue::default();
        let event = |uris: Value| {
            body(
                json!({"source": {"subscription": {"id": "s1"}}, "category": "content",
                "eventType": "new", "objectUris": uris}),
            )
        };
        let two = event(json!(["https://x.example/1", "https://x.example/2"]));
        assert!(matches!(
            queue.accept(&store, "a", &two, 3).await.unwrap(),
            Accepted::Queued(_)
        ));
        // Two more would exceed the bound of 3: 429, nothing queued.
        assert_eq!(
            queue.accept(&store, "a", &two, 3).await.unwrap(),
            Accepted::Full
        );
        assert_eq!(store.queued_shares(10).await.unwrap().len(), 2);
        // Another server does not hold subscription s1.
        let refused = queue.accept(&store, "b", &two, 3).await.unwrap_err();
        assert!(
            matches!(&refused, Error::Unprocessable(r) if r.contains("unknown subscription s1"))
        );
        // Wrong category for the source, not JSON, malformed.
        let account = body(
            json!({"source": {"subscription": {"id": "s1"}}, "category": "account",
            "eventType": "new", "objectUris": []}),
        );
        for bad in [account, b"{".to_vec(), event(json!("nope"))] {
            assert_eq!(
                queue
                    .accept(&store, "a", &bad, 3)
                    .await
                    .unwrap_err()
                    .status()
                    .as_u16(),
                422
            );
        }
        // A backfill delivery records whether more is available.
        let backfill = body(
            json!({"source": {"backfillRequest": {"id": "b1"}}, "category": "account",
            "objectUris": ["https://x.example/users/u"], "moreObjectsAvailable": true}),
        );
        assert!(matches!(
            queue.accept(&store, "a", &backfill, 3).await.unwrap(),
            Accepted::Queued(_)
        ));
        assert!(
            store
                .share_sources("a")
                .await
                .unwrap()
                .iter()
                .any(|s| s.more)
        );
        let c = &queue.counters;
        assert_eq!(c.accepted.load(Ordering::Relaxed), 2);
        assert_eq!(c.queue_full.load(Ordering::Relaxed), 1);
        assert_eq!(c.malformed.load(Ordering::Relaxed), 4);
        let mut text = String::new();
        queue.render_metrics(&mut text);
        assert!(text.contains("plaza_fasp_announcements_total{outcome=\"queue_full\"} 1"));
        assert!(text.contains("plaza_fasp_share_queue_depth 3"));
    }
}
