//! The share worker: drains the durable queue of announced URIs ([`crate::store::fasp_shares`]) into
//! the index through the indexer ([`crate::discovery::shared`]), so fetching, consent and the index
//! writes are the relayed posts' own.
//!
//! A batch of the oldest queued URIs is taken at a time and grouped by URI: servers share local and
//! remote content, so one object is often announced by several. A URI is fetched once for the whole
//! group, and not at all when it was fetched within `fasp_share_dedup_secs` — unless an `update` or
//! `delete` arrived after that fetch began. URIs leave the queue only once handled (at least once:
//! a crash replays the batch); a fetch that fails without proving the object gone (network, 5xx) is
//! tried again later, [`RETRIES`] times, after `fasp_share_retry_ms` doubled each time. A `trending` event also records a trend
//! signal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use moka::future::Cache;
use tokio::task::JoinSet;

use super::data_sharing::Event;
use crate::discovery::Indexer;
use crate::discovery::shared::{SharedOutcome, kind_of};
use crate::state::AppState;
use crate::store::fasp_shares::QueuedShare;

/// URIs taken from the queue at a time.
const BATCH: usize = 64;
/// Longest wait for new URIs before looking at the queue again.
const IDLE: Duration = Duration::from_secs(5);
/// Most URIs remembered as recently fetched.
const RECENT_CAPACITY: u64 = 200_000;
/// Further tries of a URI whose fetch failed (then it is dropped).
pub const RETRIES: u32 = 3;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One URI with every queued announcement of it in the batch.
struct Group {
    uri: String,
    items: Vec<QueuedShare>,
}

impl Group {
    /// Whether one of the announcements says the object changed (`update`, `delete`).
    fn edit(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(
                Event::parse(&i.event),
                Some(Event::Update) | Some(Event::Delete)
            )
        })
    }

    /// Whether a fetch begun at `fetched_ms` already answers every announcement: a `new`, `trending`
    /// or backfill is answered by any fetch within the window, a change only by a later fetch.
    fn answered_by(&self, fetched_ms: i64) -> bool {
        self.items.iter().all(|i| {
            !matches!(
                Event::parse(&i.event),
                Some(Event::Update) | Some(Event::Delete)
            ) || i.enqueued_ms < fetched_ms
        })
    }
}

/// Groups a batch by URI (and category), in queue order.
fn groups(batch: Vec<QueuedShare>) -> Vec<Group> {
    let mut order: Vec<Group> = Vec::new();
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for item in batch {
        let key = (item.uri.clone(), item.category.clone());
        match at.get(&key) {
            Some(&n) => order[n].items.push(item),
            None => {
                at.insert(key, order.len());
                order.push(Group {
                    uri: item.uri.clone(),
                    items: vec![item],
                });
            }
        }
    }
    order
}

/// Runs the worker for the relay's life.
pub async fn run(state: Arc<AppState>, indexer: Arc<Indexer>) {
    let window = Duration::from_secs(state.config.fasp_share_dedup_secs.max(1));
    let recent: Cache<String, i64> = Cache::builder()
        .max_capacity(RECENT_CAPACITY)
        .time_to_live(window)
        .build();
    let sharing = &state.fasp.shares;
    // Pause before the first retry of a failed fetch; doubled for each further one.
    let retry_after = Duration::from_millis(state.config.fasp_share_retry_ms.max(1));
    loop {
        if let Ok(depths) = state.store.share_queue_depths().await {
            let depth = depths.iter().map(|(_, n)| n).sum();
            sharing.depth.store(depth, Ordering::Relaxed);
        }
        let batch = match state.store.queued_shares(BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "FASP share worker: reading the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            let _ = tokio::time::timeout(IDLE, sharing.queued.notified()).await;
            continue;
        }
        let mut tasks = JoinSet::new();
        for group in groups(batch) {
            let (state, indexer, recent) = (state.clone(), indexer.clone(), recent.clone());
            tasks.spawn(async move {
                let retry = !handle(&state, &indexer, &recent, &group).await;
                (group, retry)
            });
        }
        let (mut done, mut retries) = (Vec::new(), Vec::new());
        while let Some(joined) = tasks.join_next().await {
            let Ok((group, retry)) = joined else { continue };
            for item in group.items {
                if retry && item.attempts < RETRIES {
                    retries.push(item);
                } else {
                    done.push(item.seq);
                }
            }
        }
        for item in retries {
            let pause = retry_after.saturating_mul(1 << item.attempts.min(10));
            let kept = state
                .store
                .retry_shares(vec![item.seq], pause.as_millis() as i64)
                .await;
            if let Err(e) = kept {
                tracing::error!(error = %e, "FASP share worker: keeping a URI for a retry");
            }
        }
        if let Err(e) = state.store.dequeue_shares(done).await {
            tracing::error!(error = %e, "FASP share worker: emptying the queue");
        }
    }
}

