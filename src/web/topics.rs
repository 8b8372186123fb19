//! The topic actors' HTTP surface: `GET /topics/{kind}/{name}` (the `Service` actor for ActivityPub
//! clients, the topic's page for a browser) and the topic half of WebFinger (`web::routes` maps the paths here). Names are parsed
//! by [`crate::topics::topic`], documents built by [`crate::topics::actor`], keys made by
//! [`crate::topics::keys`].

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::ap::outgoing;
use crate::state::AppState;
use crate::topics::actor::{self, TopicUrls};
use crate::topics::carry::Carry;
use crate::topics::delivery::rfc3339;
use crate::topics::{Topic, TopicKind, keys};
use crate::web::pages;
use crate::web::views::{Layout, TopicPage};
use crate::{Error, Result};

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
    if !exists || !state.topics.settings.serves(&topic) {
        return Err(Error::NotFound(topic.path()));
    }
    Ok(topic)
}

/// What `GET /topics/{kind}/{name}` answers: the topic's page for a browser, or its actor document
/// (the key made on first need) for an ActivityPub client; `routes` sends the document.
pub enum TopicAnswer {
    /// The rendered page.
    Page(Response),
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
        let urls = TopicUrls::new(&state.base, &topic);
        let page = TopicPage {
            layout: Layout::new(&state.config, "topic", topic.label()),
            label: topic.label(),
            handle: format!("{}@{}", topic.user(), state.host),
            inbox: urls.inbox,
            actor: urls.actor,
        };
        return Ok(TopicAnswer::Page(pages::html(StatusCode::OK, &page)));
    }
    let key = keys::key_for(&state.store, &topic, state.config.max_topics).await?;
    Ok(TopicAnswer::Actor(actor::document(
        &state.base,
        &topic,
        &state.config.relay_name,
        &key.public_pem,
    )))
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
