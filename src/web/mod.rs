//! The HTTP surface: routes and thin handlers over the relay's services, and the server loop that
//! accepts connections with their limits.
pub mod admin;
pub mod client_ip;
pub mod ip_limit;
pub mod observability;
pub mod routes;
pub mod server;
