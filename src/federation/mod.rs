//! Talking to other servers: receiving activities, the relay's rules, resolving keys, and delivering.
pub mod admission;
pub mod delivery;
pub mod host_slots;
pub mod inbox;
pub mod inbox_client;
pub mod instance_actor;
pub mod key_fetch_limit;
pub mod keyfile;
pub mod net;
pub mod nodeinfo;
pub mod ratelimit;
pub mod receipt;
pub mod relay;
pub mod resolver;
pub mod schemes;
pub mod stop;
pub mod subscription;
