//! The moderation, rate-limit, inbound, per-subscriber and topic-feed series of `/metrics`
//! (Prometheus text), read from the state. Apart from the counters themselves
//! ([`crate::web::observability`], [`crate::topics::Stats`]), which the state holds and so must not
//! import it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::Result;
use crate::moderation::blocks::BlockKind;
use crate::state::AppState;
use crate::store::Subscriber;
use crate::store::topics::KindCount;
use crate::topics::TopicKind;

pub use crate::prometheus::{fractional, series};

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What `/metrics` reads from the store, read once per scrape. A store that cannot answer (a
/// database gone away) must not take the page down with it: the node's own counters are what an
/// operator needs most then, so the page says `plaza_store_up 0` and leaves these series out.
pub struct StoreFigures {
    /// Every subscriber, with its persisted cursor.
    pub subscribers: Vec<Subscriber>,
    /// Entries the log holds.
    pub log_size: u64,
    /// Follows waiting for approval.
    pub pending: u64,
    /// Follows of topics waiting for approval.
    pub topic_pending: u64,
    /// Topics and their followers by kind.
    pub topic_counts: Vec<KindCount>,
}

impl StoreFigures {
    /// Reads them; the error is the store's first failure.
    pub async fn read(state: &AppState) -> Result<StoreFigures> {
        Ok(StoreFigures {
            subscribers: state.store.subscribers().await?,
            log_size: state.store.log_size().await?,
            pending: state.store.pending().await?.len() as u64,
            topic_pending: state.store.topic_pending_count().await?,
            topic_counts: state.store.topic_counts_by_kind().await?,
        })
    }
}

/// Appends the store's series: whether it answered this scrape, reads and commits (count and
/// seconds: their mean latency), and on PostgreSQL the pool's connections.
pub fn render_store(state: &AppState, answered: bool, out: &mut String) {
    series(
        out,
        "plaza_store_up",
        "gauge",
        "1 when the store answered this scrape's reads; 0 leaves out the series read from it.",
        &[("", u64::from(answered))],
    );
    let figures = state.store.timings();
    let backend = if state.store.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let label = format!("{{backend=\"{backend}\"}}");
    for (counted, timed, count, seconds, help) in [
        (
            "plaza_store_reads_total",
            "plaza_store_read_seconds_total",
            figures.reads,
            figures.read_seconds,
            "Reads from the store, and the time they took (waiting for a connection included).",
        ),
        (
            "plaza_store_commits_total",
            "plaza_store_commit_seconds_total",
            figures.commits,
            figures.commit_seconds,
            "Group commits (one transaction each), and the time they took from BEGIN to COMMIT.",
        ),
    ] {
        series(out, counted, "counter", help, &[(&label, count)]);
        crate::prometheus::header(out, timed, "counter", help);
        out.push_str(&format!("{timed}{label} {seconds:.6}\n"));
    }
    if state.store.is_postgres() {
        let (open, busy, max) = figures.pool;
        series::<&str>(
            out,
            "plaza_store_pool_connections",
            "gauge",
            "PostgreSQL connections of the pool: open, in use, and the most it opens.",
            &[
                ("{state=\"open\"}", open as u64),
                ("{state=\"in_use\"}", busy as u64),
                ("{state=\"max\"}", max as u64),
            ],
        );
    }
}

/// Appends the moderation, rate-limit, inbound and per-subscriber series to `out` (those read from
/// the store only with its `figures`).
pub fn render(state: &AppState, figures: Option<&StoreFigures>, out: &mut String) {
    let labelled = |map: &Mutex<BTreeMap<&'static str, u64>>, label: &str| -> Vec<(String, u64)> {
        map.lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), *v))
                    .collect()
            })
            .unwrap_or_default()
    };
    let inbound = &state.inbound;
    series(
        out,
        "plaza_inbound_accepted_total",
        "counter",
        "Inbox requests accepted, by outcome.",
        &labelled(&inbound.accepted, "outcome"),
    );
    series(
        out,
        "plaza_inbound_refused_total",
        "counter",
        "Inbox requests refused, by reason.",
        &labelled(&inbound.refused, "reason"),
    );
    series(
        out,
        "plaza_inbox_ignored_total",
        "counter",
        "Inbox requests accepted but not relayed, by reason.",
        &labelled(&inbound.ignored, "reason"),
    );
    let d = &state.engine.stats;
    series::<String>(
        out,
        "plaza_deliveries_by_outcome_total",
        "counter",
        "Delivery attempts by outcome.",
        &[
            (
                "{outcome=\"delivered\"}".into(),
                d.delivered.load(Ordering::Relaxed),
            ),
            (
                "{outcome=\"retried\"}".into(),
                d.retried.load(Ordering::Relaxed),
            ),
            (
                "{outcome=\"refused\"}".into(),
                d.refused.load(Ordering::Relaxed),
            ),
        ],
    );
    if let Some(figures) = figures {
        let head = state.store.tail().head();
        let lag: Vec<(String, u64)> = figures
            .subscribers
            .iter()
            .map(|s| {
                (
                    format!("{{instance=\"{}\"}}", escape(&s.authority)),
                    head.saturating_sub(s.cursor),
                )
            })
            .collect();
        series(
            out,
            "plaza_subscriber_lag",
            "gauge",
            "Log entries each subscriber is behind (persisted cursor).",
            &lag,
        );
        series(
            out,
            "plaza_log_entries",
            "gauge",
            "Entries the log holds (after pruning).",
            &[(String::new(), figures.log_size)],
        );
        series(
            out,
            "plaza_subscriptions_pending",
            "gauge",
            "Follows waiting for an admin's approval.",
            &[(String::new(), figures.pending)],
        );
        series(
            out,
            "plaza_topic_follows_pending",
            "gauge",
            "Follows of topics waiting for an admin's approval.",
            &[(String::new(), figures.topic_pending)],
        );
    }
    series::<String>(
        out,
        "plaza_rate_limited_total",
        "counter",
        "Requests refused with 429, by limit.",
        &[
            (
                "{limit=\"instance\"}".into(),
                state.limiter.hits.load(Ordering::Relaxed),
            ),
            (
                "{limit=\"client_ip\"}".into(),
                state.client_limiter.read_hits(),
            ),
            (
                "{limit=\"client_ip_media\"}".into(),
                state.client_limiter.media_hits(),
            ),
            (
                "{limit=\"key_fetch_failures_ip\"}".into(),
                state.key_fetch_failures.refused.load(Ordering::Relaxed),
            ),
        ],
    );
    series::<String>(
        out,
        "plaza_blocks",
        "gauge",
        "Blocks in force, by kind.",
        &[
            (
                "{kind=\"domain\"}".into(),
                state.curation.block_count(BlockKind::Domain) as u64,
            ),
            (
                "{kind=\"software\"}".into(),
                state.curation.block_count(BlockKind::Software) as u64,
            ),
        ],
    );
}

