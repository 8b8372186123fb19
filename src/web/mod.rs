//! The HTTP surface: routes and thin handlers over the relay's services.
pub mod admin;
pub mod api;
pub mod feeds;
pub mod histogram;
pub mod mastodon_api;
pub mod mastodon_entities;
pub mod media_proxy;
pub mod pages;
pub mod routes;
pub mod sanitize;
pub mod search;
pub mod views;
