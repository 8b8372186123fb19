//! What searches return: plain structs carrying every field a Mastodon `Status`, `Account` or `Tag`
//! entity (and Plaza's native API) needs, so the relay maps them without reading JSON again. All are
//! `serde` serialisable; timestamps are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};

use crate::document::{ActorType, Emoji, Media, Mention, ProfileField};

/// A post, as shown in results. Its Mastodon `id` is `key` as a decimal string: keys are ordered by
/// publication time (a snowflake: milliseconds << 16 | 16 bits of the object id's hash), so `max_id` and
/// `min_id` bounds are key bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostView {
    /// The time-ordered numeric key.
    pub key: u64,
    /// The object id (Mastodon `uri`).
    pub uri: String,
    /// The page on the origin server.
    pub url: String,
    /// ActivityStreams type (`Note`, `Article`, `Question`…).
    pub kind: String,
    /// Title of an `Article`/`Page`.
    pub title: Option<String>,
    /// The content, safe HTML (Mastodon `content`).
    pub content_html: String,
    /// The content as text.
    #[serde(default)]
    pub text: String,
    /// The content warning (Mastodon `spoiler_text`).
    pub spoiler_text: String,
    /// Marked sensitive.
    pub sensitive: bool,
    /// ISO 639-1 language.
    pub language: Option<String>,
    /// Publication time, RFC 3339 (Mastodon `created_at`).
    pub created_at: String,
    /// The instance it came from.
    pub instance: String,
    /// The author's actor id.
    pub author_uri: String,
    /// The author's `user@host`.
    pub author_acct: String,
    /// Hashtags (lowercase, no `#`).
    pub tags: Vec<String>,
    /// Mentions.
    pub mentions: Vec<Mention>,
    /// Custom emojis.
    pub emojis: Vec<Emoji>,
    /// Media attachments (Mastodon `media_attachments`).
    pub media: Vec<Media>,
    /// The object it replies to (Mastodon `in_reply_to_id` needs a lookup; this is the uri).
    pub in_reply_to: Option<String>,
    /// Quotes a post.
    pub is_quote: bool,
    /// Is a poll.
    pub has_poll: bool,
}

/// An account, as shown in results. Its Mastodon `id` is `key` as a decimal string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    /// The numeric key (creation time << 16 | hash bits, or hash bits alone without a creation time).
    pub key: u64,
    /// The actor id (Mastodon `uri`).
    pub uri: String,
    /// `preferredUsername`.
    pub username: String,
    /// `username@host` (Mastodon `acct`).
    pub acct: String,
    /// Display name.
    pub display_name: String,
    /// Bio, safe HTML (Mastodon `note`).
    pub note_html: String,
    /// Profile page.
    pub url: String,
    /// Avatar address.
    pub avatar: Option<String>,
    /// Header image address.
    pub header: Option<String>,
    /// Profile fields.
    pub fields: Vec<ProfileField>,
    /// Actor type.
    pub actor_type: ActorType,
    /// Mastodon `bot`: a `Service` or `Application`.
    pub bot: bool,
    /// Mastodon `group`: a `Group`.
    pub group: bool,
    /// Listed in the directory (`discoverable` and no veto).
    pub discoverable: bool,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    /// Custom emojis.
    pub emojis: Vec<Emoji>,
    /// The actor's instance host.
    pub instance: String,
    /// Bio hashtags.
    pub tags: Vec<String>,
    /// Featured hashtags.
    pub featured_tags: Vec<String>,
    /// Language of the bio, detected.
    pub language: Option<String>,
}

impl AccountView {
    /// A stand-in for an author whose actor document is not in the index.
    pub fn unknown(uri: &str, acct: &str, instance: &str) -> AccountView {
        let username = acct.split('@').next().unwrap_or_default().to_owned();
        AccountView {
            key: 0,
            uri: uri.to_owned(),
            username,
            acct: acct.to_owned(),
            display_name: String::new(),
            note_html: String::new(),
            url: uri.to_owned(),
            avatar: None,
            header: None,
            fields: Vec::new(),
            actor_type: ActorType::Person,
            bot: false,
            group: false,
            discoverable: false,
            created_at: None,
            emojis: Vec::new(),
            instance: instance.to_owned(),
            tags: Vec::new(),
            featured_tags: Vec::new(),
            language: None,
        }
    }
}

