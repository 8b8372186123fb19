//! Delivering what topics carry: one worker per follower inbox, reading the durable log forward from
//! that inbox's own cursor like a subscriber's worker (so nothing carried is lost over a crash, order
//! per inbox holds, and a dead follower delays nobody else), taking only the entries topics carry
//! ([`crate::topics::carry`]), and sending each once per inbox, signed by the first of the entry's
//! topics that the inbox follows. Retries, backoff and skips are the relay's own
//! ([`Engine::deliver_body`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::ap::authority_of;
use crate::federation::delivery::{Delivery, Engine, Health, Stats};
use crate::httpsig::digest_header;
use crate::store::Entry;
use crate::store::reader::LogReader;
use crate::store::topics::inbox_cursor_name;
use crate::topics::{Topic, TopicKind};
use crate::topics::carry::Carry;
use crate::topics::registry::Registry;

/// Entries a worker takes at a time.
const BATCH: usize = 256;
/// Bodies kept ready: a carried post reaches many inboxes, which get at most one body per topic and
/// protocol; the workers of a burst are close together in the log.
const RENDERED: u64 = 4096;

/// One body ready to send: the bytes and their `Digest` header value.
type Rendered = (axum::body::Bytes, Arc<str>);
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
    workers: Mutex<HashMap<String, AbortHandle>>,
    /// Delivery counters (accepted, retried, refused, skipped).
    pub stats: Stats,
    /// Accepted deliveries by the kind of topic they came from.
    pub by_kind: KindCounters,
    /// Carried entries an inbox did not receive because the post came from its own instance.
    pub own_instance_skips: AtomicU64,
    /// Bodies by log entry, topic and protocol: built and hashed once, sent to every inbox that
    /// receives that entry from that topic.
    rendered: moka::future::Cache<(u64, String, crate::store::Style), Rendered>,
}

impl TopicDelivery {
    /// Workers delivering through `engine`'s client and backoff, as the topics of `registry`.
    pub fn new(engine: Arc<Engine>, registry: Arc<Registry>, base: &str) -> Arc<TopicDelivery> {
        Arc::new(TopicDelivery {
            engine,
            registry,
            base: base.to_owned(),
            workers: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            by_kind: KindCounters::default(),
            own_instance_skips: AtomicU64::new(0),
            rendered: moka::future::Cache::new(RENDERED),
        })
    }

    /// Starts a worker for every follower inbox of the registry's current view that has none, and
    /// stops (forgetting the cursor of) those whose inbox nobody follows any more. Called after every
    /// change of the followers, once the registry is reloaded.
    pub async fn sync(self: &Arc<Self>) {
        let snapshot = self.registry.snapshot();
        let (start, stop): (Vec<String>, Vec<String>) = {
            let Ok(workers) = self.workers.lock() else {
                return;
            };
            let start = snapshot
                .inboxes()
                .filter(|inbox| !workers.contains_key(*inbox))
                .cloned()
                .collect();
            let stop = workers
                .keys()
                .filter(|inbox| snapshot.inbox(inbox).is_none())
                .cloned()
                .collect();
            (start, stop)
        };
        for inbox in stop {
            if let Some(task) = self.workers.lock().ok().and_then(|mut w| w.remove(&inbox)) {
                task.abort();
            }
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
            let task = tokio::spawn(self.clone().run(inbox.clone(), cursor)).abort_handle();
            workers.insert(inbox, task);
        }
    }

    /// The store the workers read.
    pub fn store(&self) -> &crate::store::Store {
        self.engine.store()
    }

    /// Follower inboxes with a running worker.
    pub fn worker_count(&self) -> usize {
        self.workers.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Stops every worker.
    pub fn stop_all(&self) {
        if let Ok(mut workers) = self.workers.lock() {
            for (_, task) in workers.drain() {
                task.abort();
            }
        }
    }

    async fn run(self: Arc<Self>, inbox: String, cursor: u64) {
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
            // The position after this batch: saved only once every entry of it was dealt with.
            let done = reader.cursor();
            if batch.pruned > 0 {
                self.stats
                    .pruned_skips
                    .fetch_add(batch.pruned, Ordering::Relaxed);
            }
            let idle = batch.entries.is_empty();
            for entry in batch.entries {
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
            if (idle || last_save.elapsed() >= PERSIST_EVERY) && done != saved {
                match store.set_cursor(&name, done).await {
                    Ok(()) => saved = done,
                    Err(e) => tracing::error!(%inbox, error = %e, "saving a topic cursor"),
                }
                last_save = Instant::now();
            }
            if idle && !reader.wait().await {
                return;
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
        let rendered = self
            .rendered
            .optionally_get_with((entry.seq, key.to_owned(), style), async {
                let topic = Topic::from_key(key)?;
                let body = carry.body(
                    &self.base,
                    &topic,
                    style,
                    entry.seq,
                    &entry.mastodon_body,
                    &rfc3339(entry.received_ms),
                );
                let digest: Arc<str> = digest_header(&body).into();
                Some((body, digest))
            })
            .await;
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

/// Unix milliseconds as RFC 3339 (UTC, seconds).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
