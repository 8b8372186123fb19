//! Delivering what topics carry: one worker per follower inbox, reading the durable log forward from
//! that inbox's own cursor like a subscriber's worker (so nothing carried is lost over a crash, order
//! per inbox holds, and a dead follower delays nobody else), taking only the entries topics carry
//! ([`crate::topics::carry`]), and sending each once per inbox, signed by the first of the entry's
//! topics that the inbox follows. Retries, backoff and skips are the relay's own
//! (`Engine::deliver_body`).
//!
//! Unlike a subscriber, a follower inbox wants few of the log's entries, and hundreds of inboxes each
//! woken by every append cost more than the deliveries themselves. So one dispatcher follows the log
//! and wakes only the inboxes an entry concerns ([`Waker`]); an idle worker moves its cursor past what
//! the dispatcher found nothing for in it, without reading those entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::ap::authority_of;
use crate::cluster::lease;
use crate::federation::delivery::{Delivery, Engine, Health, Stats};
use crate::federation::stop::Stop;
use crate::store::Entry;
use crate::store::reader::LogReader;
use crate::store::topics::inbox_cursor_name;
use crate::topics::TopicKind;
use crate::topics::carry::Carry;
use crate::topics::registry::Registry;

/// Entries a worker takes at a time.
const BATCH: usize = 256;
/// How often an idle worker looks whether it may move its cursor on (and saves it).
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// No entry pending for a worker.
const NONE_PENDING: u64 = u64::MAX;

/// How the dispatcher tells one follower inbox's worker that an entry concerns it.
pub struct Waker {
    notify: tokio::sync::Notify,
    /// The oldest entry the dispatcher found for this inbox since the worker last looked
    /// ([`NONE_PENDING`]: none).
    first_pending: AtomicU64,
}

impl Waker {
    fn new() -> Arc<Waker> {
        Arc::new(Waker {
            notify: tokio::sync::Notify::new(),
            first_pending: AtomicU64::new(NONE_PENDING),
        })
    }

    fn wake(&self, seq: u64) {
        self.first_pending.fetch_min(seq, Ordering::SeqCst);
        self.notify.notify_one();
    }
}
/// A follower inbox's running worker.
struct Worker {
    task: AbortHandle,
    waker: Arc<Waker>,
    stop: Arc<Stop>,
}

/// How often a busy worker saves its cursor.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Deliveries by topic kind (`tag`, `language`, `instance`, `search`), for the metrics.
#[derive(Default)]
pub struct KindCounters {
    counts: Mutex<HashMap<&'static str, u64>>,
}

impl KindCounters {
    fn add(&self, kind: &'static str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(kind).or_default() += 1;
        }
    }

    /// The counts, by kind.
    pub fn get(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<_> = self
            .counts
            .lock()
            .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        counts.sort();
        counts
    }
}

/// The topic delivery workers.
pub struct TopicDelivery {
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    base: String,
    workers: Mutex<HashMap<String, Worker>>,
    /// Every entry up to here was looked at by the dispatcher (and the inboxes it concerns woken).
    dispatched: AtomicU64,
    /// Delivery counters (accepted, retried, refused, skipped).
    pub stats: Stats,
    /// Accepted deliveries by the kind of topic they came from.
    pub by_kind: KindCounters,
    /// Carried entries an inbox did not receive because the post came from its own instance.
    pub own_instance_skips: AtomicU64,
}

impl TopicDelivery {
    /// Workers delivering through `engine`'s client and backoff, as the topics of `registry`.
    pub fn new(engine: Arc<Engine>, registry: Arc<Registry>, base: &str) -> Arc<TopicDelivery> {
        Arc::new(TopicDelivery {
            engine,
            registry,
            base: base.to_owned(),
            workers: Mutex::new(HashMap::new()),
            dispatched: AtomicU64::new(0),
            stats: Stats::default(),
            by_kind: KindCounters::default(),
            own_instance_skips: AtomicU64::new(0),
        })
    }

