//! Whether the store can write, for `/healthz`: the outcome of the writer's last commit that changed
//! something. A failed commit (a full disk, an I/O error) is what makes every write — and so every inbox
//! POST — answer 503; the writer records that same outcome here, so the health check and the inbox
//! cannot disagree about what "cannot write" means. A relay taken out of a load balancer gets no inbox
//! POSTs that could show it recovered, so while a failure is on record the health check itself writes a
//! probe row now and then ([`PROBE_EVERY`]): the failure is forgotten only when a write succeeds.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Least time between two probe writes of the health check while a failure is on record: however
/// often `/healthz` is asked, a failing disk sees at most one probe per period.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// The last failed commit, cleared by the next commit that writes.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failure: Mutex<Option<Failure>>,
}

#[derive(Debug)]
struct Failure {
    reason: String,
    /// When the health check last probed (or the failure happened).
    probed: Instant,
}

impl WriteHealth {
    /// Records what a commit came to: a failure with its reason, or a success that wrote rows (a commit
    /// that changed nothing proves nothing about the disk).
    pub(super) fn record(&self, outcome: &std::result::Result<(), String>, wrote: bool) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Err(reason) => {
                *failure = Some(Failure {
                    reason: reason.clone(),
                    probed: Instant::now(),
                })
            }
            Ok(()) if wrote => *failure = None,
            Ok(()) => {}
        }
    }

    /// Why the store cannot write, when its last write failed and none has succeeded since.
    pub fn failure(&self) -> Option<String> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.as_ref().map(|f| f.reason.clone())
    }

    /// Whether the health check should probe with a write at `now`: a failure is on record and the last
    /// probe is at least [`PROBE_EVERY`] old (claiming this probe, so concurrent checks make one).
    pub fn probe_due(&self, now: Instant) -> bool {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match failure.as_mut() {
            Some(f) if now.saturating_duration_since(f.probed) >= PROBE_EVERY => {
                f.probed = now;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_write_succeeds_and_probes_are_spaced() {
        let health = WriteHealth::default();
        assert_eq!(health.failure(), None);
        assert!(!health.probe_due(Instant::now()), "nothing to probe");
        health.record(&Err("database or disk is full".into()), true);
        let now = Instant::now();
        assert_eq!(
            health.failure().as_deref(),
            Some("database or disk is full")
        );
        assert!(!health.probe_due(now), "just failed: no probe yet");
        let later = now + PROBE_EVERY;
        assert!(health.probe_due(later));
        assert!(!health.probe_due(later), "one probe per period");
        assert!(
            health.failure().is_some(),
            "still failing however long ago it failed"
        );
        health.record(&Ok(()), false);
        assert!(health.failure().is_some(), "a commit of nothing");
        health.record(&Ok(()), true);
        assert_eq!(health.failure(), None);
    }
}
