//! Per-instance limits on inbox requests, so that one misbehaving or compromised instance cannot flood
//! the relay (and through it every subscriber). Each instance (URL authority of the activity's actor,
//! charged after the signature proved the sender speaks for it) gets a token bucket: `inbound_rate_per_instance` requests per second sustained, bursts up to
//! `inbound_burst_per_instance`. Over the limit the inbox answers 429, which senders retry later.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{Error, Result};

/// The inbox rate limiter; disabled when the configured rate is 0.
pub struct InboxLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl InboxLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once per instance; `per_second == 0`
    /// turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> InboxLimiter {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        InboxLimiter { limiter }
    }

    /// Takes one request from `instance`'s bucket, or says it is over its limit.
    pub fn check(&self, instance: &str) -> Result<()> {
        match &self.limiter {
            Some(limiter) if limiter.check_key(&instance.to_string()).is_err() => {
                Err(Error::RateLimited(instance.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Drops the buckets of instances that are back to full (keeps memory bounded).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = InboxLimiter::new(0, 0);
        for _ in 0..10_000 {
            assert!(limiter.check("a.example").is_ok());
        }
    }
}
