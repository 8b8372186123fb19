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

use axum::body::Bytes;
use serde_json::Value;
use tokio::task::AbortHandle;

use crate::cluster::lease;
use crate::cluster::ownership::Ownership;
use crate::federation::inbox_client::{self, InboxClient};
use crate::federation::net::{Http, Outcome};
use crate::federation::stop::Stop;
use crate::httpsig::{PrivateKey, digest_header};
use crate::store::reader::LogReader;
use crate::store::{Entry, Store, Subscriber};

/// How many entries a worker takes at a time.
const BATCH: usize = 256;
/// How many attempts in a row the receiver may deny (401/403) before the entry is skipped: a receiver
/// refetching the relay's key (or with a stale copy of it) denies for a moment, not for good. Only an
/// unbroken run of denials counts: any other answer (a transient failure such as a 5xx or a timeout)
/// ends the run, so the next denial starts again at one. Transient failures alone never skip an entry.
pub const DENIED_ATTEMPTS: u32 = 4;
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
    /// Entries skipped after the receiver denied them (401/403) [`DENIED_ATTEMPTS`] times in a row.
    pub denied_skips: AtomicU64,
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

/// What a worker last wrote to the store, and what it has to add.
struct Progress {
    /// The cursor as persisted.
    cursor: u64,
    /// Entries skipped since the last write.
    skipped: u64,
    /// The last delivery time written.
    last_delivered: Option<u64>,
}

struct Worker {
    task: AbortHandle,
    health: Arc<Mutex<Health>>,
    /// Asks the worker to stop once the delivery in progress is done, saving its cursor.
    stop: Arc<Stop>,
}

/// Runs and tracks the workers.
pub struct Engine {
    store: Store,
    http: Http,
    backoff: Backoff,
    /// Which subscribers' deliveries are this node's (all of them, alone).
    ownership: Arc<Ownership>,
    workers: Mutex<HashMap<String, Worker>>,
    /// Delivery counters.
    pub stats: Stats,
}

impl Engine {
    /// An engine with no workers yet.
    pub fn new(
        store: Store,
        http: Http,
        backoff: Backoff,
        ownership: Arc<Ownership>,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            http,
            backoff,
            ownership,
            workers: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// Starts (or restarts, e.g. after its inbox changed) the worker of `subscriber`, once the
    /// subscription is committed.
    ///
    /// Starts and stops of one subscriber are ordered by the store's commits, not by when their callers
    /// get here: both decide under the workers lock from the store's subscriber mirror, which changes in
    /// commit order. A Follow whose start arrives after an Undo committed later than it finds no
    /// subscription and starts nothing; an Undo whose stop arrives after a later Follow committed finds
    /// the subscription and leaves the Follow's worker running. The worker is started from the mirror's
    /// copy, the latest committed state (inbox, style, cursor), whatever copy the caller holds.
    ///
    /// Among several nodes, only the node holding the subscriber's lease starts it; any other asks its
    /// cluster loop to look at the leases now (the new subscriber may be this node's to claim).
    pub fn start(self: &Arc<Self>, subscriber: Subscriber) {
        if !self
            .ownership
            .holds(&lease::subscriber(&subscriber.authority))
        {
            self.ownership.nudge();
            return;
        }
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        let Some(current) = self.store.subscriber(&subscriber.authority) else {
            tracing::debug!(subscriber = %subscriber.authority, "no longer subscribed; not starting");
            return;
        };
        let authority = current.authority.clone();
        let health = Arc::new(Mutex::new(Health::default()));
        let stop = Arc::new(Stop::default());
        let task =
            tokio::spawn(self.clone().run(current, health.clone(), stop.clone())).abort_handle();
        if let Some(old) = workers.insert(authority, Worker { task, health, stop }) {
            old.task.abort();
        }
    }

    /// Stops the worker of `authority` after its unsubscribe committed; a no-op when a later
    /// subscription of the same instance has committed since (see [`Engine::start`]).
    pub fn stop(&self, authority: &str) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        if self.store.subscriber(authority).is_some() {
            tracing::debug!(subscriber = %authority, "subscribed again since; not stopping");
            return;
        }
        if let Some(worker) = workers.remove(authority) {
            worker.task.abort();
        }
    }

    /// Starts the worker of `authority` (its lease was just claimed) unless one runs.
    pub fn ensure(self: &Arc<Self>, authority: &str) {
        let running = self
            .workers
            .lock()
            .is_ok_and(|w| w.get(authority).is_some_and(|w| !w.task.is_finished()));
        if !running && let Some(sub) = self.store.subscriber(authority) {
            self.start(sub);
        }
    }

