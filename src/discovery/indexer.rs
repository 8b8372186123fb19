//! The indexer: a reader of the activity log with a cursor of its own, feeding an [`IndexSink`].
//!
//! It reads the log like a delivery worker (recent entries from the in-memory tail, older ones from the
//! store) but is no subscriber: its cursor, named [`CURSOR`], lives in the store's `cursors` table and
//! is saved only after the changes it covers are committed to the index, so a crash replays a little
//! (every sink call is an idempotent upsert or removal) and loses nothing. The inbox never waits for it.
//!
//! Each batch of entries goes in two phases. First every entry is planned ([`plan`]) and what it needs
//! is fetched concurrently (posts from their origin, authors; bounded overall and per host by the
//! [`Fetcher`]). Then the outcomes are handed to the sink in log order (the index applies the consent
//! rules), so a `Delete` that follows a `Create` is applied after it whatever the fetches did.
//! A committer task makes the changes searchable every `index_commit_ms`; a housekeeping task keeps
//! the index's instances in step with the subscribers (NodeInfo on subscribe and daily, a purge when
//! one leaves), refreshes stale authors and drops posts past the retention limit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use crate::ap::value::id_of;
use crate::ap::{Activity, authority_of};
use crate::discovery::authors::{Author, Authors};
use crate::discovery::fetch::Fetcher;
use crate::discovery::plan::SHARED_KIND;
use crate::discovery::plan::{self, PostCheck, Step};
use crate::discovery::pool::Pool;
use crate::discovery::sink::{IndexSink, InstanceFacts};
use crate::federation::net::Http;
use crate::federation::nodeinfo;
use crate::store::reader::LogReader;
use crate::store::{Entry, Store};
use crate::topics::Topics;
use crate::topics::ingest::{Handed, Matched, Source};
use crate::{Error, Result};

/// The indexer's cursor name in the store.
pub const CURSOR: &str = "indexer";
/// Entries taken from the log at a time.
const BATCH: usize = 256;
/// Authors kept in the cache.
const AUTHOR_CAPACITY: u64 = 100_000;
/// How often the subscribers are compared with the index's instances.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// How often NodeInfo is fetched again.
const NODEINFO_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How soon a failed NodeInfo fetch is tried again.
const NODEINFO_RETRY: Duration = Duration::from_secs(3600);
/// How often stale authors are refreshed and old posts dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Authors refreshed at most per sweep (oldest first).
const SWEEP_AUTHORS: usize = 10_000;
/// How soon an author whose refresh failed is tried again.
const REFRESH_RETRY: Duration = Duration::from_secs(3600);

/// What the indexer is told by the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest time between a change and its commit.
    pub commit_every: Duration,
    /// Age after which a cached author is fetched again.
    pub actor_refresh: Duration,
    /// Posts older than this are dropped.
    pub retention: Duration,
    /// Purge an instance's documents when it leaves.
    pub purge_on_unsubscribe: bool,
    /// Fetches in flight overall (per host, the client's own bound applies).
    pub fetch_concurrency: usize,
    /// How often stale authors are refreshed and posts past retention dropped.
    pub sweep_every: Duration,
    /// How soon an author whose refresh failed is tried again.
    pub refresh_retry: Duration,
    /// Threads the calls into the index run on.
    pub threads: usize,
    /// Their nice value (see [`crate::discovery::pool`]).
    pub nice: i32,
    /// Among several nodes, this node's id: its index is a replica of its own, fed from its own cursor
    /// (`indexer@{node}`) with its own instances and authors (see [`crate::store::discovery_state`]);
    /// `None` alone ([`CURSOR`]).
    pub node: Option<String>,
}

impl Settings {
    /// The indexer settings of a relay configuration.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            commit_every: Duration::from_millis(config.index_commit_ms.max(1)),
            // Clamped to a century: larger values mean "never" and must not overflow a date.
            actor_refresh: Duration::from_secs(config.actor_refresh_hours.clamp(1, 876_000) * 3600),
            retention: Duration::from_secs(config.index_retention_days.clamp(1, 36_500) * 86_400),
            purge_on_unsubscribe: config.purge_on_unsubscribe,
            fetch_concurrency: config.index_fetch_concurrency as usize,
            sweep_every: SWEEP_EVERY,
            refresh_retry: REFRESH_RETRY,
            threads: 1,
            nice: config.index_nice,
            node: None,
        }
    }
}

