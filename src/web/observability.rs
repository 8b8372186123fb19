//! What operators watch: the inbound counters and the moderation, rate-limit and per-subscriber series
//! of `/metrics` (Prometheus text), and a request id on every request (taken from `X-Request-Id` or
//! made up, echoed in the response, and carried by the tracing span every log line of the request is in).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::http::Request;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::federation::inbox::Receipt;
use crate::moderation::blocks::BlockKind;
use crate::{Error, Result};

/// Inbox requests by outcome.
#[derive(Default)]
pub struct InboundCounters {
    accepted: Mutex<BTreeMap<&'static str, u64>>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Accepted but not relayed (answered 202 "ignored: …"), by the rule's reason.
    ignored: Mutex<BTreeMap<&'static str, u64>>,
}

impl InboundCounters {
    /// Counts one inbox request by how it ended.
    pub fn count(&self, outcome: &Result<Receipt>) {
        let (map, label) = match outcome {
            Ok(receipt) => (&self.accepted, accepted_label(receipt)),
            Err(e) => (&self.refused, refused_label(e)),
        };
        if let Ok(mut map) = map.lock() {
            *map.entry(label).or_default() += 1;
        }
        if let Ok(Receipt::Ignored(reason)) = outcome
            && let Ok(mut map) = self.ignored.lock()
        {
            *map.entry(reason).or_default() += 1;
        }
    }
}

fn accepted_label(receipt: &Receipt) -> &'static str {
    match receipt {
        Receipt::Queued(_) => "queued",
        Receipt::Subscribed => "subscribed",
        Receipt::Unsubscribed => "unsubscribed",
        Receipt::Duplicate => "duplicate",
        Receipt::Ignored(_) => "ignored",
    }
}

/// A short, bounded label for why an inbox request was refused.
fn refused_label(e: &Error) -> &'static str {
    match e {
        Error::SignatureMissing
        | Error::SignatureMalformed(_)
        | Error::SignatureIncomplete(_)
        | Error::SignatureInvalid
        | Error::KeyUnusable(_) => "signature",
        Error::SignatureExpired(_) => "date",
        Error::Digest(_) => "digest",
        Error::KeyNotOwned { .. } => "key_owner",
        Error::Fetch { .. } | Error::ForbiddenAddress(_) => "fetch",
        Error::BadRequest(_) => "bad_request",
        Error::NotSubscribed(_) => "not_subscribed",
        Error::InstanceBlocked(_) => "blocked",
        Error::RateLimited(_) => "rate_limited",
        _ => "internal",
    }
}

pub use crate::prometheus::series;

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the moderation, rate-limit, inbound and per-subscriber series to `out`.
pub async fn render(state: &AppState, out: &mut String) -> Result<()> {
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
    let head = state.store.tail().head();
    let lag: Vec<(String, u64)> = state
        .store
        .subscribers()
        .await?
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
        &[(String::new(), state.store.log_size().await?)],
    );
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
                state.client_limiter.hits.load(Ordering::Relaxed),
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
    series(
        out,
        "plaza_subscriptions_pending",
        "gauge",
        "Follows waiting for an admin's approval.",
        &[(String::new(), state.store.pending().await?.len() as u64)],
    );
    Ok(())
}

/// Wraps `router` so that every request has an id and a span carrying it.
pub fn with_request_ids(router: Router) -> Router {
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_under_bounded_labels() {
        let counters = InboundCounters::default();
        counters.count(&Ok(Receipt::Queued(1)));
        counters.count(&Ok(Receipt::Queued(2)));
        counters.count(&Err(Error::InstanceBlocked("x".into())));
        counters.count(&Err(Error::SignatureInvalid));
        let accepted = counters.accepted.lock().unwrap().clone();
        assert_eq!(accepted.get("queued"), Some(&2));
        let refused = counters.refused.lock().unwrap().clone();
        assert_eq!(refused.get("blocked"), Some(&1));
        assert_eq!(refused.get("signature"), Some(&1));
        let mut out = String::new();
        series::<String>(&mut out, "m", "gauge", "h", &[("{a=\"b\"}".into(), 3)]);
        assert_eq!(out, "# HELP m h\n# TYPE m gauge\nm{a=\"b\"} 3\n");
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
