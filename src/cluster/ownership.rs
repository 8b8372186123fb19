//! Which leases this node holds, as the delivery engine and the topic workers ask it: "is this
//! subscriber mine to deliver to?" — and how they tell the cluster loop to look again (a new
//! subscriber may be this node's to claim). Kept apart from the loop, which talks to the store, so
//! that the parts the loop starts and stops can ask it without depending on the store's cluster
//! tables.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// The leases this node holds (alone: all of them).
pub struct Ownership {
    solo: bool,
    held: RwLock<HashSet<String>>,
    nudge: tokio::sync::Notify,
}

impl Ownership {
    /// The only node: every lease is its own.
    pub fn alone() -> Arc<Ownership> {
        Arc::new(Ownership::new(true))
    }

    pub(super) fn new(solo: bool) -> Ownership {
        Ownership {
            solo,
            held: RwLock::new(HashSet::new()),
            nudge: tokio::sync::Notify::new(),
        }
    }

    /// Whether this node is the only one (nothing is leased).
    pub fn is_solo(&self) -> bool {
        self.solo
    }

    /// Whether this node holds the lease `name` (always, alone).
    pub fn holds(&self, name: &str) -> bool {
        self.solo || self.held.read().is_ok_and(|held| held.contains(name))
    }

    /// The leases this node holds, sorted (alone: none is leased).
    pub fn held(&self) -> Vec<String> {
        let mut held: Vec<String> = self
            .held
            .read()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        held.sort();
        held
    }

    /// How many leases this node holds.
    pub fn count(&self) -> usize {
        self.held.read().map(|h| h.len()).unwrap_or(0)
    }

    /// Asks the cluster loop to look at the assignment now (new work, a node joining or leaving).
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Resolves when nudged.
    pub(super) async fn nudged(&self) {
        self.nudge.notified().await
    }

    pub(super) fn snapshot(&self) -> HashSet<String> {
        self.held.read().map(|h| h.clone()).unwrap_or_default()
    }

    pub(super) fn add(&self, names: &[String]) {
        if let Ok(mut held) = self.held.write() {
            held.extend(names.iter().cloned());
        }
    }

    pub(super) fn forget(&self, names: &[String]) {
        if let Ok(mut held) = self.held.write() {
            for name in names {
                held.remove(name);
            }
        }
    }
}
