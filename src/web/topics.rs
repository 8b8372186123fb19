//! The topic actors' HTTP surface: `GET /topics/{kind}/{name}` (the `Service` actor for ActivityPub
//! clients, the topic's page for a browser) and the topic half of WebFinger (`web::routes` maps the paths here). Names are parsed
//! by [`crate::topics::topic`], documents built by [`crate::topics::actor`], keys made by
//! [`crate::topics::keys`]. Also what the pages and the native API show of the topics: the listing
//! (`/topics`, `GET /api/plaza/v1/topics`), the posts a topic carried as the index holds them, and
//! the "follow this topic" links of hashtag and search pages ([`crate::web::views::topic`] builds
//! what the pages show).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use plaza_index::PostHit;

use crate::ap::outgoing;
use crate::state::AppState;
use crate::store::topics::CuratedTopic;
use crate::topics::actor::{self, TopicUrls};
use crate::topics::carry::{Carry, rfc3339};
use crate::topics::{Topic, TopicKind, keys};
use crate::web::views::{
    self, Layout, Link, PostCard, TopicCard, TopicPage, TopicsPage, group_by_kind,
};
use crate::{Error, Result};

/// Topics `/topics` lists at most (the most followed).
pub const PAGE_TOPICS: usize = 60;
/// Newest carried posts shown per topic on `/topics`.
pub const PAGE_TOPIC_POSTS: usize = 3;
/// Newest carried posts shown on a topic's page.
pub const TOPIC_PAGE_POSTS: usize = 10;

/// Whether the client asked for an ActivityPub document (`application/activity+json`, or
/// `application/ld+json` with or without the ActivityStreams profile) rather than a page.
pub fn wants_activity_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| {
            let accept = accept.to_ascii_lowercase();
            accept.contains("application/activity+json") || accept.contains("application/ld+json")
        })
}

/// The topic a path names, or 404 for an unknown kind or a name that is no tag or language.
fn parse(kind: &str, name: &str) -> Result<Topic> {
    TopicKind::parse(kind)
        .and_then(|kind| Topic::new(kind, name))
        .ok_or_else(|| Error::NotFound(format!("/topics/{kind}/{name}")))
}

/// The topic a path names when this relay offers it: its kind on, not blocked, and for an instance
/// a subscribed one, for a search one the admins defined (no key is ever made for anything else).
pub fn offered(state: &AppState, kind: &str, name: &str) -> Result<Topic> {
    let topic = parse(kind, name)?;
    if !offers(state, &topic) {
        return Err(Error::NotFound(topic.path()));
    }
    Ok(topic)
}

/// Whether the relay offers `topic` (see [`offered`]).
pub fn offers(state: &AppState, topic: &Topic) -> bool {
    let exists = match topic.kind() {
        TopicKind::Instance => state.store.subscribed_style(topic.name()).is_some(),
        TopicKind::Search => state
            .topics
            .registry
            .snapshot()
            .curated(topic.name())
            .is_some(),
        TopicKind::Tag | TopicKind::Language => true,
    };
    exists && state.topics.settings.serves(topic)
}

/// What `GET /topics/{kind}/{name}` answers: the topic's page for a browser, or its actor document
/// (the key made on first need) for an ActivityPub client; `routes` renders the page or sends the
/// document.
pub enum TopicAnswer {
    /// The page, for `routes` to render.
    Page(Box<TopicPage>),
    /// The actor document.
    Actor(serde_json::Value),
}

