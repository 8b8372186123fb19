//! The HTTP surface: which path does what. Handlers only translate between HTTP and the services.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ap::outgoing;
use crate::federation::inbox;
use crate::federation::net::ACTIVITY_JSON;
use crate::httpsig::SignedRequest;
use crate::state::AppState;
use crate::store::{Style, Subscriber};
use crate::web::openapi::ApiRoutes;
use crate::web::{
    admin, api, ip_limit, mastodon_accounts, mastodon_api, mastodon_tags, mastodon_trends, metrics,
    observability,
};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// All routes of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let router = Router::new()
        .route("/actor", get(actor))
        .route("/inbox", post(inbox_post))
        .route("/followers", get(followers))
        .route("/following", get(following))
        .route("/outbox", get(outbox))
        .route("/activities/{id}", get(published_activity))
        .route("/.well-known/webfinger", get(webfinger))
        .route("/topics/{kind}/{name}", get(topic))
        .route("/topics/{kind}/{name}/followers", get(topic_followers))
        .route("/topics/{kind}/{name}/outbox", get(topic_outbox))
        .route("/topics/{kind}/{name}/inbox", post(topic_inbox_post))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/2.1", get(nodeinfo))
        .route("/healthz", get(healthz))
        .route("/healthz/node", get(node_health))
        .route("/metrics", get(metrics))
        .nest(
            admin::PREFIX,
            admin::routes()
                .merge(crate::fasp::admin::routes())
                .merge(crate::topics::admin::routes()),
        )
        .nest(
            crate::fasp::PREFIX,
            crate::fasp::provider::routes(state.clone()),
        )
        .route(crate::fasp::PREFIX, get(crate::fasp::page::page))
        .route(
            crate::fasp::signup::PATH,
            axum::routing::post(crate::fasp::page::sign_up),
        )
        .merge(read_api())
        .merge(crate::web::pages::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.client_limiter.clone(),
            ip_limit::limit,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(30),
        ))
        .with_state(state);
    trailing_slash_tolerant(observability::with_request_ids(router))
}

/// Paths under this prefix are routed alike with and without a trailing slash.
const API_PREFIX: &str = "/api/";

/// Routes `/api/…/` as `/api/…`, as Rails (and so Mastodon) does: Mastodon.py asks for
/// `/api/v1/instance/` and `/api/v2/instance/`, and a 404 there leaves it asking again and again. The
/// rewrite wraps the whole router because a URI changed after routing (`Router::layer`) routes nothing.
/// Other paths keep their exact spelling (an inbox POST's path is part of what its sender signed).
fn trailing_slash_tolerant(router: Router) -> Router {
    Router::new().fallback_service(tower::util::MapRequest::new(router, trim_api_slash))
}

fn trim_api_slash(mut request: Request) -> Request {
    if let Some(uri) = without_trailing_slash(request.uri()) {
        *request.uri_mut() = uri;
    }
    request
}

/// The same URI without the trailing slashes of an API path, or `None` when it has none to trim.
fn without_trailing_slash(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with(API_PREFIX)
        || trimmed.len() == path.len()
        || trimmed.len() < API_PREFIX.len()
    {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Uri::from_parts(parts).ok()
}

/// The read APIs (Mastodon-compatible and native): open to browser clients of any origin (Phanpy, Elk
/// and web pages elsewhere read them with `fetch`), which need the `Link` header for paging.
fn read_api() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([header::LINK]);
    read_api_routes().into_router().layer(cors)
}

/// The read APIs' routes (Mastodon-compatible and native), which their OpenAPI document describes.
pub fn read_api_routes() -> ApiRoutes {
    mastodon_api::routes()
        .merge(mastodon_trends::routes())
        .merge(mastodon_accounts::routes())
        .merge(mastodon_tags::routes())
        .merge(api::routes())
}

fn activity_json(body: impl Into<axum::body::Body>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(ACTIVITY_JSON),
        )],
        body.into(),
    )
        .into_response()
}

async fn actor(State(state): Shared) -> Response {
    activity_json(state.actor_document.clone())
}

async fn inbox_post(
    State(state): Shared,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let signed = Signed::new(&state, &method, &uri, &headers, &body);
    let client = peer.map(|p| state.client_limiter.client_ip(p.0.0.ip(), &headers));
    let outcome = inbox::receive(&state, &signed.request(), client).await;
    answer_inbox(&state, outcome)
}

/// The parts of an inbox POST its signature covers.
struct Signed<'a> {
    method: &'a Method,
    path_and_query: &'a str,
    authority: &'a str,
    scheme: &'static str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl<'a> Signed<'a> {
    fn new(
        state: &'a AppState,
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        body: &'a Bytes,
    ) -> Signed<'a> {
        Signed {
            method,
            path_and_query: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/inbox"),
            // The signature must have been made for this relay (the Host header is checked against it).
            authority: &state.host,
            scheme: if state.base.starts_with("https:") {
                "https"
            } else {
                "http"
            },
            headers,
            body,
        }
    }

    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: self.method,
            path_and_query: self.path_and_query,
            authority: self.authority,
            scheme: self.scheme,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// Counts an inbox request's outcome and answers it: 202 with what became of it, or the error.