    /// Stops the worker of `authority` at once, whatever the subscription (its lease was lost:
    /// another node may be delivering already).
    pub fn halt(&self, authority: &str) {
        if let Some(worker) = self
            .workers
            .lock()
            .ok()
            .and_then(|mut w| w.remove(authority))
        {
            worker.task.abort();
        }
    }

    /// Stops the worker of `authority` once the delivery in progress is done and its cursor saved
    /// (its lease is given back to another node, which goes on from that cursor: nothing is sent
    /// twice); one that does not stop within `patience` (a receiver slow to answer, a failing one
    /// waiting to retry) is stopped at once.
    pub async fn hand_over(&self, authority: &str, patience: Duration) {
        let Some(worker) = self
            .workers
            .lock()
            .ok()
            .and_then(|mut w| w.remove(authority))
        else {
            return;
        };
        worker.stop.hand_over(&worker.task, patience).await;
    }

    /// The authorities with a running worker.
    pub fn running(&self) -> Vec<String> {
        self.workers
            .lock()
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Which leases this engine's node holds.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
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

    async fn run(self: Arc<Self>, sub: Subscriber, health: Arc<Mutex<Health>>, stop: Arc<Stop>) {
        let mut client = match self.http.inbox_client(&sub.inbox) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(subscriber = %sub.authority, inbox = %sub.inbox, error = %e, "unusable inbox; not delivering");
                return;
            }
        };
        let mut reader = LogReader::new(self.store.clone(), sub.cursor, BATCH);
        let mut progress = Progress {
            cursor: sub.cursor,
            skipped: 0,
            last_delivered: None,
        };
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
                self.persist(&sub.authority, cursor, &mut progress, &health)
                    .await;
                last_persist = Instant::now();
                if stop.asked() {
                    stop.finish();
                    return;
                }
                // Wait for the head to move past the cursor (or to be asked to stop), closing the
                // connection once it has been idle for long (see `inbox_client::IDLE_CLOSE`).
                let idle_at = client.idle_deadline();
                tokio::select! {
                    moved = reader.wait() => if !moved {
                        return;
                    },
                    () = stop.woken() => {}
                    () = inbox_client::sleep_until(idle_at) => {
                        client.close_if_idle();
                    }
                }
                continue;
            }
            if batch.pruned > 0 {
                let lost = batch.pruned;
                tracing::warn!(subscriber = %sub.authority, lost, "entries pruned before delivery; skipping ahead");
                self.stats.pruned_skips.fetch_add(lost, Ordering::Relaxed);
                progress.skipped += lost;
            }
            let mut done = cursor;
            for entry in batch.entries {
                if stop.asked() {
                    // Asked to stop: the rest of the batch is the next holder's.
                    done = entry.seq - 1;
                    break;
                }
                if entry.is_for(&sub.authority)
                    && !self.deliver(&sub, &mut client, &entry, &health).await
                {
                    progress.skipped += 1;
                }
            }
            if stop.asked() {
                self.persist(&sub.authority, done, &mut progress, &health)
                    .await;
                stop.finish();
                return;
            }
            if last_persist.elapsed() >= PERSIST_EVERY {
                self.persist(&sub.authority, cursor, &mut progress, &health)
                    .await;
                last_persist = Instant::now();
            }
        }
    }

    /// Writes the worker's cursor, the entries it skipped since the last write, and the time of its
    /// last accepted delivery, when any of them changed.
    async fn persist(
        &self,
        authority: &str,
        cursor: u64,
        progress: &mut Progress,
        health: &Mutex<Health>,
    ) {
        let delivered = health.lock().ok().and_then(|h| h.last_delivered);
        let new_delivery = delivered.filter(|_| delivered != progress.last_delivered);
        if cursor == progress.cursor && progress.skipped == 0 && new_delivery.is_none() {
            return;
        }
        match self
            .store
            .advance_cursor(authority, cursor, progress.skipped, new_delivery)
            .await
        {
            Ok(()) => {
                progress.cursor = cursor;
                progress.skipped = 0;
                progress.last_delivered = delivered;
            }
            Err(e) => tracing::error!(subscriber = %authority, error = %e, "persisting cursor"),
        }
    }

    /// Publishes `activity`, one the relay sends outside the log (a Reject to a refused Follow, the
    /// fresh Accept and LitePub Follow back answering a re-Follow): stores it first, so its id resolves
    /// at `GET /activities/…` and it is in the outbox like everything else the relay publishes, then
    /// sends it to `inbox` with a few retries in the background. Nothing is sent when the store fails.
    pub async fn publish_once(
        self: &Arc<Self>,
        inbox: &str,
        activity: &Value,
    ) -> crate::Result<()> {
        self.publish_once_as(inbox, activity, None).await
    }

    /// [`Engine::publish_once`] signed with `signer` (a key and its id: a topic answering a Follow as
    /// its own actor) instead of the relay's key.
    pub async fn publish_once_as(
        self: &Arc<Self>,
        inbox: &str,
        activity: &Value,
        signer: Option<(Arc<PrivateKey>, Arc<str>)>,
    ) -> crate::Result<()> {
        let body = Bytes::from(activity.to_string());
        match activity.get("id").and_then(Value::as_str) {
            Some(id) => {
                self.store
                    .record_published(id.to_string(), body.clone())
                    .await?
            }
            None => tracing::warn!(%inbox, "publishing an activity without id"),
        }
        self.send_once(inbox.to_string(), body, signer);
        Ok(())
    }

    /// Sends one body to an inbox outside any subscription, with a few retries in the background;
    /// only through [`Engine::publish_once`], so that what is sent also resolves.
    fn send_once(
        self: &Arc<Self>,
        inbox: String,
        body: Bytes,
        signer: Option<(Arc<PrivateKey>, Arc<str>)>,
    ) {
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
            if let Some((key, key_id)) = &signer {
                client.sign_as(key, key_id);
            }
            let digest = digest_header(&body);
            for attempt in 0..ATTEMPTS {
                match client.deliver(body.clone(), &digest).await {
                    Outcome::Delivered => return,
                    Outcome::Refused(reason) => {
                        tracing::warn!(%inbox, %reason, "one-off delivery refused");
                        return;
                    }
                    Outcome::Retry(_) | Outcome::Denied(_) => {
                        tokio::time::sleep(engine.backoff.delay(attempt)).await
                    }
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
        let what = Delivery {
            recipient: &sub.authority,
            seq: entry.seq,
            kind: &entry.kind,
        };
        self.deliver_body(what, client, body, digest, health, &self.stats)
            .await
    }

    /// Delivers `body` (whose `Digest` header value is `digest`) through `client`, retrying until the
    /// receiver accepts or refuses it, counting in `stats`; true when accepted. What a subscriber's
    /// worker and a topic follower's worker share (see [`crate::topics::delivery`]).
    pub(crate) async fn deliver_body(
        &self,
        what: Delivery<'_>,
        client: &mut InboxClient,
        body: Bytes,
        digest: &str,
        health: &Mutex<Health>,
        stats: &Stats,
    ) -> bool {
        let Delivery {
            recipient,
            seq,
            kind,
        } = what;
        // Failed attempts of this entry, whatever the reason: the backoff grows with them.
        let mut failures = 0u32;
        // Denials in a row: what decides a skip (see [`DENIED_ATTEMPTS`]).
        let mut denials = 0u32;
        loop {
            match client.deliver(body.clone(), digest).await {
                Outcome::Delivered => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut h) = health.lock() {
                        h.succeeded();
                    }
                    tracing::debug!(%recipient, seq, %kind, "delivered");
                    return true;
                }
                Outcome::Refused(reason) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%recipient, seq, %kind, %reason, "delivery refused; not retrying");
                    return false;
                }
                Outcome::Denied(reason) if denials + 1 >= DENIED_ATTEMPTS => {
                    stats.denied_skips.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut h) = health.lock() {
                        h.failed(&reason);
                    }
                    tracing::warn!(%recipient, seq, %kind, %reason, attempts = DENIED_ATTEMPTS, "delivery denied repeatedly; skipping");
                    return false;
                }
                Outcome::Denied(reason) => {
                    denials += 1;
                    self.wait_to_retry(what, &reason, &mut failures, health, stats)
                        .await;
                }
                Outcome::Retry(reason) => {
                    denials = 0;
                    self.wait_to_retry(what, &reason, &mut failures, health, stats)
                        .await;
                }
            }
        }
    }

    /// Records a failed attempt and sleeps the backoff for its `failures` so far.
    async fn wait_to_retry(
        &self,
        what: Delivery<'_>,
        reason: &str,
        failures: &mut u32,
        health: &Mutex<Health>,
        stats: &Stats,
    ) {
        stats.retried.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = health.lock() {
            h.failed(reason);
        }
        let delay = self.backoff.delay(*failures);
        *failures = failures.saturating_add(1);
        tracing::info!(recipient = %what.recipient, seq = what.seq, %reason, retry_in_ms = delay.as_millis() as u64, "delivery failed");
        tokio::time::sleep(delay).await;
    }

    /// The store the workers read.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The signing client the workers' connections are made from.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }
}

