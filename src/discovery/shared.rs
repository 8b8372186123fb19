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

use std::sync::Arc;

use crate::Result;
use crate::ap::authority_of;
use crate::ap::value::has_type;
use crate::discovery::indexer::{Indexer, Outcome};
use crate::discovery::plan;
use crate::error::Error;

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
        let outcome = match kind {
            SharedKind::Post => match self.fetcher.document(uri).await {
                Err(e) if gone(&e) => Outcome::RemovePost(uri.to_string()),
                Err(e) => return Err(e),
                Ok(doc) if has_type(&doc, "Tombstone") => Outcome::RemovePost(uri.to_string()),
                Ok(doc) => self.post_in_scope(doc, uri, edit, &allowed, true).await,
            },
            SharedKind::Account => match self.authors.refetch(uri, &self.fetcher).await {
                Err(e) if gone(&e) => {
                    self.forget_author(uri).await;
                    Outcome::RemoveActor(uri.to_string())
                }
                Err(e) => return Err(e),
                Ok(author) if has_type(&author.doc, "Tombstone") => {
                    self.forget_author(uri).await;
                    Outcome::RemoveActor(uri.to_string())
                }
                Ok(author) if plan::is_actor(&author.doc) => Outcome::SharedProfile(author),
                Ok(_) => Outcome::Skip("not an actor".into()),
            },
        };
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
        let change = self.with_index(move |this| this.apply(outcome)).await?;
        self.hand_shared_to_topics(change).await;
        Ok(result)
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
}