/// Appends the topic feeds' series: topics and followers by kind (from the store, with its
/// `figures`), deliveries by kind and their failures, the follower inboxes being served, and what
/// matching posts costs.
pub fn render_topics(state: &AppState, figures: Option<&StoreFigures>, out: &mut String) {
    let by_kind = |value: &dyn Fn(TopicKind) -> u64| -> Vec<(String, u64)> {
        TopicKind::ALL
            .into_iter()
            .map(|kind| (format!("{{kind=\"{}\"}}", kind.as_str()), value(kind)))
            .collect()
    };
    if let Some(figures) = figures {
        let counted = |kind: TopicKind, field: fn(&KindCount) -> u64| {
            figures
                .topic_counts
                .iter()
                .find(|c| c.kind == kind)
                .map_or(0, field)
        };
        series(
            out,
            "plaza_topics",
            "gauge",
            "Topics that exist (a key was made for them), by kind.",
            &by_kind(&|kind| counted(kind, |c| c.topics)),
        );
        series(
            out,
            "plaza_topic_followers",
            "gauge",
            "Follows of topics (instances and people), by kind of topic.",
            &by_kind(&|kind| counted(kind, |c| c.followers)),
        );
    }
    let topics = &state.topics;
    series(
        out,
        "plaza_topic_deliveries_total",
        "counter",
        "Carried changes accepted by follower inboxes, by kind of the topic that sent them.",
        &by_kind(&|kind| topics.delivery.by_kind.get(kind)),
    );
    let stats = &topics.delivery.stats;
    let counters = [
        (
            "plaza_topic_delivery_retries_total",
            "counter",
            "Failed topic delivery attempts that will be retried.",
            stats.retried.load(Ordering::Relaxed),
        ),
        (
            "plaza_topic_delivery_refused_total",
            "counter",
            "Topic deliveries refused for good by follower inboxes.",
            stats.refused.load(Ordering::Relaxed),
        ),
        (
            "plaza_topic_inboxes",
            "gauge",
            "Follower inboxes with a running topic delivery worker.",
            topics.delivery.worker_count() as u64,
        ),
        (
            "plaza_topic_matched_posts_total",
            "counter",
            "Indexed posts matched against every topic.",
            topics.stats.matched_posts.load(Ordering::Relaxed),
        ),
        (
            "plaza_topic_carried_total",
            "counter",
            "Changes (announces, updates, deletions) appended to the log for topics' followers.",
            topics.stats.carried.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in counters {
        series(out, name, kind, help, &[("", value)]);
    }
    fractional(
        out,
        "plaza_topic_match_seconds_total",
        "counter",
        "Time spent matching posts against the topics (wall clock, waits for a core included); divided by plaza_topic_matched_posts_total, the time per post.",
        topics.stats.match_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    );
    fractional(
        out,
        "plaza_topic_match_cpu_seconds_total",
        "counter",
        "CPU time spent matching posts against the topics; divided by plaza_topic_matched_posts_total, the cost per post.",
        topics.stats.match_cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_labels_are_prometheus_text() {
        let mut out = String::new();
        series::<String>(&mut out, "m", "gauge", "h", &[("{a=\"b\"}".into(), 3)]);
        assert_eq!(out, "# HELP m h\n# TYPE m gauge\nm{a=\"b\"} 3\n");
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
