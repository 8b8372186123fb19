//! The relay's work under leases ([`super::Work`]): which leases there are (a subscriber's
//! deliveries, a topic follower inbox's, the jobs that must run once), and starting and stopping each
//! when this node claims or gives back its lease. Also what a node does when another changed
//! something it keeps in memory ([`follow_changes`]).
//!
//! The jobs: pruning the log ([`lease::PRUNE`]), FASP data_sharing's subscriptions and backfills
//! ([`lease::SHARING`]), and its share worker ([`lease::FASP_SHARES`], on a node that keeps an index).
//! The indexer is no job: every node with an index feeds its own from the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::cluster::{Handover, Wanted, Work, WorkFuture, lease};
use crate::state::AppState;
use crate::store::notices::Notice;

/// Above this many subscribers claimed at once, the mirror is read again whole rather than one by one.
const REFRESH_ONE_BY_ONE: usize = 16;

/// How long a subscriber's worker has to finish the delivery in progress when its lease moves.
const HANDOVER_PATIENCE: Duration = Duration::from_secs(2);

/// How often the pruner runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The relay's work, for the cluster loop.
pub struct RelayWork {
    state: Arc<AppState>,
    jobs: Mutex<HashMap<&'static str, JoinSet<()>>>,
}

impl RelayWork {
    /// The work of the relay `state` runs.
    pub fn new(state: Arc<AppState>) -> Arc<RelayWork> {
        Arc::new(RelayWork {
            state,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    fn start_job(&self, name: &'static str) {
        let Ok(mut jobs) = self.jobs.lock() else {
            return;
        };
        if jobs.contains_key(name) {
            return;
        }
        let state = &self.state;
        let tasks = match name {
            lease::PRUNE => {
                let mut tasks = JoinSet::new();
                tasks.spawn(prune(state.clone()));
                tasks
            }
            lease::SHARING => sharing(state),
            lease::FASP_SHARES => {
                let Some(indexer) = &state.indexer else {
                    return;
                };
                let mut tasks = JoinSet::new();
                tasks.spawn(crate::fasp::share_worker::run(
                    state.clone(),
                    indexer.clone(),
                ));
                tasks
            }
            _ => return,
        };
        tracing::info!(job = name, "job started on this node");
        jobs.insert(name, tasks);
    }

    /// Stops the job `name` (dropping its set aborts its tasks).
    fn stop_job(&self, name: &str) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.remove(name);
        }
    }

    /// Stops every job (shutting down).
    pub fn shutdown(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.clear();
        }
    }
}

/// The job names a lease name stands for.
fn job(name: &str) -> Option<&'static str> {
    [lease::PRUNE, lease::SHARING, lease::FASP_SHARES]
        .into_iter()
        .find(|job| *job == name)
}

impl Work for RelayWork {
    fn wanted(&self) -> Vec<Wanted> {
        let state = &self.state;
        let any = |name: String| Wanted { name, role: None };
        let mut wanted: Vec<Wanted> = state
            .store
            .subscriber_authorities()
            .iter()
            .map(|a| any(lease::subscriber(a)))
            .collect();
        wanted.extend(
            state
                .topics
                .registry
                .snapshot()
                .inboxes()
                .map(|inbox| any(lease::topic_inbox(inbox))),
        );
        wanted.push(any(lease::PRUNE.into()));
        wanted.push(any(lease::SHARING.into()));
        wanted.push(Wanted {
            name: lease::FASP_SHARES.into(),
            role: Some("index"),
        });
        wanted
    }

