//! `plaza-index`: Plaza's discovery index.
//!
//! Relaying and indexing are different promises: an instance that subscribes asks for its public posts
//! to be rebroadcast, which is not consent to be searchable. This crate decides what may be indexed
//! ([`consent`]), keeps what passes in one tantivy index of posts, actors and instances, and answers
//! searches in Plaza's own query language ([`query`]). It knows nothing about HTTP, signatures or the
//! relay's log: the relay hands it parsed JSON documents and maps the result structs ([`results`]) to
//! its APIs.
//!
//! ```no_run
//! # fn main() -> plaza_index::Result<()> {
//! use plaza_index::{Index, IndexConfig, SearchRequest};
//! # let (note, author) = (serde_json::Value::Null, serde_json::Value::Null);
//! let index = Index::open(std::path::Path::new("data/index"), IndexConfig::default())?;
//! index.add_post(&note, &author, "social.example")?; // searchable within the commit interval
//! let page = index.search_posts(&SearchRequest::new("bakery #coop language:en"))?;
//! for hit in page.hits {
//!     println!("{} {}", hit.account.acct, hit.snippet_html);
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: [`consent`] (the rules), [`document`] (what is read from ActivityPub JSON), [`instance`]
//! (NodeInfo), [`html`] (content to text), [`language`] and [`analysis`] (text to terms), [`schema`],
//! [`index`](Index) (open, writer, commits), `ingest` (adds and removals), [`query`] (the language) and
//! `compile` (to tantivy), `search`, `facets` (facet counts, sampled past a few thousand matches), `str_columns` (string fast fields by ordinal), `tags`, `overview` (counts, instances), `accounts` (by id, by
//! handle), `activity` (the directory by latest post), `threads` (ancestors), `budget` (time limit),
//! [`reindex`](reindex()), [`results`], `ids` (account ids), `recommend` (follow recommendations),
//! [`topic_match`] (which topics a post belongs to, on ingest).

mod accounts;
mod activity;
pub mod analysis;
mod budget;
pub mod common_grams;
mod compile;
pub mod consent;
mod directory;
pub mod document;
pub mod error;
mod facets;
pub mod html;
mod ids;
mod index;
mod ingest;
pub mod instance;
mod json;
mod known_ids;
pub mod language;
mod overview;
mod plain_seek;
pub mod priority;
pub mod query;
mod recommend;
mod reindex;
pub mod results;
pub mod schema;
mod search;
mod simple_html;
mod str_columns;
mod tags;
#[cfg(test)]
mod test_support;
mod threads;
pub mod topic_match;
pub mod trends;

pub use consent::Verdict;
pub use document::ActorType;
pub use error::{Error, Result};
pub use ids::account_id;
pub use index::{Index, IndexConfig};
pub use ingest::{ActorOutcome, time_key};
pub use instance::InstanceRecord;
pub use query::QueryLimits;
pub use recommend::{
    DEFAULT_RECOMMENDATIONS, MAX_RECOMMENDATIONS, RecommendRequest, Recommendation,
};
pub use reindex::{ReindexReport, reindex};
pub use results::{
    AccountView, Counts, FacetCount, Facets, InstanceView, Page, PostHit, PostView, ProfileHit,
    ReplyTo, TagDay, TagView, Tags,
};
pub use search::{DEFAULT_LIMIT, DirectoryRequest, SearchRequest, Sort, TimelineRequest};
pub use tags::MAX_TAGS;
pub use trends::{ShareSignal, Trend, TrendRequest};
