//! Where the HTTP APIs meet the discovery index: every search runs here, on the blocking thread pool (a
//! tantivy search is CPU work that must not stall the async runtime), a few at a time, under a hard time
//! limit, and is timed and counted for `/metrics` (latency histogram, searches by outcome).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plaza_index::{Index, Page, TagView};
use tokio::sync::Semaphore;

use crate::web::histogram::{Histogram, LATENCY_BUCKETS};
use crate::{Error, Result};

/// Longest a search may take, waiting for its turn included, before it is answered 503. The index's
/// own time budget (half a second) normally ends a search long before, with the results it has.
pub const HARD_LIMIT: Duration = Duration::from_secs(5);

/// Searches running at once; more wait for a turn (within [`HARD_LIMIT`]).
pub const CONCURRENT_SEARCHES: usize = 8;

/// What a search returned, as far as counting goes.
pub trait Searched {
    /// The index's time budget ran out and the result is partial.
    fn partial(&self) -> bool {
        false
    }
}

impl<T> Searched for Page<T> {
    fn partial(&self) -> bool {
        self.partial
    }
}

impl Searched for Vec<TagView> {
    fn partial(&self) -> bool {
        self.iter().any(|t| t.partial)
    }
}

impl Searched for TagView {
    fn partial(&self) -> bool {
        self.partial
    }
}

impl Searched for Vec<plaza_index::InstanceView> {
    fn partial(&self) -> bool {
        self.iter().any(|i| i.partial)
    }
}

impl Searched for plaza_index::Counts {
    fn partial(&self) -> bool {
        self.partial
    }
}
impl<T> Searched for Option<T> {}

/// How one search ended, for the outcome counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Results returned in full.
    Ok,
    /// The query was malformed (400).
    BadQuery,
    /// Out of time: partial results, or none (503).
    Timeout,
    /// The index failed (500).
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::BadQuery,
        Outcome::Timeout,
        Outcome::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::BadQuery => "bad_query",
            Outcome::Timeout => "timeout",
            Outcome::Failed => "error",
        }
    }
}

/// The search gateway held in the relay's state.
pub struct Search {
    limit: Duration,
    turns: Arc<Semaphore>,
    latency: Histogram,
    outcomes: [AtomicU64; 4],
}

impl Default for Search {
    fn default() -> Self {
        Search::with_limit(HARD_LIMIT)
    }
}

impl Search {
    /// A gateway whose searches end after `limit` ([`HARD_LIMIT`] by default).
    pub fn with_limit(limit: Duration) -> Self {
        Search {
            limit,
            turns: Arc::new(Semaphore::new(CONCURRENT_SEARCHES)),
            latency: Histogram::new(&LATENCY_BUCKETS),
            outcomes: Default::default(),
        }
    }

    /// Runs `work` against `index` off the async runtime, timed and counted. No index (turned off in
    /// the configuration) is [`Error::SearchUnavailable`]; a malformed query [`Error::InvalidQuery`].
    pub async fn run<T, F>(&self, index: Option<&Arc<Index>>, work: F) -> Result<T>
    where
        T: Searched + Send + 'static,
        F: FnOnce(&Index) -> plaza_index::Result<T> + Send + 'static,
    {
        let index = index
            .cloned()
            .ok_or_else(|| Error::SearchUnavailable("search is turned off on this relay".into()))?;
        let started = Instant::now();
        let turns = self.turns.clone();
        let job = async move {
            let _turn = turns
                .acquire_owned()
                .await
                .map_err(|_| Error::Unavailable("search is shutting down".into()))?;
            tokio::task::spawn_blocking(move || work(&index))
                .await
                .map_err(|e| Error::Index(format!("search task: {e}")))?
                .map_err(Error::from_index)
        };
        let result = match tokio::time::timeout(self.limit, job).await {
            Ok(result) => result,
            Err(_) => Err(Error::SearchUnavailable(format!(
                "the search took longer than {} ms; narrow the query",
                self.limit.as_millis()
            ))),
        };
        self.latency.observe(started.elapsed());
        let outcome = match &result {
            Ok(found) if found.partial() => Outcome::Timeout,
            Ok(_) => Outcome::Ok,
            Err(Error::InvalidQuery(_)) => Outcome::BadQuery,
            Err(Error::SearchUnavailable(_)) => Outcome::Timeout,
            Err(_) => Outcome::Failed,
        };
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Appends the search metrics as Prometheus text.
    pub fn render_metrics(&self, out: &mut String) {
        self.latency.render(
            "plaza_search_duration_seconds",
            "Time to answer a search (posts, profiles, tags, timelines, lookups), queueing included.",
            out,
        );
        out.push_str(
            "# HELP plaza_searches_total Searches by outcome (ok, bad_query, timeout: partial or none, error).\n\
             # TYPE plaza_searches_total counter\n",
        );
        for outcome in Outcome::ALL {
            out.push_str(&format!(
                "plaza_searches_total{{outcome=\"{}\"}} {}\n",
                outcome.label(),
                self.outcomes[outcome as usize].load(Ordering::Relaxed)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Arc<Index> {
        Arc::new(Index::in_memory(plaza_index::IndexConfig::default()).expect("index"))
    }

    #[tokio::test]
    async fn outcomes_are_counted_and_timed() {
        let search = Search::default();
        let index = index();
        let page = search
            .run(Some(&index), |i| {
                i.search_posts(&plaza_index::SearchRequest::new("bakery"))
            })
            .await
            .expect("search");
        assert_eq!(page.total, 0);
        let bad = search
            .run(Some(&index), |i| {
                i.search_posts(&plaza_index::SearchRequest::new("\"unclosed"))
            })
            .await
            .expect_err("malformed");
        assert!(matches!(bad, Error::InvalidQuery(_)), "{bad}");
        assert_eq!(bad.status(), axum::http::StatusCode::BAD_REQUEST);
        let off = search
            .run(None, |i| i.counts())
            .await
            .expect_err("no index");
        assert_eq!(off.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let mut text = String::new();
        search.render_metrics(&mut text);
        assert!(
            text.contains("plaza_search_duration_seconds_count 2\n"),
            "a turned-off index runs no search: {text}"
        );
        let slow = Search::with_limit(Duration::from_millis(30));
        let late = slow
            .run(Some(&index), |i| {
                std::thread::sleep(Duration::from_millis(300));
                i.counts()
            })
            .await
            .expect_err("out of time");
        assert_eq!(late.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(late.to_string().contains("30 ms"), "{late}");
        let mut late_text = String::new();
        slow.render_metrics(&mut late_text);
        assert!(
            late_text.contains("plaza_searches_total{outcome=\"timeout\"} 1\n"),
            "{late_text}"
        );
        assert!(
            late_text.contains("plaza_search_duration_seconds_count 1\n"),
            "{late_text}"
        );
        let mut text = String::new();
        search.render_metrics(&mut text);
        assert!(
            text.contains("plaza_searches_total{outcome=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("plaza_searches_total{outcome=\"bad_query\"} 1\n"),
            "{text}"
        );
    }
}
