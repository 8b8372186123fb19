//! Posts and accounts announced by a FASP server (`data_sharing`), handed to the index under the same
//! rules as relayed posts: the object is fetched from its origin by id (a signed GET through the
//! indexer's [`crate::discovery::fetch::Fetcher`]: its bounds, the double knock, the id check),
//! [`plan::check_post`] checks it is a public post by an author of the same host, the author comes
//! from the indexer's cache, and the index applies consent (`indexable`, `searchableBy`, bio vetoes;
//! `discoverable` for profiles). The one difference: shared content is indexed whatever instance it
//! lives on, so the scope is "not blocked" instead of "subscribed".
//!
//! An object whose origin answers 404 or 410, or serves a `Tombstone`, is removed. The instances shared
//! content came from are recorded, so that the indexer's scheduled sweep re-checks their authors'
//! consent (as it does for subscribed instances) and a block with `purge` reaches them.
//!
//! Among several nodes, one fetches (the share worker holds a lease) and every node keeps an index of
//! its own: what was fetched is also appended to the log as a [`SHARED_KIND`] entry ([`SharedChange`],
//! delivered to no subscriber), which the other nodes' indexers apply under the same rules, fetching
//! nothing but the author (their own consent check).

use std::sync::Arc;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;
use crate::ap::authority_of;
use crate::ap::value::has_type;
use crate::discovery::indexer::{Indexer, Outcome};
use crate::discovery::plan;
use crate::error::Error;
use crate::store::{Entry, NewEntry};

use crate::discovery::plan::SHARED_KIND;

/// What one node fetched of an announced URI, for the other nodes' indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedChange {
    /// The node that fetched it (and applied it to its own index already).
    pub from: String,
    /// The announced URI.
    pub uri: String,
    /// What became of it.
    pub change: Change,
}

/// What became of an announced URI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A post, as fetched; `edit`: an update (a refused copy removes an earlier one).
    Post {
        /// The post.
        doc: Value,
        /// Whether the announcement was an update or a deletion.
        edit: bool,
    },
    /// An account, as fetched.
    Account {
        /// The actor document.
        doc: Value,
    },
    /// A post gone at its origin.
    RemovePost,
    /// An account gone at its origin.
    RemoveActor,
}

/// What was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedKind {
    /// A post (category `content`).
    Post,
    /// An actor (category `account`).
    Account,
}

/// What became of an announced URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedOutcome {
    /// Handed to the index (which may still refuse it for consent: see `plaza_index_posts_refused_total`).
    Handed,
    /// Gone at its origin: removed from the index.
    Removed,
    /// Not for the index, and why.
    Skipped(String),
}

/// Whether a failed fetch says the object is gone for good (404 or 410).
pub fn gone(error: &Error) -> bool {
    matches!(error, Error::Fetch { reason, .. }
        if reason.starts_with("HTTP 404") || reason.starts_with("HTTP 410"))
}