/// What one delivery is, for its logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery<'a> {
    /// Who receives it (a subscriber's authority, a topic follower's inbox).
    pub recipient: &'a str,
    /// The log entry.
    pub seq: u64,
    /// The entry's kind.
    pub kind: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::net::{AddressPolicy, HttpSettings};
    use crate::httpsig::PrivateKey;
    use crate::store::{NewEntry, Style};
    use crate::test_fixtures::{paced_inbox, wait_for};
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicUsize;

    fn http() -> Http {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        let key = KEY
            .get_or_init(|| Arc::new(PrivateKey::generate().expect("key")))
            .clone();
        Http::new(HttpSettings {
            key,
            key_id: "https://relay.example/actor#main-key".into(),
            policy: AddressPolicy {
                allow_private: true,
            },
            max_fetch_bytes: 1 << 20,
            fetch_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(5),
            user_agent: "Plaza/test".into(),
        })
        .expect("http")
    }

    fn engine(dir: &tempfile::TempDir) -> (Store, Arc<Engine>) {
        let store = Store::open(&dir.path().join("t.db")).expect("store");
        let engine = Engine::new(
            store.clone(),
            http(),
            Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            Ownership::alone(),
        );
        (store, engine)
    }

    fn subscriber(authority: &str, inbox: &str) -> Subscriber {
        Subscriber {
            authority: authority.into(),
            actor_id: format!("http://{authority}/actor"),
            follow_id: format!("http://{authority}/follows/1"),
            inbox: inbox.into(),
            style: Style::Mastodon,
            cursor: 0,
            skipped: 0,
            created_at: 0,
        }
    }

    /// An inbox on loopback answering `status(n)` to its n-th request (0-based); counts requests.
    async fn inbox(status: fn(usize) -> u16) -> (String, Arc<AtomicUsize>) {
        paced_inbox(status, |_| Duration::ZERO).await
    }

    fn post(n: u32) -> NewEntry {
        let body = Bytes::from(format!("{{\"id\":\"https://x.example/{n}\"}}"));
        NewEntry {
            origin: "x.example".into(),
            target: None,
            kind: "Announce".into(),
            mastodon_body: body.clone(),
            litepub_body: body,
            signer: None,
            original: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_handed_over_saves_where_it_got_to_and_the_next_goes_on_from_there() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, engine) = engine(&dir);
        // Slow after the twentieth request, so that the hand-over comes mid-way even on a busy machine.
        let (inbox, hits) = paced_inbox(
            |_| 202,
            |n| Duration::from_millis(if n < 20 { 0 } else { 10 }),
        )
        .await;
        let (_, stored) = store
            .subscribe(subscriber("b.example", &inbox), "{}".into(), vec![])
            .await
            .expect("subscribe");
        engine.start(stored);
        for n in 0..200 {
            store.append(post(n)).await.expect("append");
        }
        // Mid-way through, the lease moves: the worker stops after the delivery in progress.
        wait_for("some deliveries", || hits.load(Ordering::SeqCst) >= 20).await;
        engine.hand_over("b.example", Duration::from_secs(5)).await;
        assert_eq!(engine.worker_count(), 0);
        let sent = hits.load(Ordering::SeqCst);
        assert!(sent < 200, "stopped mid-way, not at the end");
        let saved = store.subscribers().await.expect("subscribers")[0].cursor as usize;
        assert_eq!(saved, sent, "the cursor saved is the last entry delivered");
        // The next holder (here a new worker from the saved cursor) sends the rest, nothing twice.
        store.refresh_members().await.expect("read the cursor back");
        engine.ensure("b.example");
        wait_for("the rest", || hits.load(Ordering::SeqCst) >= 200).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 200, "nothing sent twice");
        engine.stop_all();
    }

    #[tokio::test]
    async fn a_start_arriving_after_a_later_undo_starts_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, engine) = engine(&dir);
        let sub = subscriber("b.example", "http://127.0.0.1:9/inbox");
        // The Follow commits, then the Undo commits and stops (nothing yet), then the Follow's start
        // arrives late.
        let (_, stored) = store
            .subscribe(sub.clone(), "{}".into(), vec![])
            .await
            .expect("subscribe");
        store.unsubscribe("b.example").await.expect("unsubscribe");
        engine.stop("b.example");
        engine.start(stored);
        assert_eq!(engine.worker_count(), 0, "a worker outlived the Undo");
        // An Undo's stop arriving after a later Follow committed and started leaves that worker be.
        let (_, stored) = store
            .subscribe(sub, "{}".into(), vec![])
            .await
            .expect("subscribe again");
        engine.start(stored);
        engine.stop("b.example");
        assert_eq!(
            engine.worker_count(),
            1,
            "a stale stop ended a live subscription"
        );
        engine.stop_all();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_follows_and_undos_leave_workers_as_the_store_says() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, engine) = engine(&dir);
        for round in 0..40 {
            let follow = {
                let (store, engine) = (store.clone(), engine.clone());
                tokio::spawn(async move {
                    let sub = subscriber("b.example", "http://127.0.0.1:9/inbox");
                    let (_, stored) = store.subscribe(sub, "{}".into(), vec![]).await?;
                    tokio::task::yield_now().await;
                    engine.start(stored);
                    Ok::<(), crate::Error>(())
                })
            };
            let undo = {
                let (store, engine) = (store.clone(), engine.clone());
                tokio::spawn(async move {
                    store.unsubscribe("b.example").await?;
                    engine.stop("b.example");
                    Ok::<(), crate::Error>(())
                })
            };
            follow.await.expect("join").expect("follow");
            undo.await.expect("join").expect("undo");
            assert_eq!(
                engine.worker_count(),
                usize::from(store.subscriber("b.example").is_some()),
                "round {round}: workers and subscriptions disagree"
            );
        }
        engine.stop_all();
    }

    #[tokio::test]
    async fn a_denial_is_retried_then_the_entry_is_skipped_and_counted() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, engine) = engine(&dir);
        // Denies the first two attempts (a receiver refetching the relay's key), then accepts.
        let (flaky, _) = inbox(|n| if n < 2 { 401 } else { 202 }).await;
        // Denies everything.
        let (closed, denials) = inbox(|_| 403).await;
        for (authority, url) in [("flaky.example", &flaky), ("closed.example", &closed)] {
            let (_, stored) = store
                .subscribe(subscriber(authority, url), "{}".into(), vec![])
                .await
                .expect("subscribe");
            engine.start(stored);
        }
        store.append(post(1)).await.expect("append");
        store.append(post(2)).await.expect("append");
        wait_for(
            "both entries delivered to the flaky inbox and skipped for the closed one",
            || {
                engine.stats.delivered.load(Ordering::Relaxed) == 2
                    && engine.stats.denied_skips.load(Ordering::Relaxed) == 2
            },
        )
        .await;
        assert_eq!(engine.stats.refused.load(Ordering::Relaxed), 0);
        assert!(denials.load(Ordering::SeqCst) >= 2 * DENIED_ATTEMPTS as usize);
        engine.stop_all();
    }

    #[tokio::test]
    async fn transient_failures_do_not_count_towards_the_denial_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, engine) = engine(&dir);
        // 503, 503, 503, 401, 200: three transient failures then one denial is no run of denials.
        let (url, requests) = inbox(|n| match n {
            0..=2 => 503,
            3 => 401,
            _ => 202,
        })
        .await;
        let (_, stored) = store
            .subscribe(subscriber("slow.example", &url), "{}".into(), vec![])
            .await
            .expect("subscribe");
        engine.start(stored);
        store.append(post(1)).await.expect("append");
        wait_for("the entry delivered", || {
            engine.stats.delivered.load(Ordering::Relaxed) == 1
        })
        .await;
        assert_eq!(engine.stats.denied_skips.load(Ordering::Relaxed), 0);
        assert_eq!(requests.load(Ordering::SeqCst), 5);
        // A denial run broken by a transient failure starts again: 401 ×3, 503, 401 ×3, 202.
        let (url, _) = inbox(|n| match n {
            3 => 503,
            0..=6 => 401,
            _ => 202,
        })
        .await;
        let (_, stored) = store
            .subscribe(subscriber("key.example", &url), "{}".into(), vec![])
            .await
            .expect("subscribe");
        engine.start(stored);
        store.append(post(2)).await.expect("append");
        // The second entry reaches both inboxes.
        wait_for("the entry delivered after broken denial runs", || {
            engine.stats.delivered.load(Ordering::Relaxed) == 3
        })
        .await;
        assert_eq!(engine.stats.denied_skips.load(Ordering::Relaxed), 0);
        engine.stop_all();
    }

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
