//! The HTTP surface: routes and thin handlers over the relay's services.
pub mod admin;
pub mod client_ip;
pub mod ip_limit;
pub mod observability;
pub mod routes;