    /// Starts a worker for every follower inbox of the registry's current view that has none (among
    /// several nodes: whose lease this node holds), stops those whose inbox nobody follows any more
    /// (forgetting their cursor) and those whose lease went to another node. Called after every change
    /// of the followers, once the registry is reloaded, and when leases change hands.
    pub async fn sync(self: &Arc<Self>) {
        let snapshot = self.registry.snapshot();
        let cluster = self.engine.ownership().clone();
        let mine = |inbox: &str| cluster.holds(&lease::topic_inbox(inbox));
        let (start, unfollowed, elsewhere): (Vec<String>, Vec<String>, Vec<String>) = {
            let Ok(workers) = self.workers.lock() else {
                return;
            };
            let start = snapshot
                .inboxes()
                .filter(|inbox| !workers.contains_key(*inbox) && mine(inbox))
                .cloned()
                .collect();
            if snapshot
                .inboxes()
                .any(|inbox| !workers.contains_key(inbox) && !mine(inbox))
            {
                // A new follower inbox may be this node's to claim: the cluster looks now.
                cluster.nudge();
            }
            let unfollowed = workers
                .keys()
                .filter(|inbox| snapshot.inbox(inbox).is_none())
                .cloned()
                .collect();
            let elsewhere = workers
                .keys()
                .filter(|inbox| snapshot.inbox(inbox).is_some() && !mine(inbox))
                .cloned()
                .collect();
            (start, unfollowed, elsewhere)
        };
        for inbox in unfollowed.iter().chain(&elsewhere) {
            if let Some(worker) = self.workers.lock().ok().and_then(|mut w| w.remove(inbox)) {
                worker.task.abort();
            }
        }
        for inbox in unfollowed {
            if let Err(e) = self.engine.store().forget_topic_inbox(&inbox).await {
                tracing::warn!(%inbox, error = %e, "forgetting a topic inbox's cursor");
            }
        }
        for inbox in start {
            let store = self.engine.store();
            let name = inbox_cursor_name(&inbox);
            // A new follower inbox starts at the head: it receives what is carried from now on.
            let cursor = match store.cursor(&name).await {
                Ok(Some(cursor)) => cursor,
                Ok(None) => {
                    let head = store.tail().head();
                    if let Err(e) = store.set_cursor(&name, head).await {
                        tracing::error!(%inbox, error = %e, "saving a topic inbox's first cursor");
                        continue;
                    }
                    head
                }
                Err(e) => {
                    tracing::error!(%inbox, error = %e, "reading a topic inbox's cursor");
                    continue;
                }
            };
            let Ok(mut workers) = self.workers.lock() else {
                return;
            };
            if workers.contains_key(&inbox) {
                continue;
            }
            let waker = Waker::new();
            let stop = Arc::new(Stop::default());
            let run = self
                .clone()
                .run(inbox.clone(), cursor, waker.clone(), stop.clone());
            let task = tokio::spawn(run).abort_handle();
            workers.insert(inbox, Worker { task, waker, stop });
        }
    }

    /// Stops the workers of `inboxes` (their leases are given back to another node) once each has
    /// finished the delivery in progress and saved its cursor, so the next holder sends nothing twice;
    /// one that does not stop within `patience` is stopped at once.
    pub async fn hand_over(&self, inboxes: impl IntoIterator<Item = String>, patience: Duration) {
        let leaving: Vec<Worker> = match self.workers.lock() {
            Ok(mut workers) => inboxes
                .into_iter()
                .filter_map(|inbox| workers.remove(&inbox))
                .collect(),
            Err(_) => return,
        };
        let mut stopping = tokio::task::JoinSet::new();
        for worker in leaving {
            stopping.spawn(async move { worker.stop.hand_over(&worker.task, patience).await });
        }
        while stopping.join_next().await.is_some() {}
    }

    /// The store the workers read.
    pub fn store(&self) -> &crate::store::Store {
        self.engine.store()
    }

