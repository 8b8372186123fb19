//! The author actors the indexer knows: fetched (signed GET, through the bounded [`Fetcher`]) the first
//! time one of their posts is indexed, cached with only what indexing needs, replaced on an actor
//! `Update`, and fetched again when older than `actor_refresh_hours` (consent can change without an
//! `Update` reaching the relay). Consent is re-checked each time a fresh copy arrives. The scheduled
//! refresh works from the store's list of authors (it outlives a restart); this cache only saves
//! fetches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use serde_json::Value;

use crate::discovery::fetch::Fetcher;
use crate::{Error, Result};

/// Properties of an actor the index has no use for (keys, endpoints, collections): dropped before
/// caching, as they are most of a typical actor document.
const UNNEEDED: &[&str] = &[
    "@context",
    "publicKey",
    "assertionMethod",
    "endpoints",
    "inbox",
    "outbox",
    "followers",
    "following",
    "liked",
    "likes",
    "streams",
    "devices",
    "sharedInbox",
    "generator",
    "featured",
];

/// A cached author.
#[derive(Clone)]
pub struct Author {
    /// The actor document, without the properties indexing does not use (see [`trim`]).
    pub doc: Arc<Value>,
    /// When it was fetched or received.
    pub fetched: Instant,
}

/// How long an author whose fetch failed is not asked for again: a burst of posts by an author
/// whose server is down costs one failed fetch, not one per post.
const FAILED_FOR: Duration = Duration::from_secs(300);

/// The author cache.
pub struct Authors {
    cache: Cache<String, Author>,
    /// Authors whose last fetch failed, and why.
    failed: Cache<String, String>,
    refresh: Duration,
}

/// An actor document with only what indexing needs.
pub fn trim(mut doc: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        for key in UNNEEDED {
            map.remove(*key);
        }
    }
    doc
}

impl Authors {
    /// A cache of at most `capacity` authors, each refreshed after `refresh`.
    pub fn new(capacity: u64, refresh: Duration) -> Authors {
        Authors {
            cache: Cache::builder().max_capacity(capacity).build(),
            failed: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(FAILED_FOR)
                .build(),
            refresh,
        }
    }

    /// The author `id`, fetched when unknown or due for a refresh; `true` with a copy fetched by this
    /// call (whose consent the caller re-checks). Concurrent calls for one author share one fetch.
    pub async fn get(&self, id: &str, fetcher: &Fetcher) -> Result<(Author, bool)> {
        if let Some(found) = self.cache.get(id).await {
            if found.fetched.elapsed() < self.refresh {
                return Ok((found, false));
            }
            self.cache.invalidate(id).await;
        }
        if let Some(reason) = self.failed.get(id).await {
            return Err(Error::fetch(id, format!("failed recently: {reason}")));
        }
        let asked = Instant::now();
        let fetched = self
            .cache
            .try_get_with(id.to_string(), async {
                let doc = fetcher.document(id).await?;
                Ok::<_, Error>(Author {
                    doc: Arc::new(trim(doc)),
                    fetched: Instant::now(),
                })
            })
            .await;
        let author = match fetched {
            Ok(author) => author,
            Err(e) => {
                self.failed.insert(id.to_string(), e.to_string()).await;
                return Err(Error::fetch(id, e));
            }
        };
        let fresh = author.fetched >= asked;
        Ok((author, fresh))
    }

    /// Fetches `id` again whatever the cache holds (a profile update without a trusted copy).
    pub async fn refetch(&self, id: &str, fetcher: &Fetcher) -> Result<Author> {
        let doc = fetcher.document(id).await?;
        Ok(self.put(id, doc).await)
    }

    /// Stores a copy known to be authentic (embedded in an `Update` signed on the actor's host).
    pub async fn put(&self, id: &str, doc: Value) -> Author {
        let author = Author {
            doc: Arc::new(trim(doc)),
            fetched: Instant::now(),
        };
        self.cache.insert(id.to_string(), author.clone()).await;
        self.failed.invalidate(id).await;
        author
    }

    /// Forgets an author (deleted).
    pub async fn forget(&self, id: &str) {
        self.cache.invalidate(id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures as fixtures;

    #[test]
    fn cached_actors_keep_what_indexing_needs() {
        let actor = fixtures::json("mastodon-person-actor.json");
        let trimmed = trim(actor.clone());
        assert!(trimmed.get("publicKey").is_none() && trimmed.get("@context").is_none());
        for kept in ["id", "type", "preferredUsername", "name", "summary"] {
            assert_eq!(trimmed.get(kept), actor.get(kept), "{kept}");
        }
        for consent in ["indexable", "discoverable", "attachment", "tag"] {
            assert_eq!(trimmed.get(consent), actor.get(consent), "{consent}");
        }
    }

    #[tokio::test]
    async fn an_author_whose_fetch_failed_is_not_fetched_again_at_once() {
        let authors = Authors::new(10, Duration::from_secs(60));
        let http = crate::test_fixtures::http();
        let fetcher = Fetcher::new(http, 2);
        let id = "http://127.0.0.1:9/users/x";
        assert!(authors.get(id, &fetcher).await.is_err());
        assert!(authors.get(id, &fetcher).await.is_err());
        let failed = fetcher
            .stats
            .failed
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(failed, 1, "the second ask did not fetch");
        // A copy that arrives (an Update signed at home) clears the failure.
        authors
            .put(id, fixtures::json("mastodon-person-actor.json"))
            .await;
        assert!(authors.get(id, &fetcher).await.is_ok());
    }

    #[tokio::test]
    async fn a_cached_author_is_fetched_again_once_older_than_the_refresh_age() {
        let authors = Authors::new(10, Duration::from_millis(50));
        let fetcher = Fetcher::new(crate::test_fixtures::http(), 2);
        let id = "http://127.0.0.1:9/users/x";
        authors
            .put(id, fixtures::json("mastodon-person-actor.json"))
            .await;
        let (_, fresh) = authors.get(id, &fetcher).await.unwrap();
        assert!(!fresh, "served from the cache");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            authors.get(id, &fetcher).await.is_err(),
            "too old: fetched again (and this server is down)"
        );
        assert_eq!(
            fetcher
                .stats
                .failed
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }
}
