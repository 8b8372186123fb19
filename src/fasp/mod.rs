//! Plaza as a FASP ("Fediverse Auxiliary Service Provider") discovery provider: fediverse servers
//! (Mastodon ≥ 4.5 and others) register Plaza, then ask it through signed requests under
//! `{public_url}/fasp` — `account_search` over the directory's discoverable profiles,
//! `follow_recommendation` (discoverable accounts on the same hashtags and instance), and
//! `data_sharing` (servers announce the URIs of posts and accounts; Plaza fetches and indexes them
//! under the relay's consent rules), and `trends` ([`trends`]: parameters and answers; the trends
//! themselves are [`crate::web::trends`]'s).
//!
//! Files: [`capabilities`] (what is offered), [`keys`] (Ed25519 keys and fingerprints), [`signing`]
//! (RFC 9421 signatures Plaza makes), [`auth`] (checking a server's signed request), [`registry`]
//! (registrations and activations in force), [`limiter`] (per-server budgets), [`guard`] (the
//! middleware that authenticates every provider request and signs every answer), [`provider`] (the
//! provider routes), [`account_search`], [`follow_recommendation`], [`registration`] (registering with a server), [`admin`]
//! (the admin API's registration and sign-up routes), [`signup`] (the public sign-up form's rules:
//! policy, blocks, the pending list) and [`page`] (the public `/fasp` page).
//!
//! `data_sharing`: [`data_sharing`] (the wire: announcements read and checked, request bodies),
//! [`subscriptions`] (Plaza's signed subscribe, backfill, continuation and unsubscribe requests),
//! [`share_queue`] (accepting an announcement into the durable queue) and [`share_worker`] (draining
//! it into the index through [`crate::discovery::shared`]).

pub mod account_search;
pub mod admin;
pub mod auth;
pub mod capabilities;
pub mod data_sharing;
pub mod follow_recommendation;
pub mod guard;
pub mod keys;
pub mod limiter;
pub mod page;
pub mod provider;
pub mod registration;
pub mod registry;
pub mod share_queue;
pub mod share_worker;
pub mod signing;
pub mod signup;
pub mod subscriptions;
pub mod trends;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;
use crate::config::Config;
use crate::store::Store;

/// Where the provider endpoints live, under the public URL (the `baseUrl` sent at registration).
pub const PREFIX: &str = "/fasp";

/// The FASP service the state holds.
pub struct Fasp {
    /// Registrations and activations.
    pub registry: registry::Registry,
    /// Per-server budgets.
    pub limiter: limiter::ServerLimiter,
    /// Provider requests answered after authentication.
    pub authenticated: AtomicU64,
    /// Provider requests refused with 401.
    pub unauthenticated: AtomicU64,
    /// Provider requests refused with 429.
    pub rate_limited: AtomicU64,
    /// The `data_sharing` queue's wake-up and counters.
    pub shares: share_queue::ShareQueue,
}

impl Fasp {
    /// Loads the registrations from `store`, with the limits of `config`.
    pub async fn new(store: Store, config: &Config) -> Result<Fasp> {
        Ok(Fasp {
            registry: registry::Registry::load(store).await?,
            limiter: limiter::ServerLimiter::new(
                config.fasp_rate_per_server,
                config.fasp_burst_per_server,
            ),
            authenticated: AtomicU64::new(0),
            unauthenticated: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            shares: share_queue::ShareQueue::default(),
        })
    }

    /// The FASP series of `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        crate::prometheus::series(
            out,
            "plaza_fasp_requests_total",
            "counter",
            "Requests to the FASP provider endpoints, by outcome.",
            &[
                (
                    "{outcome=\"authenticated\"}",
                    self.authenticated.load(Ordering::Relaxed),
                ),
                (
                    "{outcome=\"unauthenticated\"}",
                    self.unauthenticated.load(Ordering::Relaxed),
                ),
                (
                    "{outcome=\"rate_limited\"}",
                    self.rate_limited.load(Ordering::Relaxed),
                ),
            ],
        );
        crate::prometheus::series(
            out,
            "plaza_fasp_registrations",
            "gauge",
            "Fediverse servers registered with this FASP provider.",
            &[("", self.registry.len() as u64)],
        );
        self.shares.render_metrics(out);
    }
}
