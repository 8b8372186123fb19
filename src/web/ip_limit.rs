//! Per-client-IP limits on the public reads, with a budget per kind of path so that a page loads
//! whole while searching stays expensive:
//!
//! - **reads** — the pages (home, search, directory, tags, topics…), their feeds, the search,
//!   Mastodon and topics APIs, the relay and topic actors, WebFinger, NodeInfo and the collections: `client_ip_rate` requests per second with
//!   bursts of `client_ip_burst` per client (see [`crate::web::client_ip`]);
//! - **media** — the avatar proxy ([`crate::web::media_proxy`]), which a page of results asks once per
//!   author shown: its own, generous allowance (`client_ip_media_rate`, `client_ip_media_burst`), so a
//!   page's 40 avatars never spend (nor run out of) the reads budget;
//! - **sign-ups** — the FASP sign-up form (`POST` [`SIGNUP_PATH`]), which makes the relay
//!   contact a server: [`SIGNUP_BURST`] at once per client, then one every [`SIGNUP_PERIOD`];
//! - **free** — the stylesheet and the built-in placeholder pictures (constant, cacheable, cost
//!   nothing), the health check, the metrics, and the admin API (which has its own token).
//!
//! Over a budget the answer is 429 with `Retry-After`, and Mastodon's `X-RateLimit-Limit` (the burst),
//! `X-RateLimit-Remaining` (0) and `X-RateLimit-Reset` (when the next request is allowed, ISO 8601), which
//! Mastodon clients read to wait just long enough (Mastodon.py otherwise backs off for minutes). Only GET
//! and HEAD are limited here (and the sign-up form's POST); the inbox has its per-instance limit instead.

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
use time::OffsetDateTime;

use crate::web::client_ip::TrustedProxies;
use crate::web::mastodon_entities::{MISSING_AVATAR_PATH, MISSING_HEADER_PATH, mastodon_time};
use crate::web::media_proxy;

/// Paths that are never limited per IP: constant, built-in answers and the operators' endpoints.
const FREE: &[&str] = &[
    "/healthz",
    "/metrics",
    MISSING_AVATAR_PATH,
    MISSING_HEADER_PATH,
];
/// Path prefixes that are never limited per IP: the static assets, the admin API (limited by its
/// token instead) and the FASP provider endpoints (limited per registered server, after its signature;
/// one server's searches all come from its few addresses).
const FREE_PREFIXES: &[&str] = &["/static/", "/api/v1/admin", "/fasp/"];

/// Where the FASP sign-up form posts (`crate::fasp::signup::PATH`; a test there keeps them equal,
/// and naming it here keeps this file free of the FASP part).
pub const SIGNUP_PATH: &str = "/fasp/signup";
/// Sign-ups a client may send at once.
pub const SIGNUP_BURST: u32 = 10;
/// Then one sign-up per this period per client.
pub const SIGNUP_PERIOD: Duration = Duration::from_secs(60);

/// The allowance a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Not limited per IP.
    Free,
    /// The avatar proxy's own allowance.
    Media,
    /// The public reads' allowance (searches, pages, APIs, ActivityPub documents).
    Reads,
    /// The FASP sign-up form's allowance.
    Signup,
}

impl Budget {
    /// The budget of a request for `path` with `method`.
    pub fn of(method: &Method, path: &str) -> Budget {
        let read = method == Method::GET || method == Method::HEAD;
        if method == Method::POST && path == SIGNUP_PATH {
            Budget::Signup
        } else if !read || FREE.contains(&path) || FREE_PREFIXES.iter().any(|p| path.starts_with(p))
        {
            Budget::Free
        } else if path == media_proxy::PATH {
            Budget::Media
        } else {
            Budget::Reads
        }
    }
}

/// One keyed token bucket per client, with its count of refusals.
struct Allowance {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    burst: u32,
    hits: AtomicU64,
}

/// A request over its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// How long until the client may ask again.
    pub wait: Duration,
    /// The budget's burst: requests a rested client may make at once.
    pub burst: u32,
}

