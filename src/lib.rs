//! Plaza: an ActivityPub relay with a built-in discovery index.
//!
//! Small instances subscribe to the relay; it rebroadcasts their public posts to every other subscriber.
//! The crate is laid out along the data flow (see `../shared/DESIGN.md`):
//!
//! - [`config`]: the configuration file and its `PLAZA_*` environment overrides.
//! - [`admin`]: the token-protected admin API (list and remove subscribers).
//! - [`app`]: builds the services into one [`app::AppState`] and runs the server; [`routes`] maps paths
//!   to thin handlers.
//! - [`httpsig`]: HTTP signatures (draft-cavage and RFC 9421) in and out, body digests, keys.
//! - [`ap`]: lenient parsing of ActivityPub documents and the exact documents the relay sends.
//! - [`inbox`]: the path of a `POST /inbox`, from signature to durable log entry; [`relay`] holds the
//!   rules it applies (subscriptions, what is forwarded and how), free of I/O.
//! - [`resolver`]: keyId → key → owning actor, cached. [`net`]: the signing HTTP client and its
//!   address policy; [`inbox_client`]: a delivery worker's own connection to its subscriber's inbox.
//!   [`keyfile`]: the relay's own key pair on disk. [`ratelimit`]: per-instance inbox limits.
//! - [`store`]: the embedded SQLite store (subscribers, the append-only log, cursors, seen ids) and
//!   [`tail`], its in-memory recent end; [`delivery`]: one worker per subscriber reading the log.
pub mod admin;
pub mod ap;
pub mod app;
pub mod config;
pub mod delivery;
pub mod error;
pub mod httpsig;
pub mod inbox;
pub mod inbox_client;
pub mod keyfile;
pub mod net;
pub mod ratelimit;
pub mod relay;
pub mod resolver;
pub mod routes;
pub mod store;
pub mod tail;
#[cfg(test)]
pub(crate) mod test_fixtures;

pub use error::{Error, Result};
