//! The HTTP surface: routes and thin handlers over the relay's services.
pub mod admin;
pub mod api;
pub mod histogram;
pub mod mastodon_api;
pub mod mastodon_entities;
pub mod routes;
pub mod search;