/// `GET /topics/{kind}/{name}`.
pub async fn topic(
    state: &AppState,
    kind: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<TopicAnswer> {
    let topic = offered(state, kind, name)?;
    if !wants_activity_json(headers) {
        return Ok(TopicAnswer::Page(Box::new(
            topic_page(state, &topic).await?,
        )));
    }
    let key = keys::key_for(&state.store, &topic, state.config.max_topics).await?;
    Ok(TopicAnswer::Actor(actor::document(
        &state.base,
        &topic,
        &state.config.relay_name,
        &key.public_pem,
    )))
}

/// The definition of a curated search topic (`None` for any other kind).
fn definition(state: &AppState, topic: &Topic) -> Option<CuratedTopic> {
    (topic.kind() == TopicKind::Search)
        .then(|| {
            let snapshot = state.topics.registry.snapshot();
            snapshot.curated(topic.name()).cloned()
        })
        .flatten()
}

/// The page of `topic`: what it carries, who follows it, its newest carried posts, how to follow it.
async fn topic_page(state: &AppState, topic: &Topic) -> Result<TopicPage> {
    let urls = TopicUrls::new(&state.base, topic);
    let curated = definition(state, topic);
    let followers = state.store.topic_follower_count(topic).await?;
    let (recent, carried) = state
        .store
        .topic_outbox(topic, None, TOPIC_PAGE_POSTS)
        .await?;
    let ids = recent.into_iter().map(|c| c.object).collect::<Vec<_>>();
    let found = indexed_posts(state, ids.clone()).await;
    let label = views::title(topic, curated.as_ref());
    Ok(TopicPage {
        layout: Layout::new(&state.config, "topics", label.clone()),
        lead: views::lead(topic),
        query: curated.map(|c| c.query),
        label,
        followers,
        carried,
        posts: cards(state, &ids, &found),
        handle: format!("{}@{}", topic.user(), state.host),
        inbox: urls.inbox,
        actor: urls.actor,
    })
}

/// A topic as people are shown it: `/topics` and `GET /api/plaza/v1/topics`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The topic.
    pub topic: Topic,
    /// A curated search's definition.
    pub curated: Option<CuratedTopic>,
    /// Who follows it.
    pub followers: u64,
    /// Posts it carried within the log's retention.
    pub carried: u64,
    /// The ids of its newest carried posts, newest first.
    pub recent: Vec<String>,
}

/// The topics the relay offers that somebody follows, and its curated searches, of `kind` when
/// given: most followed first, at most `limit` (fewer when some are no longer offered), each with
/// the ids of its `recent` newest carried posts. Empty while topic feeds are off.
pub async fn listed(
    state: &AppState,
    kind: Option<TopicKind>,
    limit: usize,
    recent: usize,
) -> Result<Vec<Listed>> {
    if state.topics.settings.max_topics == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (topic, followers) in state.store.listed_topics(kind, limit).await? {
        if !offers(state, &topic) {
            continue;
        }
        let (carried, total) = state.store.topic_outbox(&topic, None, recent).await?;
        let curated = definition(state, &topic);
        out.push(Listed {
            topic,
            curated,
            followers,
            carried: total,
            recent: carried.into_iter().map(|c| c.object).collect(),
        });
    }
    Ok(out)
}

/// `GET /topics`: the topics by kind, the most followed first, each with its newest posts.
pub async fn topics_page(state: &AppState) -> Result<TopicsPage> {
    let listed = listed(state, None, PAGE_TOPICS, PAGE_TOPIC_POSTS).await?;
    let ids: Vec<String> = listed.iter().flat_map(|l| l.recent.clone()).collect();
    let found = indexed_posts(state, ids).await;
    let cards = listed
        .iter()
        .map(|l| {
            let card = TopicCard::new(
                &l.topic,
                l.curated.as_ref(),
                l.followers,
                l.carried,
                cards(state, &l.recent, &found),
            );
            (l.topic.kind(), card)
        })
        .collect();
    Ok(TopicsPage {
        layout: Layout::new(&state.config, "topics", "Topics"),
        enabled: state.topics.settings.max_topics > 0,
        groups: group_by_kind(cards),
    })
}

/// The posts with these ids that the index holds, by id: one trip to the index for all. A post no
/// longer indexed (deleted, its author opted out) is missing; so is everything when search is off or
/// the lookup fails (a page never fails for want of its posts).
async fn indexed_posts(state: &AppState, ids: Vec<String>) -> HashMap<String, PostHit> {
    if ids.is_empty() || state.index.is_none() {
        return HashMap::new();
    }
    let found = state
        .search_index(move |index| {
            let mut hits = Vec::with_capacity(ids.len());
            for id in &ids {
                hits.extend(index.post(id)?);
            }
            Ok(hits)
        })
        .await;
    match found {
        Ok(hits) => hits.into_iter().map(|h| (h.post.uri.clone(), h)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "looking up the posts topics carried");
            HashMap::new()
        }
    }
}

/// The cards of the posts `ids` found in `found`, in the order of `ids`.
fn cards(state: &AppState, ids: &[String], found: &HashMap<String, PostHit>) -> Vec<PostCard> {
    ids.iter()
        .filter_map(|id| found.get(id))
        .map(|hit| PostCard::full(hit, &state.media_proxy))
        .collect()
}