impl Allowance {
    /// `per_second` sustained with bursts of `burst` per client; 0 turns it off.
    fn new(per_second: u32, burst: u32) -> Allowance {
        let burst = NonZeroU32::new(burst).or(NonZeroU32::new(per_second));
        let limiter = NonZeroU32::new(per_second)
            .zip(burst)
            .map(|(rate, burst)| RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)));
        Allowance {
            limiter,
            burst: burst.map_or(0, NonZeroU32::get),
            hits: AtomicU64::new(0),
        }
    }

    /// One request per `period` with bursts of `burst` per client.
    fn per_period(period: Duration, burst: u32) -> Allowance {
        let burst = NonZeroU32::new(burst);
        let limiter = Quota::with_period(period)
            .zip(burst)
            .map(|(quota, burst)| RateLimiter::keyed(quota.allow_burst(burst)));
        Allowance {
            limiter,
            burst: burst.map_or(0, NonZeroU32::get),
            hits: AtomicU64::new(0),
        }
    }

    fn check(&self, client: IpAddr) -> Result<(), Refusal> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&client).map_err(|not_until| {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Refusal {
                wait: not_until.wait_time_from(DefaultClock::default().now()),
                burst: self.burst,
            }
        })
    }

    fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The per-IP limiter: one allowance per limited [`Budget`].
pub struct ClientLimiter {
    reads: Allowance,
    media: Allowance,
    signups: Allowance,
    proxies: TrustedProxies,
}

impl ClientLimiter {
    /// Reads limited to `per_second` sustained with bursts of `burst` per client (0 turns the limit
    /// off); the avatar proxy unlimited until [`ClientLimiter::with_media`] says otherwise.
    pub fn new(per_second: u32, burst: u32, proxies: TrustedProxies) -> ClientLimiter {
        ClientLimiter {
            reads: Allowance::new(per_second, burst),
            media: Allowance::new(0, 0),
            signups: Allowance::per_period(SIGNUP_PERIOD, SIGNUP_BURST),
            proxies,
        }
    }

    /// The avatar proxy's allowance: `per_second` with bursts of `burst` per client (0: no limit).
    pub fn with_media(mut self, per_second: u32, burst: u32) -> ClientLimiter {
        self.media = Allowance::new(per_second, burst);
        self
    }

    /// The client address of a request from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        self.proxies.client_ip(peer, headers)
    }

    /// Takes one request from `client`'s reads allowance, or says how long it must wait.
    pub fn check(&self, client: IpAddr) -> Result<(), Refusal> {
        self.check_budget(Budget::Reads, client)
    }

    /// Takes one request from `client`'s allowance of `budget`, or says how long it must wait.
    pub fn check_budget(&self, budget: Budget, client: IpAddr) -> Result<(), Refusal> {
        match budget {
            Budget::Free => Ok(()),
            Budget::Media => self.media.check(client),
            Budget::Reads => self.reads.check(client),
            Budget::Signup => self.signups.check(client),
        }
    }

    /// Requests refused with 429 by the reads allowance.
    pub fn read_hits(&self) -> u64 {
        self.reads.hits.load(Ordering::Relaxed)
    }

    /// Requests refused with 429 by the avatar proxy's allowance.
    pub fn media_hits(&self) -> u64 {
        self.media.hits.load(Ordering::Relaxed)
    }

    /// Drops the buckets of clients that are back to full (keeps memory bounded).
    pub fn forget_idle(&self) {
        self.reads.forget_idle();
        self.media.forget_idle();
        self.signups.forget_idle();
    }
}

/// The middleware: answers 429 with `Retry-After` (whole seconds, at least 1) over the request's budget.
pub async fn limit(
    State(limiter): State<Arc<ClientLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let budget = Budget::of(request.method(), request.uri().path());
    if budget == Budget::Free {
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
    match limiter.check_budget(budget, client) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::debug!(%client, ?budget, wait = ?refusal.wait, "client over its request rate");
            refused(client, refusal, OffsetDateTime::now_utc())
        }
    }
}

