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
pub use iri::authority_of;

/// Shared helpers for the tests of this module: access to the fixtures in `/work/shared/fixtures`.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::Value;

    /// The fixture directory (a sibling of the crate).
    pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/");

    /// The raw bytes of one fixture.
    pub fn bytes(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// One fixture parsed as JSON.
    pub fn json(name: &str) -> Value {
        serde_json::from_slice(&bytes(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// Every `*.json` fixture that parses as JSON, with its file name, sorted by name.
    pub fn all_json() -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(DIR).unwrap_or_else(|e| panic!("fixture dir {DIR}: {e}"));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes(&name)) {
                out.push((name, v));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
