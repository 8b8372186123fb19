//! Discovery: turning what the relay carries into a consent-gated search index.
//!
//! The flow, from the inbox's durable log entry to a searchable document:
//!
//! ```text
//! inbox ─append─▶ store log (activity as received + its HTTP signer)
//!                    │ cursor "indexer" (its own; not a subscriber)
//!                    ▼
//!              indexer::Indexer ── plan::plan (authentic? subscribed? what kind of change?)
//!                    │   └─ fetch::Fetcher (signed GETs, bounded overall and per host):
//!                    │        posts from their origin, authors (authors::Authors);
//!                    │        NodeInfo through federation::nodeinfo
//!                    │ in log order
//!                    ▼
//!              sink::IndexSink (add/remove posts, profiles, instances; commit;
//!                               the index applies consent: plaza_index::consent)
//! ```
//!
//! - [`plan`]: the rules as plain functions — what a log entry means for the index.
//! - [`indexer`]: the task that follows the log, fetches, hands over, commits and saves its cursor;
//!   its calls into the index run on [`pool`], background threads below the inbox's priority.
//! - [`fetch`]: bounded signed GETs that check a document carries the id it was fetched by.
//! - [`authors`]: the cache of author actors, refreshed on `Update` and on a schedule.
//! - [`shared`]: posts and accounts a FASP server announced (`data_sharing`), fetched from their origin
//!   and handed over under the same rules.
//! - [`sink`]: the [`sink::IndexSink`] trait the index implements; [`index_sink`]: `plaza-index` as it.

pub mod authors;
pub mod fetch;
pub mod index_sink;
pub mod indexer;
pub mod plan;
pub mod pool;
pub mod shared;
pub mod sink;

pub use indexer::Indexer;
pub use sink::{IndexSink, InstanceFacts};
