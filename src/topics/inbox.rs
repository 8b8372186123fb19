//! A topic's inbox: `POST /topics/{kind}/{name}/inbox`, where instances and people follow a topic.
//!
//! The same checks as the relay's own inbox come first ([`inbox::check`], [`inbox::authenticate`]:
//! signature, digest and date, ids, blocks, the signer speaking for the actor, the instance's inbound
//! allowance), but only for a `Follow` or an `Undo`: anything else is acknowledged without fetching a
//! key, since a topic relays nothing it is sent (a Mastodon instance that added the topic's inbox as a
//! relay sends its public posts there). Then [`follow::decide`] and [`admission::admit`] rule, the
//! follow is stored, the registry and the delivery workers take it in, and the topic answers with an
//! `Accept` (or a `Reject`) signed by its own key.

use std::net::IpAddr;

use crate::ap::{Activity, Actor, authority_of};
use crate::federation::inbox::{self, Receipt};
use crate::federation::{self, relay};
use crate::httpsig::SignedRequest;
use crate::state::AppState;
use crate::store::topics::{Followed, TopicFollower};
use crate::topics::actor::TopicUrls;
use crate::topics::admission::{self, FollowFacts};
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
        "Undo" => state
            .store
            .topic_follower(topic, &activity.actor)
            .await?
            .map(|f| f.follow_id),
        _ => None,
    };
    match follow::decide(activity, &urls, follow_id.as_deref()) {
        TopicDecision::Follow(style) => {
            followed(
                state,
                topic,
                &urls,
                activity,
                &sender,
                &checked.origin,
                style,
            )
            .await
        }
        TopicDecision::Unfollow => {
            let ended = state.store.unfollow_topic(topic, &activity.actor).await?;
            if ended {
                state.topics.changed().await?;
                tracing::info!(topic = %topic, actor = %activity.actor, "topic unfollowed");
            }
            Ok(if ended {
                Receipt::Unsubscribed
            } else {
                Receipt::Ignored("not following this topic")
            })
        }
        TopicDecision::Ignore(reason) => Ok(Receipt::Ignored(reason)),
    }
}

/// A Follow of `topic` by `sender`: admitted, stored and accepted, or rejected with the reason.
async fn followed(
    state: &AppState,
    topic: &Topic,
    urls: &TopicUrls,
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
    if let Err(reason) = admission::admit(&state.topics.settings, topic, facts) {
        return refuse(state, topic, urls, activity, sender, &inbox_url, reason).await;
    }
    let follower = TopicFollower {
        actor_id: sender.id.clone(),
        inbox: inbox_url.clone(),
        style,
        follow_id: activity.id.clone().unwrap_or_default(),
        authority: authority_of(&sender.id).unwrap_or_else(|| origin.to_owned()),
    };
    let outcome = state
        .store
        .follow_topic(
            topic,
            follower,
            state.config.max_followers_per_topic,
            state.config.max_topic_follows_per_instance,
        )
        .await?;
    let reason = match outcome {
        Followed::New | Followed::Again => None,
        Followed::Full => Some("this topic has as many followers as it may have"),
        Followed::InstanceFull => Some("your instance follows as many topics as it may"),
    };
    if let Some(reason) = reason {
        return refuse(state, topic, urls, activity, sender, &inbox_url, reason).await;
    }
    state.topics.changed().await?;
    let accept = follow::accept(&state.base, urls, &activity.raw, &sender.id);
    let signer = state.topics.registry.signer(topic).await?;
    state
        .engine
        .publish_once_as(&inbox_url, &accept, Some((signer.key, signer.key_id)))
        .await?;
    tracing::info!(topic = %topic, actor = %sender.id, ?style, again = outcome == Followed::Again, "topic followed");
    Ok(Receipt::Subscribed)
}

/// Answers a Follow the topic does not take with a Reject signed by the topic.
async fn refuse(
    state: &AppState,
    topic: &Topic,
    urls: &TopicUrls,
    activity: &Activity,
    sender: &Actor,
    inbox_url: &str,
    reason: &'static str,
) -> Result<Receipt> {
    tracing::info!(topic = %topic, actor = %sender.id, reason, "topic Follow refused");
    let reject = follow::reject(&state.base, urls, &activity.raw, &sender.id);
    let signer = state.topics.registry.signer(topic).await?;
    state
        .engine
        .publish_once_as(inbox_url, &reject, Some((signer.key, signer.key_id)))
        .await?;
    Ok(Receipt::Ignored(reason))
}