/// Fetches and hands over one announced URI (unless recently fetched), and records trend signals;
/// false when the fetch failed and may work later.
async fn handle(
    state: &AppState,
    indexer: &Arc<Indexer>,
    recent: &Cache<String, i64>,
    group: &Group,
) -> bool {
    let counters = &state.fasp.shares.counters;
    for item in group
        .items
        .iter()
        .filter(|i| i.event == Event::Trending.as_str())
    {
        // The trends computation reads these signals (only for posts the index holds).
        if let Err(e) = state
            .store
            .record_trend_signal(&item.uri, &item.server_id)
            .await
        {
            tracing::error!(uri = %item.uri, error = %e, "FASP share worker: recording a trend signal");
        }
    }
    if let Some(fetched) = recent.get(&group.uri).await
        && group.answered_by(fetched)
    {
        counters
            .deduplicated
            .fetch_add(group.items.len() as u64, Ordering::Relaxed);
        return true;
    }
    let Some(kind) = kind_of(&group.items[0].category) else {
        counters.skipped.fetch_add(1, Ordering::Relaxed);
        return true;
    };
    let started = now_ms();
    let outcome = indexer
        .index_shared(&group.uri, kind, group.edit(), |authority| {
            state.curation.refuses(authority).is_none()
        })
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(uri = %group.uri, error = %e, "FASP share worker: fetch failed; retried later");
            return false;
        }
    };
    recent.insert(group.uri.clone(), started).await;
    counters
        .deduplicated
        .fetch_add(group.items.len() as u64 - 1, Ordering::Relaxed);
    match outcome {
        SharedOutcome::Handed => {
            counters.handed.fetch_add(1, Ordering::Relaxed);
            let oldest = group
                .items
                .iter()
                .map(|i| i.enqueued_ms)
                .min()
                .unwrap_or(started);
            let waited = u64::try_from(now_ms() - oldest).unwrap_or(0);
            state
                .fasp
                .shares
                .latency
                .observe(Duration::from_millis(waited));
        }
        SharedOutcome::Removed => {
            counters.removed.fetch_add(1, Ordering::Relaxed);
        }
        SharedOutcome::Skipped(reason) => {
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(uri = %group.uri, %reason, "FASP share worker: skipped");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64, uri: &str, event: &str, enqueued_ms: i64) -> QueuedShare {
        QueuedShare {
            seq,
            server_id: format!("s{seq}"),
            uri: uri.into(),
            category: "content".into(),
            event: event.into(),
            enqueued_ms,
            attempts: 0,
        }
    }

    #[test]
    fn a_batch_is_grouped_by_uri_and_changes_need_a_later_fetch() {
        let batch = vec![
            item(1, "https://a/1", "new", 100),
            item(2, "https://a/2", "new", 100),
            item(3, "https://a/1", "backfill", 150),
            item(4, "https://a/1", "update", 200),
        ];
        let g = groups(batch);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].uri, "https://a/1");
        assert_eq!(g[0].items.len(), 3);
        assert!(g[0].edit());
        assert!(!g[1].edit());
        // A fetch begun before the update does not answer it; one begun after does.
        assert!(!g[0].answered_by(150));
        assert!(g[0].answered_by(201));
        // A new post is answered by any recent fetch.
        assert!(g[1].answered_by(0));
    }
}
