//! Per-client-IP limits on the public read endpoints (actor, WebFinger, NodeInfo, collections, and the
//! discovery index's search, pages and feeds as they are added): `client_ip_rate` requests per second
//! with bursts of `client_ip_burst` per client (see [`crate::web::client_ip`]); over it the answer is
//! 429 with `Retry-After`. Every GET and HEAD is covered except the health check, the metrics and the
//! admin API (which has its own token); the inbox has its per-instance limit instead.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::web::client_ip::TrustedProxies;

/// Paths that are never limited per IP.
const EXEMPT: &[&str] = &["/healthz", "/metrics"];
/// Path prefix of the admin API, limited by its token instead.
const ADMIN_PREFIX: &str = "/api/v1/admin";

/// The per-IP limiter.
pub struct ClientLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    proxies: TrustedProxies,
    /// Requests refused with 429.
    pub hits: AtomicU64,
}

impl ClientLimiter {
    /// `per_second` sustained with bursts of `burst` per client; 0 turns the limit off.
    pub fn new(per_second: u32, burst: u32, proxies: TrustedProxies) -> ClientLimiter {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        ClientLimiter {
            limiter,
            proxies,
            hits: AtomicU64::new(0),
        }
    }

    /// The client address of a request from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        self.proxies.client_ip(peer, headers)
    }

    /// Takes one request from `client`'s allowance, or says how long it must wait.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&client).map_err(|not_until| {
            self.hits.fetch_add(1, Ordering::Relaxed);
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    /// Drops the buckets of clients that are back to full (keeps memory bounded).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn is_limited(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && !EXEMPT.contains(&path)
        && !path.starts_with(ADMIN_PREFIX)
}

/// The middleware: answers 429 with `Retry-After` (whole seconds, at least 1) over the limit.
pub async fn limit(
    State(limiter): State<Arc<ClientLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if !is_limited(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return next.run(request).await;
    };
    let client = limiter.client_ip(peer, request.headers());
    match limiter.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::debug!(%client, retry_after = secs.max(1), "client over its request rate");
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(
                    serde_json::json!({ "error": format!("rate limit exceeded for {client}") }),
                ),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_waits_per_client() {
        let limiter = ClientLimiter::new(1, 2, TrustedProxies::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok());
        assert_eq!(limiter.hits.load(Ordering::Relaxed), 1);
        assert!(
            ClientLimiter::new(0, 0, TrustedProxies::default())
                .check(a)
                .is_ok()
        );
    }

    #[test]
    fn only_public_reads_are_limited() {
        assert!(is_limited(&Method::GET, "/actor"));
        assert!(is_limited(&Method::HEAD, "/.well-known/webfinger"));
        assert!(!is_limited(&Method::POST, "/inbox"));
        assert!(!is_limited(&Method::GET, "/healthz"));
        assert!(!is_limited(&Method::GET, "/metrics"));
        assert!(!is_limited(&Method::GET, "/api/v1/admin/stats"));
    }
}