    /// Follower inboxes with a running worker.
    pub fn worker_count(&self) -> usize {
        self.workers.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Follows the log from `head` (where the workers started reading) and wakes the workers of the
    /// inboxes each carried entry concerns. Runs until aborted with the relay.
    pub fn dispatch(self: &Arc<Self>, head: u64) -> tokio::task::JoinHandle<()> {
        self.dispatched.store(head, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            let mut reader = LogReader::new(this.store().clone(), head, BATCH);
            while let Some(batch) = reader.next_batch("topic dispatcher").await {
                let snapshot = this.registry.snapshot();
                if let Ok(workers) = this.workers.lock() {
                    for entry in &batch.entries {
                        let Some(carry) = &entry.carry else {
                            continue;
                        };
                        for key in &carry.topics {
                            for inbox in snapshot.followers_of(key) {
                                if let Some(worker) = workers.get(inbox) {
                                    worker.waker.wake(entry.seq);
                                }
                            }
                        }
                    }
                }
                // Only after every waker of the batch is set: an idle worker that reads this
                // position sees the entries it has to read.
                this.dispatched.store(reader.cursor(), Ordering::SeqCst);
            }
        })
    }

    async fn run(self: Arc<Self>, inbox: String, cursor: u64, waker: Arc<Waker>, stop: Arc<Stop>) {
        let mut client = match self.engine.http().inbox_client(&inbox) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(%inbox, error = %e, "unusable topic follower inbox; not delivering");
                return;
            }
        };
        let own = authority_of(&inbox).unwrap_or_default();
        let name = inbox_cursor_name(&inbox);
        let store = self.engine.store().clone();
        let health = Mutex::new(Health::default());
        let mut reader = LogReader::new(store.clone(), cursor, BATCH);
        let mut saved = cursor;
        let mut last_save = Instant::now();
        loop {
            let batch = match reader.next().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(%inbox, error = %e, "topic delivery: reading the log");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.pruned > 0 {
                self.stats
                    .pruned_skips
                    .fetch_add(batch.pruned, Ordering::Relaxed);
            }
            let idle = batch.entries.is_empty();
            let mut done = reader.cursor();
            for entry in batch.entries {
                if stop.asked() {
                    // Asked to stop: the rest of the batch is the next holder's.
                    done = entry.seq - 1;
                    break;
                }
                let Some(carry) = &entry.carry else {
                    continue;
                };
                if entry.origin == own {
                    self.own_instance_skips.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                self.deliver(&inbox, &mut client, &entry, carry, &health)
                    .await;
            }
            if idle {
                // Caught up with the log: what the dispatcher looked at since, and found nothing
                // for this inbox in, need not be read.
                let dispatched = self.dispatched.load(Ordering::SeqCst);
                let pending = waker.first_pending.load(Ordering::SeqCst);
                if pending == NONE_PENDING && dispatched > reader.cursor() {
                    reader = LogReader::new(store.clone(), dispatched, BATCH);
                }
            }
            if stop.asked() {
                if done != saved
                    && let Err(e) = store.set_cursor(&name, done).await
                {
                    tracing::error!(%inbox, error = %e, "saving a topic cursor on hand-over");
                }
                stop.finish();
                return;
            }
            let done = reader.cursor();
            if (idle || last_save.elapsed() >= PERSIST_EVERY) && done != saved {
                match store.set_cursor(&name, done).await {
                    Ok(()) => saved = done,
                    Err(e) => tracing::error!(%inbox, error = %e, "saving a topic cursor"),
                }
                last_save = Instant::now();
            }
            if idle {
                tokio::select! {
                    () = waker.notify.notified() => {}
                    () = stop.woken() => {}
                    () = tokio::time::sleep(IDLE_CHECK) => {}
                }
                // A connection unused for long is closed (see `inbox_client::IDLE_CLOSE`).
                client.close_if_idle();
                // Skip straight to the oldest entry the dispatcher woke this inbox for: everything
                // before it, it found nothing for here.
                let first = waker.first_pending.swap(NONE_PENDING, Ordering::SeqCst);
                if first != NONE_PENDING && first.saturating_sub(1) > reader.cursor() {
                    reader = LogReader::new(store.clone(), first - 1, BATCH);
                }
            }
        }
    }

    /// Delivers one carried entry to `inbox`, from the first of its topics the inbox follows (none:
    /// the inbox stopped following them since).
    async fn deliver(
        &self,
        inbox: &str,
        client: &mut crate::federation::inbox_client::InboxClient,
        entry: &Entry,
        carry: &Carry,
        health: &Mutex<Health>,
    ) {
        let snapshot = self.registry.snapshot();
        let Some(follows) = snapshot.inbox(inbox) else {
            return;
        };
        let Some((key, style)) = carry.pick(|key| follows.get(key).copied()) else {
            return;
        };
        let signer = match self.registry.signer_of(key).await {
            Ok(signer) => signer,
            Err(e) => {
                tracing::warn!(%inbox, topic = %key, error = %e, "no key to sign a topic delivery with");
                return;
            }
        };
        client.sign_as(&signer.key, &signer.key_id);
        let rendered = carry.rendered(
            &self.base,
            key,
            style,
            entry.seq,
            &entry.mastodon_body,
            entry.received_ms,
        );
        let Some((body, digest)) = rendered else {
            return;
        };
        let what = Delivery {
            recipient: inbox,
            seq: entry.seq,
            kind: &entry.kind,
        };
        if self
            .engine
            .deliver_body(what, client, body, &digest, health, &self.stats)
            .await
            && let Some(kind) = TopicKind::of_key(key)
        {
            self.by_kind.add(kind.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::cluster::ownership::Ownership;
    use crate::federation::delivery::Backoff;
    use crate::store::Store;
    use crate::store::Style;
    use crate::store::topics::TopicFollower;
    use crate::test_fixtures::{paced_inbox, wait_for};
    use crate::topics::Topic;
    use crate::topics::admission::TopicSettings;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_handed_over_saves_where_it_got_to_and_the_next_goes_on_from_there() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("t.db")).expect("store");
        let backoff = Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        };
        let engine = Engine::new(
            store.clone(),
            crate::test_fixtures::http(),
            backoff,
            Ownership::alone(),
        );
        let settings = TopicSettings {
            max_topics: 10,
            kinds: TopicKind::ALL.to_vec(),
            blocked_tags: Vec::new(),
        };
        let base = "https://relay.example";
        let registry = Registry::load(store.clone(), base, settings)
            .await
            .expect("registry");
        let coop = Topic::tag("coop").expect("tag");
        crate::topics::keys::key_for(&store, &coop, 10)
            .await
            .expect("key");
        // Slow after the twentieth request, so that the hand-over comes mid-way even on a busy machine.
        let (inbox, hits) = paced_inbox(
            |_| 202,
            |n| Duration::from_millis(if n < 20 { 0 } else { 10 }),
        )
        .await;
        let follower = TopicFollower {
            actor_id: format!("{inbox}#actor"),
            inbox: inbox.clone(),
            style: Style::Mastodon,
            follow_id: format!("{inbox}#follow"),
            authority: authority_of(&inbox).unwrap_or_default(),
        };
        store
            .follow_topic(&coop, follower, 100, 100)
            .await
            .expect("follow");
        registry.reload().await.expect("reload");
        let delivery = TopicDelivery::new(engine, registry, base);
        let head = store.tail().head();
        let dispatcher = delivery.dispatch(head);
        delivery.sync().await;
        assert_eq!(delivery.worker_count(), 1);
        for n in 0..200 {
            let carry =
                Carry::announced(&format!("https://x.example/posts/{n}")).to(vec![coop.key()]);
            store
                .append_carry(
                    "x.example".into(),
                    carry,
                    Bytes::new(),
                    format!("carry {n}"),
                )
                .await
                .expect("append");
        }
        // Mid-way through, the inbox's lease moves: the worker stops after the delivery in progress.
        wait_for("some deliveries", || hits.load(Ordering::SeqCst) >= 20).await;
        delivery
            .hand_over([inbox.clone()], Duration::from_secs(5))
            .await;
        assert_eq!(delivery.worker_count(), 0);
        let sent = hits.load(Ordering::SeqCst) as u64;
        assert!(sent < 200, "stopped mid-way, not at the end");
        let name = inbox_cursor_name(&inbox);
        let saved = store.cursor(&name).await.expect("cursor").expect("saved");
        assert_eq!(
            saved - head,
            sent,
            "the cursor saved is the last entry delivered"
        );
        // The next holder (here a new worker from the saved cursor) sends the rest, nothing twice.
        delivery.sync().await;
        wait_for("the rest", || hits.load(Ordering::SeqCst) >= 200).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 200, "nothing sent twice");
        dispatcher.abort();
        delivery.hand_over([inbox], Duration::ZERO).await;
    }
}
