//! Receiving activities: the path of every `POST /inbox`, from signature to durable log entry.
//!
//! Order matters for cost and for safety: parse the signature header and check digest and date (no I/O),
//! refuse activities from instances that are not subscribed (no fetch for strangers), resolve the key
//! and verify (one refetch on failure, for key rotation), check that the signer may speak for the actor,
//! then let [`crate::federation::relay::decide`] say what to do. Only after the log write is committed does the
//! caller answer 202, so an accepted activity survives a crash.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use serde_json::Value;

use crate::ap::{Activity, Actor, authority_of, outgoing, same_authority};
use crate::app::AppState;
use crate::federation::admission;
use crate::federation::relay::{self, Context, Decision};
use crate::federation::resolver::ResolvedKey;
use crate::httpsig::{self, Claim, SignedRequest};
use crate::store::{NewEntry, Style, Subscribed, Subscriber};
use crate::{Error, Result};

/// What became of an accepted request (all answered 202).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Written to the log for delivery; carries the log sequence.
    Queued(u64),
    /// The instance is now (or still) subscribed; the Accept is queued.
    Subscribed,
    /// The instance's subscription was removed.
    Unsubscribed,
    /// The activity or its object was relayed before.
    Duplicate,
    /// Valid, but there is nothing to relay; carries the reason.
    Ignored(&'static str),
}

impl Receipt {
    /// A short word for the response body and the logs.
    pub fn describe(&self) -> String {
        match self {
            Receipt::Queued(seq) => format!("queued as {seq}"),
            Receipt::Subscribed => "subscribed".into(),
            Receipt::Unsubscribed => "unsubscribed".into(),
            Receipt::Duplicate => "duplicate".into(),
            Receipt::Ignored(why) => format!("ignored: {why}"),
        }
    }
}

/// Processes one inbox request.
pub async fn receive(state: &AppState, request: &SignedRequest<'_>) -> Result<Receipt> {
    let claim = httpsig::extract_claim(request, SystemTime::now())?;
    let activity = Activity::parse(request.body)?;
    let origin = authority_of(&activity.actor)
        .ok_or_else(|| Error::BadRequest(format!("actor {:?} is not a URL", activity.actor)))?;
    admission::check_blocked(state, &origin)?;
    let subscribed = state.store.subscribed_style(&origin);
    if subscribed.is_none()
        && !matches!(
            activity.kind.as_str(),
            "Follow" | "Undo" | "Accept" | "Reject"
        )
    {
        return Err(Error::NotSubscribed(origin));
    }
    let signer = verify(state, &claim).await?;
    relay::check_signer(&activity, &signer.owner, &claim.key_id)?;
    // Charged only once the signer is proven to speak for `origin`: a forged request naming someone
    // else's actor must not use up that instance's allowance.
    state.limiter.check(&origin)?;
    let sender = if signer.owner.id == activity.actor {
        signer.owner.clone()
    } else {
        state.resolver.actor(&activity.actor).await?
    };
    let ctx = Context {
        relay_actor: &state.relay_actor_id,
        subscribed,
        ld_signed_by_actor: ld_signed_by_actor(state, &activity).await,
    };
    let decision = relay::decide(&activity, &sender, ctx)?;
    tracing::debug!(kind = %activity.kind, actor = %activity.actor, ?decision, "inbox");
    act(state, decision, &activity, &sender, &origin, request.body).await
}

/// Resolves the claim's key and verifies; a failure with a cached key refetches it once.
async fn verify(state: &AppState, claim: &Claim) -> Result<ResolvedKey> {
    let cached = state.resolver.key(&claim.key_id, false).await?;
    if claim.verify(&cached.key).is_ok() {
        return Ok(cached);
    }
    let fresh = state.resolver.key(&claim.key_id, true).await?;
    claim.verify(&fresh.key)?;
    Ok(fresh)
}

/// Whether the activity's LD signature names a key owned by the activity's actor. The signature value
/// itself is checked by the receivers (Mastodon recovers the author from it); the relay only decides
/// whether sending the original makes sense.
async fn ld_signed_by_actor(state: &AppState, activity: &Activity) -> bool {
    let Some(signature) = activity.ld_signature() else {
        return false;
    };
    // The author's own key lives on the author's host; anything else is not looked up at all.
    if signature.kind != "RsaSignature2017" || !same_authority(&signature.creator, &activity.actor)
    {
        return false;
    }
    match state.resolver.key(&signature.creator, false).await {
        Ok(key) => key.owner.id == activity.actor,
        Err(e) => {
            tracing::debug!(creator = %signature.creator, error = %e, "LD signature creator not resolvable");
            false
        }
    }
}

