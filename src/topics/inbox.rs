//! A topic's inbox: `POST /topics/{kind}/{name}/inbox`, where instances and people follow a topic.
//!
//! The same checks as the relay's own inbox come first ([`inbox::check`], [`inbox::authenticate`]:
//! signature, digest and date, ids, blocks, the signer speaking for the actor, the instance's inbound
//! allowance), but only for a `Follow` or an `Undo`: anything else is acknowledged without fetching a
//! key, since a topic relays nothing it is sent (a Mastodon instance that added the topic's inbox as a
//! relay sends its public posts there). Then [`follow::decide`] and [`admission::admit`] rule, the
//! follow is stored, the registry and the delivery workers take it in, and the topic answers with an
//! `Accept` (or a `Reject`) signed by its own key. Under the approval policy a Follow from an
//! instance not admitted yet waits (`topic_pending`) until an admin approves it ([`accept_follower`])
//! or rejects it ([`refuse`]); an Undo withdraws it.

use std::net::IpAddr;

use serde_json::Value;

use crate::ap::{Activity, Actor, authority_of};
use crate::federation::inbox::{self, Receipt};
use crate::federation::{self, relay};
use crate::httpsig::SignedRequest;
use crate::state::AppState;
use crate::store::topics::{Recorded, TopicFollower};
use crate::topics::actor::TopicUrls;
use crate::topics::admission::{self, FollowFacts, FollowVerdict};
use crate::topics::follow::{self, TopicDecision};
use crate::topics::{Topic, keys};
use crate::{Error, Result};

/// Processes one request to the inbox of `topic`.
pub async fn receive(
    state: &AppState,
    topic: &Topic,
    request: &SignedRequest<'_>,
    client: Option<IpAddr>,
) -> Result<Receipt> {
    if !state.topics.settings.serves(topic) {
        return Err(Error::NotFound(format!("{}/inbox", topic.path())));
    }
    let checked = inbox::check(state, request)?;
    if !matches!(checked.activity.kind.as_str(), "Follow" | "Undo") {
        return Ok(Receipt::Ignored("a topic takes only Follow and Undo"));
    }
    let (_, sender) = inbox::authenticate(state, &checked, client).await?;
    let activity = &checked.activity;
    let urls = TopicUrls::new(&state.base, topic);
    let follow_id = match activity.kind.as_str() {
        "Undo" => match state.store.topic_follower(topic, &activity.actor).await? {
            Some(follower) => Some(follower.follow_id),
            None => state
                .store
                .topic_pending_of(topic, &activity.actor)
                .await?
                .map(|p| p.follower.follow_id),
        },
        _ => None,
    };
    match follow::decide(activity, &urls, follow_id.as_deref()) {
        TopicDecision::Follow(style) => {
            followed(state, topic, activity, &sender, &checked.origin, style).await
        }
        TopicDecision::Unfollow => {
            let ended = state.store.unfollow_topic(topic, &activity.actor).await?;
            if ended {
                state.topics.changed().await?;
                tracing::info!(topic = %topic, actor = %activity.actor, "topic unfollowed");
                return Ok(Receipt::Unsubscribed);
            }
            if state
                .store
                .take_topic_pending(topic, &activity.actor)
                .await?
                .is_some()
            {
                tracing::info!(topic = %topic, actor = %activity.actor, "topic follow withdrawn before approval");
                return Ok(Receipt::Withdrawn);
            }
            Ok(Receipt::Ignored("not following this topic"))
        }
        TopicDecision::Ignore(reason) => Ok(Receipt::Ignored(reason)),
    }
}

