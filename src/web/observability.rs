//! What operators watch: the inbound counters (rendered by [`crate::web::metrics`]), and a request id
//! on every request (taken from `X-Request-Id` or
//! made up, echoed in the response, and carried by the tracing span every log line of the request is in).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Router;
use axum::http::Request;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::federation::receipt::Receipt;
use crate::{Error, Result};

/// Inbox requests by outcome.
#[derive(Default)]
pub struct InboundCounters {
    /// Accepted, by outcome.
    pub(crate) accepted: Mutex<BTreeMap<&'static str, u64>>,
    /// Refused, by a short reason.
    pub(crate) refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Accepted but not relayed (answered 202 "ignored: …"), by the rule's reason.
    pub(crate) ignored: Mutex<BTreeMap<&'static str, u64>>,
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
        Receipt::Withdrawn => "withdrawn",
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
    }
}
