//! Whether the store can write, for `/healthz`: the outcome of the writer's last commit that changed
//! something. A failed commit (a full disk, an I/O error) is what makes every write — and so every inbox
//! POST — answer 503; the writer records that same outcome here, so the health check and the inbox
//! cannot disagree about what "cannot write" means.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a failed commit keeps the store reported as failing when no write has succeeded since. A
/// relay taken out of a load balancer gets no inbox POSTs that could show it recovered; after this it
/// is reported healthy again, and the next failing write reports it failing at once.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// The last failed commit, cleared by the next commit that writes.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failure: Mutex<Option<(Instant, String)>>,
}

impl WriteHealth {
    /// Records what a commit came to: a failure with its reason, or a success that wrote rows (a commit
    /// that changed nothing proves nothing about the disk).
    pub(super) fn record(&self, outcome: &std::result::Result<(), String>, wrote: bool) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Err(reason) => *failure = Some((Instant::now(), reason.clone())),
            Ok(()) if wrote => *failure = None,
            Ok(()) => {}
        }
    }

    /// Why the store cannot write, when its last write failed within [`FAILURE_MEMORY`] of `now`.
    pub fn failure_at(&self, now: Instant) -> Option<String> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure
            .as_ref()
            .filter(|(at, _)| now.saturating_duration_since(*at) < FAILURE_MEMORY)
            .map(|(_, reason)| reason.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_write_succeeds_or_it_is_old() {
        let health = WriteHealth::default();
        assert_eq!(health.failure_at(Instant::now()), None);
        health.record(&Err("database or disk is full".into()), true);
        let now = Instant::now();
        assert_eq!(
            health.failure_at(now).as_deref(),
            Some("database or disk is full")
        );
        assert_eq!(health.failure_at(now + FAILURE_MEMORY), None);
        health.record(&Ok(()), false);
        assert!(health.failure_at(now).is_some(), "a commit of nothing");
        health.record(&Ok(()), true);
        assert_eq!(health.failure_at(now), None);
    }
}