/// Counters exported on `/metrics`.
#[derive(Default)]
pub struct Stats {
    /// Log entries read.
    pub entries: AtomicU64,
    /// Entries pruned from the log before the indexer read them.
    pub pruned_skips: AtomicU64,
    /// Posts handed to the index.
    pub posts: AtomicU64,
    /// Posts handed to the index that its consent rules refused.
    pub refused: AtomicU64,
    /// Profiles handed to the index.
    pub profiles: AtomicU64,
    /// Instances handed to the index.
    pub instances: AtomicU64,
    /// Removals handed to the index (posts, profiles, actors, instances).
    pub removals: AtomicU64,
    /// Commits made.
    pub commits: AtomicU64,
}

/// What one log entry asks of the index, before any fetch ([`Indexer::plan_entry`]).
enum Planned {
    /// A post or account a FASP server announced ([`crate::discovery::shared`]).
    Shared,
    /// Decided without fetching anything.
    Done(Outcome),
    /// The plan of a received activity: the share it records (the announced post and the actor
    /// who boosted it), the id of its object, and what to fetch and index.
    Step {
        share: Option<(String, String)>,
        object_id: String,
        step: Step,
    },
}

/// What one log entry turned into once its fetches are done; applied in log order.
pub(super) enum Outcome {
    Post {
        object: Value,
        author: Author,
        fresh_author: bool,
        instance: String,
        /// Announced by a FASP server rather than relayed: its author's profile is handed over
        /// whatever instance it lives on.
        shared: bool,
    },
    Profile(Author),
    /// An actor announced by a FASP server: handed over whatever instance it lives on.
    SharedProfile(Author),
    RemovePost(String),
    RemoveActor(String),
    Skip(String),
}

/// The indexer.
pub struct Indexer {
    pub(super) store: Store,
    sink: Arc<dyn IndexSink>,
    pub(super) fetcher: Fetcher,
    pub(super) authors: Authors,
    settings: Settings,
    /// Highest entry whose changes were handed to the sink.
    applied: AtomicU64,
    /// Highest entry whose changes are committed and whose position is saved.
    saved: AtomicU64,
    /// Whose instances and authors (see [`Indexer::scope`]).
    scope: String,
    /// The name its position is saved under.
    cursor_name: String,
    /// Whether the sink holds changes not yet committed.
    dirty: AtomicBool,
    /// Unix seconds of the last accepted activity per instance.
    last_activity: Mutex<HashMap<String, i64>>,
    /// Authors whose last refresh answered 404: a second 404 in a row removes them (one alone may be
    /// a passing fault of their server; 410 removes at once).
    not_found_once: Mutex<HashSet<String>>,
    /// The topics that carry what the index takes, when topic feeds are on.
    topics: std::sync::OnceLock<Arc<Topics>>,
    /// The threads calls into the index run on, at background priority.
    pool: Pool,
    /// Counters.
    pub stats: Stats,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Indexer {
    /// An indexer over `store` feeding `sink`, fetching through `http`; starts after its saved cursor
    /// (from the beginning of the log the first time).
    pub async fn new(
        store: Store,
        http: Http,
        sink: Arc<dyn IndexSink>,
        settings: Settings,
    ) -> Result<Arc<Indexer>> {
        let (scope, cursor_name) = match &settings.node {
            Some(node) => (node.clone(), format!("{CURSOR}@{node}")),
            None => (String::new(), CURSOR.to_string()),
        };
        let cursor = store.cursor(&cursor_name).await?.unwrap_or(0);
        let pool = Pool::start(settings.threads, settings.nice)?;
        Ok(Arc::new(Indexer {
            fetcher: Fetcher::new(http, settings.fetch_concurrency),
            authors: Authors::new(AUTHOR_CAPACITY, settings.actor_refresh),
            store,
            sink,
            settings,
            applied: AtomicU64::new(cursor),
            saved: AtomicU64::new(cursor),
            scope,
            cursor_name,
            dirty: AtomicBool::new(false),
            last_activity: Mutex::new(HashMap::new()),
            not_found_once: Mutex::new(HashSet::new()),
            topics: std::sync::OnceLock::new(),
            pool,
            stats: Stats::default(),
        }))
    }

    /// Hands what the index takes to `topics` from now on (matched on ingest; see
    /// [`crate::topics::ingest`]).
    pub fn carry_for(&self, topics: Arc<Topics>) {
        let _ = self.topics.set(topics);
    }

    /// Starts following the log, committing, and keeping the instances in step; the tasks run until
    /// the returned set is dropped or aborted.
    pub fn start(self: &Arc<Self>) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        tasks.spawn(self.clone().follow());
        tasks.spawn(self.clone().commit_loop());
        tasks.spawn(self.clone().housekeeping());
        tasks
    }

