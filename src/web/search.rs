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

impl Searched for plaza_index::Tags {
    fn partial(&self) -> bool {
        self.partial
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

impl Searched for Vec<plaza_index::Trend> {}

impl Searched for Vec<plaza_index::PostHit> {}

impl Searched for Vec<plaza_index::Recommendation> {}

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
        Search::with_limits(limit, CONCURRENT_SEARCHES)
    }

    /// A gateway whose searches end after `limit`, `concurrent` of them running at once at most.
    pub fn with_limits(limit: Duration, concurrent: usize) -> Self {
        Search {
            limit,
            turns: Arc::new(Semaphore::new(concurrent)),
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
            let turn = turns
                .acquire_owned()
                .await
                .map_err(|_| Error::Unavailable("search is shutting down".into()))?;
            // The turn goes with the work, not with this future: when the time limit drops the future,
            // a search already on the blocking pool keeps running, and keeps its turn until it ends.
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                work(&index)
            })
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

    /// Counts the jobs running at once, and the most ever seen.
    #[derive(Default)]
    struct Gauge {
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl Gauge {
        fn enter(&self) {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }

        fn leave(&self) {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Runs a job on `search` that counts itself in `gauge` while it runs, and waits for `hold` (if any)
    /// before it ends.
    async fn counted(
        search: &Search,
        index: &Arc<Index>,
        gauge: &Arc<Gauge>,
        hold: Option<Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>>,
    ) -> Result<plaza_index::Counts> {
        let gauge = gauge.clone();
        search
            .run(Some(index), move |i| {
                gauge.enter();
                if let Some(hold) = hold {
                    let _ = hold.lock().map(|h| h.recv());
                }
                gauge.leave();
                i.counts()
            })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn searches_past_their_time_limit_keep_their_turn() {
        const TURNS: usize = 3;
        const PATIENCE: Duration = Duration::from_secs(20);
        let search = Arc::new(Search::with_limits(Duration::from_millis(50), TURNS));
        let index = index();
        let gauge = Arc::new(Gauge::default());
        // TURNS slow searches, each running until released: all answered 503 while still running.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        let mut slow = tokio::task::JoinSet::new();
        for _ in 0..TURNS {
            let (search, index, gauge, hold) =
                (search.clone(), index.clone(), gauge.clone(), hold.clone());
            slow.spawn(async move { counted(&search, &index, &gauge, Some(hold)).await });
        }
        while let Some(answer) = slow.join_next().await {
            let e = answer.expect("task").expect_err("out of time");
            assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        }
        let started = Instant::now();
        while gauge.running.load(Ordering::SeqCst) < TURNS {
            assert!(started.elapsed() < PATIENCE, "the slow searches never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // One more: no turn is free while they run, so it never starts and is answered 503 too.
        let late = counted(&search, &index, &gauge, None)
            .await
            .expect_err("no turn within the time limit");
        assert_eq!(late.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(gauge.most.load(Ordering::SeqCst), TURNS);
        // Once they end, their turns are free again.
        for _ in 0..TURNS {
            release.send(()).expect("release");
        }
        while counted(&search, &index, &gauge, None).await.is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "no search ran after the slow ones ended"
            );
        }
        assert_eq!(gauge.most.load(Ordering::SeqCst), TURNS);
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
