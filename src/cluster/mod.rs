//! Several nodes, one relay: `plaza serve` processes on different machines sharing one PostgreSQL
//! database split the work between them with leases, and take over a dead node's share.
//!
//! Why leases: a subscriber's deliveries must come from one node at a time (one worker, in log order,
//! from its durable cursor), and when that node dies another must go on from the cursor without an
//! operator. So each piece of work that must run once — a subscriber's deliveries (`sub:{authority}`),
//! a topic follower inbox's (`topic:{inbox}`), a job such as pruning the log (`job:…`) — is a lease
//! in the database ([`crate::store::cluster`]) that one node holds and renews. Which node *should*
//! hold it, every node computes alike from the live nodes ([`assign`]: rendezvous hashing), so the
//! work spreads evenly and moves only as much as needed when a node joins or leaves.
//!
//! Each node runs a [`Cluster`] loop: it heartbeats and renews its leases every third of the lease
//! period; every second (or at once when nudged: a subscription, a node joining) it gives back the
//! leases another live node should hold and claims those it should hold that are free or expired,
//! telling the relay to start or stop the work ([`Work`]). A node that could not renew its leases for
//! a lease period stops all its work before anyone may take it over, so two nodes never deliver to one
//! subscriber at once; a node that dies has its leases expire and taken over within a lease period.
//! A batch in flight when a node dies may be delivered again by the next (receivers deduplicate by
//! id); order per subscriber holds, since the next node starts from the durable cursor.
//!
//! On SQLite there is one node: [`Cluster::solo`] holds every lease and the loop only starts the jobs.

pub mod assign;
pub mod lease;
pub mod metrics;
pub mod node_id;
pub mod ownership;
pub mod relay_work;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use crate::cluster::ownership::Ownership;
use crate::store::Store;
use crate::store::cluster::{Heartbeat, NodeRow};

/// A future the relay's [`Work`] returns.
pub type WorkFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A piece of work there is to do, as a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The lease's name (`sub:…`, `topic:…`, `job:…`).
    pub name: String,
    /// A role a node needs to take it (`index`), if any.
    pub role: Option<&'static str>,
}

/// What the relay does under leases: the cluster asks what there is to do, and starts and stops it.
pub trait Work: Send + Sync + 'static {
    /// Every lease there is work for now.
    fn wanted(&self) -> Vec<Wanted>;
    /// Starts the work of leases just claimed (idempotent: work already running stays as it is).
    fn start(&self, names: Vec<String>) -> WorkFuture<'_>;
    /// Stops the work of leases about to be given back ([`Handover::Graceful`]: the next holder
    /// goes on from where it stopped), or lost ([`Handover::AtOnce`]: another node may hold them).
    fn stop(&self, names: Vec<String>, how: Handover) -> WorkFuture<'_>;
    /// How far this node's slowest delivery worker is behind the log's head, in entries.
    fn lag(&self) -> u64;
    /// How many nodes are live now (they share the inbound traffic, and its limits).
    fn nodes_live(&self, count: usize);
}

/// How work stops when its lease goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Finish what is in progress and save where it got to, then give the lease back.
    Graceful,
    /// At once: the lease is lost, another node may hold it already.
    AtOnce,
}

/// How a node runs among the others.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's id.
    pub node_id: String,
    /// Where it listens (shown to the operators).
    pub address: String,
    /// The roles it takes besides deliveries (`index` when it keeps an index).
    pub roles: Vec<&'static str>,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
}

impl Settings {
    /// How often the loop looks at the assignment: a fifteenth of the lease, between 100 ms and 1 s.
    pub fn tick(&self) -> Duration {
        (self.lease / 15).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// How often the node heartbeats and renews its leases.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// How long a renewal keeps a lease: the lease less one tick, so that the others, looking once a
    /// tick, take a dead node's leases over within one lease period of its last renewal.
    fn renewal_ms(&self) -> i64 {
        self.lease.saturating_sub(self.tick()).as_millis() as i64
    }
}

/// Lease counters, for the metrics.
#[derive(Default)]
pub struct Stats {
    /// Leases claimed (including takeovers).
    pub claimed: AtomicU64,
    /// Leases claimed after another node let them expire (it died, or lost the database).
    pub takeovers: AtomicU64,
    /// Leases given back to a node that should hold them (rebalancing) or for work that ended.
    pub released: AtomicU64,
    /// Leases lost: another node holds them now, or this node could not renew them in time.
    pub lost: AtomicU64,
}

/// This node among the others.
pub struct Cluster {
    settings: Settings,
    store: Option<Store>,
    ownership: Arc<Ownership>,
    live: RwLock<Vec<NodeRow>>,
    renewed: Mutex<Option<Instant>>,
    /// Lease counters.
    pub stats: Stats,
}

impl Cluster {
    /// The only node (SQLite): every lease is its own.
    pub fn solo(settings: Settings) -> Arc<Cluster> {
        Arc::new(Cluster::new(settings, None))
    }

