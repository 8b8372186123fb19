//! The admins' operations on the running relay. Each one changes the store (with its audit entry, in
//! one transaction), the rules in memory and the deliveries together, so that it is in force on the very
//! next request. This is the I/O edge of moderation; the rules themselves are the plain modules beside it.

use serde::Serialize;
use serde_json::{Value, json};

use crate::federation::delivery::Health;
use crate::moderation::audit::NewAudit;
use crate::moderation::blocks::{Block, BlockKind};
use crate::moderation::policy::{POLICY_SETTING, PolicySettings};
use crate::state::AppState;
use crate::store::moderation::{InstanceInfo, LimitOverride, Pending};
use crate::{Error, Result};

fn record(admin: &str, action: &'static str, target: &str, detail: Value) -> NewAudit {
    NewAudit {
        admin: admin.to_string(),
        action,
        target: target.to_string(),
        detail,
    }
}

/// Puts `blocks` in force: refused from now on, subscriptions and pending Follows they cover ended, the
/// deliveries to those stopped. Returns the subscriptions ended.
pub async fn block(
    state: &AppState,
    mut blocks: Vec<Block>,
    admin: &str,
    action: &'static str,
) -> Result<Vec<String>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for b in &mut blocks {
        b.created_at = now;
        b.created_by = admin.to_string();
    }
    // In memory first: a request arriving while the store writes is already refused.
    state.curation.add_blocks(&blocks);
    let subscribers = state.store.subscribers().await?;
    let pending = state.store.pending().await?;
    let victims = state.curation.covered(
        &blocks,
        subscribers
            .iter()
            .map(|s| s.authority.as_str())
            .chain(pending.iter().map(|p| p.authority.as_str())),
    );
    let target = match blocks.as_slice() {
        [one] => one.domain.clone(),
        many => format!("{} blocks", many.len()),
    };
    let detail = json!({ "blocks": blocks, "ended": victims });
    let kept: Vec<(BlockKind, String)> =
        blocks.iter().map(|b| (b.kind, b.domain.clone())).collect();
    let purging: Vec<Block> = blocks.iter().filter(|b| b.purge).cloned().collect();
    let in_force = blocks.clone();
    let ended = match state
        .store
        .add_blocks(
            blocks,
            victims.clone(),
            record(admin, action, &target, detail),
        )
        .await
    {
        Ok(ended) => ended,
        Err(e) => {
            // Not stored: not in force either.
            for (kind, target) in kept {
                state.curation.remove_block(kind, &target);
            }
            return Err(e);
        }
    };
    // Once the subscriptions are gone from the store: the engine stops a worker only when the store
    // agrees (a Follow racing an Undo must not leave it stopped or running against the store).
    for victim in &victims {
        state.engine.stop(victim);
    }
    tracing::info!(%admin, %target, ended = ended.len(), "blocked");
    if !purging.is_empty() {
        purge_from_index(state, &purging, &victims).await?;
    }
    // Topic followers on a blocked instance: their follows end and deliveries to them stop.
    let following = state.store.topic_follower_authorities().await?;
    let followers = state
        .curation
        .covered(&in_force, following.iter().map(String::as_str));
    if !followers.is_empty() {
        let ended = state.store.remove_topic_followers_of(followers).await?;
        state.topics.changed().await?;
        tracing::info!(%target, ended, "topic follows ended by a block");
    }
    // Instances known through FASP data_sharing that a block covers: no longer refreshed.
    let shared = state.store.shared_instances().await?;
    let covered = state
        .curation
        .covered(&in_force, shared.iter().map(String::as_str));
    state.store.forget_shared_instances(covered).await?;
    Ok(ended)
}

/// On a node whose index another node's block may concern (several nodes: the block was made on
/// another): removes from this node's index every instance a block in force with `purge` covers.
pub async fn purge_blocked(state: &AppState) -> Result<()> {
    let blocks: Vec<Block> = state
        .store
        .blocks()
        .await?
        .into_iter()
        .filter(|b| b.purge)
        .collect();
    if blocks.is_empty() {
        return Ok(());
    }
    purge_from_index(state, &blocks, &[]).await
}

