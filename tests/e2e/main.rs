//! End-to-end tests: the real `plaza` binary on a random loopback port against simulated instances.
//!
//! One test binary (one link, one run) with a module per area; `support` holds the relay launcher and
//! the simulated instances.

mod abuse;
mod admin;
mod clients;
mod cluster;
mod explore;
mod fasp;
mod fasp_sharing;
mod gotosocial;
mod indexer;
mod interop;
mod operations;
mod pages;
mod postgres_harness;
mod relay;
mod search_api;
mod subscriptions;
mod support;
mod topic_ops;
mod topics;
mod trends;
