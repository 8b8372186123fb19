//! The HTTP surface: routes and thin handlers over the relay's services, and the server loop that
//! accepts connections with their limits.
pub mod admin;
pub mod api;
pub mod client_ip;
pub mod feeds;
pub mod histogram;
pub mod ip_limit;
pub mod mastodon_accounts;
pub mod mastodon_api;
pub mod mastodon_entities;
pub mod mastodon_tags;
pub mod mastodon_trends;
pub mod media_proxy;
pub mod metrics;
pub mod observability;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod sanitize;
pub mod search;
pub mod server;
pub mod topics;
pub mod trends;
pub mod views;