/// Removes from the discovery index every instance `blocks` cover (the block's `purge` flag): those
/// the index knows (subscribed, or known through FASP data_sharing) and those whose subscription the
/// block ended, whatever `purge_on_unsubscribe` says.
async fn purge_from_index(state: &AppState, blocks: &[Block], ended: &[String]) -> Result<()> {
    let Some(indexer) = &state.indexer else {
        return Ok(());
    };
    let known = state.store.index_instances(indexer.scope()).await?;
    let shared = state.store.shared_instances().await?;
    let mut covered = state.curation.covered(
        blocks,
        known
            .iter()
            .map(|(authority, _)| authority.as_str())
            .chain(shared.iter().map(String::as_str))
            .chain(ended.iter().map(String::as_str)),
    );
    covered.sort();
    covered.dedup();
    let purged = covered.len();
    indexer.purge_instances(covered).await?;
    tracing::info!(purged, "purged blocked instances from the index");
    Ok(())
}

/// Lifts a block; false when there was none.
pub async fn unblock(state: &AppState, kind: BlockKind, target: &str, admin: &str) -> Result<bool> {
    let target = match kind {
        BlockKind::Domain => crate::moderation::domain::normalize(target)?,
        BlockKind::Software => crate::moderation::blocks::normalize_software(target)?,
    };
    let audit = record(admin, "unblock", &target, json!({ "kind": kind }));
    let removed = state.store.remove_block(kind, &target, audit).await?;
    state.curation.remove_block(kind, &target);
    Ok(removed)
}

/// Ends a subscription; with `sticky`, also blocks the instance's domain so it cannot come back by
/// following again. False when it was not subscribed.
pub async fn remove(
    state: &AppState,
    instance: &str,
    admin: &str,
    sticky: Option<&str>,
) -> Result<bool> {
    if state.store.subscriber(instance).is_none() {
        return Ok(false);
    }
    if let Some(reason) = sticky {
        let reason = if reason.is_empty() {
            "removed by an admin"
        } else {
            reason
        };
        let sticky_block = Block::new(BlockKind::Domain, instance, reason)?;
        block(state, vec![sticky_block], admin, "remove").await?;
    } else {
        state.end_subscription(instance).await?;
        state
            .store
            .record_audit(record(
                admin,
                "remove",
                instance,
                json!({ "sticky": false }),
            ))
            .await?;
    }
    tracing::info!(%instance, %admin, "subscription removed by an admin");
    Ok(true)
}

/// Changes the subscription policy at run time (kept across restarts).
pub async fn set_policy(state: &AppState, settings: PolicySettings, admin: &str) -> Result<()> {
    let value = serde_json::to_value(&settings).map_err(|e| Error::BadRequest(e.to_string()))?;
    state
        .store
        .save_setting(
            POLICY_SETTING,
            value.clone(),
            record(admin, "set-policy", "", value),
        )
        .await?;
    state.curation.set_policy(settings);
    Ok(())
}

/// Sets (`Some`) or clears (`None`) an instance's inbound rate-limit override; false when clearing
/// one that did not exist.
pub async fn set_limit(
    state: &AppState,
    instance: &str,
    limit: Option<LimitOverride>,
    admin: &str,
) -> Result<bool> {
    let (action, detail) = match limit {
        Some(l) => ("set-limit", json!(l)),
        None => ("clear-limit", Value::Null),
    };
    let changed = state
        .store
        .set_limit(instance, limit, record(admin, action, instance, detail))
        .await?;
    state.limiter.set_override(instance, limit);
    Ok(changed)
}

/// One subscriber as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct SubscriberView {
    /// Host (and port) identifying the instance.
    pub instance: String,
    /// The actor that subscribed.
    pub actor: String,
    /// Where deliveries go.
    pub inbox: String,
    /// `mastodon` or `litepub`.
    pub protocol: &'static str,
    /// NodeInfo software name, when known.
    pub software: Option<String>,
    /// NodeInfo software version, when known.
    pub version: Option<String>,
    /// Unix seconds of the subscription.
    pub subscribed_at: i64,
    /// Unix seconds of its last verified inbox request (kept across restarts, to the minute).
    pub last_inbound: Option<i64>,
    /// Log entries not yet confirmed delivered (from the persisted cursor).
    pub behind: u64,
    /// Entries it never got (pruned while it was unreachable, or refused by it).
    pub skipped: u64,
    /// Unix seconds of the last accepted delivery (kept across restarts with the delivery cursor).
    pub last_delivered: Option<u64>,
    /// Failed delivery attempts since the last success.
    pub consecutive_failures: u32,
    /// `active` or `unreachable`.
    pub state: &'static str,
    /// Whether deliveries have failed [`Health::UNREACHABLE_AFTER`] times in a row.
    pub unreachable: bool,
    /// How deliveries are going right now.
    pub delivery: Option<Health>,
}