/// The "follow this topic" link for a search for `q`, when the query amounts to a topic the relay
/// offers (see [`views::topic_of_query`]).
pub async fn follow_link_for_query(state: &AppState, q: &str) -> Option<Link> {
    if state.topics.settings.max_topics == 0 {
        return None;
    }
    let curated = match state.store.curated_topics().await {
        Ok(curated) => curated,
        Err(e) => {
            tracing::warn!(error = %e, "reading the curated topics");
            Vec::new()
        }
    };
    let topic = views::topic_of_query(q, &curated)?;
    offers(state, &topic).then(|| views::follow_link(&topic, definition(state, &topic).as_ref()))
}

/// The "follow this topic" link of the hashtag `tag`'s page, when the relay offers its topic.
pub fn follow_link_for_tag(state: &AppState, tag: &str) -> Option<Link> {
    let topic = Topic::tag(tag)?;
    offers(state, &topic).then(|| views::follow_link(&topic, None))
}

/// `GET /topics/{kind}/{name}/followers`: how many follow a topic that exists (no key is made here).
pub async fn followers(state: &AppState, kind: &str, name: &str) -> Result<serde_json::Value> {
    let topic = offered(state, kind, name)?;
    if state.store.topic_key(&topic).await?.is_none() {
        return Err(Error::NotFound(format!("{}/followers", topic.path())));
    }
    let count = state.store.topic_follower_count(&topic).await?;
    Ok(actor::followers(&state.base, &topic, count))
}

/// `GET /topics/{kind}/{name}/outbox`: the collection (`page` `None`), or the page of what the topic
/// carried before log entry `before` (newest first, `size` at a time).
pub async fn outbox(
    state: &AppState,
    kind: &str,
    name: &str,
    page: Option<Option<u64>>,
    size: usize,
) -> Result<serde_json::Value> {
    let topic = offered(state, kind, name)?;
    let id = TopicUrls::new(&state.base, &topic).outbox;
    let Some(before) = page else {
        let (_, total) = state.store.topic_outbox(&topic, None, 0).await?;
        return Ok(outgoing::paged_collection(&id, total));
    };
    let (mut carried, _) = state.store.topic_outbox(&topic, before, size + 1).await?;
    let next = (carried.len() > size).then(|| {
        carried.truncate(size);
        carried.last().map(|c| c.seq)
    });
    let items = carried
        .iter()
        .map(|c| {
            let mut doc =
                Carry::announced(&c.object).document(&state.base, &topic, c.seq, &rfc3339(c.at));
            if let Some(map) = doc.as_object_mut() {
                map.remove("@context");
            }
            doc
        })
        .collect();
    Ok(outgoing::collection_page(
        &id,
        &outgoing::page_id(&id, before),
        items,
        next.flatten(),
    ))
}

/// The WebFinger answer for a topic handle on this relay (`acct:tag.coop@host`), or `None` when
/// `resource` names no topic. Only names a topic the relay can serve (topics on, key made or room
/// for one), so a handle that resolves also follows.
pub async fn webfinger(state: &AppState, resource: &str) -> Result<Option<serde_json::Value>> {
    let Some(topic) = crate::topics::topic::from_resource(resource, &state.host) else {
        return Ok(None);
    };
    let Ok(topic) = offered(state, topic.kind().as_str(), topic.name()) else {
        return Ok(None);
    };
    keys::key_for(&state.store, &topic, state.config.max_topics).await?;
    Ok(Some(actor::webfinger(&state.base, &state.host, &topic)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn activity_json_is_asked_for_either_way() {
        let mut headers = HeaderMap::new();
        assert!(!wants_activity_json(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        assert!(!wants_activity_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
            ),
        );
        assert!(wants_activity_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("Application/Activity+JSON"),
        );
        assert!(wants_activity_json(&headers));
    }

    #[test]
    fn paths_name_known_kinds_only() {
        assert_eq!(parse("tag", "CoOp").expect("tag").name(), "coop");
        assert_eq!(parse("language", "pt-BR").expect("pt").name(), "pt");
        assert_eq!(
            parse("search", "co-ops").expect("slug").path(),
            "/topics/search/co-ops"
        );
        assert!(matches!(parse("person", "coop"), Err(Error::NotFound(_))));
        assert!(matches!(parse("tag", "co op"), Err(Error::NotFound(_))));
    }
}