    /// This node's id among several (`None` alone).
    pub(super) fn node(&self) -> Option<&str> {
        self.settings.node.as_deref()
    }

    /// Whose instances and authors this indexer keeps in the store: its node's id among several
    /// nodes, empty alone (see [`crate::store::discovery_state`]).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Log entries not yet handed to the index.
    pub fn lag(&self) -> u64 {
        self.store
            .tail()
            .head()
            .saturating_sub(self.applied.load(Ordering::SeqCst))
    }

    /// Documents (posts, profiles, instances) handed to the index since the relay started.
    pub fn handed(&self) -> u64 {
        [
            &self.stats.posts,
            &self.stats.profiles,
            &self.stats.instances,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    /// The saved position in the log.
    pub fn saved_cursor(&self) -> u64 {
        self.saved.load(Ordering::SeqCst)
    }

    /// The fetch counters.
    pub fn fetch_stats(&self) -> &crate::discovery::fetch::FetchStats {
        &self.fetcher.stats
    }

    async fn follow(self: Arc<Self>) {
        let mut reader = LogReader::new(
            self.store.clone(),
            self.applied.load(Ordering::SeqCst),
            BATCH,
        );
        while let Some(batch) = reader.next_batch("indexer").await {
            if batch.pruned > 0 {
                tracing::warn!(
                    lost = batch.pruned,
                    "indexer: entries pruned before they were indexed"
                );
                self.stats
                    .pruned_skips
                    .fetch_add(batch.pruned, Ordering::Relaxed);
            }
            self.process(batch.entries).await;
            self.applied.store(reader.cursor(), Ordering::SeqCst);
        }
    }

    /// Plans every entry of `batch` (reading its activity: on the indexer's own threads, see
    /// [`Indexer::with_index`]), fetches what the plans need concurrently, then applies the outcomes in
    /// log order, and hands what the index took to the topics.
    async fn process(self: &Arc<Self>, batch: Vec<Arc<Entry>>) {
        self.stats
            .entries
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let entries = batch.clone();
        let planned = match self
            .with_index(move |this| {
                Ok(entries
                    .iter()
                    .map(|e| this.plan_entry(e))
                    .collect::<Vec<Planned>>())
            })
            .await
        {
            Ok(planned) => planned,
            Err(e) => {
                tracing::error!(error = %e, "indexer: planning a batch");
                return;
            }
        };
        let mut tasks = JoinSet::new();
        for (n, (entry, plan)) in batch.iter().zip(planned).enumerate() {
            let (this, entry) = (self.clone(), entry.clone());
            tasks.spawn(async move { (n, this.resolve(&entry, plan).await) });
        }
        let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => tracing::error!(error = %e, "indexer: an entry's task failed"),
            }
        }
        outcomes.sort_by_key(|(n, _)| *n);
        let applied = self
            .with_index(move |this| {
                let mut handed = Vec::new();
                for (n, outcome) in outcomes {
                    match this.apply(outcome) {
                        Ok(change) => handed.extend(this.for_topics(change).map(|m| (n, m))),
                        Err(e) => {
                            tracing::error!(error = %e, "indexer: the index refused a change")
                        }
                    }
                }
                Ok(handed)
            })
            .await;
        match applied {
            Ok(handed) => self.hand_to_topics(handed, &batch).await,
            Err(e) => tracing::error!(error = %e, "indexer: applying a batch"),
        }
    }

