//! Where the indexer's decisions go: the [`IndexSink`] trait.
//!
//! The indexer decides what may be indexed (authenticity, subscription, consent) and hands the result to
//! a sink; the sink only stores and removes documents. Keeping that line here lets the whole decision
//! path be tested with a recording sink and no search engine, and keeps the relay's knowledge of
//! signatures and fetches out of the `plaza-index` crate, which implements the real sink.

use serde::Serialize;
use serde_json::Value;

use crate::Result;

/// What the relay knows of a subscribed instance, from its NodeInfo and its subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstanceFacts {
    /// The instance's authority (`host[:port]`).
    pub authority: String,
    /// NodeInfo `software.name`, e.g. `mastodon`.
    pub software: Option<String>,
    /// NodeInfo `software.version`.
    pub version: Option<String>,
    /// NodeInfo `usage.users.total`.
    pub users: Option<u64>,
    /// NodeInfo `usage.users.activeMonth`.
    pub active_month: Option<u64>,
    /// NodeInfo `openRegistrations`.
    pub open_registrations: Option<bool>,
    /// NodeInfo `metadata.nodeName`.
    pub name: Option<String>,
    /// NodeInfo `metadata.nodeDescription` (or `metadata.description`).
    pub description: Option<String>,
    /// Unix seconds of the subscription.
    pub subscribed_since: i64,
    /// Unix seconds of the last activity the relay accepted from the instance, when known.
    pub last_activity: Option<i64>,
}

/// The index, as the indexer sees it. Every call is an upsert or a removal by id, so replaying part of
/// the log after a restart (at-least-once) leaves the same index. Changes become searchable at
/// [`IndexSink::commit`].
///
/// The indexer calls only with documents that passed its checks: a post's content proven to come from
/// its author's server, its author on a subscribed instance, and consent given (DESIGN.md section 5).
pub trait IndexSink: Send + Sync + 'static {
    /// Adds or replaces the post `object` (a Note, Article…) by `author` (the author's actor document)
    /// of the instance `instance`.
    fn add_post(&self, object: &Value, author: &Value, instance: &str) -> Result<()>;

    /// Adds or replaces the directory entry of a discoverable `actor` of `instance`.
    fn add_or_update_profile(&self, actor: &Value, instance: &str) -> Result<()>;

    /// Removes the post with id `id` (nothing when absent).
    fn remove_post(&self, id: &str) -> Result<()>;

    /// Removes the directory entry of `actor_id`, keeping their posts.
    fn remove_profile(&self, actor_id: &str) -> Result<()>;

    /// Removes every post by `actor_id`, keeping their directory entry.
    fn remove_posts_by(&self, actor_id: &str) -> Result<()>;

    /// Removes an actor entirely: directory entry and posts.
    fn remove_actor(&self, actor_id: &str) -> Result<()> {
        self.remove_profile(actor_id)?;
        self.remove_posts_by(actor_id)
    }

    /// Adds or replaces the entry of a subscribed instance.
    fn upsert_instance(&self, facts: &InstanceFacts) -> Result<()>;

    /// Removes an instance: its entry, and its posts and profiles.
    fn remove_instance(&self, authority: &str) -> Result<()>;

    /// Removes posts published before `unix_secs` (the retention limit).
    fn expire_posts(&self, unix_secs: i64) -> Result<()>;

    /// Makes every change so far searchable (and durable).
    fn commit(&self) -> Result<()>;
}
