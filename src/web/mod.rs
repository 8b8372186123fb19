//! The HTTP surface: routes and thin handlers over the relay's services, and the server loop that
//! accepts connections with their limits.
pub mod admin;
pub mod routes;
pub mod server;
