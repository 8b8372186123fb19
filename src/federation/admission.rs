//! Between a verified Follow and a subscription: the instance's blocks, its NodeInfo and the
//! subscription policy decide whether it subscribes now, waits for an admin, or is refused. Also the
//! first check of every inbox request: a blocked instance is refused before any other work.

use std::sync::Arc;

use serde_json::Value;

use crate::ap::{Activity, Actor, outgoing};
use crate::federation::receipt::Receipt;
use crate::federation::{nodeinfo, relay, subscription};
use crate::moderation::audit::{NewAudit, RELAY_AUDITOR};
use crate::moderation::policy::{self, Admission};
use crate::state::AppState;
use crate::store::Style;
use crate::store::moderation::{Held, Pending};
use crate::{Error, Result};

/// Refuses a request from a blocked instance (by domain, or by the software it is known to run).
pub fn check_blocked(state: &AppState, origin: &str) -> Result<()> {
    match state.curation.refuses(origin) {
        Some(_) => Err(Error::InstanceBlocked(origin.to_string())),
        None => Ok(()),
    }
}

/// Screens a Follow that asks to subscribe: `None` lets it subscribe now, `Some` is what became of it
/// instead (held for an admin, or refused with a Reject).
pub async fn screen(
    state: &AppState,
    style: Style,
    follow: &Activity,
    sender: &Arc<Actor>,
    origin: &str,
) -> Result<Option<Receipt>> {
    if state.store.subscribed_style(origin).is_some() {
        return Ok(None);
    }
    learn_software(state, origin, &sender.id).await;
    check_blocked(state, origin)?;
    let inbox = relay::inbox_of(sender, state.config.allow_private_networks)?;
    match state.curation.admit(origin) {
        Admission::Admit => Ok(None),
        Admission::Hold => {
            let held = state
                .store
                .hold(
                    Pending {
                        authority: origin.to_string(),
                        actor_id: sender.id.clone(),
                        inbox: inbox.to_string(),
                        protocol: style.as_str(),
                        follow: follow.raw.clone(),
                        created_at: 0,
                    },
                    policy::MAX_PENDING,
                )
                .await?;
            if held == Held::Full {
                let reason = policy::PENDING_FULL;
                refuse(state, follow, sender, origin, reason).await?;
                return Ok(Some(Receipt::Ignored(reason)));
            }
            tracing::info!(instance = %origin, again = held == Held::Again, "subscription waits for approval");
            Ok(Some(Receipt::Ignored("awaiting approval by an admin")))
        }
        Admission::Refuse(reason) => {
            refuse(state, follow, sender, origin, reason).await?;
            Ok(Some(Receipt::Ignored(reason)))
        }
    }
}

/// Fetches the NodeInfo of an instance not seen before (once: what it runs rarely changes, and a
/// failure is not retried on every Follow either), so software blocks cover it.
pub async fn learn_software(state: &AppState, origin: &str, actor_id: &str) {
    if state.curation.software_of(origin).is_some() {
        return;
    }
    let info = match nodeinfo::fetch(&state.http, actor_id).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(instance = %origin, error = %e, "no NodeInfo");
            return;
        }
    };
    state
        .curation
        .set_software(origin, info.software.as_deref().unwrap_or(""));
    if let Err(e) = state.store.record_instance(origin, info).await {
        tracing::warn!(instance = %origin, error = %e, "recording NodeInfo");
    }
}

/// Asks the NodeInfo of subscribers whose software is not known yet (subscribed before the relay
/// recorded it, or it did not answer then), one at a time in the background, so software blocks cover
/// them too.
pub fn learn_missing_software(state: std::sync::Arc<AppState>) {
    tokio::spawn(async move {
        let subscribers = match state.store.subscribers().await {
            Ok(subscribers) => subscribers,
            Err(e) => {
                tracing::warn!(error = %e, "listing subscribers for NodeInfo");
                return;
            }
        };
        for s in subscribers {
            learn_software(&state, &s.authority, &s.actor_id).await;
        }
    });
}

/// Refuses a Follow by the relay's own rules (not the instance's actor, the subscription policy): logs
/// the refusal at `info` with its reason, answers with a Reject, and records the refusal with its
/// reason in the audit log (by [`RELAY_AUDITOR`]), where the admins see why an instance was turned
/// away.
pub async fn refuse(
    state: &AppState,
    follow: &Activity,
    sender: &Actor,
    origin: &str,
    reason: &'static str,
) -> Result<()> {
    tracing::info!(instance = %origin, actor = %sender.id, reason, "Follow refused");
    let inbox = relay::inbox_of(sender, state.config.allow_private_networks)?;
    send_reject(state, inbox, &follow.raw, &sender.id).await?;
    state
        .store
        .record_audit_unless_recent(
            NewAudit {
                admin: RELAY_AUDITOR.to_string(),
                action: "reject",
                target: origin.to_string(),
                detail: serde_json::json!({ "actor": sender.id, "reason": reason }),
            },
            REFUSAL_AUDIT_PERIOD_SECS,
        )
        .await
        .map(drop)
}

/// An instance whose Follows keep being refused for the same reason gets one audit entry per hour, so
/// the audit log cannot be grown by asking again and again.
const REFUSAL_AUDIT_PERIOD_SECS: i64 = 3600;

/// Answers a Follow with a Reject, published like everything the relay sends (sent in the background).
async fn send_reject(state: &AppState, inbox: &str, follow: &Value, actor_id: &str) -> Result<()> {
    let reject = outgoing::reject(&state.base, follow, actor_id);
    state.engine.publish_once(inbox, &reject).await
}

async fn take_pending(state: &AppState, authority: &str) -> Result<Pending> {
    state
        .store
        .pending()
        .await?
        .into_iter()
        .find(|p| p.authority == authority)
        .ok_or_else(|| Error::NotFound(format!("no pending subscription from {authority}")))
}

/// An admin approves a pending Follow: the instance subscribes (Accept, and for LitePub the Follow back).
pub async fn approve(state: &AppState, authority: &str, admin: &str) -> Result<()> {
    let pending = take_pending(state, authority).await?;
    let follow = Activity::from_value(pending.follow.clone())?;
    let sender = state.resolver.actor(&pending.actor_id).await?;
    subscription::subscribe(state, pending.style(), &follow, &sender, authority).await?;
    state
        .store
        .resolve_pending(authority, audit(admin, "approve", authority, &pending))
        .await?;
    tracing::info!(instance = %authority, %admin, "subscription approved");
    Ok(())
}

/// An admin rejects a pending Follow: the instance gets a Reject.
pub async fn reject(state: &AppState, authority: &str, admin: &str) -> Result<()> {
    let pending = take_pending(state, authority).await?;
    send_reject(state, &pending.inbox, &pending.follow, &pending.actor_id).await?;
    let mut entry = audit(admin, "reject", authority, &pending);
    entry.detail["reason"] = "rejected by an admin".into();
    state.store.resolve_pending(authority, entry).await?;
    tracing::info!(instance = %authority, %admin, "subscription rejected");
    Ok(())
}

fn audit(admin: &str, action: &'static str, authority: &str, pending: &Pending) -> NewAudit {
    NewAudit {
        admin: admin.to_string(),
        action,
        target: authority.to_string(),
        detail: serde_json::json!({ "actor": pending.actor_id, "protocol": pending.protocol }),
    }
}
