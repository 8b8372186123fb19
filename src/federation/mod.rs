//! Talking to other servers: receiving activities, the relay's rules, resolving keys, and delivering.
pub mod delivery;
pub mod inbox;
pub mod inbox_client;
pub mod instance_actor;
pub mod keyfile;
pub mod net;
pub mod ratelimit;
pub mod relay;
pub mod resolver;
pub mod schemes;