impl Indexer {
    /// Fetches the announced `uri` from its origin and hands it over; `edit` (an `update` or `delete`
    /// event) lets a refused copy remove an earlier one; `allowed` says whether an authority may be
    /// indexed (not blocked). A failed fetch that does not prove the object gone is an error.
    pub async fn index_shared(
        self: &Arc<Self>,
        uri: &str,
        kind: SharedKind,
        edit: bool,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<SharedOutcome> {
        if !authority_of(uri).is_some_and(|a| allowed(&a)) {
            return Ok(SharedOutcome::Skipped("blocked domain".into()));
        }
        // What the other nodes' indexes are told (among several nodes), besides this one's.
        let mut told = None;
        let outcome = match kind {
            SharedKind::Post => match self.fetcher.document(uri).await {
                Err(e) if gone(&e) => {
                    told = Some(Change::RemovePost);
                    Outcome::RemovePost(uri.to_string())
                }
                Err(e) => return Err(e),
                Ok(doc) if has_type(&doc, "Tombstone") => {
                    told = Some(Change::RemovePost);
                    Outcome::RemovePost(uri.to_string())
                }
                Ok(doc) => {
                    told = Some(Change::Post {
                        doc: doc.clone(),
                        edit,
                    });
                    self.post_in_scope(doc, uri, edit, &allowed, true).await
                }
            },
            SharedKind::Account => match self.authors.refetch(uri, &self.fetcher).await {
                Err(e) if gone(&e) => {
                    self.forget_author(uri).await;
                    told = Some(Change::RemoveActor);
                    Outcome::RemoveActor(uri.to_string())
                }
                Err(e) => return Err(e),
                Ok(author) if has_type(&author.doc, "Tombstone") => {
                    self.forget_author(uri).await;
                    told = Some(Change::RemoveActor);
                    Outcome::RemoveActor(uri.to_string())
                }
                Ok(author) if plan::is_actor(&author.doc) => {
                    told = Some(Change::Account {
                        doc: (*author.doc).clone(),
                    });
                    Outcome::SharedProfile(author)
                }
                Ok(_) => Outcome::Skip("not an actor".into()),
            },
        };
        if let (Some(node), Some(change)) = (self.node(), told) {
            self.tell_other_nodes(node, uri, change).await?;
        }
        let result = match &outcome {
            Outcome::RemovePost(_) | Outcome::RemoveActor(_) => SharedOutcome::Removed,
            Outcome::Skip(reason) => SharedOutcome::Skipped(reason.clone()),
            _ => SharedOutcome::Handed,
        };
        if result == SharedOutcome::Handed
            && let Some(authority) = authority_of(uri)
        {
            // The scheduled consent re-check refreshes its authors, a block's purge reaches it.
            self.store.note_shared_instance(&authority).await?;
        }
        let change = self
            .with_index(move |this| Ok(this.for_topics(this.apply(outcome)?)))
            .await?;
        self.hand_unlogged_to_topics(change).await;
        Ok(result)
    }
}

impl Indexer {
    /// Appends `change` to the log for the other nodes' indexes (this one applied it already).
    async fn tell_other_nodes(&self, node: &str, uri: &str, change: Change) -> Result<()> {
        let shared = SharedChange {
            from: node.to_string(),
            uri: uri.to_string(),
            change,
        };
        let body = serde_json::to_vec(&shared)
            .map_err(|e| Error::Index(format!("writing a shared change: {e}")))?;
        self.store
            .append(NewEntry {
                origin: authority_of(uri).unwrap_or_default(),
                // Addressed to no subscriber: only the indexes read it.
                target: Some(String::new()),
                kind: SHARED_KIND.into(),
                mastodon_body: Bytes::from(body),
                litepub_body: Bytes::new(),
                signer: None,
                original: None,
            })
            .await
            .map(drop)
    }

    /// What a [`SHARED_KIND`] entry comes to in this node's index: another node's fetch applied
    /// under this node's own consent check; nothing for the node that fetched it.
    pub(super) async fn resolve_shared(&self, entry: &Entry) -> Outcome {
        let shared: SharedChange = match serde_json::from_slice(&entry.mastodon_body) {
            Ok(shared) => shared,
            Err(e) => return Outcome::Skip(format!("unreadable shared change: {e}")),
        };
        if self.node() == Some(shared.from.as_str()) {
            return Outcome::Skip("applied when fetched".into());
        }
        let uri = shared.uri;
        match shared.change {
            Change::Post { doc, edit } => self.post_in_scope(doc, &uri, edit, |_| true, true).await,
            Change::Account { doc } => Outcome::SharedProfile(self.authors.put(&uri, doc).await),
            Change::RemovePost => Outcome::RemovePost(uri),
            Change::RemoveActor => {
                self.forget_author(&uri).await;
                Outcome::RemoveActor(uri)
            }
        }
    }
}

/// The kind of an announced category (`content`, `account`).
pub fn kind_of(category: &str) -> Option<SharedKind> {
    match category {
        "content" => Some(SharedKind::Post),
        "account" => Some(SharedKind::Account),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_404_and_410_mean_gone() {
        assert!(gone(&Error::fetch("u", "HTTP 404 Not Found")));
        assert!(gone(&Error::fetch("u", "HTTP 410 Gone")));
        assert!(!gone(&Error::fetch("u", "HTTP 500 Internal Server Error")));
        assert!(!gone(&Error::fetch("u", "connection refused")));
        assert!(!gone(&Error::NotFound("x".into())));
        assert_eq!(kind_of("account"), Some(SharedKind::Account));
        assert_eq!(kind_of("posts"), None);
    }

    #[test]
    fn shared_changes_survive_the_trip_through_the_log() {
        let change = SharedChange {
            from: "node-1".into(),
            uri: "https://a.example/notes/1".into(),
            change: Change::Post {
                doc: serde_json::json!({"id": "https://a.example/notes/1", "type": "Note"}),
                edit: true,
            },
        };
        let text = serde_json::to_string(&change).unwrap();
        assert!(text.contains("\"kind\":\"post\""), "{text}");
        assert_eq!(serde_json::from_str::<SharedChange>(&text).unwrap(), change);
        let gone: SharedChange =
            serde_json::from_str(r#"{"from":"n","uri":"u","change":{"kind":"remove_actor"}}"#)
                .unwrap();
        assert_eq!(gone.change, Change::RemoveActor);
    }
}
