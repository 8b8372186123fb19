//! A per-source-IP limit on failed signature key fetches.
//!
//! Key and actor fetches are limited per remote host (the resolver's `key_fetches_per_host_per_minute`),
//! which bounds what the relay asks of that host; but anyone can send requests naming keyIds on a host
//! that do not exist there and so use up its allowance, until the host's real requests get 429. This
//! limit charges those failures to the client address the requests came from: over
//! `key_fetch_failures_per_ip_per_minute` failed key resolutions in a minute, requests from that
//! address are verified only with keys already cached, and fetch nothing, until the minute is over.
//! The counts live in a bounded cache and go with their minute, so strangers leave no lasting memory.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

/// Client addresses counted at once; past this the least recently seen are dropped.
const MAX_CLIENTS: u64 = 100_000;

/// Failed key fetches by client address, per minute.
pub struct KeyFetchFailures {
    per_minute: u32,
    counts: Cache<IpAddr, Arc<AtomicU32>>,
    /// Requests refused (429) because they needed a key fetch while over their address's allowance.
    pub refused: AtomicU64,
}

impl KeyFetchFailures {
    /// Allows `per_minute` failed key fetches per client address; 0 turns the limit off.
    pub fn new(per_minute: u32) -> KeyFetchFailures {
        KeyFetchFailures {
            per_minute,
            counts: Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_live(Duration::from_secs(60))
                .build(),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether requests from `client` may still make the relay fetch keys.
    pub async fn may_fetch(&self, client: Option<IpAddr>) -> bool {
        let (Some(client), true) = (client, self.per_minute > 0) else {
            return true;
        };
        self.counts
            .get(&client)
            .await
            .is_none_or(|n| n.load(Ordering::Relaxed) < self.per_minute)
    }

    /// Counts one failed key resolution against `client`.
    pub async fn charge(&self, client: Option<IpAddr>) {
        let (Some(client), true) = (client, self.per_minute > 0) else {
            return;
        };
        self.counts
            .get_with(client, async { Arc::new(AtomicU32::new(0)) })
            .await
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_address_has_its_own_allowance() {
        let limit = KeyFetchFailures::new(3);
        let (a, b) = (
            Some("10.0.0.1".parse().unwrap()),
            Some("10.0.0.2".parse().unwrap()),
        );
        for _ in 0..3 {
            assert!(limit.may_fetch(a).await);
            limit.charge(a).await;
        }
        assert!(!limit.may_fetch(a).await, "a is over its allowance");
        assert!(limit.may_fetch(b).await, "b is not");
        assert!(limit.may_fetch(None).await, "no address, no limit");
        let off = KeyFetchFailures::new(0);
        for _ in 0..10 {
            off.charge(a).await;
        }
        assert!(off.may_fetch(a).await);
    }
}