/// One post found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostHit {
    /// The post.
    pub post: PostView,
    /// Its author.
    pub account: AccountView,
    /// The ranking score (relevance with recency; 0 in date order).
    pub score: f32,
    /// A fragment of the text with the matched words in `<b>…</b>` (HTML-escaped otherwise).
    pub snippet_html: String,
    /// The post it replies to, when that post is indexed too.
    #[serde(default)]
    pub reply_to: Option<ReplyTo>,
}

/// The indexed post a reply answers (Mastodon `in_reply_to_id` and `in_reply_to_account_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// Its key (Mastodon status id).
    pub key: u64,
    /// Its author's account id ([`crate::account_id`]).
    pub account_id: u64,
}

/// One profile found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileHit {
    /// The account.
    pub account: AccountView,
    /// The ranking score.
    pub score: f32,
    /// A fragment of the bio and fields with the matched words highlighted.
    pub snippet_html: String,
}

/// How many matching documents have one value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetCount {
    /// The value (an instance host, a language code, a tag, an actor type, a month `YYYY-MM`).
    pub value: String,
    /// Matching documents with it.
    pub count: u64,
}

/// Facet counts over all matches of a query (top values of each).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Facets {
    /// By instance host.
    pub instance: Vec<FacetCount>,
    /// By language.
    pub language: Vec<FacetCount>,
    /// By hashtag.
    pub tag: Vec<FacetCount>,
    /// By actor type (of the author, for posts).
    pub actor_type: Vec<FacetCount>,
    /// By month of publication (of creation, for profiles).
    pub month: Vec<FacetCount>,
    /// The counts are estimates from a sample of the matches: past the first
    /// [`QueryLimits::facets_exact`](crate::QueryLimits) (4,096), one match in 2, then 4, 8… is
    /// counted.
    #[serde(default)]
    pub sampled: bool,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Matching documents in all (exact unless `partial`).
    pub total: u64,
    /// This page.
    pub hits: Vec<T>,
    /// Facet counts, when asked for.
    pub facets: Option<Facets>,
    /// Pass this as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The time budget ran out: some segments of the index were not searched.
    pub partial: bool,
}

/// Use of a hashtag on one day (Mastodon's tag `history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDay {
    /// Midnight UTC of the day, Unix seconds.
    pub day: i64,
    /// Posts with the tag that day.
    pub uses: u64,
    /// Distinct authors of those posts.
    pub accounts: u64,
}

/// A hashtag (Mastodon `Tag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagView {
    /// The name, lowercase, without `#`.
    pub name: String,
    /// Indexed posts with it (deleted posts may count until segments merge).
    pub uses: u64,
    /// The last seven days, most recent first.
    pub history: Vec<TagDay>,
    /// The time budget ran out: `uses` or `history` may be low, and a tag search may have missed tags.
    #[serde(default)]
    pub partial: bool,
}

/// Hashtags found by the beginning of their name ([`crate::Index::search_tags`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tags {
    /// Most used first (an exact match leads).
    pub tags: Vec<TagView>,
    /// The time budget ran out: tags may be missing (even all of them), counts and histories low.
    pub partial: bool,
}

/// A subscribed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    /// The host.
    pub host: String,
    /// NodeInfo software name.
    pub software: Option<String>,
    /// NodeInfo software version.
    pub version: Option<String>,
    /// NodeInfo total users.
    pub users: Option<u64>,
    /// NodeInfo open registrations.
    pub open_registrations: Option<bool>,
    /// NodeInfo description (`metadata.nodeDescription` or similar).
    pub description: Option<String>,
    /// NodeInfo node name (`metadata.nodeName`).
    pub name: Option<String>,
    /// When it subscribed, RFC 3339.
    pub subscribed_since: Option<String>,
    /// Last activity seen from it, RFC 3339.
    pub last_activity: Option<String>,
    /// Posts indexed from it.
    pub posts: u64,
    /// The time budget ran out before its posts were all counted: `posts` may be low.
    #[serde(default)]
    pub partial: bool,
}

/// Documents per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Posts.
    pub posts: u64,
    /// Actors kept (authors of indexed posts and listed profiles).
    pub actors: u64,
    /// Profiles listed in the directory.
    pub profiles: u64,
    /// Instances.
    pub instances: u64,
    /// The time budget ran out: some counts may be low.
    #[serde(default)]
    pub partial: bool,
}
