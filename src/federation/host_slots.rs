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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_signing_client_keeps_to_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (now, max) = (in_flight.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (now, max) = (now.clone(), max.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(current, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                        .await;
                });
            }
        });
        let http = crate::federation::inbox_client::tests::http(true, Duration::from_secs(5))
            .with_fetches_per_host(2);
        let fetches: Vec<_> = (0..6)
            .map(|n| {
                let http = http.clone();
                tokio::spawn(async move { http.get_json(&format!("http://{addr}/doc/{n}")).await })
            })
            .collect();
        for fetch in fetches {
            assert!(fetch.await.unwrap().is_ok());
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "at most two fetches at once to one host"
        );
    }
}
