//! Per-server request budgets on the provider endpoints: a token bucket per registered server id
//! (`fasp_rate_per_server` per second sustained, `fasp_burst_per_server` at once), charged after the
//! request is authenticated. Over it the answer is 429 with `Retry-After` in seconds.

use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limiter; `None` inside when the rate is 0 (no limit).
pub struct ServerLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl ServerLimiter {
    /// `per_second` sustained and `burst` at once per server; `per_second == 0` turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> ServerLimiter {
        let quota = NonZeroU32::new(per_second).map(|rate| {
            Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate))
        });
        ServerLimiter {
            limiter: quota.map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `server_id`'s bucket, or says in how many seconds (at least 1) to retry.
    pub fn check(&self, server_id: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&server_id.to_string())
            .map_err(|not_until| {
                {
                    let wait = not_until.wait_time_from(self.clock.now());
                    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
                }
                .max(1)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_past_its_burst_waits_and_others_do_not() {
        let limiter = ServerLimiter::new(1, 2);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").expect_err("over the burst");
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(limiter.check("b").is_ok());
        let off = ServerLimiter::new(0, 0);
        for _ in 0..100 {
            assert!(off.check("a").is_ok());
        }
    }
}
