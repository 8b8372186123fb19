//! Receiving activities: the path of every `POST /inbox`, from signature to durable log entry.
//!
//! Order matters for cost and for safety: parse the signature header and check digest and date (no I/O),
//! check the activity's size and ids ([`relay::check_size`], [`relay::check_ids`]), refuse blocked
//! instances ([`crate::federation::admission`]) and activities from instances that are not subscribed (no fetch for strangers), resolve the key on the actor's host
//! and verify (see [`crate::federation::resolver`] for what that may cost), check that the signer may
//! speak for the actor, then gather the facts a Follow or Undo needs (the stored subscription,
//! whether the sender is the instance actor — asked of the instance only now, after the signature) and
//! let [`crate::federation::relay::decide`] say what to do. Only after the log write is committed does the
//! caller answer 202, so an accepted activity survives a crash.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use serde_json::Value;

use crate::ap::{Activity, Actor, authority_of, is_public_iri, outgoing, same_authority};
use crate::federation::relay::{self, Context, Decision, Subscription};
use crate::federation::{admission, subscription};
use crate::httpsig::{self, SignedRequest};
use crate::state::AppState;
use crate::store::NewEntry;

pub use crate::federation::receipt::Receipt;
use crate::{Error, Result};

/// An inbox request as it arrived, checked without I/O: its signature claim (header parsed, digest and
/// date checked), its activity (ids checked) and the authority of its actor's instance (not blocked).
pub struct Checked {
    /// What the signature claims.
    pub claim: httpsig::Claim,
    /// The activity.
    pub activity: Activity,
    /// The actor's instance.
    pub origin: String,
}

/// The checks every inbox POST passes before anything else (the relay's inbox and the topics'):
/// signature header, digest and date, the activity's size and ids, and the instance's blocks.
pub fn check(state: &AppState, request: &SignedRequest<'_>) -> Result<Checked> {
    let claim = httpsig::extract_claim(request, SystemTime::now())?;
    let activity = Activity::parse(request.body)?;
    relay::check_size(&activity, request.body.len())?;
    relay::check_ids(&activity, state.config.allow_private_networks)?;
    let origin = authority_of(&activity.actor)
        .ok_or_else(|| Error::BadRequest(format!("actor {:?} is not a URL", activity.actor)))?;
    admission::check_blocked(state, &origin)?;
    Ok(Checked {
        claim,
        activity,
        origin,
    })
}