    /// A node among those sharing `store`'s database.
    pub fn shared(settings: Settings, store: Store) -> Arc<Cluster> {
        Arc::new(Cluster::new(settings, Some(store)))
    }

    fn new(settings: Settings, store: Option<Store>) -> Cluster {
        Cluster {
            settings,
            ownership: Arc::new(Ownership::new(store.is_none())),
            store,
            live: RwLock::new(Vec::new()),
            renewed: Mutex::new(None),
            stats: Stats::default(),
        }
    }

    /// Whether this node is the only one (nothing is leased).
    pub fn is_solo(&self) -> bool {
        self.ownership.is_solo()
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// Which leases this node holds, for the parts that start and stop with them.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// The leases this node holds, sorted.
    pub fn held(&self) -> Vec<String> {
        self.ownership.held()
    }

    /// The live nodes as last read (alone: empty).
    pub fn live_nodes(&self) -> Vec<NodeRow> {
        self.live.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// The leases this node holds by kind (`subscriber`, `topic_inbox`, `job`); alone, what it
    /// would hold: every subscriber and topic inbox is its own, so only the jobs are counted.
    pub fn held_by_kind(&self) -> [(&'static str, u64); 3] {
        let mut counts = [("subscriber", 0), ("topic_inbox", 0), ("job", 0)];
        for name in self.held() {
            let slot = if name.starts_with(lease::SUBSCRIBER) {
                0
            } else if name.starts_with(lease::TOPIC_INBOX) {
                1
            } else {
                2
            };
            counts[slot].1 += 1;
        }
        counts
    }

    /// Asks the loop to look at the assignment now (new work, a node joining or leaving).
    pub fn nudge(&self) {
        self.ownership.nudge();
    }

    /// Runs the node's part until the task is dropped: alone, starts every job once; among others,
    /// heartbeats, claims, renews and gives back leases, starting and stopping `work` to match.
    pub async fn run(self: Arc<Self>, work: Arc<dyn Work>) {
        let Some(store) = self.store.clone() else {
            let names = work.wanted().into_iter().map(|w| w.name).collect();
            work.start(names).await;
            return;
        };
        let tick = self.settings.tick();
        let mut next_beat = Instant::now();
        let mut joining = true;
        loop {
            if Instant::now() >= next_beat {
                next_beat = Instant::now() + self.settings.renew_every();
                self.beat(&store, work.as_ref(), joining).await;
                joining = false;
            }
            self.fence(work.as_ref()).await;
            if let Err(e) = self.rebalance(&store, work.as_ref()).await {
                tracing::warn!(error = %e, "cluster: rebalancing leases");
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = self.ownership.nudged() => {}
            }
        }
    }

    /// Heartbeats, renews the leases held and forgets (stopping their work) those another node took.
    async fn beat(&self, store: &Store, work: &dyn Work, joining: bool) {
        let sent = Instant::now();
        let beat = Heartbeat {
            node_id: self.settings.node_id.clone(),
            address: self.settings.address.clone(),
            roles: self.settings.roles.join(" "),
            version: env!("CARGO_PKG_VERSION").into(),
            leases: self.ownership.count() as u64,
            lag: work.lag(),
            joining,
        };
        match store.heartbeat(beat, self.settings.renewal_ms()).await {
            Ok(still) => {
                if let Ok(mut renewed) = self.renewed.lock() {
                    *renewed = Some(sent);
                }
                let still: HashSet<String> = still.into_iter().collect();
                let lost: Vec<String> = self
                    .ownership
                    .snapshot()
                    .difference(&still)
                    .cloned()
                    .collect();
                if !lost.is_empty() {
                    tracing::warn!(
                        leases = lost.len(),
                        "cluster: leases taken over by another node"
                    );
                    self.stats
                        .lost
                        .fetch_add(lost.len() as u64, Ordering::Relaxed);
                    self.forget(&lost);
                    work.stop(lost, Handover::AtOnce).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cluster: heartbeat failed"),
        }
    }

    /// Stops all work when the leases could not be renewed for a lease period (less a tick): the
    /// others may take them over from then on.
    async fn fence(&self, work: &dyn Work) {
        let expired = self.renewed.lock().ok().and_then(|r| *r).is_some_and(|at| {
            at.elapsed()
                >= Duration::from_millis(self.settings.renewal_ms().max(0) as u64)
                    .saturating_sub(self.settings.tick())
        });
        if !expired {
            return;
        }
        let all = self.held();
        if all.is_empty() {
            return;
        }
        tracing::error!(
            leases = all.len(),
            "cluster: leases not renewed in time (the database is unreachable?); stopping their work"
        );
        self.stats
            .lost
            .fetch_add(all.len() as u64, Ordering::Relaxed);
        self.forget(&all);
        work.stop(all, Handover::AtOnce).await;
    }

    /// Gives back what another live node should hold (or what has no work any more) and claims what
    /// this node should hold.
    async fn rebalance(&self, store: &Store, work: &dyn Work) -> crate::Result<()> {
        let live = store
            .live_nodes(self.settings.lease.as_millis() as i64)
            .await?;
        if let Ok(mut known) = self.live.write() {
            *known = live.clone();
        }
        work.nodes_live(live.len());
        let me = self.settings.node_id.as_str();
        if !live.iter().any(|n| n.node_id == me) || !self.renewed_lately() {
            // Not heartbeating: claim nothing.
            return Ok(());
        }
        let candidates = |role: Option<&'static str>| {
            live.iter()
                .filter(move |n| role.is_none_or(|r| n.roles.split(' ').any(|have| have == r)))
                .map(|n| n.node_id.as_str())
        };
        let wanted = work.wanted();
        let mut mine = HashSet::new();
        let mut others = HashSet::new();
        for w in &wanted {
            match assign::owner(&w.name, candidates(w.role)) {
                Some(owner) if owner == me => {
                    mine.insert(w.name.clone());
                }
                Some(_) => {
                    others.insert(w.name.clone());
                }
                None => {}
            }
        }
        let held: HashSet<String> = self.ownership.snapshot();
        let give_back: Vec<String> = held
            .iter()
            .filter(|name| !mine.contains(*name))
            // Work no node can take (its role is nowhere live) stays where it is.
            .filter(|name| others.contains(*name) || !wanted.iter().any(|w| &w.name == *name))
            .cloned()
            .collect();
        if !give_back.is_empty() {
            self.forget(&give_back);
            work.stop(give_back.clone(), Handover::Graceful).await;
            store
                .release_leases(me, give_back.clone())
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "cluster: giving leases back"))
                .ok();
            self.stats
                .released
                .fetch_add(give_back.len() as u64, Ordering::Relaxed);
            tracing::info!(leases = give_back.len(), "cluster: leases given back");
        }
        let to_claim: Vec<String> = mine.difference(&held).cloned().collect();
        if to_claim.is_empty() {
            return Ok(());
        }
        let claimed = store
            .claim_leases(me, to_claim, self.settings.renewal_ms())
            .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let takeovers = claimed.iter().filter(|c| c.from.is_some()).count();
        if takeovers > 0 {
            tracing::warn!(
                leases = takeovers,
                from = ?claimed.iter().filter_map(|c| c.from.as_deref()).collect::<HashSet<_>>(),
                "cluster: took over leases another node let expire"
            );
        }
        self.stats
            .claimed
            .fetch_add(claimed.len() as u64, Ordering::Relaxed);
        self.stats
            .takeovers
            .fetch_add(takeovers as u64, Ordering::Relaxed);
        let names: Vec<String> = claimed.into_iter().map(|c| c.name).collect();
        self.ownership.add(&names);
        work.start(names).await;
        Ok(())
    }

    /// Whether the last renewal is recent enough to claim more.
    fn renewed_lately(&self) -> bool {
        self.renewed
            .lock()
            .ok()
            .and_then(|r| *r)
            .is_some_and(|at| at.elapsed() < self.settings.renew_every() * 2)
    }

    fn forget(&self, names: &[String]) {
        self.ownership.forget(names);
    }

    /// Leaves the cluster (shutting down): stops the work, gives every lease back and takes this node
    /// off the list, so the others take over at once rather than after a lease period.
    pub async fn leave(&self, work: &dyn Work) {
        let Some(store) = &self.store else {
            return;
        };
        let all = self.held();
        self.forget(&all);
        work.stop(all, Handover::Graceful).await;
        if let Err(e) = store.leave(&self.settings.node_id).await {
            tracing::warn!(error = %e, "cluster: leaving");
        }
    }
}
