//! Fetches made for the index: posts from their origin, author actors, NodeInfo.
//!
//! They go through the relay's signing client ([`Http::get_json`]: signed GET, timeout, size cap,
//! address policy) with two bounds, a number in flight overall and a number per host, so a burst of
//! boosts from one instance cannot turn the relay into a crawler of it, and a slow host only slows its
//! own fetches. A fetched document must carry the id it was fetched by: content proven to come from
//! the host that owns the id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::ap::authority_of;
use crate::ap::value::id_of;
use crate::federation::net::Http;
use crate::federation::resolver::same_document;
use crate::{Error, Result};

/// Per-host semaphores kept at most; idle ones are dropped past this.
const MAX_HOSTS: usize = 1024;

/// How fetches ended, for `/metrics`.
#[derive(Default)]
pub struct FetchStats {
    /// The document arrived and carries the id asked for.
    pub ok: AtomicU64,
    /// The fetch failed (network, status, size, not JSON, refused address).
    pub failed: AtomicU64,
    /// A document arrived under another id than the one asked for.
    pub mismatched: AtomicU64,
}

/// Signed GETs bounded overall and per host.
pub struct Fetcher {
    http: Http,
    overall: Semaphore,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host_limit: usize,
    /// Outcome counters.
    pub stats: FetchStats,
}

impl Fetcher {
    /// A fetcher allowing `overall` fetches at once, `per_host` of them to one host.
    pub fn new(http: Http, overall: usize, per_host: usize) -> Fetcher {
        Fetcher {
            http,
            overall: Semaphore::new(overall.max(1)),
            per_host: Mutex::new(HashMap::new()),
            per_host_limit: per_host.max(1),
            stats: FetchStats::default(),
        }
    }

    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        let Ok(mut hosts) = self.per_host.lock() else {
            return Arc::new(Semaphore::new(self.per_host_limit));
        };
        if hosts.len() >= MAX_HOSTS {
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
        }
        hosts
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host_limit)))
            .clone()
    }

    /// Fetches `url` (a signed GET) within the bounds.
    pub async fn get(&self, url: &str) -> Result<Value> {
        let host = authority_of(url).ok_or_else(|| Error::fetch(url, "not a URL"))?;
        let slot = self.host_slot(&host);
        // The host's slot first: a fetch waiting for its host holds no overall slot.
        let _host = slot
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("fetcher closed".into()))?;
        let _overall = self
            .overall
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("fetcher closed".into()))?;
        let result = self.http.get_json(url).await;
        if result.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Fetches the document with id `id` and checks that it says so.
    pub async fn document(&self, id: &str) -> Result<Value> {
        let doc = self.get(id).await?;
        match id_of(&doc) {
            Some(found) if same_document(found, id) => {
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                Ok(doc)
            }
            found => {
                self.stats.mismatched.fetch_add(1, Ordering::Relaxed);
                Err(Error::fetch(
                    id,
                    format!("document has id {}", found.unwrap_or("(none)")),
                ))
            }
        }
    }

    /// Fetches a document that carries no id (NodeInfo) and counts it as a success.
    pub async fn plain(&self, url: &str) -> Result<Value> {
        let doc = self.get(url).await?;
        self.stats.ok.fetch_add(1, Ordering::Relaxed);
        Ok(doc)
    }
}
