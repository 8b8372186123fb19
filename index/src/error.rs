//! The one error type of `plaza-index`.

/// What can go wrong in the index crate.
#[derive(Debug)]
pub enum Error {
    /// A document handed to the index lacks what indexing needs (an id, an author…).
    Unusable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unusable(why) => write!(f, "document cannot be indexed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