/// The 429 answer to `client`, refused at `now`.
fn refused(client: IpAddr, refusal: Refusal, now: OffsetDateTime) -> Response {
    let wait = refusal.wait;
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({ "error": format!("rate limit exceeded for {client}") })),
    )
        .into_response();
    let reset = mastodon_time(now + wait);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::RETRY_AFTER.as_str(), secs.to_string()),
        ("x-ratelimit-limit", refusal.burst.to_string()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
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
        let refusal = limiter.check(a).unwrap_err();
        assert!(refusal.wait <= Duration::from_secs(1), "{refusal:?}");
        assert_eq!(refusal.burst, 2);
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok());
        assert_eq!(limiter.read_hits(), 1);
        assert!(
            ClientLimiter::new(0, 0, TrustedProxies::default())
                .check(a)
                .is_ok()
        );
    }

    #[test]
    fn each_budget_is_spent_apart() {
        let limiter = ClientLimiter::new(1, 2, TrustedProxies::default()).with_media(1, 40);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..40 {
            assert!(limiter.check_budget(Budget::Media, a).is_ok());
        }
        assert!(limiter.check_budget(Budget::Media, a).is_err());
        assert!(
            limiter.check_budget(Budget::Reads, a).is_ok(),
            "avatars spent no reads"
        );
        assert!(limiter.check_budget(Budget::Reads, a).is_ok());
        assert!(limiter.check_budget(Budget::Reads, a).is_err());
        for _ in 0..100 {
            assert!(limiter.check_budget(Budget::Free, a).is_ok());
        }
        assert_eq!((limiter.read_hits(), limiter.media_hits()), (1, 1));
    }

    #[test]
    fn refusals_say_when_to_come_back_as_mastodon_does() {
        let refusal = Refusal {
            wait: Duration::from_millis(1500),
            burst: 50,
        };
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let response = refused("192.0.2.1".parse().unwrap(), refusal, now);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let header = |name: &str| response.headers()[name].to_str().expect("ascii").to_owned();
        assert_eq!(header("retry-after"), "2");
        assert_eq!(header("x-ratelimit-limit"), "50");
        assert_eq!(header("x-ratelimit-remaining"), "0");
        assert_eq!(header("x-ratelimit-reset"), "2027-01-15T08:00:01.500Z");
    }

    #[test]
    fn paths_draw_from_their_budget() {
        let get = |path| Budget::of(&Method::GET, path);
        assert_eq!(get("/actor"), Budget::Reads);
        assert_eq!(get("/topics/tag/coop"), Budget::Reads);
        assert_eq!(get("/topics"), Budget::Reads);
        assert_eq!(get("/api/plaza/v1/topics"), Budget::Reads);
        assert_eq!(
            Budget::of(&Method::HEAD, "/.well-known/webfinger"),
            Budget::Reads
        );
        assert_eq!(get("/search"), Budget::Reads);
        assert_eq!(get("/api/v2/search"), Budget::Reads);
        assert_eq!(get("/api/v1/trends/statuses"), Budget::Reads);
        for explore in [
            "/api/v1/directory",
            "/api/v1/accounts/lookup",
            "/api/v1/accounts/123",
            "/api/v1/accounts/123/statuses",
            "/api/v1/tags/bread",
            "/api/v1/statuses/123/context",
        ] {
            assert_eq!(get(explore), Budget::Reads, "{explore}");
        }
        assert_eq!(get("/"), Budget::Reads);
        assert_eq!(get(media_proxy::PATH), Budget::Media);
        assert_eq!(get("/static/plaza.css"), Budget::Free);
        assert_eq!(get(MISSING_AVATAR_PATH), Budget::Free);
        assert_eq!(Budget::of(&Method::POST, "/inbox"), Budget::Free);
        assert_eq!(get("/healthz"), Budget::Free);
        assert_eq!(get("/metrics"), Budget::Free);
        assert_eq!(get("/api/v1/admin/stats"), Budget::Free);
        assert_eq!(Budget::of(&Method::POST, SIGNUP_PATH), Budget::Signup);
        assert_eq!(get(SIGNUP_PATH), Budget::Free);
    }

    #[test]
    fn sign_ups_have_a_small_budget_of_their_own() {
        let limiter = ClientLimiter::new(0, 0, TrustedProxies::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..SIGNUP_BURST {
            assert!(limiter.check_budget(Budget::Signup, a).is_ok());
        }
        let refusal = limiter.check_budget(Budget::Signup, a).unwrap_err();
        assert!(refusal.wait > Duration::from_secs(1), "{refusal:?}");
        assert!(limiter.check_budget(Budget::Reads, a).is_ok());
    }
}
