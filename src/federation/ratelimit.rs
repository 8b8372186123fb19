//! Per-instance limits on inbox requests, so that one misbehaving or compromised instance cannot flood
//! the relay (and through it every subscriber). Each instance (URL authority of the activity's actor,
//! charged after the signature proved the sender speaks for it) gets a token bucket: `inbound_rate_per_instance` requests per second sustained, bursts up to
//! `inbound_burst_per_instance`. Admins can give one instance other numbers (an override, e.g. a large
//! instance that legitimately sends more). Over the limit the inbox answers 429, which senders retry later.
//!
//! The limiter is also where a verified request is first attributed to its instance, so it notes when
//! each instance was last heard from (the admin API shows it).
//!
//! Several nodes behind one balancer each see about 1/N of an instance's requests, so each node
//! enforces 1/N of every limit ([`InboxLimiter::set_nodes`], rounded up): the relay as a whole keeps
//! the configured numbers without a shared counter (and a round trip to the database) per request.
//! A balancer that sends one instance to one node (sticky by source) makes that node alone enforce
//! 1/N of it: give such instances an override, or balance by request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::moderation::LimitOverride;
use crate::{Error, Result};

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    NonZeroU32::new(per_second).map(|rate| {
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Quota::per_second(rate).allow_burst(burst)
    })
}

/// The inbox rate limiter; disabled when the configured rate is 0.
pub struct InboxLimiter {
    /// The configured rate and burst, for the whole relay.
    configured: (u32, u32),
    /// How many nodes share the relay's inbox traffic.
    nodes: AtomicU32,
    /// The buckets, at this node's share of the configured rate.
    limiter: RwLock<Option<DefaultKeyedRateLimiter<String>>>,
    overrides: RwLock<HashMap<String, (LimitOverride, Option<DefaultDirectRateLimiter>)>>,
    last_seen: RwLock<HashMap<String, AtomicI64>>,
    /// Requests refused with 429.
    pub hits: AtomicU64,
}