async fn instance_infos(
    state: &AppState,
) -> Result<std::collections::HashMap<String, InstanceInfo>> {
    Ok(state.store.instances().await?.into_iter().collect())
}

/// Every subscriber with what admins judge it by.
pub async fn subscribers(state: &AppState) -> Result<Vec<SubscriberView>> {
    let head = state.store.tail().head();
    let infos = instance_infos(state).await?;
    let times = state.store.activity_times().await?;
    Ok(state
        .store
        .subscribers()
        .await?
        .into_iter()
        .map(|s| {
            let delivery = state.engine.health(&s.authority);
            let unreachable = delivery.as_ref().is_some_and(|h| h.is_unreachable());
            let info = infos.get(&s.authority);
            SubscriberView {
                software: info
                    .and_then(|i| i.software.clone())
                    .filter(|s| !s.is_empty()),
                version: info.and_then(|i| i.version.clone()),
                last_inbound: state
                    .limiter
                    .last_seen(&s.authority)
                    .max(times.get(&s.authority).and_then(|t| t.last_inbound)),
                last_delivered: delivery.as_ref().and_then(|h| h.last_delivered).max(
                    times
                        .get(&s.authority)
                        .and_then(|t| t.last_delivered)
                        .map(|t| t.max(0) as u64),
                ),
                consecutive_failures: delivery.as_ref().map_or(0, |h| h.consecutive_failures),
                state: if unreachable { "unreachable" } else { "active" },
                unreachable,
                delivery,
                behind: head.saturating_sub(s.cursor),
                protocol: s.style.as_str(),
                instance: s.authority,
                actor: s.actor_id,
                inbox: s.inbox,
                skipped: s.skipped,
                subscribed_at: s.created_at,
            }
        })
        .collect())
}

/// A pending Follow with the instance's NodeInfo.
#[derive(Debug, Serialize)]
pub struct PendingView {
    /// The Follow.
    #[serde(flatten)]
    pub pending: Pending,
    /// What NodeInfo said about the instance, when it answered.
    pub nodeinfo: Option<InstanceInfo>,
}

/// The Follows waiting for an admin.
pub async fn pending(state: &AppState) -> Result<Vec<PendingView>> {
    let mut infos = instance_infos(state).await?;
    Ok(state
        .store
        .pending()
        .await?
        .into_iter()
        .map(|p| PendingView {
            nodeinfo: infos.remove(&p.authority),
            pending: p,
        })
        .collect())
}

/// The numbers `GET /api/v1/admin/stats` answers with.
pub async fn stats(state: &AppState) -> Result<Value> {
    let views = subscribers(state).await?;
    let unreachable = views.iter().filter(|v| v.unreachable).count();
    let pending = state.store.pending().await?.len();
    let deliveries = &state.engine.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(json!({
        "subscribers": {
            "active": views.len() - unreachable,
            "unreachable": unreachable,
            "pending": pending,
            "total": views.len(),
        },
        "log": {
            "head": state.store.tail().head(),
            "entries": state.store.log_size().await?,
            "behind_total": views.iter().map(|v| v.behind).sum::<u64>(),
        },
        "deliveries": {
            "delivered": load(&deliveries.delivered),
            "retried": load(&deliveries.retried),
            "refused": load(&deliveries.refused),
            "pruned_skips": load(&deliveries.pruned_skips),
        },
        "blocks": {
            "domain": state.curation.block_count(BlockKind::Domain),
            "software": state.curation.block_count(BlockKind::Software),
        },
        "policy": state.curation.policy(),
        // Null when the index is off (index_enabled = false).
        "index": match &state.indexer {
            Some(indexer) => json!({ "documents": indexer.handed(), "lag": indexer.lag() }),
            None => json!({ "documents": Value::Null, "lag": Value::Null }),
        },
        "uptime_secs": state.started.elapsed().as_secs(),
        // The nodes sharing the database, as their heartbeats say (alone: this one).
        "node": state.node_health(),
        "nodes": if state.cluster.is_solo() {
            json!([{ "node_id": state.cluster.node_id(), "leases": 0, "lag": state.delivery_lag() }])
        } else {
            json!(state.cluster.live_nodes())
        },
    }))
}
