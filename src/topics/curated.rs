//! Searches the relay's admins make topics of (`plaza admin topics add co-ops --query '…' --name …`):
//! checking a definition (a slug, a name, a query in Plaza's query language that parses and may be
//! matched on ingest), and putting it in force — stored with the topic's own key, then the registry
//! reloaded so the next post is matched against it.

use plaza_index::query::{self, QueryLimits};

use crate::state::AppState;
use crate::store::topics::CuratedTopic;
use crate::topics::{Topic, TopicKind};
use crate::{Error, Result};

/// Longest name of a curated topic, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks a definition: the slug a valid one, the name not empty nor too long, the query one that
/// parses and holds at least one term (an empty query would carry every post).
pub fn check(slug: &str, name: &str, query_text: &str) -> Result<CuratedTopic> {
    let topic = Topic::search(slug).ok_or_else(|| {
        Error::BadRequest(format!(
            "slug {slug:?}: 1 to 64 lowercase letters, digits and '-', not starting with '-'"
        ))
    })?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::BadRequest(format!(
            "name: 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let parsed = query::parse(query_text, &QueryLimits::default())
        .map_err(|e| Error::BadRequest(format!("query: {e}")))?;
    if parsed.clauses.iter().all(|c| c.negated) {
        return Err(Error::BadRequest(
            "query: it must ask for something (a word, a #tag, an operator), not only exclude"
                .into(),
        ));
    }
    Ok(CuratedTopic {
        slug: topic.name().to_owned(),
        name: name.to_owned(),
        query: query_text.trim().to_owned(),
        created_at: 0,
    })
}

/// Adds (or redefines) a curated topic and puts it in force.
pub async fn put(state: &AppState, definition: CuratedTopic) -> Result<CuratedTopic> {
    if !state.topics.settings.kinds.contains(&TopicKind::Search) {
        return Err(Error::BadRequest(
            "curated topics are off (topic_kinds has no \"search\")".into(),
        ));
    }
    let topic = Topic::search(&definition.slug)
        .ok_or_else(|| Error::BadRequest(format!("slug {:?}", definition.slug)))?;
    let key = match state.store.topic_key(&topic).await? {
        Some(key) => key,
        None => crate::topics::keys::fresh().await?,
    };
    let stored = state
        .store
        .put_curated_topic(definition, key, state.config.max_topics)
        .await?
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "no new topics: the limit of {} is reached",
                state.config.max_topics
            ))
        })?;
    state.topics.changed().await?;
    Ok(stored)
}

/// Removes a curated topic: its followers stop receiving it at once.
pub async fn remove(state: &AppState, slug: &str) -> Result<()> {
    if !state.store.remove_curated_topic(slug).await? {
        return Err(Error::NotFound(format!("curated topic {slug}")));
    }
    if let Some(topic) = Topic::search(slug) {
        state.topics.registry.forget_signer(&topic);
    }
    state.topics.changed().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_checked() {
        let ok = check(
            "co-ops-es",
            " Worker co-ops in Spanish ",
            "type:organization #coop OR #cooperative language:es",
        )
        .expect("valid");
        assert_eq!(ok.name, "Worker co-ops in Spanish");
        for (slug, name, query) in [
            ("Co-Ops", "x", "#coop"),
            ("co-ops", "", "#coop"),
            ("co-ops", "x", "\"unclosed"),
            ("co-ops", "x", "-#spam"),
            ("co-ops", "x", "has:nothing"),
        ] {
            assert!(
                matches!(check(slug, name, query), Err(Error::BadRequest(_))),
                "{slug} {name} {query}"
            );
        }
    }
}