    /// What the topics make of a change the index just made (`None` when topic feeds are off):
    /// matched here, on the indexer's thread, where the post's words were just analysed (see
    /// [`crate::topics::ingest`]).
    pub(super) fn for_topics(&self, change: Option<Handed>) -> Option<Matched> {
        Some(self.topics.get()?.matched(change?))
    }

    /// Hands the changes the index made for `batch`'s entries to the topics, with the entries that
    /// brought them (before the indexer's cursor moves past them, so a crash replays them).
    async fn hand_to_topics(&self, handed: Vec<(usize, Matched)>, batch: &[Arc<Entry>]) {
        let Some(topics) = self.topics.get() else {
            return;
        };
        let changes = handed
            .into_iter()
            .map(|(n, change)| (change, batch.get(n).and_then(|e| Source::of(e))))
            .collect();
        topics.carry(changes).await;
    }

    /// Hands a change made outside the log (a post announced by a FASP server, an author's refresh)
    /// to the topics.
    pub(super) async fn hand_unlogged_to_topics(&self, change: Option<Matched>) {
        if let (Some(topics), Some(change)) = (self.topics.get(), change) {
            topics.carry(vec![(change, None)]).await;
        }
    }

    /// Runs calls into the index off the async runtime, on the indexer's own threads at background
    /// priority ([`Pool`]): the index may block (a commit holds its writer for tens of milliseconds),
    /// and the inbox and the delivery workers share the runtime and come first.
    pub(super) async fn with_index<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Indexer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        self.pool.run(move || f(&this)).await?
    }

    fn subscribed(&self, authority: &str) -> bool {
        self.store.subscribed_style(authority).is_some()
    }

    /// What an entry asks of the index, read without I/O: its activity parsed and planned
    /// ([`plan::plan`]). Runs on the indexer's own threads, so the inbox's runtime does not parse every
    /// activity a second time at its priority.
    fn plan_entry(&self, entry: &Entry) -> Planned {
        if entry.kind == SHARED_KIND {
            return Planned::Shared;
        }
        let Some((body, signer)) = entry.received().filter(|_| entry.target.is_none()) else {
            return Planned::Done(Outcome::Skip("written by the relay".into()));
        };
        let activity = match Activity::parse(body) {
            Ok(activity) => activity,
            Err(e) => return Planned::Done(Outcome::Skip(format!("unreadable: {e}"))),
        };
        if let Ok(mut last) = self.last_activity.lock() {
            last.insert(entry.origin.clone(), entry.received_ms / 1000);
        }
        let share = plan::shared_post(&activity, signer)
            .map(|post| (post.to_owned(), activity.actor.clone()));
        let step = plan::plan(&activity, signer, |a| self.subscribed(a));
        tracing::debug!(seq = entry.seq, kind = %activity.kind, ?step, "indexer plan");
        Planned::Step {
            share,
            object_id: activity.object_id().unwrap_or_default().to_owned(),
            step,
        }
    }

    /// What an entry comes to, with the fetches its plan needs done.
    async fn resolve(&self, entry: &Entry, planned: Planned) -> Outcome {
        let (share, object_id, step) = match planned {
            Planned::Shared => return self.resolve_shared(entry).await,
            Planned::Done(outcome) => return outcome,
            Planned::Step {
                share,
                object_id,
                step,
            } => (share, object_id, step),
        };
        if let Some((post, actor)) = share {
            self.record_share(&post, &actor, &entry.origin).await;
        }
        match step {
            Step::Post { object, edit } => self.post(object, &object_id, edit).await,
            Step::Fetch { id, edit } => match self.fetcher.document(&id).await {
                Ok(object) => self.post(object, &id, edit).await,
                Err(e) => Outcome::Skip(format!("fetching the post from its origin: {e}")),
            },
            Step::Profile { id, embedded } => {
                let author = match embedded {
                    Some(doc) => Ok(self.authors.put(&id, doc).await),
                    None => self.authors.refetch(&id, &self.fetcher).await,
                };
                match author {
                    Ok(author) => {
                        self.note_author(&id, unix_now()).await;
                        Outcome::Profile(author)
                    }
                    Err(e) => Outcome::Skip(format!("fetching the updated actor: {e}")),
                }
            }
            Step::RemovePost(id) => Outcome::RemovePost(id),
            Step::RemoveActor(id) => {
                self.forget_author(&id).await;
                Outcome::RemoveActor(id)
            }
            Step::Skip(reason) => Outcome::Skip(reason.into()),
        }
    }

    /// Records an `Announce` by `actor` (signed by the actor's own instance: see
    /// [`plan::shared_post`]) as a share of `object` for content trends (which count only posts the
    /// index holds, so the object need not be indexed yet).
    async fn record_share(&self, object: &str, actor: &str, origin: &str) {
        let authority = authority_of(actor).unwrap_or_else(|| origin.to_string());
        if let Err(e) = self.store.record_share(object, actor, &authority).await {
            tracing::warn!(error = %e, "indexer: recording a share");
        }
    }

    /// An authentic copy of a post: checks it and fetches its author.
    async fn post(&self, object: Value, id: &str, edit: bool) -> Outcome {
        self.post_in_scope(object, id, edit, |a| self.subscribed(a), false)
            .await
    }

    /// [`Indexer::post`] for authors on the instances `in_scope` accepts; `shared`: see
    /// [`Outcome::Post`].
    pub(super) async fn post_in_scope(
        &self,
        object: Value,
        id: &str,
        edit: bool,
        in_scope: impl Fn(&str) -> bool,
        shared: bool,
    ) -> Outcome {
        match plan::check_post(&object, id, edit, in_scope) {
            PostCheck::Candidate { author, instance } => {
                match self.authors.get(&author, &self.fetcher).await {
                    Ok((found, fresh_author)) => {
                        if fresh_author {
                            self.note_author(&author, unix_now()).await;
                        }
                        Outcome::Post {
                            object,
                            author: found,
                            fresh_author,
                            instance,
                            shared,
                        }
                    }
                    Err(e) => Outcome::Skip(format!("fetching the author: {e}")),
                }
            }
            PostCheck::Remove(id) => Outcome::RemovePost(id),
            PostCheck::Skip(reason) => Outcome::Skip(reason.into()),
        }
    }

    /// Hands one outcome to the sink (blocking: see [`Indexer::with_index`]); returns what it did to
    /// a post, for the topics.
    pub(super) fn apply(&self, outcome: Outcome) -> Result<Option<Handed>> {
        Ok(match outcome {
            Outcome::Post {
                object,
                author,
                fresh_author,
                instance,
                shared,
            } => {
                if fresh_author && shared {
                    self.shared_profile(&author.doc)?;
                } else if fresh_author {
                    self.profile(&author.doc)?;
                }
                let indexed = self.sink.add_post(&object, &author.doc, &instance)?;
                self.changed(&self.stats.posts);
                match indexed {
                    Some(post) => Some(Handed::Indexed(Box::new(post))),
                    None => {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        id_of(&object).map(|id| Handed::Refused(id.to_owned()))
                    }
                }
            }
            Outcome::Profile(author) => {
                self.profile(&author.doc)?;
                Handed::from_profile(&author.doc)
            }
            Outcome::SharedProfile(author) => {
                self.shared_profile(&author.doc)?;
                Handed::from_profile(&author.doc)
            }
            Outcome::RemovePost(id) => {
                self.remove(|s| s.remove_post(&id))?;
                Some(Handed::Removed(id))
            }
            Outcome::RemoveActor(id) => {
                self.remove(|s| s.remove_actor(&id))?;
                Some(Handed::AuthorGone(id))
            }
            Outcome::Skip(reason) => {
                tracing::debug!(%reason, "indexer: skipped");
                None
            }
        })
    }

    /// Hands a fresh actor document over for its consent to be re-checked, when its instance is
    /// subscribed.
    fn profile(&self, actor: &Value) -> Result<()> {
        if id_of(actor)
            .and_then(authority_of)
            .is_some_and(|a| self.subscribed(&a))
        {
            self.sink.add_or_update_profile(actor)?;
            self.changed(&self.stats.profiles);
        }
        Ok(())
    }

    /// Hands a fresh actor document announced by a FASP server over for its consent to be checked.
    fn shared_profile(&self, actor: &Value) -> Result<()> {
        self.sink.add_or_update_profile(actor)?;
        self.changed(&self.stats.profiles);
        Ok(())
    }

    fn changed(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.dirty.store(true, Ordering::SeqCst);
    }

    fn remove(&self, f: impl FnOnce(&dyn IndexSink) -> Result<()>) -> Result<()> {
        f(self.sink.as_ref())?;
        self.changed(&self.stats.removals);
        Ok(())
    }

    /// Removes the posts, profiles and instance documents of `authorities` from the index (a block
    /// with `purge`); the next commit makes it visible.
    pub async fn purge_instances(self: &Arc<Self>, authorities: Vec<String>) -> Result<()> {
        self.with_index(move |this| {
            for authority in &authorities {
                this.remove(|s| s.remove_instance(authority))?;
            }
            Ok(())
        })
        .await
    }

    /// Commits what is pending and saves the cursor the commit covers.
    pub async fn commit(self: &Arc<Self>) -> Result<()> {
        let applied = self.applied.load(Ordering::SeqCst);
        if self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.with_index(|this| this.sink.commit()).await {
                self.dirty.store(true, Ordering::SeqCst);
                return Err(e);
            }
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
        }
        if applied > self.saved.load(Ordering::SeqCst) {
            self.store.set_cursor(&self.cursor_name, applied).await?;
            self.saved.store(applied, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn commit_loop(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.settings.commit_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = self.commit().await {
                tracing::error!(error = %e, "indexer: commit failed; retrying");
            }
        }
    }

    async fn housekeeping(self: Arc<Self>) {
        let mut in_flight: HashSet<String> = HashSet::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut last_sweep: Option<Instant> = None;
        let mut sweeping: Option<tokio::task::JoinHandle<()>> = None;
        let mut every = tokio::time::interval(RECONCILE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            while let Ok(done) = done_rx.try_recv() {
                in_flight.remove(&done);
            }
            match self.reconcile(&mut in_flight, &done_tx).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "indexer: keeping instances in step"),
            }
            // One sweep at a time: a long one (many stale authors) is not piled upon.
            let idle = sweeping.as_ref().is_none_or(|s| s.is_finished());
            if idle && last_sweep.is_none_or(|t| t.elapsed() >= self.settings.sweep_every) {
                last_sweep = Some(Instant::now());
                sweeping = Some(tokio::spawn(self.clone().sweep()));
            }
        }
    }

    /// Compares the subscribers with the index's instances: purges those that left, fetches the
    /// NodeInfo of new ones and of those due for a refresh (in the background, one at a time each).
    async fn reconcile(
        self: &Arc<Self>,
        in_flight: &mut HashSet<String>,
        done: &tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<()> {
        let subscribers: HashSet<String> =
            self.store.subscriber_authorities().into_iter().collect();
        let indexed = self.store.index_instances(&self.scope).await?;
        let now = unix_now();
        for (authority, nodeinfo_at) in &indexed {
            if !subscribers.contains(authority) {
                if self.settings.purge_on_unsubscribe {
                    let gone = authority.clone();
                    self.with_index(move |this| this.remove(|s| s.remove_instance(&gone)))
                        .await?;
                    tracing::info!(instance = %authority, "indexer: purged an instance that left");
                }
                self.store
                    .forget_index_instance(&self.scope, authority)
                    .await?;
            } else if now - nodeinfo_at >= NODEINFO_EVERY.as_secs() as i64
                && in_flight.insert(authority.clone())
            {
                self.spawn_nodeinfo(authority.clone(), done.clone());
            }
        }
        for authority in subscribers {
            if !indexed.iter().any(|(a, _)| *a == authority) && in_flight.insert(authority.clone())
            {
                self.spawn_nodeinfo(authority, done.clone());
            }
        }
        Ok(())
    }

    fn spawn_nodeinfo(
        self: &Arc<Self>,
        authority: String,
        done: tokio::sync::mpsc::UnboundedSender<String>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.refresh_instance(&authority).await {
                tracing::warn!(instance = %authority, error = %e, "indexer: instance entry");
            }
            let _ = done.send(authority);
        });
    }

    /// Hands an instance's facts to the index: its NodeInfo as the store holds it (read when it
    /// subscribed), fetched again when missing or a day old. A failed fetch still lists the instance
    /// (with what the subscription says) and is retried sooner.
    async fn refresh_instance(self: &Arc<Self>, authority: &str) -> Result<()> {
        let Some(subscriber) = self.store.subscriber(authority) else {
            return Ok(());
        };
        let now = unix_now();
        let known = self
            .store
            .instances()
            .await?
            .into_iter()
            .find(|(a, _)| a == authority)
            .map(|(_, info)| info)
            .filter(|info| info.nodeinfo.is_some())
            .filter(|info| now - info.fetched_at < NODEINFO_EVERY.as_secs() as i64);
        let info = match known {
            Some(info) => Ok(info),
            None => {
                let fetched = nodeinfo::fetch(self.fetcher.http(), &subscriber.actor_id).await;
                if let Ok(info) = &fetched {
                    self.store.record_instance(authority, info.clone()).await?;
                }
                fetched
            }
        };
        let facts = InstanceFacts {
            authority: authority.to_string(),
            nodeinfo: info.as_ref().ok().and_then(|i| i.nodeinfo.clone()),
            subscribed_since: subscriber.created_at,
            last_activity: self
                .last_activity
                .lock()
                .ok()
                .and_then(|l| l.get(authority).copied()),
        };
        // It may have left while the fetch ran: the next reconcile purges what this adds.
        if self.store.subscriber(authority).is_none() {
            return Ok(());
        }
        self.with_index(move |this| {
            this.sink.upsert_instance(&facts)?;
            this.changed(&this.stats.instances);
            Ok(())
        })
        .await?;
        let at = match info {
            Ok(info) => info.fetched_at,
            Err(e) => {
                tracing::info!(instance = %authority, error = %e, "indexer: no NodeInfo");
                now - (NODEINFO_EVERY - NODEINFO_RETRY).as_secs() as i64
            }
        };
        self.store
            .mark_index_instance(&self.scope, authority, at)
            .await
    }

    /// Records when an author was fetched, for the scheduled refresh (which survives restarts).
    async fn note_author(&self, id: &str, at: i64) {
        if let Err(e) = self.store.note_author(&self.scope, id, at).await {
            tracing::error!(actor = %id, error = %e, "indexer: recording an author");
        }
    }

    pub(super) async fn forget_author(&self, id: &str) {
        self.authors.forget(id).await;
        if let Err(e) = self.store.forget_author(&self.scope, id).await {
            tracing::error!(actor = %id, error = %e, "indexer: forgetting an author");
        }
    }

    /// Refreshes the authors fetched longest ago (re-checking their consent) and drops posts past
    /// the retention limit.
    async fn sweep(self: Arc<Self>) {
        let refresh = self.settings.actor_refresh.as_secs() as i64;
        let stale = self
            .store
            .stale_authors(&self.scope, unix_now() - refresh, SWEEP_AUTHORS)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "indexer: listing authors to refresh");
                Vec::new()
            });
        // Instances shared content came from (FASP data_sharing): their authors are refreshed too.
        let shared: HashSet<String> = self
            .store
            .shared_instances()
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "indexer: listing shared-content instances");
                Vec::new()
            })
            .into_iter()
            .collect();
        for id in stale {
            let authority = authority_of(&id).map(|a| a.to_ascii_lowercase());
            let subscribed = authority.as_deref().is_some_and(|a| self.subscribed(a));
            if !subscribed && !authority.is_some_and(|a| shared.contains(&a)) {
                // Its instance left (or was blocked); what the index holds of it went with it.
                self.forget_author(&id).await;
                continue;
            }
            let fetched = self.authors.refetch(&id, &self.fetcher).await;
            let gone = self.author_gone(&id, &fetched);
            let change = match fetched {
                Ok(author) => {
                    self.note_author(&id, unix_now()).await;
                    if subscribed {
                        Outcome::Profile(author)
                    } else {
                        Outcome::SharedProfile(author)
                    }
                }
                Err(_) if gone => {
                    tracing::info!(actor = %id, "indexer: author gone; removing it");
                    self.forget_author(&id).await;
                    Outcome::RemoveActor(id.clone())
                }
                Err(e) => {
                    tracing::debug!(actor = %id, error = %e, "indexer: author refresh failed");
                    let retry = unix_now() - refresh + self.settings.refresh_retry.as_secs() as i64;
                    self.note_author(&id, retry).await;
                    continue;
                }
            };
            // An author who no longer lets their posts be found takes them out of the topics too.
            match self
                .with_index(move |this| Ok(this.for_topics(this.apply(change)?)))
                .await
            {
                Ok(change) => self.hand_unlogged_to_topics(change).await,
                Err(e) => tracing::error!(actor = %id, error = %e, "indexer: refreshing an author"),
            }
        }
        let cutoff = unix_now() - self.settings.retention.as_secs() as i64;
        let expired = self
            .with_index(move |this| this.remove(|s| s.expire_posts(cutoff)))
            .await;
        if let Err(e) = expired {
            tracing::error!(error = %e, "indexer: dropping posts past retention");
        }
    }

    /// Whether a refresh says the author is gone for good: its server answered 410, or 404 for the
    /// second refresh in a row. Anything else ends a run of 404s.
    fn author_gone<T>(&self, id: &str, fetched: &Result<T>) -> bool {
        let Ok(mut not_found) = self.not_found_once.lock() else {
            return false;
        };
        match fetched {
            Err(Error::Fetch { reason, .. }) if reason.starts_with("HTTP 410") => {
                not_found.remove(id);
                true
            }
            Err(Error::Fetch { reason, .. }) if reason.starts_with("HTTP 404") => {
                // The second 404 in a row finds the first one noted.
                !not_found.insert(id.to_string()) && not_found.remove(id)
            }
            _ => {
                not_found.remove(id);
                false
            }
        }
    }

    /// The indexer's lines for `/metrics` (Prometheus text).
    pub fn render_metrics(&self) -> String {
        let s = &self.stats;
        let f = &self.fetcher.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut text = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            crate::prometheus::series(&mut text, name, kind, help, samples);
        };
        family(
            "plaza_indexer_lag_entries",
            "gauge",
            "Log entries not yet handed to the index.",
            &[("", self.lag())],
        );
        family(
            "plaza_indexer_entries_total",
            "counter",
            "Log entries the indexer has read (its ingest rate).",
            &[("", load(&s.entries))],
        );
        family(
            "plaza_indexer_pruned_skips_total",
            "counter",
            "Log entries pruned before the indexer read them.",
            &[("", load(&s.pruned_skips))],
        );
        family(
            "plaza_index_documents_total",
            "counter",
            "Documents handed to the index, by kind.",
            &[
                ("{kind=\"post\"}", load(&s.posts)),
                ("{kind=\"profile\"}", load(&s.profiles)),
                ("{kind=\"instance\"}", load(&s.instances)),
                ("{kind=\"removal\"}", load(&s.removals)),
            ],
        );
        family(
            "plaza_index_posts_refused_total",
            "counter",
            "Posts handed to the index that its consent rules refused.",
            &[("", load(&s.refused))],
        );
        family(
            "plaza_index_commits_total",
            "counter",
            "Index commits.",
            &[("", load(&s.commits))],
        );
        family(
            "plaza_index_fetches_total",
            "counter",
            "Fetches made for the index, by outcome.",
            &[
                ("{outcome=\"ok\"}", load(&f.ok)),
                ("{outcome=\"failed\"}", load(&f.failed)),
                ("{outcome=\"mismatched\"}", load(&f.mismatched)),
            ],
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_overflow_whatever_the_configuration_says() {
        let config = crate::config::Config {
            actor_refresh_hours: u64::MAX,
            index_retention_days: u64::MAX,
            index_commit_ms: 0,
            ..crate::config::Config::default()
        };
        let settings = Settings::from_config(&config);
        assert_eq!(settings.retention, Duration::from_secs(36_500 * 86_400));
        let cutoff = unix_now() - settings.retention.as_secs() as i64;
        assert!(
            time::OffsetDateTime::from_unix_timestamp(cutoff).is_ok(),
            "the retention cutoff is a date"
        );
        assert_eq!(settings.actor_refresh, Duration::from_secs(876_000 * 3600));
        assert_eq!(settings.commit_every, Duration::from_millis(1));
        let defaults = Settings::from_config(&crate::config::Config::default());
        assert_eq!(defaults.actor_refresh, Duration::from_secs(24 * 3600));
        assert_eq!(defaults.retention, Duration::from_secs(365 * 86_400));
        assert!(defaults.purge_on_unsubscribe);
    }
}
