//! Fetches made for the index: posts from their origin, author actors, NodeInfo.
//!
//! They go through the relay's signing client ([`Http::get_json`]: signed GET, timeout, size cap,
//! address policy, and its bound on fetches per host, `max_fetches_per_host`, shared with every other
//! fetch of the relay, so a burst of boosts from one instance cannot turn the relay into a crawler of
//! it) with a bound of their own on fetches in flight overall (`index_fetch_concurrency`), so indexing
//! never takes the fetch capacity the inbox needs. A fetched document must carry the id it was fetched
//! by: content proven to come from the host that owns the id.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::ap::value::id_of;
use crate::federation::net::Http;
use crate::federation::resolver::same_document;
use crate::{Error, Result};

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

/// Signed GETs bounded overall (and per host by the client).
pub struct Fetcher {
    http: Http,
    overall: Semaphore,
    /// Outcome counters.
    pub stats: FetchStats,
}

impl Fetcher {
    /// A fetcher allowing `overall` fetches at once.
    pub fn new(http: Http, overall: usize) -> Fetcher {
        Fetcher {
            http,
            overall: Semaphore::new(overall.max(1)),
            stats: FetchStats::default(),
        }
    }

    /// The signing client the fetches go through.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Fetches `url` (a signed GET) within the bounds.
    pub async fn get(&self, url: &str) -> Result<Value> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A server that answers every GET with a document after a pause, counting requests in flight.
    struct Slow {
        base: String,
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    async fn slow_server(ip: &str, total: Arc<(AtomicUsize, AtomicUsize)>) -> Slow {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m, id_base) = (now.clone(), most.clone(), base.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (n, m, t, id) = (
                n.clone(),
                m.clone(),
                total.clone(),
                format!("{id_base}{}", uri.path()),
            );
            async move {
                m.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                t.1.fetch_max(t.0.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(60)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                t.0.fetch_sub(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "id": id }))
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Slow { base, now, most }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetches_are_bounded_per_host_and_overall_and_must_carry_their_id() {
        let total = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (a, b) = (
            slow_server("127.0.0.1", total.clone()).await,
            slow_server("127.0.0.2", total.clone()).await,
        );
        let http = crate::test_fixtures::http().with_fetches_per_host(2);
        let fetcher = Arc::new(Fetcher::new(http, 3));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8 {
            for server in [&a.base, &b.base] {
                let (fetcher, url) = (fetcher.clone(), format!("{server}/objects/{n}"));
                tasks.spawn(async move { fetcher.document(&url).await.map(drop) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(a.now.load(Ordering::SeqCst), 0);
        assert_eq!(
            a.most.load(Ordering::SeqCst),
            2,
            "per host (the client's bound)"
        );
        assert_eq!(
            b.most.load(Ordering::SeqCst),
            2,
            "per host (the client's bound)"
        );
        assert_eq!(total.1.load(Ordering::SeqCst), 3, "overall");
        assert_eq!(fetcher.stats.ok.load(Ordering::SeqCst), 16);
        // The server names documents by path alone: asked with a query, the id differs and is refused.
        let elsewhere = format!("{}/objects/1", a.base);
        assert!(fetcher.document(&format!("{elsewhere}?x")).await.is_err());
        assert_eq!(fetcher.stats.mismatched.load(Ordering::SeqCst), 1);
        assert!(
            fetcher
                .document("http://127.0.0.1:9/nothing")
                .await
                .is_err()
        );
        assert_eq!(fetcher.stats.failed.load(Ordering::SeqCst), 1);
    }
}
