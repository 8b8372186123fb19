//! Curation: who may subscribe (the subscription policy), who is refused (domain and software blocks),
//! who the admins are (their tokens) and what they did (the audit log). Plain Rust with no I/O: the
//! store keeps these durable, the inbox and the admin API apply them.

pub mod actions;
pub mod audit;
pub mod blocks;
pub mod csv;
pub mod curation;
pub mod domain;
pub mod policy;
pub mod tokens;
