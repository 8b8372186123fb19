//! Where the indexer's decisions go: the [`IndexSink`] trait.
//!
//! The indexer decides what may be indexed (authenticity, subscription, consent) and hands the result to
//! a sink; the sink only stores and removes documents. Keeping that line here lets the whole decision
//! path be tested with a recording sink and no search engine, and keeps the relay's knowledge of
//! signatures and fetches out of the `plaza-index` crate, which implements the real sink.

use plaza_index::document::Post;
use serde::Serialize;
use serde_json::Value;

use crate::Result;

/// What the relay knows of a subscribed instance: its NodeInfo and its subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceFacts {
    /// The instance's authority (`host[:port]`).
    pub authority: String,
    /// Its NodeInfo document, reduced to what describes the instance (see
    /// [`crate::federation::nodeinfo::summarize`]); `None` when it could not be fetched.
    pub nodeinfo: Option<Value>,
    /// Unix seconds of the subscription.
    pub subscribed_since: i64,
    /// Unix seconds of the last activity the relay accepted from the instance, when known.
    pub last_activity: Option<i64>,
}

/// The index, as the indexer sees it. Every call is an upsert or a removal by id, so replaying part of
/// the log after a restart (at-least-once) leaves the same index. Changes become searchable at
/// [`IndexSink::commit`].
///
/// The indexer hands over only what it has proven: a post's content comes from its author's server
/// and its author lives on a subscribed instance. Consent (DESIGN.md section 5) is the index's to
/// apply, with the author's actor document given alongside: the rules live in one place,
/// `plaza_index::consent`.
pub trait IndexSink: Send + Sync + 'static {
    /// Adds or replaces the post `object` (a Note, Article…) by `author` (the author's actor document)
    /// of the instance `instance`, if consent allows; otherwise removes any earlier version. Returns
    /// the post as indexed (what topics match), `None` when consent refused it.
    fn add_post(&self, object: &Value, author: &Value, instance: &str) -> Result<Option<Post>>;

    /// Hands over a fresh actor document (fetched again, or from an `Update`): the index re-checks its
    /// consent, listing or unlisting the profile and removing the actor's posts when they may no
    /// longer be indexed.
    fn add_or_update_profile(&self, actor: &Value) -> Result<()>;

    /// Removes the post with id `id` (nothing when absent).
    fn remove_post(&self, id: &str) -> Result<()>;

    /// Removes an actor entirely: directory entry and posts.
    fn remove_actor(&self, actor_id: &str) -> Result<()>;

    /// Adds or replaces the entry of a subscribed instance.
    fn upsert_instance(&self, facts: &InstanceFacts) -> Result<()>;

    /// Removes an instance: its entry, and its posts and profiles.
    fn remove_instance(&self, authority: &str) -> Result<()>;

    /// Removes posts published before `unix_secs` (the retention limit).
    fn expire_posts(&self, unix_secs: i64) -> Result<()>;

    /// Makes every change so far searchable (and durable).
    fn commit(&self) -> Result<()>;
}
