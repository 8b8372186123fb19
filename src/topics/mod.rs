//! Topic feeds (issue 16): a hashtag, a language, a subscribed instance or a search the admins curated,
//! that an instance or a person can follow through the relay instead of the whole firehose.
//!
//! Each topic is its own ActivityPub `Service` actor with its own key, so that what it carries shows as
//! a boost by the topic and a follower can tell topics apart. The flow:
//!
//! ```text
//! POST /topics/{kind}/{name}/inbox ─ inbox (signature, admission) ─▶ store: follower
//!                                                  └─▶ registry (matcher, inboxes) ─▶ delivery workers
//! indexer ─ post indexed (consent applied) ─▶ ingest (match against every topic at once)
//!                                   └─▶ store log: entry with a Carry ─▶ delivery: one per follower inbox
//! ```
//!
//! What a topic *is* is free of I/O: [`topic`] names, case-folding and handles; [`follow`] what a
//! Follow or Undo at a topic inbox asks for and the answers; [`admission`] who may follow what;
//! [`actor`] the documents served; [`carry`] what a carried post is and how it is sent. The rest does
//! I/O at the edges: [`keys`] (a topic's key, made on first need), [`registry`] (the topics in force,
//! in memory), [`inbox`], [`ingest`], [`delivery`], [`curated`] (the admins' searches) and [`admin`]
//! (their API). Durable state lives in `store::topics`; the HTTP
//! handlers in `web::topics` only translate.

pub mod actor;
pub mod admin;
pub mod admission;
pub mod carry;
pub mod curated;
pub mod cursors;
pub mod delivery;
pub mod follow;
pub mod inbox;
pub mod ingest;
pub mod keys;
pub mod registry;
pub mod topic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use topic::{Topic, TopicKind};

use crate::Result;
use crate::federation::delivery::Engine;
use crate::store::Store;
use crate::topics::admission::TopicSettings;
use crate::topics::delivery::TopicDelivery;
use crate::topics::registry::Registry;

/// Matching and carrying counters, for the metrics.
#[derive(Default)]
pub struct Stats {
    /// Posts matched against the topics.
    pub matched_posts: AtomicU64,
    /// Time spent matching, in nanoseconds (wall clock: on a busy machine it counts the waits for a core).
    pub match_nanos: AtomicU64,
    /// CPU time the matching thread used, in nanoseconds: the matching's own cost.
    pub match_cpu_nanos: AtomicU64,
    /// Changes appended for the topics' followers.
    pub carried: AtomicU64,
}

impl Stats {
    fn note_match(&self, took: Duration, cpu: Duration) {
        self.matched_posts.fetch_add(1, Ordering::Relaxed);
        self.match_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.match_cpu_nanos
            .fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// The CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`); zero where the
/// clock cannot be read. Two readings around synchronous work on one thread give that work's own
/// cost, apart from the time the thread waited for a core.
fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the clock writes its value into `now`, which outlives the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0 {
            return Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

/// The topic feeds of a running relay.
pub struct Topics {
    /// What the configuration offers.
    pub settings: TopicSettings,
    /// The topics in force.
    pub registry: Arc<Registry>,
    /// The follower inboxes' workers.
    pub delivery: Arc<TopicDelivery>,
    /// Counters.
    pub stats: Stats,
}

impl Topics {
    /// Loads the topics from the store and starts a delivery worker per follower inbox.
    pub async fn start(
        store: Store,
        engine: Arc<Engine>,
        base: &str,
        settings: TopicSettings,
    ) -> Result<Arc<Topics>> {
        let head = store.tail().head();
        let registry = Registry::load(store, base, settings.clone()).await?;
        let delivery = TopicDelivery::new(engine, registry.clone(), base);
        // The dispatcher first, from the head as it is now: the workers read at least that far.
        delivery.dispatch(head);
        delivery.keep_saving_cursors();
        delivery.sync().await;
        Ok(Arc::new(Topics {
            settings,
            registry,
            delivery,
            stats: Stats::default(),
        }))
    }

    /// After a change of the followers or the curated searches: reloads the registry and starts or
    /// stops the workers it calls for.
    pub async fn changed(&self) -> Result<()> {
        self.registry.reload().await?;
        self.delivery.sync().await;
        Ok(())
    }

    fn store(&self) -> &Store {
        self.delivery.store()
    }
}