async fn act(
    state: &AppState,
    decision: Decision,
    activity: &Activity,
    sender: &Arc<Actor>,
    origin: &str,
    body: &[u8],
) -> Result<Receipt> {
    match decision {
        Decision::Subscribe(style) => {
            match admission::screen(state, style, activity, sender, origin).await? {
                Some(held_or_refused) => Ok(held_or_refused),
                None => subscribe(state, style, activity, sender, origin).await,
            }
        }
        Decision::RejectFollow(reason) => {
            let inbox = sender
                .delivery_inbox()
                .ok_or_else(|| Error::BadRequest(format!("actor {} has no inbox", sender.id)))?;
            let reject = outgoing::reject(&state.base, &activity.raw, &sender.id);
            state
                .engine
                .send_once(inbox.to_string(), Bytes::from(reject.to_string()));
            Ok(Receipt::Ignored(reason))
        }
        Decision::Unsubscribe => {
            state.end_subscription(origin).await?;
            tracing::info!(instance = %origin, "unsubscribed");
            Ok(Receipt::Unsubscribed)
        }
        Decision::FollowBackAccepted => {
            tracing::info!(instance = %origin, "instance accepted the relay's follow");
            Ok(Receipt::Ignored("accept noted"))
        }
        Decision::CheckObject(object_id) => {
            let object = state.http.get_json(&object_id).await?;
            let next = relay::check_fetched_object(activity, &object, &object_id)?;
            Box::pin(act(state, next, activity, sender, origin, body)).await
        }
        Decision::Forward(plan) => {
            if matches!(activity.kind.as_str(), "Update" | "Delete") {
                state.resolver.forget_actor(&activity.actor).await;
            }
            let announce = Bytes::from(
                outgoing::announce(
                    &state.base,
                    &outgoing::new_activity_id(&state.base),
                    &plan.announce_object,
                )
                .to_string(),
            );
            let entry = NewEntry {
                origin: origin.to_string(),
                target: None,
                kind: activity.kind.clone(),
                mastodon_body: if plan.verbatim {
                    Bytes::copy_from_slice(body)
                } else {
                    announce.clone()
                },
                litepub_body: announce,
            };
            Ok(
                match state
                    .store
                    .append_unless_seen(entry, plan.dedup_ids)
                    .await?
                {
                    Some(seq) => Receipt::Queued(seq),
                    None => Receipt::Duplicate,
                },
            )
        }
        Decision::Ignore(reason) => Ok(Receipt::Ignored(reason)),
    }
}

/// Subscribes the instance and queues the Accept (and the LitePub Follow back); the policy was applied
/// before (see [`crate::federation::admission`]).
pub(crate) async fn subscribe(
    state: &AppState,
    style: Style,
    follow: &Activity,
    sender: &Arc<Actor>,
    origin: &str,
) -> Result<Receipt> {
    let inbox = sender
        .delivery_inbox()
        .ok_or_else(|| Error::BadRequest(format!("actor {} has no inbox", sender.id)))?
        .to_string();
    state.http.policy().check_url(
        &url::Url::parse(&inbox).map_err(|e| Error::BadRequest(format!("inbox {inbox:?}: {e}")))?,
    )?;
    let reply = |kind: &str, body: Value| NewEntry {
        origin: state.host.clone(),
        target: Some(origin.to_string()),
        kind: kind.to_string(),
        mastodon_body: Bytes::from(body.to_string()),
        litepub_body: Bytes::from(body.to_string()),
    };
    let mut replies = vec![reply(
        "Accept",
        outgoing::accept(&state.base, &follow.raw, &sender.id),
    )];
    if style == Style::LitePub {
        replies.push(reply("Follow", outgoing::follow(&state.base, &sender.id)));
    }
    let subscriber = Subscriber {
        authority: origin.to_string(),
        actor_id: sender.id.clone(),
        inbox,
        style,
        cursor: 0,
        skipped: 0,
        created_at: 0,
    };
    let (state_after, stored) = state
        .store
        .subscribe(subscriber, follow.raw.to_string(), replies)
        .await?;
    if state_after == Subscribed::New {
        tracing::info!(instance = %origin, ?style, "new subscriber");
    }
    state.engine.start(stored);
    Ok(Receipt::Subscribed)
}
