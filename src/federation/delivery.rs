//! The delivery engine: one worker per subscriber reading the log forward from its cursor.
//!
//! A worker takes entries after its cursor (from the in-memory tail, or from the store when it lags),
//! skips what is not for it (its own instance's activities, replies meant for others), signs and POSTs
//! the body shaped for its protocol, and moves its cursor. Deliveries to one subscriber happen in log
//! order, one at a time, so a subscriber that was down receives everything in order once it is back.
//! A failure retries the same entry with exponential backoff and jitter; only that subscriber waits,
//! every other worker goes on. Cursors are persisted in batches: after a crash an entry may be sent
//! twice (receivers deduplicate by id), never lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::federation::net::{Http, InboxClient, Outcome};
use crate::httpsig::digest_header;
use crate::store::reader::LogReader;
use crate::store::{Entry, Store, Subscriber};

/// How many entries a worker takes at a time.
const BATCH: usize = 256;
/// How often a busy worker persists its cursor.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `failures + 1`, with ±20% jitter so failing hosts are not hit in step.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << failures.min(20));
        let base = exp.min(self.max);
        let jitter = 0.8 + fastrand::f64() * 0.4;
        base.mul_f64(jitter)
    }
}

/// Counters exported on `/metrics`.
#[derive(Default)]
pub struct Stats {
    /// Requests the receivers accepted.
    pub delivered: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Entries a receiver refused for good.
    pub refused: AtomicU64,
    /// Entries skipped because they were pruned before delivery.
    pub pruned_skips: AtomicU64,
}

/// How deliveries to one subscriber are going, for the admin API and the metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Unix seconds of the first failure of the current run of failures.
    pub failing_since: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds of the last accepted delivery.
    pub last_delivered: Option<u64>,
}

impl Health {
    /// After this many failures in a row a subscriber counts as unreachable: its worker keeps probing
    /// it at the backoff rate (at most `retry_max_secs` apart) and resumes on the first success.
    pub const UNREACHABLE_AFTER: u32 = 5;

    /// Whether it failed [`Health::UNREACHABLE_AFTER`] times in a row or more.
    pub fn is_unreachable(&self) -> bool {
        self.consecutive_failures >= Self::UNREACHABLE_AFTER
    }

    fn succeeded(&mut self) {
        self.consecutive_failures = 0;
        self.failing_since = None;
        self.last_error = None;
        self.last_delivered = Some(unix_now());
    }

    fn failed(&mut self, reason: &str) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.failing_since.get_or_insert_with(unix_now);
        self.last_error = Some(reason.to_string());
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Worker {
    task: AbortHandle,
    health: Arc<Mutex<Health>>,
}

/// Runs and tracks the workers.
pub struct Engine {
    store: Store,
    http: Http,
    backoff: Backoff,
    workers: Mutex<HashMap<String, Worker>>,
    /// Delivery counters.
    pub stats: Stats,
}

impl Engine {
    /// An engine with no workers yet.
    pub fn new(store: Store, http: Http, backoff: Backoff) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            http,
            backoff,
            workers: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// Starts (or restarts, e.g. after its inbox changed) the worker of `subscriber`.
    pub fn start(self: &Arc<Self>, subscriber: Subscriber) {
        let authority = subscriber.authority.clone();
        let health = Arc::new(Mutex::new(Health::default()));
        let task = tokio::spawn(self.clone().run(subscriber, health.clone())).abort_handle();
        if let Ok(mut workers) = self.workers.lock()
            && let Some(old) = workers.insert(authority, Worker { task, health })
        {
            old.task.abort();
        }
    }

    /// Stops the worker of `authority` (after an unsubscribe).
    pub fn stop(&self, authority: &str) {
        if let Ok(mut workers) = self.workers.lock()
            && let Some(worker) = workers.remove(authority)
        {
            worker.task.abort();
        }
    }

    /// Stops every worker.
    pub fn stop_all(&self) {
        if let Ok(mut workers) = self.workers.lock() {
            for (_, worker) in workers.drain() {
                worker.task.abort();
            }
        }
    }

    /// How deliveries to `authority` are going (None when it has no worker).
    pub fn health(&self, authority: &str) -> Option<Health> {
        let workers = self.workers.lock().ok()?;
        let health = workers.get(authority)?.health.lock().ok()?.clone();
        Some(health)
    }

    /// Subscribers that failed [`Health::UNREACHABLE_AFTER`] times in a row or more.
    pub fn unreachable_count(&self) -> usize {
        let Ok(workers) = self.workers.lock() else {
            return 0;
        };
        workers
            .values()
            .filter(|w| w.health.lock().is_ok_and(|h| h.is_unreachable()))
            .count()
    }

    /// Number of running workers.
    pub fn worker_count(&self) -> usize {
        self.workers.lock().map(|w| w.len()).unwrap_or(0)
    }

