//! What the web pages show, as plain Rust: the page structs the templates (`templates/`, askama,
//! checked at compile time) render, and the functions that build them from search results, the
//! configuration and the store. No HTTP here; [`crate::web::pages`] does the I/O and calls these.
//!
//! Remote HTML (post content, bios, field values, snippets) is sanitised here (see
//! [`crate::web::sanitize`]) and is the only markup the templates output unescaped; every other string
//! is escaped by the templates. Remote images go through the relay's proxy
//! ([`crate::web::media_proxy`]) or are not shown.
//!
//! One file per page family ([`home`], [`search`], [`directory`], [`instances`], [`about`], [`tag`],
//! [`topic`]), the
//! trending section ([`trending`]) and what they share ([`shared`]); everything is re-exported here.

pub mod about;
pub mod directory;
pub mod home;
pub mod instances;
pub mod search;
pub mod shared;
pub mod tag;
pub mod topic;
pub mod trending;

pub use about::*;
pub use directory::*;
pub use home::*;
pub use instances::*;
pub use search::*;
pub use shared::*;
pub use tag::*;
pub use topic::*;
pub use trending::*;

#[cfg(test)]
mod tests;