impl InboxLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once per instance; `per_second == 0`
    /// turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> InboxLimiter {
        InboxLimiter {
            configured: (per_second, burst),
            nodes: AtomicU32::new(1),
            limiter: RwLock::new(quota(per_second, burst).map(RateLimiter::keyed)),
            overrides: RwLock::new(HashMap::new()),
            last_seen: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// Takes one request from `instance`'s bucket (its override's when it has one), or says it is
    /// over its limit.
    pub fn check(&self, instance: &str) -> Result<()> {
        let allowed = match self
            .overrides
            .read()
            .ok()
            .as_ref()
            .and_then(|o| o.get(instance))
        {
            Some((_, own)) => own.as_ref().is_none_or(|l| l.check().is_ok()),
            None => match self.limiter.read().as_deref() {
                Ok(Some(limiter)) => limiter.check_key(&instance.to_string()).is_ok(),
                _ => true,
            },
        };
        if allowed {
            Ok(())
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Err(Error::RateLimited(instance.to_string()))
        }
    }

    /// Notes that `instance` was heard from now; a read lock and an atomic swap for known instances
    /// (every verified inbox request passes here, before [`InboxLimiter::check`]). True when this is
    /// the first time in this minute, or since the relay started: the caller then keeps the time in
    /// the store, so it is written at most once a minute per instance.
    pub fn note_seen(&self, instance: &str) -> bool {
        let now = unix_now();
        let new_minute = |before: i64| before / 60 != now / 60;
        if let Ok(seen) = self.last_seen.read()
            && let Some(at) = seen.get(instance)
        {
            return new_minute(at.swap(now, Ordering::Relaxed));
        }
        match self.last_seen.write() {
            Ok(mut seen) => match seen.get(instance) {
                Some(at) => new_minute(at.swap(now, Ordering::Relaxed)),
                None => {
                    seen.insert(instance.to_string(), AtomicI64::new(now));
                    true
                }
            },
            Err(_) => false,
        }
    }

    /// Gives `instance` its own limit (`rate` 0: unlimited), or back the configured one (`None`).
    pub fn set_override(&self, instance: &str, limit: Option<LimitOverride>) {
        if let Ok(mut overrides) = self.overrides.write() {
            match limit {
                Some(l) => {
                    let (rate, burst) = self.share(l.rate, l.burst);
                    let own = quota(rate, burst).map(RateLimiter::direct);
                    overrides.insert(instance.to_string(), (l, own));
                }
                None => {
                    overrides.remove(instance);
                }
            }
        }
    }

    /// This node's share of a rate and burst: divided by the nodes, rounded up (0 stays 0: no limit).
    fn share(&self, rate: u32, burst: u32) -> (u32, u32) {
        let nodes = self.nodes.load(Ordering::Relaxed).max(1);
        (rate.div_ceil(nodes), burst.div_ceil(nodes))
    }

    /// Tells the limiter how many nodes share the relay's inbox traffic: each limit becomes that share
    /// of it (the buckets start full again when the number changes).
    pub fn set_nodes(&self, nodes: usize) {
        let nodes = u32::try_from(nodes.max(1)).unwrap_or(u32::MAX);
        if self.nodes.swap(nodes, Ordering::Relaxed) == nodes {
            return;
        }
        let (rate, burst) = self.share(self.configured.0, self.configured.1);
        if let Ok(mut limiter) = self.limiter.write() {
            *limiter = quota(rate, burst).map(RateLimiter::keyed);
        }
        let overrides: Vec<(String, LimitOverride)> = self
            .overrides
            .read()
            .map(|o| o.iter().map(|(k, (l, _))| (k.clone(), *l)).collect())
            .unwrap_or_default();
        for (instance, limit) in overrides {
            self.set_override(&instance, Some(limit));
        }
        tracing::info!(
            nodes,
            rate,
            burst,
            "per-instance inbox limits: this node's share"
        );
    }

    /// Gives exactly the instances of `limits` their own limits (what the store now holds: another
    /// node changed them); every other instance goes back to the configured one. An instance whose
    /// limit is unchanged keeps its bucket.
    pub fn replace_overrides(&self, limits: Vec<(String, LimitOverride)>) {
        let wanted: HashMap<String, LimitOverride> = limits.into_iter().collect();
        let stale: Vec<String> = self
            .overrides
            .read()
            .map(|o| {
                o.iter()
                    .filter(|(k, (l, _))| wanted.get(*k) != Some(l))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for instance in stale {
            self.set_override(&instance, None);
        }
        let present: Vec<String> = self
            .overrides
            .read()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (instance, limit) in wanted {
            if !present.contains(&instance) {
                self.set_override(&instance, Some(limit));
            }
        }
    }

    /// Unix seconds of the last verified inbox request from `instance` since the relay started.
    pub fn last_seen(&self, instance: &str) -> Option<i64> {
        Some(
            self.last_seen
                .read()
                .ok()?
                .get(instance)?
                .load(Ordering::Relaxed),
        )
    }

    /// Drops the buckets of instances that are back to full, and the last-seen times older than a
    /// week (keeps memory bounded).
    pub fn forget_idle(&self) {
        const WEEK: i64 = 7 * 24 * 3600;
        let now = unix_now();
        if let Ok(mut seen) = self.last_seen.write() {
            seen.retain(|_, at| now - at.load(Ordering::Relaxed) < WEEK);
        }
        if let Ok(Some(limiter)) = self.limiter.read().as_deref() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn among_three_nodes_each_takes_a_third_of_every_limit() {
        let limiter = InboxLimiter::new(10, 9);
        limiter.set_override(
            "big.example",
            Some(LimitOverride {
                rate: 100,
                burst: 30,
            }),
        );
        limiter.set_nodes(3);
        let allowed = |instance: &str| (0..50).filter(|_| limiter.check(instance).is_ok()).count();
        assert_eq!(allowed("a.example"), 3, "a third of a burst of 9");
        assert_eq!(allowed("big.example"), 10, "a third of the override's 30");
        limiter.set_nodes(1);
        assert_eq!(allowed("b.example"), 9, "alone again: the whole burst");
    }

    #[test]
    fn bursts_then_refuses_per_instance() {
        let limiter = InboxLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check("a.example").is_ok());
        }
        let refused = limiter.check("a.example").unwrap_err();
        assert_eq!(refused.status().as_u16(), 429);
        assert!(
            limiter.check("b.example").is_ok(),
            "other instances have their own bucket"
        );
        limiter.forget_idle();
        assert!(
            limiter.check("a.example").is_err(),
            "forgetting idle buckets keeps the ones in use"
        );
        assert_eq!(limiter.hits.load(Ordering::Relaxed), 2);
        assert!(limiter.note_seen("a.example"), "first time seen");
        assert!(limiter.last_seen("a.example").is_some());
        assert!(limiter.last_seen("c.example").is_none());
        // Once seen, again only when a new minute began (at most one of two calls in a row).
        let again = [
            limiter.note_seen("a.example"),
            limiter.note_seen("a.example"),
        ];
        assert!(!again[0] || !again[1], "{again:?}");
    }

    #[test]
    fn overrides_replace_the_default_for_one_instance() {
        let limiter = InboxLimiter::new(1, 1);
        limiter.set_override("big.example", Some(LimitOverride { rate: 1, burst: 5 }));
        for _ in 0..5 {
            assert!(limiter.check("big.example").is_ok());
        }
        assert!(limiter.check("big.example").is_err());
        limiter.set_override("free.example", Some(LimitOverride { rate: 0, burst: 0 }));
        for _ in 0..100 {
            assert!(limiter.check("free.example").is_ok());
        }
        limiter.set_override("free.example", None);
        assert!(limiter.check("free.example").is_ok());
        assert!(
            limiter.check("free.example").is_err(),
            "back to the default"
        );
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = InboxLimiter::new(0, 0);
        for _ in 0..10_000 {
            assert!(limiter.check("a.example").is_ok());
        }
    }
}
