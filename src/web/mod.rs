//! The HTTP surface: routes and thin handlers over the relay's services.
pub mod admin;
pub mod feeds;
pub mod media_proxy;
pub mod pages;
pub mod routes;
pub mod sanitize;
pub mod views;