/// A Follow of `topic` by `sender`: admitted, stored and accepted; kept for an admin (the approval
/// policy); or rejected with the reason.
async fn followed(
    state: &AppState,
    topic: &Topic,
    activity: &Activity,
    sender: &Actor,
    origin: &str,
    style: crate::store::Style,
) -> Result<Receipt> {
    // A software block covers an instance once its NodeInfo is known: asked now, as for a subscriber.
    federation::admission::learn_software(state, origin, &sender.id).await;
    federation::admission::check_blocked(state, origin)?;
    let snapshot = state.topics.registry.snapshot();
    let facts = FollowFacts {
        instance_subscribed: state.store.subscribed_style(topic.name()).is_some(),
        curated_exists: snapshot.curated(topic.name()).is_some(),
        follower_subscribed: state.store.subscribed_style(origin).is_some(),
        policy: state.curation.admit(origin),
    };
    if !admission::exists(topic, facts) {
        return Err(Error::NotFound(topic.path()));
    }
    let inbox_url = relay::inbox_of(sender, state.config.allow_private_networks)?.to_owned();
    keys::key_for(&state.store, topic, state.config.max_topics).await?;
    let follower = TopicFollower {
        actor_id: sender.id.clone(),
        inbox: inbox_url,
        style,
        follow_id: activity.id.clone().unwrap_or_default(),
        authority: authority_of(&sender.id).unwrap_or_else(|| origin.to_owned()),
    };
    match admission::admit(&state.topics.settings, topic, facts) {
        FollowVerdict::Accept => accept_follower(state, topic, follower, &activity.raw).await,
        FollowVerdict::Refuse(reason) => {
            refuse(state, topic, &activity.raw, &follower, reason).await
        }
        FollowVerdict::Hold => {
            let held = state
                .store
                .hold_topic_follow(
                    topic,
                    follower.clone(),
                    &activity.raw,
                    admission::MAX_PENDING,
                    admission::MAX_PENDING_PER_INSTANCE,
                )
                .await?;
            let full = match held {
                Recorded::Full => Some(admission::PENDING_FULL),
                Recorded::InstanceFull => Some(admission::PENDING_INSTANCE_FULL),
                Recorded::New | Recorded::Again => None,
            };
            if let Some(reason) = full {
                return refuse(state, topic, &activity.raw, &follower, reason).await;
            }
            tracing::info!(topic = %topic, actor = %follower.actor_id, again = held == Recorded::Again, "topic follow waits for approval");
            Ok(Receipt::Ignored("awaiting approval by an admin"))
        }
    }
}

/// Records `follower`'s `follow` of `topic` and answers it with an Accept signed by the topic (or a
/// Reject when the topic or the follower's instance follows as many as it may): a Follow the
/// policy admits, or one an admin approved.
pub async fn accept_follower(
    state: &AppState,
    topic: &Topic,
    follower: TopicFollower,
    follow: &Value,
) -> Result<Receipt> {
    let outcome = state
        .store
        .follow_topic(
            topic,
            follower.clone(),
            state.config.max_followers_per_topic,
            state.config.max_topic_follows_per_instance,
        )
        .await?;
    let reason = match outcome {
        Recorded::New | Recorded::Again => None,
        Recorded::Full => Some("this topic has as many followers as it may have"),
        Recorded::InstanceFull => Some("your instance follows as many topics as it may"),
    };
    if let Some(reason) = reason {
        return refuse(state, topic, follow, &follower, reason).await;
    }
    state.topics.changed().await?;
    let urls = TopicUrls::new(&state.base, topic);
    let accept = follow::accept(&state.base, &urls, follow, &follower.actor_id);
    let signer = state.topics.registry.signer(topic).await?;
    state
        .engine
        .publish_once_as(&follower.inbox, &accept, Some((signer.key, signer.key_id)))
        .await?;
    tracing::info!(topic = %topic, actor = %follower.actor_id, style = ?follower.style, again = outcome == Recorded::Again, "topic followed");
    Ok(Receipt::Subscribed)
}

/// Accepts the waiting topic Follows of `authority`, an instance the admins just approved as a
/// subscriber: the relay admits it now, so what it asked of the topics waits no longer. Returns how
/// many were accepted (a failure is logged and leaves the others to go on).
pub async fn release_instance(state: &AppState, authority: &str) -> Result<usize> {
    let mut released = 0;
    for waiting in state.store.topic_pending().await? {
        if waiting.follower.authority != authority {
            continue;
        }
        let Some(waiting) = state
            .store
            .take_topic_pending(&waiting.topic, &waiting.follower.actor_id)
            .await?
        else {
            continue;
        };
        let (topic, actor) = (waiting.topic.clone(), waiting.follower.actor_id.clone());
        match accept_follower(state, &waiting.topic, waiting.follower, &waiting.follow).await {
            Ok(_) => released += 1,
            Err(e) => {
                tracing::warn!(%topic, %actor, error = %e, "accepting a released topic follow")
            }
        }
    }
    Ok(released)
}

/// Answers a Follow the topic does not take with a Reject signed by the topic.
pub async fn refuse(
    state: &AppState,
    topic: &Topic,
    follow: &Value,
    follower: &TopicFollower,
    reason: &'static str,
) -> Result<Receipt> {
    tracing::info!(topic = %topic, actor = %follower.actor_id, reason, "topic Follow refused");
    let urls = TopicUrls::new(&state.base, topic);
    let reject = follow::reject(&state.base, &urls, follow, &follower.actor_id);
    let signer = state.topics.registry.signer(topic).await?;
    state
        .engine
        .publish_once_as(&follower.inbox, &reject, Some((signer.key, signer.key_id)))
        .await?;
    Ok(Receipt::Ignored(reason))
}