/// Verifies a [`Checked`] request's signature (fetching the key on the actor's host when needed; a
/// failed fetch is charged to `client`, see [`crate::federation::key_fetch_limit`]), checks that the
/// signer may speak for the actor, and charges the instance's inbound allowance. Returns the key's
/// owner and the sending actor's document.
pub async fn authenticate(
    state: &AppState,
    checked: &Checked,
    client: Option<IpAddr>,
) -> Result<(Arc<Actor>, Arc<Actor>)> {
    let Checked {
        claim,
        activity,
        origin,
    } = checked;
    // The keyId must be on the actor's host before anything is fetched for it (see the resolver).
    let may_fetch = state.key_fetch_failures.may_fetch(client).await;
    let signer = state
        .resolver
        .signer_fetching(&claim.key_id, origin, may_fetch, |key| claim.verify(key))
        .await;
    let signer = match signer {
        Ok(signer) => signer,
        // A key that could not be fetched or used: charged to the client, not only to its host.
        Err(e @ (Error::KeyFetch { .. } | Error::KeyUnusable(_))) => {
            state.key_fetch_failures.charge(client).await;
            return Err(e);
        }
        Err(e @ Error::RateLimited(_)) if !may_fetch => {
            state
                .key_fetch_failures
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    relay::check_signer(activity, &signer.owner, &claim.key_id)?;
    state.http.schemes().hint(origin, claim.scheme);
    // Charged only once the signer is proven to speak for `origin`: a forged request naming someone
    // else's actor must not use up that instance's allowance.
    if state.limiter.note_seen(origin) {
        remember_inbound(state, origin);
    }
    state.limiter.check(origin)?;
    let sender = if signer.owner.id == activity.actor {
        signer.owner.clone()
    } else {
        state.resolver.actor(&activity.actor).await?
    };
    Ok((signer.owner, sender))
}

/// Processes one inbox request from `client` (its address, when known: failed key fetches are charged
/// to it, see [`crate::federation::key_fetch_limit`]).
pub async fn receive(
    state: &AppState,
    request: &SignedRequest<'_>,
    client: Option<IpAddr>,
) -> Result<Receipt> {
    let checked = check(state, request)?;
    let (activity, origin) = (&checked.activity, &checked.origin);
    let subscribed = state.store.subscribed_style(origin);
    // An Undo from an instance that is not subscribed may withdraw its Follow waiting for approval.
    let pending = match (subscribed, activity.kind.as_str()) {
        (None, "Undo") => state.store.pending_of(origin).await?,
        _ => None,
    };
    if subscribed.is_none()
        && let Some(receipt) =
            from_stranger(activity, origin, &state.relay_actor_id, pending.is_some())?
    {
        return Ok(receipt);
    }
    let (signer, sender) = authenticate(state, &checked, client).await?;
    // Only an Undo or a Follow looks at the stored subscription; other requests skip the copy.
    let stored = matches!(activity.kind.as_str(), "Undo" | "Follow")
        .then(|| state.store.subscriber(origin))
        .flatten();
    let subscription = stored.as_ref().map(|s| Subscription {
        actor: &s.actor_id,
        follow_id: &s.follow_id,
    });
    // A Follow from an instance that is not subscribed: its Follow waiting for approval, if any, is
    // what it may not take over (looked up only now, after the signature).
    let pending = match pending {
        None if subscribed.is_none() && activity.kind == "Follow" => {
            state.store.pending_of(origin).await?
        }
        other => other,
    };
    let pending_subscription = pending.as_ref().map(|p| Subscription {
        actor: &p.actor_id,
        follow_id: p
            .follow
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    });
    // A Follow of this relay: is this its instance's actor? (A blocked instance was refused above.)
    let follow = relay::follow_style(activity, &state.relay_actor_id).is_some();
    let instance_confirmed = follow
        && relay::asks_instance(&sender, subscription.or(pending_subscription))
        && state.instance_actors.confirmed(&sender).await;
    let ctx = Context {
        relay_actor: &state.relay_actor_id,
        subscribed,
        ld_signed_by_actor: ld_signed_by_actor(state, activity).await,
        subscription,
        signer: &signer.id,
        instance_confirmed,
        pending: pending_subscription,
    };
    let decision = relay::decide(activity, &sender, ctx)?;
    tracing::debug!(kind = %activity.kind, actor = %activity.actor, ?decision, "inbox");
    let received = Received {
        body: request.body,
        signer: &signer.id,
    };
    act(state, decision, activity, &sender, origin, received).await
}

/// Keeps the time of a verified inbox request in the store, in the background (called at most once a
/// minute per instance; see [`crate::store::activity`]). Only subscribers and instances whose Follow
/// got this far sign requests that come here.
fn remember_inbound(state: &AppState, origin: &str) {
    let (store, origin) = (state.store.clone(), origin.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tokio::spawn(async move {
        if let Err(e) = store.record_inbound(&origin, now).await {
            tracing::warn!(instance = %origin, error = %e, "recording the last inbound time");
        }
    });
}

/// The request as it arrived, kept with the log entry for the indexer.
#[derive(Clone, Copy)]
struct Received<'a> {
    /// The body, byte for byte.
    body: &'a [u8],
    /// The actor whose key signed the request.
    signer: &'a str,
}

/// What an instance that is not subscribed may send, decided before any key is fetched: a Follow of
/// this relay (Public or the relay actor) goes on to verification, since it is how instances
/// subscribe, and so does an Undo when the instance has a Follow waiting for approval (`pending`), as
/// it may withdraw it; any other Undo, an Accept or a Reject changes nothing for a stranger and is
/// acknowledged without fetching anything (`Some` receipt); a Follow of something else is ignored the
/// same way; anything else is refused.
fn from_stranger(
    activity: &Activity,
    origin: &str,
    relay_actor: &str,
    pending: bool,
) -> Result<Option<Receipt>> {
    match activity.kind.as_str() {
        "Undo" if pending => Ok(None),
        "Follow" => Ok(match activity.object_id() {
            Some(object) if is_public_iri(object) || object == relay_actor => None,
            _ => Some(Receipt::Ignored(
                "Follow of something that is not this relay",
            )),
        }),
        "Undo" | "Accept" | "Reject" => Ok(Some(Receipt::Ignored("not subscribed"))),
        _ => Err(Error::NotSubscribed(origin.to_string())),
    }
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
    match state.resolver.key(&signature.creator).await {
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
    received: Received<'_>,
) -> Result<Receipt> {
    match decision {
        Decision::Subscribe(style) => {
            match admission::screen(state, style, activity, sender, origin).await? {
                Some(held_or_refused) => Ok(held_or_refused),
                None => subscription::subscribe(state, style, activity, sender, origin).await,
            }
        }
        Decision::RejectFollow(reason) => {
            admission::refuse(state, activity, sender, origin, reason).await?;
            Ok(Receipt::Ignored(reason))
        }
        Decision::Unsubscribe => {
            state.end_subscription(origin).await?;
            tracing::info!(instance = %origin, "unsubscribed");
            Ok(Receipt::Unsubscribed)
        }
        Decision::WithdrawPending => {
            let withdrawn = state.store.withdraw_pending(origin, &sender.id).await?;
            tracing::info!(instance = %origin, withdrawn, "Follow waiting for approval undone");
            Ok(if withdrawn {
                Receipt::Withdrawn
            } else {
                Receipt::Ignored("nothing waits for approval")
            })
        }
        Decision::FollowBackAccepted => {
            tracing::info!(instance = %origin, "instance accepted the relay's follow");
            Ok(Receipt::Ignored("accept noted"))
        }
        Decision::CheckObject(object_id) => {
            // The object lives on the sender's own host: when that fails, the sender is told (4xx),
            // not asked to retry a relay failure (502) that is not the relay's.
            let object = state.http.get_json(&object_id).await.map_err(|e| match e {
                Error::Fetch { url, reason } => Error::BadRequest(format!(
                    "the announced object {url} could not be fetched from its server: {reason}"
                )),
                other => other,
            })?;
            let next = relay::check_fetched_object(activity, &object, &object_id)?;
            Box::pin(act(state, next, activity, sender, origin, received)).await
        }
        Decision::Forward(plan) => {
            // An account Update or Delete: the cached actor and its keys are stale (a note's Update
            // or Delete leaves them alone, it would only cost refetches).
            if matches!(activity.kind.as_str(), "Update" | "Delete")
                && activity.object_id() == Some(activity.actor.as_str())
            {
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
                    Bytes::copy_from_slice(received.body)
                } else {
                    announce.clone()
                },
                litepub_body: announce,
                signer: Some(received.signer.to_string()),
                // The delivered body is the original when it is sent verbatim: kept once.
                original: (!plan.verbatim).then(|| Bytes::copy_from_slice(received.body)),
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
