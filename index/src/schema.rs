//! The tantivy schema: one index holds three kinds of documents (posts, actors, instances), told apart by
//! `kind`, so one writer, one commit and one reader serve them all.
//!
//! Every document keeps its source JSON (`source`, compressed by tantivy's document store), so a schema
//! change is a `plaza reindex` away and never needs the network. [`SCHEMA_VERSION`] is written next to the
//! index and checked on open; bump it whenever a field here changes.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions,
};

use crate::analysis;

/// The version of this schema; an index on disk with another one must be rebuilt. 2: `account`;
/// 3: `links` and `reply_to` (for trends); 4: `grams` (and with it the lists of
/// [`crate::common_grams`]), `reply_to` a hash.
pub const SCHEMA_VERSION: u32 = 4;

/// The name of the file beside the index that records its schema version.
pub const VERSION_FILE: &str = "plaza-schema-version";

/// `kind` of a post.
pub const KIND_POST: &str = "post";
/// `kind` of an actor (listed in the directory when `listed`).
pub const KIND_ACTOR: &str = "actor";
/// `kind` of an instance.
pub const KIND_INSTANCE: &str = "instance";

/// The fields of the index.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `post`, `actor` or `instance`.
    pub kind: Field,
    /// The object id, actor id or instance host (the delete key).
    pub id: Field,
    /// The stable numeric key: a time-ordered snowflake for posts, a hash for actors.
    pub key: Field,
    /// The document's source JSON (bytes).
    pub source: Field,
    /// The display data of results (JSON).
    pub data: Field,
    /// The instance host.
    pub instance: Field,
    /// Searchable text, analysed in its document's language ([`analysis::analysed`]).
    pub text: Field,
    /// Adjacent pairs of common words of `text`, one term each ([`crate::common_grams`]).
    pub grams: Field,
    /// ISO 639-1 language.
    pub lang: Field,
    /// Hashtags (lowercase, no `#`).
    pub tags: Field,
    /// Published (posts), created (actors).
    pub published: Field,
    /// `YYYY-MM` of `published` (the month facet).
    pub month: Field,
    /// The actor type (of a post's author, or of the actor).
    pub actor_type: Field,
    /// The author's id (posts), the actor's own id (actors).
    pub author: Field,
    /// The account id ([`crate::account_id`]) of `author`.
    pub account: Field,
    /// `user@host`, lowercase.
    pub handle: Field,
    /// The web links a post shares (not its mentions or hashtags), for link trends.
    pub links: Field,
    /// A hash of the id of the post a post replies to (the first 63 bits of its SHA-256), for content
    /// trends.
    pub reply_to: Field,
    /// A reply.
    pub reply: Field,
    /// Quotes a post.
    pub quote: Field,
    /// Is a poll.
    pub poll: Field,
    /// Has media attachments.
    pub media: Field,
    /// Marked sensitive.
    pub sensitive: Field,
    /// An actor listed in the directory (discoverable, no veto).
    pub listed: Field,
    /// A post whose own `searchableBy` allowed it (an actor `Update` does not remove it).
    pub object_consent: Field,
}

/// Builds the schema and its field handles.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::TAGGED)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let gram_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::GRAMS)
            .set_index_option(IndexRecordOption::WithFreqs)
            .set_fieldnorms(false),
    );
    let keyword = STRING | FAST;
    let flag = NumericOptions::default().set_indexed().set_fast();
    let fields = Fields {
        kind: b.add_text_field("kind", STRING),
        id: b.add_text_field("id", STRING | STORED),
        key: b.add_u64_field("key", INDEXED | FAST | STORED),
        source: b.add_bytes_field("source", STORED),
        data: b.add_text_field("data", STORED),
        instance: b.add_text_field("instance", keyword.clone()),
        text: b.add_text_field("text", text_options),
        grams: b.add_text_field("grams", gram_options),
        lang: b.add_text_field("lang", keyword.clone()),
        tags: b.add_text_field("tags", keyword.clone()),
        published: b.add_date_field("published", INDEXED | FAST),
        month: b.add_text_field("month", keyword.clone()),
        actor_type: b.add_text_field("actor_type", keyword.clone()),
        author: b.add_text_field("author", keyword.clone() | STORED),
        account: b.add_u64_field("account", INDEXED),
        handle: b.add_text_field("handle", STRING),
        links: b.add_text_field("links", keyword.clone()),
        reply_to: b.add_u64_field("reply_to", FAST),
        reply: b.add_bool_field("reply", flag.clone()),
        quote: b.add_bool_field("quote", flag.clone()),
        poll: b.add_bool_field("poll", flag.clone()),
        media: b.add_bool_field("media", flag.clone()),
        sensitive: b.add_bool_field("sensitive", flag.clone()),
        listed: b.add_bool_field("listed", flag.clone()),
        object_consent: b.add_bool_field("object_consent", flag),
    };
    (b.build(), fields)
}