fn answer_inbox(state: &AppState, outcome: Result<inbox::Receipt>) -> Result<Response> {
    state.inbound.count(&outcome);
    let receipt = outcome?;
    tracing::debug!(outcome = %receipt.describe(), "inbox");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "status": receipt.describe() })),
    )
        .into_response())
}

/// The subscribed instances' actors (they follow the relay).
async fn followers(State(state): Shared) -> Result<Response> {
    subscriber_collection(&state, "followers", |_| true).await
}

/// The LitePub instance relay actors, which the relay follows back.
async fn following(State(state): Shared) -> Result<Response> {
    subscriber_collection(&state, "following", |s| s.style == Style::LitePub).await
}

async fn subscriber_collection(
    state: &AppState,
    name: &str,
    include: impl Fn(&Subscriber) -> bool,
) -> Result<Response> {
    let actors = state
        .store
        .subscribers()
        .await?
        .into_iter()
        .filter(|s| include(s))
        .map(|s| Value::String(s.actor_id))
        .collect();
    let id = format!("{}/{name}", state.base);
    Ok(activity_json(
        outgoing::ordered_collection(&id, actors).to_string(),
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
    before: Option<u64>,
}

/// Activities on one outbox page.
const OUTBOX_PAGE: usize = 20;

/// What the relay has published and still keeps, newest first, in pages.
async fn outbox(State(state): Shared, Query(q): Query<PageQuery>) -> Result<Response> {
    let id = format!("{}/outbox", state.base);
    if q.page.is_none() {
        let total = state.store.published_count().await?;
        return Ok(activity_json(
            outgoing::paged_collection(&id, total).to_string(),
        ));
    }
    let page = state.store.outbox_page(q.before, OUTBOX_PAGE).await?;
    let items = page
        .items
        .iter()
        .filter_map(|body| serde_json::from_slice::<Value>(body).ok())
        .collect();
    let page_id = outgoing::page_id(&id, q.before);
    Ok(activity_json(
        outgoing::collection_page(&id, &page_id, items, page.next).to_string(),
    ))
}

/// An activity the relay sent, at its id, while the log keeps it.
async fn published_activity(State(state): Shared, Path(id): Path<String>) -> Result<Response> {
    let url = format!("{}/activities/{id}", state.base);
    match state.store.published(&url).await? {
        Some(body) => Ok(activity_json(body)),
        None => Err(Error::NotFound(url)),
    }
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

async fn webfinger(State(state): Shared, Query(q): Query<WebfingerQuery>) -> Result<Response> {
    let resource = q
        .resource
        .ok_or_else(|| Error::BadRequest("missing resource parameter".into()))?;
    let acct = format!("acct:relay@{}", state.host);
    let body = if resource.eq_ignore_ascii_case(&acct) || resource == state.relay_actor_id {
        outgoing::webfinger(&state.base, &state.host)
    } else if let Some(topic) = crate::web::topics::webfinger(&state, &resource).await? {
        topic
    } else {
        return Err(Error::NotFound(resource));
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jrd+json"),
        )],
        body.to_string(),
    )
        .into_response())
}

/// A topic actor, or its page for a browser.
async fn topic(
    State(state): Shared,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    Ok(
        match crate::web::topics::topic(&state, &kind, &name, &headers).await? {
            crate::web::topics::TopicAnswer::Page(page) => {
                crate::web::pages::html(StatusCode::OK, page.as_ref())
            }
            crate::web::topics::TopicAnswer::Actor(doc) => activity_json(doc.to_string()),
        },
    )
}

/// A topic's outbox: the posts it carried, newest first.
async fn topic_outbox(
    State(state): Shared,
    Path((kind, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let page = q.page.is_some().then_some(q.before);
    let doc = crate::web::topics::outbox(&state, &kind, &name, page, OUTBOX_PAGE).await?;
    Ok(activity_json(doc.to_string()))
}

/// `POST /topics/{kind}/{name}/inbox`: where a topic is followed.
async fn topic_inbox_post(
    State(state): Shared,
    Path((kind, name)): Path<(String, String)>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let topic = crate::web::topics::offered(&state, &kind, &name)?;
    let signed = Signed::new(&state, &method, &uri, &headers, &body);
    let client = peer.map(|p| state.client_limiter.client_ip(p.0.0.ip(), &headers));
    let outcome = crate::topics::inbox::receive(&state, &topic, &signed.request(), client).await;
    answer_inbox(&state, outcome)
}

/// A topic's followers collection: the count only.
async fn topic_followers(
    State(state): Shared,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Response> {
    let doc = crate::web::topics::followers(&state, &kind, &name).await?;
    Ok(activity_json(doc.to_string()))
}

async fn nodeinfo_links(State(state): Shared) -> axum::Json<Value> {
    axum::Json(outgoing::nodeinfo_links(&state.base))
}

async fn nodeinfo(State(state): Shared) -> Result<Response> {
    let subscribers = state.store.subscriber_count();
    let body = outgoing::nodeinfo(
        &state.base,
        env!("CARGO_PKG_VERSION"),
        1,
        false,
        json!({ "subscribers": subscribers, "nodeName": state.config.relay_name }),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"",
            ),
        )],
        body.to_string(),
    )
        .into_response())
}

