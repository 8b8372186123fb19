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
//! the dispatcher found nothing for in it, without reading those entries. The workers' cursors are
//! saved together once a second ([`crate::topics::cursors`]), not each in a commit of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
use crate::topics::cursors::CursorBook;
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

/// Deliveries by topic kind (`tag`, `language`, `instance`, `search`), for the metrics.
#[derive(Default)]
pub struct KindCounters {
    /// In the order of [`TopicKind::ALL`].
    counts: [AtomicU64; TopicKind::ALL.len()],
}

impl KindCounters {
    fn add(&self, kind: TopicKind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of `kind`.
    pub fn get(&self, kind: TopicKind) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
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
    /// Where the workers got to, saved together.
    cursors: Arc<CursorBook>,
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
            cursors: Arc::default(),
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
            self.cursors.drop_noted(&inbox_cursor_name(&inbox));
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

    /// Saves the workers' cursors every [`crate::topics::cursors::SAVE_EVERY`] until aborted with the
    /// relay.
    pub fn keep_saving_cursors(&self) -> tokio::task::JoinHandle<()> {
        self.cursors.clone().keep_saving(self.store().clone())
    }

    /// Saves the workers' cursors now (the relay stopping).
    pub async fn save_cursors(&self) -> crate::Result<usize> {
        self.cursors.save(self.store()).await
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
        let mut noted = cursor;
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
                // Handed over: saved now, not with the others, so the next holder goes on from here.
                self.cursors.drop_noted(&name);
                if let Err(e) = store.set_cursor(&name, done).await {
                    tracing::error!(%inbox, error = %e, "saving a topic cursor on hand-over");
                }
                stop.finish();
                return;
            }
            let done = reader.cursor();
            if done != noted {
                self.cursors.note(&name, done);
                noted = done;
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
            self.by_kind.add(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::store::Store;
    use crate::test_fixtures::{follow_topic, paced_inbox, topic_settings, wait_for};
    use crate::topics::Topic;

    /// A relay's topic delivery with one topic, #coop, followed by one inbox per pace given (each
    /// answering 202 after the pause its pace gives the n-th request), its dispatcher running from
    /// the head.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        delivery: Arc<TopicDelivery>,
        coop: Topic,
        inboxes: Vec<(String, Arc<std::sync::atomic::AtomicUsize>)>,
        head: u64,
        dispatcher: tokio::task::JoinHandle<()>,
    }

    impl Fixture {
        async fn start(paces: &[fn(usize) -> Duration]) -> Fixture {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&dir.path().join("t.db")).expect("store");
            let engine = crate::test_fixtures::engine(&store);
            let base = "https://relay.example";
            let registry = Registry::load(store.clone(), base, topic_settings())
                .await
                .expect("registry");
            let coop = Topic::tag("coop").expect("tag");
            crate::topics::keys::key_for(&store, &coop, 10)
                .await
                .expect("key");
            let mut inboxes = Vec::new();
            for pace in paces {
                let (inbox, hits) = paced_inbox(|_| 202, *pace).await;
                follow_topic(&store, &coop, &inbox).await;
                inboxes.push((inbox, hits));
            }
            registry.reload().await.expect("reload");
            let delivery = TopicDelivery::new(engine, registry, base);
            let head = store.tail().head();
            let dispatcher = delivery.dispatch(head);
            delivery.sync().await;
            assert_eq!(delivery.worker_count(), paces.len());
            Fixture {
                _dir: dir,
                store,
                delivery,
                coop,
                inboxes,
                head,
                dispatcher,
            }
        }

        /// Carries `count` new posts to #coop, each its own store job.
        async fn carry_posts(&self, count: usize) {
            for n in 0..count {
                let carry = Carry::announced(&format!("https://x.example/posts/{n}"))
                    .to(vec![self.coop.key()]);
                self.store
                    .append_carry(
                        "x.example".into(),
                        carry,
                        Bytes::new(),
                        format!("carry {n}"),
                    )
                    .await
                    .expect("append");
            }
        }

        async fn saved_cursor(&self, inbox: &str) -> u64 {
            let name = inbox_cursor_name(inbox);
            self.store
                .cursor(&name)
                .await
                .expect("cursor")
                .expect("saved")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_handed_over_saves_where_it_got_to_and_the_next_goes_on_from_there() {
        // Slow after the twentieth request, so that the hand-over comes mid-way even on a busy machine.
        let fixture =
            Fixture::start(&[|n| Duration::from_millis(if n < 20 { 0 } else { 10 })]).await;
        let (inbox, hits) = fixture.inboxes[0].clone();
        fixture.carry_posts(200).await;
        // Mid-way through, the inbox's lease moves: the worker stops after the delivery in progress.
        wait_for("some deliveries", || hits.load(Ordering::SeqCst) >= 20).await;
        let delivery = &fixture.delivery;
        delivery
            .hand_over([inbox.clone()], Duration::from_secs(5))
            .await;
        assert_eq!(delivery.worker_count(), 0);
        let sent = hits.load(Ordering::SeqCst) as u64;
        assert!(sent < 200, "stopped mid-way, not at the end");
        assert_eq!(
            fixture.saved_cursor(&inbox).await - fixture.head,
            sent,
            "the cursor saved is the last entry delivered"
        );
        // The next holder (here a new worker from the saved cursor) sends the rest, nothing twice.
        delivery.sync().await;
        wait_for("the rest", || hits.load(Ordering::SeqCst) >= 200).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 200, "nothing sent twice");
        fixture.dispatcher.abort();
        delivery.hand_over([inbox], Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_workers_cursors_are_saved_together_not_one_commit_per_delivery() {
        let fixture = Fixture::start(&[|_| Duration::ZERO, |_| Duration::ZERO]).await;
        let commits = fixture.store.timings().commits;
        fixture.carry_posts(30).await;
        let last = fixture.store.tail().head();
        for (_, hits) in &fixture.inboxes {
            wait_for("every post delivered", || hits.load(Ordering::SeqCst) == 30).await;
        }
        // Each worker went idle after its deliveries and noted where it got to, writing nothing.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            fixture.store.timings().commits - commits,
            30,
            "the appends' commits and no other"
        );
        for (inbox, _) in &fixture.inboxes {
            assert_eq!(fixture.saved_cursor(inbox).await, fixture.head);
        }
        assert_eq!(fixture.delivery.save_cursors().await.expect("save"), 2);
        assert_eq!(fixture.store.timings().commits - commits, 31, "one more");
        for (inbox, _) in &fixture.inboxes {
            assert_eq!(fixture.saved_cursor(inbox).await, last);
        }
        fixture.dispatcher.abort();
    }
}
