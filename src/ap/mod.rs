//! ActivityPub documents as the relay sees them.
//!
//! Everything that crosses the wire as ActivityStreams JSON goes through this module: incoming activities
//! ([`activity`]), the actors and keys fetched to check signatures and consent ([`actor`]), the addressing that
//! decides what may be forwarded and indexed ([`audience`]), and the documents the relay itself publishes
//! ([`outgoing`]). Parsing is lenient — strings or arrays, embedded objects or bare ids, missing fields and any
//! `@context` are accepted — because real servers disagree on all of these; what Plaza produces is exact and
//! fixed. Nothing here performs I/O, and no JSON input can make it panic.

pub mod activity;
pub mod actor;
pub mod audience;
pub mod iri;
pub mod outgoing;
pub mod value;

pub use activity::{Activity, LdSignature};
pub use actor::{Actor, KeyDoc, KeyOrActor};
pub use audience::{Audience, PUBLIC, is_public_iri};
pub use iri::{authority_of, is_web_iri, same_authority};
