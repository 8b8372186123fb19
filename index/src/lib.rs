//! `plaza-index`: Plaza's discovery index.
//!
//! Relaying and indexing are different promises: an instance that subscribes asks for its public posts
//! to be rebroadcast, which is not consent to be searchable. This crate decides what may be indexed
//! ([`consent`]) and will hold the tantivy index built from what passes that test. It knows nothing about
//! HTTP or signatures: the relay hands it parsed JSON documents.

pub mod consent;
pub mod error;

pub use error::{Error, Result};
