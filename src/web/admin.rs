//! The admin API: what the relay's own admins use to see and curate who is subscribed.
//!
//! Every call needs `Authorization: Bearer <admin_token>`, compared in constant time; with an empty
//! `admin_token` the API does not exist (404), so a fresh relay exposes nothing by default.
//!
//! Removing a subscriber blocks its instance (the `blocks` table, with a reason and a date) until an
//! admin lifts the block; `GET /admin/blocks` lists them and `DELETE /admin/blocks/{domain}` lifts one.

use axum::http::HeaderMap;
use serde::Serialize;

use crate::app::AppState;
use crate::federation::delivery::Health;
use crate::store::{Block, Style};
use crate::{Error, Result};

/// Checks the bearer token of an admin request.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<()> {
    let expected = state.config.admin_token.as_bytes();
    if expected.is_empty() {
        return Err(Error::NotFound(
            "the admin API is disabled (set admin_token)".into(),
        ));
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected)
        .map_err(|_| Error::AdminUnauthorized)
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
    /// Log entries not yet confirmed delivered (from the persisted cursor).
    pub behind: u64,
    /// Entries it never got (pruned while it was unreachable, or refused by it).
    pub skipped: u64,
    /// Unix seconds of the subscription.
    pub subscribed_at: i64,
    /// Whether deliveries have failed [`Health::UNREACHABLE_AFTER`] times in a row.
    pub unreachable: bool,
    /// How deliveries are going right now.
    pub delivery: Option<Health>,
}

/// Every subscriber with its delivery state.
pub async fn subscribers(state: &AppState) -> Result<Vec<SubscriberView>> {
    let head = state.store.tail().head();
    Ok(state
        .store
        .subscribers()
        .await?
        .into_iter()
        .map(|s| {
            let delivery = state.engine.health(&s.authority);
            SubscriberView {
                unreachable: delivery.as_ref().is_some_and(|h| h.is_unreachable()),
                delivery,
                behind: head.saturating_sub(s.cursor),
                instance: s.authority,
                actor: s.actor_id,
                inbox: s.inbox,
                protocol: match s.style {
                    Style::Mastodon => "mastodon",
                    Style::LitePub => "litepub",
                },
                skipped: s.skipped,
                subscribed_at: s.created_at,
            }
        })
        .collect())
}

/// The reason recorded when an admin removes a subscriber.
pub const REMOVED_REASON: &str = "subscription removed by an admin";

/// Ends an instance's subscription and stops its deliveries; false when it was not subscribed.
///
/// The removal is sticky: the instance is blocked first (so a Follow racing the removal is refused
/// too) and its later Follows get a Reject until [`unblock`]. Nothing changes when it was not
/// subscribed.
pub async fn remove(state: &AppState, instance: &str) -> Result<bool> {
    if state.store.subscriber(instance).is_none() {
        return Ok(false);
    }
    state.store.block(instance, REMOVED_REASON).await?;
    let removed = state.end_subscription(instance).await?;
    tracing::info!(%instance, "subscription removed by an admin; blocked until unblocked");
    Ok(removed)
}

/// Every blocked instance.
pub async fn blocks(state: &AppState) -> Result<Vec<Block>> {
    state.store.blocks().await
}

/// Lifts the block of an instance so it may subscribe again; false when it was not blocked.
pub async fn unblock(state: &AppState, domain: &str) -> Result<bool> {
    let lifted = state.store.unblock(domain).await?;
    if lifted {
        tracing::info!(%domain, "block lifted by an admin");
    }
    Ok(lifted)
}
