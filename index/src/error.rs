//! The one error type of `plaza-index`: every fallible call of the crate returns [`Error`], whose
//! variants say what went wrong in words a relay can pass on (an HTTP 400 for [`Error::Query`], a start-up
//! message for [`Error::SchemaMismatch`] and [`Error::Corrupt`]).

use std::path::PathBuf;

/// What can go wrong in the index crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document handed to the index lacks what indexing needs (an id, an author…).
    #[error("document cannot be indexed: {0}")]
    Unusable(String),
    /// A search query is malformed or over a limit; the reason is meant for the person who typed it.
    #[error("invalid query: {0}")]
    Query(String),
    /// The index on disk was built by another version of the schema.
    #[error(
        "the search index in {path} has schema version {found}, this Plaza needs {expected}: \
         run `plaza reindex` to rebuild it from the documents it stores"
    )]
    SchemaMismatch {
        /// The index directory.
        path: PathBuf,
        /// The version found on disk (`unknown` when no version file exists).
        found: String,
        /// The version this build writes.
        expected: u32,
    },
    /// The index on disk cannot be read.
    #[error(
        "the search index in {path} cannot be opened ({reason}): run `plaza reindex` to rebuild it \
         from the documents it stores, or move the directory away to start with an empty index"
    )]
    Corrupt {
        /// The index directory.
        path: PathBuf,
        /// What the engine reported.
        reason: String,
    },
    /// The search engine failed while reading or writing.
    #[error("search engine: {0}")]
    Engine(#[from] tantivy::TantivyError),
    /// A file of the index could not be read or written.
    #[error("index files: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