    async fn run(self: Arc<Self>, sub: Subscriber, health: Arc<Mutex<Health>>) {
        let mut client = match self.http.inbox_client(&sub.inbox) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(subscriber = %sub.authority, inbox = %sub.inbox, error = %e, "unusable inbox; not delivering");
                return;
            }
        };
        let mut reader = LogReader::new(self.store.clone(), sub.cursor, BATCH);
        let mut persisted = sub.cursor;
        let mut skipped = 0u64;
        let mut last_persist = Instant::now();
        loop {
            let batch = match reader.next().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(subscriber = %sub.authority, error = %e, "reading the log");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let cursor = reader.cursor();
            if batch.entries.is_empty() {
                self.persist(&sub.authority, cursor, &mut persisted, &mut skipped)
                    .await;
                last_persist = Instant::now();
                // Wait for the head to move past the cursor.
                if !reader.wait().await {
                    return;
                }
                continue;
            }
            if batch.pruned > 0 {
                let lost = batch.pruned;
                tracing::warn!(subscriber = %sub.authority, lost, "entries pruned before delivery; skipping ahead");
                self.stats.pruned_skips.fetch_add(lost, Ordering::Relaxed);
                skipped += lost;
            }
            for entry in batch.entries {
                if entry.is_for(&sub.authority)
                    && !self.deliver(&sub, &mut client, &entry, &health).await
                {
                    skipped += 1;
                }
            }
            if last_persist.elapsed() >= PERSIST_EVERY {
                self.persist(&sub.authority, cursor, &mut persisted, &mut skipped)
                    .await;
                last_persist = Instant::now();
            }
        }
    }

    async fn persist(&self, authority: &str, cursor: u64, persisted: &mut u64, skipped: &mut u64) {
        if cursor == *persisted && *skipped == 0 {
            return;
        }
        match self.store.advance_cursor(authority, cursor, *skipped).await {
            Ok(()) => {
                *persisted = cursor;
                *skipped = 0;
            }
            Err(e) => tracing::error!(subscriber = %authority, error = %e, "persisting cursor"),
        }
    }

    /// Sends one body to an inbox outside any subscription (a Reject to a refused follower), with a few
    /// retries in the background.
    pub fn send_once(self: &Arc<Self>, inbox: String, body: axum::body::Bytes) {
        const ATTEMPTS: u32 = 5;
        let engine = self.clone();
        tokio::spawn(async move {
            let mut client = match engine.http.inbox_client(&inbox) {
                Ok(client) => client,
                Err(e) => {
                    tracing::warn!(%inbox, error = %e, "one-off delivery to an unusable inbox");
                    return;
                }
            };
            let digest = digest_header(&body);
            for attempt in 0..ATTEMPTS {
                match client.deliver(body.clone(), &digest).await {
                    Outcome::Delivered => return,
                    Outcome::Refused(reason) => {
                        tracing::warn!(%inbox, %reason, "one-off delivery refused");
                        return;
                    }
                    Outcome::Retry(_) => tokio::time::sleep(engine.backoff.delay(attempt)).await,
                }
            }
            tracing::warn!(%inbox, "one-off delivery abandoned after {ATTEMPTS} attempts");
        });
    }

    /// Delivers one entry, retrying until the receiver accepts or refuses it; true when accepted.
    async fn deliver(
        &self,
        sub: &Subscriber,
        client: &mut InboxClient,
        entry: &Entry,
        health: &Mutex<Health>,
    ) -> bool {
        let body = entry.body_for(sub.style).clone();
        let digest = entry.digest_for(sub.style);
        let mut failures = 0u32;
        loop {
            match client.deliver(body.clone(), digest).await {
                Outcome::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut h) = health.lock() {
                        h.succeeded();
                    }
                    tracing::debug!(subscriber = %sub.authority, seq = entry.seq, kind = %entry.kind, "delivered");
                    return true;
                }
                Outcome::Refused(reason) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subscriber = %sub.authority, seq = entry.seq, kind = %entry.kind, %reason, "delivery refused; not retrying");
                    return false;
                }
                Outcome::Retry(reason) => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut h) = health.lock() {
                        h.failed(&reason);
                    }
                    let delay = self.backoff.delay(failures);
                    failures = failures.saturating_add(1);
                    tracing::info!(subscriber = %sub.authority, seq = entry.seq, %reason, retry_in_ms = delay.as_millis() as u64, "delivery failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let first = b.delay(0);
        assert!(
            first >= Duration::from_millis(80) && first <= Duration::from_millis(120),
            "{first:?}"
        );
        let third = b.delay(2);
        assert!(
            third >= Duration::from_millis(320) && third <= Duration::from_millis(480),
            "{third:?}"
        );
        assert!(b.delay(30) <= Duration::from_millis(2400));
    }
}
