//! The HTTP surface: which path does what. Handlers only translate between HTTP and the services.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ap::outgoing;
use crate::app::AppState;
use crate::federation::inbox;
use crate::federation::net::ACTIVITY_JSON;
use crate::httpsig::SignedRequest;
use crate::web::{admin, api, mastodon_api};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// All routes of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/actor", get(actor))
        .route("/inbox", post(inbox_post))
        .route("/followers", get(collection))
        .route("/following", get(collection))
        .route("/outbox", get(collection))
        .route("/.well-known/webfinger", get(webfinger))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/2.1", get(nodeinfo))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/admin/subscribers", get(admin_subscribers))
        .route(
            "/admin/subscribers/{instance}",
            axum::routing::delete(admin_remove),
        )
        .route("/admin/blocks", get(admin_blocks))
        .route(
            "/admin/blocks/{domain}",
            axum::routing::delete(admin_unblock),
        )
        .merge(read_api())
        .merge(crate::web::pages::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(30),
        ))
        .with_state(state)
}

/// The read APIs (Mastodon-compatible and native): open to browser clients of any origin (Phanpy, Elk
/// and web pages elsewhere read them with `fetch`), which need the `Link` header for paging.
fn read_api() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([header::LINK]);
    Router::new()
        .merge(mastodon_api::routes())
        .merge(api::routes())
        .layer(cors)
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
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let authority = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| state.host.clone());
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/inbox");
    let scheme = if state.base.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let request = SignedRequest {
        method: &method,
        path_and_query,
        authority: &authority,
        scheme,
        headers: &headers,
        body: &body,
    };
    let receipt = inbox::receive(&state, &request).await?;
    tracing::debug!(outcome = %receipt.describe(), "inbox");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "status": receipt.describe() })),
    )
        .into_response())
}

async fn collection(State(state): Shared, uri: Uri) -> Response {
    let id = format!("{}{}", state.base, uri.path());
    activity_json(
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": id,
            "type": "OrderedCollection",
            "totalItems": 0,
            "orderedItems": []
        })
        .to_string(),
    )
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
    if !resource.eq_ignore_ascii_case(&acct) && resource != state.relay_actor_id {
        return Err(Error::NotFound(resource));
    }
    let body = outgoing::webfinger(&state.base, &state.host);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jrd+json"),
        )],
        body.to_string(),
    )
        .into_response())
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

async fn healthz(State(state): Shared) -> Result<&'static str> {
    state.store.head().await?;
    Ok("ok")
}

async fn metrics(State(state): Shared) -> Result<Response> {
    let subscribers = state.store.subscribers().await?;
    let stats = &state.engine.stats;
    let lag: u64 = subscribers
        .iter()
        .map(|s| state.store.tail().head().saturating_sub(s.cursor))
        .sum();
    let mut text = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: u64| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    put(
        "plaza_subscribers",
        "gauge",
        "Instances subscribed to the relay.",
        subscribers.len() as u64,
    );
    put(
        "plaza_log_head",
        "gauge",
        "Highest sequence in the activity log.",
        state.store.tail().head(),
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
        "plaza_subscriber_lag_entries",
        "gauge",
        "Sum over subscribers of persisted cursor lag behind the log head.",
        lag,
    );
    if let Some(indexer) = &state.indexer {
        text.push_str(&indexer.render_metrics());
    }
    state.search.render_metrics(&mut text);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response())
}

async fn admin_subscribers(State(state): Shared, headers: HeaderMap) -> Result<axum::Json<Value>> {
    admin::authorize(&state, &headers)?;
    Ok(axum::Json(
        json!({ "subscribers": admin::subscribers(&state).await? }),
    ))
}

async fn admin_remove(
    State(state): Shared,
    headers: HeaderMap,
    Path(instance): Path<String>,
) -> Result<axum::Json<Value>> {
    admin::authorize(&state, &headers)?;
    if !admin::remove(&state, &instance).await? {
        return Err(Error::NotFound(format!(
            "instance {instance} is not subscribed"
        )));
    }
    Ok(axum::Json(json!({ "removed": instance })))
}

async fn admin_blocks(State(state): Shared, headers: HeaderMap) -> Result<axum::Json<Value>> {
    admin::authorize(&state, &headers)?;
    Ok(axum::Json(
        json!({ "blocks": admin::blocks(&state).await? }),
    ))
}

async fn admin_unblock(
    State(state): Shared,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> Result<axum::Json<Value>> {
    admin::authorize(&state, &headers)?;
    if !admin::unblock(&state, &domain).await? {
        return Err(Error::NotFound(format!("instance {domain} is not blocked")));
    }
    Ok(axum::Json(json!({ "unblocked": domain })))
}
