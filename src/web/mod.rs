//! The HTTP surface: routes and thin handlers over the relay's services.
pub mod admin;
pub mod routes;
pub mod server;
