//! Recording a subscription and answering its Follow (Accept, and for LitePub the Follow back). A file
//! of its own, below both callers: the inbox subscribes an admitted Follow at once, and
//! [`crate::federation::admission`] subscribes a held one when an admin approves it.

use std::sync::Arc;

use axum::body::Bytes;
use serde_json::Value;

use crate::ap::{Activity, Actor, outgoing};
use crate::federation::receipt::Receipt;
use crate::federation::relay;
use crate::state::AppState;
use crate::store::{NewEntry, Style, Subscribed, Subscriber};
use crate::{Error, Result};

/// Records the subscription and answers the Follow; the subscription policy was applied before (see
/// [`crate::federation::admission`], which also calls this when an admin approves a held Follow).
///
/// A re-Follow by the same actor with the same inbox and protocol ([`Subscribed::Unchanged`]) usually
/// means the instance lost its state and waits for an Accept: it gets one again, sent once outside the
/// log (no log entry, nothing redelivered, but stored so its ids resolve), and its delivery worker goes on from where it is. Only a
/// new subscriber, or one whose actor, inbox or protocol changed, gets its replies through the log and a
/// (re)started worker.
pub async fn subscribe(
    state: &AppState,
    style: Style,
    follow: &Activity,
    sender: &Arc<Actor>,
    origin: &str,
) -> Result<Receipt> {
    let inbox = relay::inbox_of(sender, state.config.allow_private_networks)?.to_string();
    state.http.policy().check_url(
        &url::Url::parse(&inbox).map_err(|e| Error::BadRequest(format!("inbox {inbox:?}: {e}")))?,
    )?;
    let accept = outgoing::accept(&state.base, &follow.raw, &sender.id);
    let follow_back = (style == Style::LitePub).then(|| outgoing::follow(&state.base, &sender.id));
    let reply = |kind: &str, body: &Value| NewEntry {
        origin: state.host.clone(),
        target: Some(origin.to_string()),
        kind: kind.to_string(),
        mastodon_body: Bytes::from(body.to_string()),
        litepub_body: Bytes::from(body.to_string()),
        signer: None,
        original: None,
    };
    let mut replies = vec![reply("Accept", &accept)];
    replies.extend(follow_back.iter().map(|f| reply("Follow", f)));
    let subscriber = Subscriber {
        authority: origin.to_string(),
        actor_id: sender.id.clone(),
        inbox: inbox.clone(),
        style,
        cursor: 0,
        skipped: 0,
        created_at: 0,
        follow_id: follow.id.clone().unwrap_or_default(),
    };
    let normalised = outgoing::normalised_follow(&follow.raw).to_string();
    let (state_after, stored) = state
        .store
        .subscribe(subscriber, normalised, replies)
        .await?;
    match state_after {
        Subscribed::Unchanged => {
            tracing::info!(instance = %origin, "followed again; answering with a fresh Accept");
            for activity in std::iter::once(accept).chain(follow_back) {
                state.engine.publish_once(&inbox, &activity).await?;
            }
        }
        Subscribed::New | Subscribed::Again => {
            if state_after == Subscribed::New {
                tracing::info!(instance = %origin, ?style, "new subscriber");
            }
            state.engine.start(stored);
        }
    }
    Ok(Receipt::Subscribed)
}
