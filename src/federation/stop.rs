//! A delivery worker's graceful stop: when its lease moves to another node, the worker finishes the
//! delivery in progress, saves where it got to and ends, so the next holder goes on from there and
//! nothing is sent twice. Shared by subscribers' and topic followers' workers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// A request to stop, and the worker's answer that it did.
#[derive(Default)]
pub struct Stop {
    asked: AtomicBool,
    wake: Notify,
    done: Notify,
    finished: AtomicBool,
}

impl Stop {
    /// Whether the worker was asked to stop (it checks between deliveries).
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Resolves when the worker is asked to stop (an idle worker waits on it beside its other wakers).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The worker's answer: it saved where it got to and is ending.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.done.notify_waiters();
    }

    /// Asks the worker running as `task` to stop, waits until it has (at most `patience`: a receiver
    /// slow to answer, a failing one waiting to retry), then aborts it whatever it is doing.
    pub async fn hand_over(&self, task: &AbortHandle, patience: Duration) {
        let done = self.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        self.asked.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if !self.finished.load(Ordering::SeqCst) && !task.is_finished() {
            let _ = tokio::time::timeout(patience, done).await;
        }
        task.abort();
    }
}
