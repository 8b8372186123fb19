//! A bound on concurrent fetches per remote host: however many inbox requests need an actor, a key or
//! an object from the same server at once, at most `max_fetches_per_host` requests to it are in flight;
//! the others wait (up to the fetch timeout) for a slot. This keeps the relay from hammering a slow
//! server, and a flood of requests naming one host from tying up the relay's connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots of every host with fetches in flight (hosts without any are forgotten).
pub struct HostSlots {
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A fetch slot; freed on drop.
pub struct Slot {
    host: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.permit.take();
        if let Ok(mut hosts) = self.hosts.lock()
            // Only the map and this slot still hold the semaphore: nobody is fetching or waiting.
            && Arc::strong_count(&self.semaphore) == 2
        {
            hosts.remove(&self.host);
        }
    }
}

impl HostSlots {
    /// At most `per_host` (at least 1) fetches in flight per host.
    pub fn new(per_host: usize) -> HostSlots {
        HostSlots {
            per_host: per_host.max(1),
            hosts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits up to `patience` for a slot to fetch from `host`; `None` when none came free.
    pub async fn acquire(&self, host: &str, patience: Duration) -> Option<Slot> {
        let semaphore = {
            let mut hosts = self.hosts.lock().ok()?;
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let mut slot = Slot {
            host: host.to_string(),
            semaphore: semaphore.clone(),
            permit: None,
            hosts: self.hosts.clone(),
        };
        let permit = tokio::time::timeout(patience, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()?;
        slot.permit = Some(permit);
        Some(slot)
    }

    /// Hosts with fetches in flight or waiting.
    pub fn busy_hosts(&self) -> usize {
        self.hosts.lock().map(|h| h.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_n_per_host_and_idle_hosts_are_forgotten() {
        let slots = HostSlots::new(2);
        let patience = Duration::from_millis(50);
        let a1 = slots.acquire("a.example", patience).await.unwrap();
        let _a2 = slots.acquire("a.example", patience).await.unwrap();
        assert!(
            slots.acquire("a.example", patience).await.is_none(),
            "third waits, then gives up"
        );
        let b = slots.acquire("b.example", patience).await;
        assert!(b.is_some(), "other hosts are not held up");
        drop(b);
        assert_eq!(slots.busy_hosts(), 1);
        drop(a1);
        assert!(slots.acquire("a.example", patience).await.is_some());
        drop(_a2);
        assert_eq!(slots.busy_hosts(), 0);
    }
}