/// `ok`, or 503 with the reason when the store cannot take the writes inbox POSTs need.
async fn healthz(State(state): Shared) -> Result<&'static str> {
    state.store.check().await?;
    Ok("ok")
}

/// This node among the others: its id, its leases and its delivery lag (JSON), for `plaza health`.
async fn node_health(State(state): Shared) -> axum::Json<serde_json::Value> {
    axum::Json(state.node_health())
}

/// `GET /metrics`: Prometheus text. Always answers: with the store out of reach it says
/// `plaza_store_up 0` and gives the node's own series.
async fn metrics(State(state): Shared) -> Response {
    let figures = match metrics::StoreFigures::read(&state).await {
        Ok(figures) => Some(figures),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store did not answer; its series are left out");
            None
        }
    };
    let stats = &state.engine.stats;
    let head = state.store.tail().head();
    let mut text = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: u64| {
        metrics::series(&mut text, name, kind, help, &[("", value)]);
    };
    if let Some(figures) = &figures {
        put(
            "plaza_subscribers",
            "gauge",
            "Instances subscribed to the relay.",
            figures.subscribers.len() as u64,
        );
    }
    put(
        "plaza_log_head",
        "gauge",
        "Highest sequence in the activity log.",
        head,
    );
    put(
        "plaza_delivery_workers",
        "gauge",
        "Running delivery workers.",
        state.engine.worker_count() as u64,
    );
    put(
        "plaza_subscribers_unreachable",
        "gauge",
        "Subscribers whose last deliveries all failed (still probed with backoff).",
        state.engine.unreachable_count() as u64,
    );
    put(
        "plaza_deliveries_total",
        "counter",
        "Deliveries accepted by receivers.",
        stats.delivered.load(Ordering::Relaxed),
    );
    put(
        "plaza_delivery_retries_total",
        "counter",
        "Failed delivery attempts that will be retried.",
        stats.retried.load(Ordering::Relaxed),
    );
    put(
        "plaza_delivery_refused_total",
        "counter",
        "Deliveries refused for good by receivers.",
        stats.refused.load(Ordering::Relaxed),
    );
    put(
        "plaza_delivery_pruned_skips_total",
        "counter",
        "Entries pruned before a lagging subscriber got them.",
        stats.pruned_skips.load(Ordering::Relaxed),
    );
    put(
        "plaza_delivery_denied_skips_total",
        "counter",
        "Entries skipped after receivers answered 401/403 to every attempt.",
        stats.denied_skips.load(Ordering::Relaxed),
    );
    if let Some(figures) = &figures {
        put(
            "plaza_subscriber_lag_entries",
            "gauge",
            "Sum over subscribers of persisted cursor lag behind the log head.",
            figures
                .subscribers
                .iter()
                .map(|s| head.saturating_sub(s.cursor))
                .sum(),
        );
    }
    put(
        "plaza_connections_refused_total",
        "counter",
        "Connections closed at once because their client IP held max_connections_per_ip already.",
        state.connections.refused(),
    );
    metrics::render(&state, figures.as_ref(), &mut text);
    metrics::render_topics(&state, figures.as_ref(), &mut text);
    metrics::render_store(&state, figures.is_some(), &mut text);
    state.cluster.render_metrics(&mut text);
    state.fasp.render_metrics(&mut text);
    if let Some(indexer) = &state.indexer {
        text.push_str(&indexer.render_metrics());
    }
    state.search.render_metrics(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed(uri: &str) -> Option<String> {
        without_trailing_slash(&uri.parse().expect("uri")).map(|u| u.to_string())
    }

    #[test]
    fn api_paths_lose_their_trailing_slash_and_keep_their_query() {
        assert_eq!(
            trimmed("/api/v2/instance/").as_deref(),
            Some("/api/v2/instance")
        );
        assert_eq!(
            trimmed("/api/v1/timelines/tag/coop//?limit=2&max_id=9").as_deref(),
            Some("/api/v1/timelines/tag/coop?limit=2&max_id=9")
        );
        assert_eq!(
            trimmed("http://relay.example/api/v1/instance/").as_deref(),
            Some("http://relay.example/api/v1/instance")
        );
        assert_eq!(trimmed("/api/v2/instance"), None);
        assert_eq!(trimmed("/inbox/"), None, "signed paths are left alone");
        assert_eq!(trimmed("/"), None);
        assert_eq!(trimmed("/api/"), None);
    }
}
