//! Plaza: an ActivityPub relay with a built-in discovery index.
//!
//! Small instances subscribe to the relay; it rebroadcasts their public posts to every other subscriber.
//! The crate is laid out along the data flow (see `../shared/DESIGN.md`):
//!
//! ```text
//! instance ─POST /inbox─▶ web::routes ─▶ federation::inbox (httpsig, resolver, relay rules)
//!                                              │ append once
//!                                              ▼
//!                                         store (SQLite log + tail)
//!                                              │ one cursor per subscriber, one for the indexer
//!                                              ▼
//!                                  federation::delivery ─▶ inbox_client ─▶ subscribers
//!                                  discovery::indexer ─▶ plaza-index (search)
//! ```
//!
//! - [`allocator`]: how the process's allocator returns memory to the system (the binary and the
//!   search benchmark call it first).
//! - [`config`]: the configuration file and its `PLAZA_*` environment overrides.
//! - [`state`]: the services built from the configuration, held in one [`state::AppState`] that
//!   knows nothing of routes.
//! - [`app`]: the wiring at the top: hands the state to the routes and runs the server.
//! - [`web`]: the HTTP surface — [`web::routes`] maps paths to thin handlers, [`web::admin`] is the
//!   token-protected admin API, [`web::pages`] the pages for people in a browser (built by
//!   [`web::views`] from askama templates, remote HTML through [`web::sanitize`], avatars through
//!   [`web::media_proxy`], feeds in [`web::feeds`]); [`web::server`] accepts connections with their
//!   limits (header read timeout, header size, connections per client IP).
//! - [`federation`]: talking to other servers — [`federation::inbox`] is the path of a `POST /inbox`
//!   from signature to durable log entry, [`federation::relay`] the rules it applies (free of I/O),
//!   [`federation::resolver`] keyId → key → owning actor, [`federation::net`] the signing HTTP client
//!   and its address policy, [`federation::delivery`] one worker per subscriber reading the log over
//!   its own [`federation::inbox_client`] connection, [`federation::ratelimit`] per-instance limits,
//!   [`federation::keyfile`] the relay's key pair on disk.
//! - [`httpsig`]: HTTP signatures (draft-cavage and RFC 9421) in and out, body digests, keys.
//! - [`ap`]: lenient parsing of ActivityPub documents and the exact documents the relay sends.
//! - [`discovery`]: the indexer — a second reader of the log, with a cursor of its own, that checks
//!   authenticity and consent and feeds the search index through [`discovery::IndexSink`].
//! - [`moderation`]: blocks, the subscription policy, admin tokens and the audit log, and the admin
//!   operations that apply them ([`moderation::actions`]).
//! - [`reindex`]: `plaza reindex`, rebuilding the discovery index from the sources it stores.
//! - [`search_cli`]: `plaza search`, a running relay's search as a table in the terminal.
//! - [`prometheus`]: the `/metrics` text format shared by the web layer and the indexer.
//! - [`fasp`]: Plaza as a FASP discovery provider (registration with fediverse servers, signed
//!   provider endpoints under `/fasp`, account search).
//! - [`topics`]: topic feeds — hashtag and language actors people and instances follow instead of
//!   the firehose.
//! - [`store`]: the embedded SQLite store (subscribers, the append-only log, cursors, seen ids) and
//!   [`store::tail`], its in-memory recent end.
pub mod allocator;
pub mod ap;
pub mod app;
pub mod cluster;
pub mod config;
pub mod discovery;
pub mod error;
pub mod fasp;
pub mod federation;
pub mod httpsig;
pub mod moderation;
pub mod prometheus;
pub mod reindex;
pub mod search_cli;
pub mod state;
pub mod store;
#[cfg(test)]
pub(crate) mod test_fixtures;
pub mod topics;
pub mod web;

pub use error::{Error, Result};