    fn start(&self, names: Vec<String>) -> WorkFuture<'_> {
        Box::pin(async move {
            let state = &self.state;
            let subscribers: Vec<&str> = names
                .iter()
                .filter_map(|n| n.strip_prefix(lease::SUBSCRIBER))
                .collect();
            // Another node may have delivered to them since this one last read their cursors.
            if !state.cluster.is_solo() {
                let refreshed = if subscribers.len() > REFRESH_ONE_BY_ONE {
                    state.store.refresh_members().await
                } else {
                    let mut outcome = Ok(());
                    for authority in &subscribers {
                        outcome =
                            outcome.and(state.store.refresh_member(authority.to_string()).await);
                    }
                    outcome
                };
                if let Err(e) = refreshed {
                    tracing::warn!(error = %e, "cluster: reading claimed subscribers' cursors");
                }
            }
            for authority in subscribers {
                state.engine.ensure(authority);
            }
            if names.iter().any(|n| n.starts_with(lease::TOPIC_INBOX)) {
                state.topics.delivery.sync().await;
            }
            for job in names.iter().filter_map(|name| job(name)) {
                self.start_job(job);
            }
        })
    }

    fn stop(&self, names: Vec<String>, how: Handover) -> WorkFuture<'_> {
        Box::pin(async move {
            let state = &self.state;
            let subscribers = names
                .iter()
                .filter_map(|name| name.strip_prefix(lease::SUBSCRIBER));
            match how {
                Handover::AtOnce => subscribers.for_each(|a| state.engine.halt(a)),
                Handover::Graceful => {
                    let mut handing = JoinSet::new();
                    for authority in subscribers {
                        let (engine, authority) = (state.engine.clone(), authority.to_string());
                        handing.spawn(async move {
                            engine.hand_over(&authority, HANDOVER_PATIENCE).await
                        });
                    }
                    let inboxes = names
                        .iter()
                        .filter_map(|name| name.strip_prefix(lease::TOPIC_INBOX))
                        .map(str::to_owned)
                        .collect::<Vec<_>>();
                    let topics = state.topics.delivery.clone();
                    handing
                        .spawn(async move { topics.hand_over(inboxes, HANDOVER_PATIENCE).await });
                    while handing.join_next().await.is_some() {}
                }
            }
            if names.iter().any(|n| n.starts_with(lease::TOPIC_INBOX)) {
                state.topics.delivery.sync().await;
            }
            for name in &names {
                self.stop_job(name);
            }
        })
    }

    fn lag(&self) -> u64 {
        self.state.delivery_lag()
    }

    fn nodes_live(&self, count: usize) {
        self.state.limiter.set_nodes(count);
    }
}

/// Deletes log entries past the retention window once an hour (and once at start).
async fn prune(state: Arc<AppState>) {
    let max_age_ms = (state.config.retention_hours as i64).saturating_mul(3_600_000);
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        match state.store.prune(max_age_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned log entries past retention"),
            Err(e) => tracing::error!(error = %e, "pruning the log"),
        }
    }
}

/// FASP `data_sharing`: what is missing of the subscriptions of servers that activated it (a restart
/// may have cut their retries short), and the paced backfill continuations.
fn sharing(state: &Arc<AppState>) -> JoinSet<()> {
    use crate::fasp::capabilities::DATA_SHARING;
    for registration in state.fasp.registry.list() {
        let id = &registration.server.server_id;
        if state
            .fasp
            .registry
            .is_active(id, DATA_SHARING.id, DATA_SHARING.major)
        {
            crate::fasp::subscriptions::spawn_subscribe(state.clone(), registration);
        }
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(crate::fasp::subscriptions::continuations(state.clone()));
    tasks
}

/// Acts on what other nodes changed, for as long as the relay runs: reloads the moderation rules,
/// the topics and the FASP registrations, and looks at the leases again when subscribers or nodes
/// came or went.
pub async fn follow_changes(state: Arc<AppState>) {
    let mut notices = state.store.notices();
    loop {
        let notice = match notices.recv().await {
            Ok(notice) => notice,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "cluster: fell behind other nodes' notices; reloading"
                );
                Notice::Resync
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let outcome = match notice {
            Notice::Subscriber(_) | Notice::Nodes => {
                state.cluster.nudge();
                Ok(())
            }
            Notice::Moderation => match state.reload_moderation().await {
                // A block with `purge` made on another node empties this node's index of it too.
                Ok(()) => crate::moderation::actions::purge_blocked(&state).await,
                Err(e) => Err(e),
            },
            Notice::Topics => state.topics.changed().await,
            Notice::Fasp => state.fasp.registry.reload().await,
            Notice::Resync => reload_all(&state).await,
            Notice::Log(_) => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "cluster: acting on another node's change");
        }
    }
}

async fn reload_all(state: &AppState) -> crate::Result<()> {
    state.reload_moderation().await?;
    state.topics.changed().await?;
    state.fasp.registry.reload().await?;
    state.cluster.nudge();
    Ok(())
}
