//! The provider endpoints under [`super::PREFIX`], behind [`super::guard::guard`]: `provider_info`,
//! capability activation (`data_sharing`'s subscribes, or cancels, at the server in the background),
//! `account_search`, `follow_recommendation` and `data_sharing` announcements. Handlers are thin: the guard authenticated the
//! caller and will sign the answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::capabilities::{
    self, ACCOUNT_SEARCH, Capability, DATA_SHARING, FOLLOW_RECOMMENDATION, OFFERED, TRENDS,
};
use super::guard::{Caller, guard};
use super::share_queue::{Accepted, RETRY_AFTER_SECS};
use super::subscriptions;
use super::trends;
use super::{account_search, follow_recommendation};
use crate::state::AppState;
use crate::store::fasp::Activation;
use crate::web::trends::{Kind, trending};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// The provider routes (to nest under [`super::PREFIX`]), every one behind the guard.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/provider_info", get(provider_info))
        .route(
            "/capabilities/{id}/{major}/activation",
            post(activate).delete(deactivate),
        )
        .route("/account_search/v0/search", get(search))
        .route("/follow_recommendation/v0/accounts", get(recommend))
        .route("/data_sharing/v0/announcements", post(announce))
        .route("/trends/v0/content", get(trending_content))
        .route("/trends/v0/hashtags", get(trending_hashtags))
        .route("/trends/v0/links", get(trending_links))
        .layer(axum::middleware::from_fn_with_state(state, guard))
}

/// The `provider_info` document: what this provider is and offers.
pub fn provider_info_document(state: &AppState) -> Value {
    let config = &state.config;
    let mut info = json!({
        "name": config.relay_name,
        "privacyPolicy": [{ "url": format!("{}{}#privacy", state.base, super::PREFIX), "language": "en" }],
        "capabilities": OFFERED
            .iter()
            .map(|c| json!({ "id": c.id, "version": c.version() }))
            .collect::<Vec<_>>(),
    });
    if !config.fasp_contact_email.is_empty() {
        info["contactEmail"] = json!(config.fasp_contact_email);
    }
    if !config.fasp_fediverse_account.is_empty() {
        info["fediverseAccount"] = json!(config.fasp_fediverse_account);
    }
    info
}

async fn provider_info(State(state): Shared) -> Json<Value> {
    Json(provider_info_document(&state))
}

/// The activation `id`/`major` of the caller, when Plaza offers that capability version.
fn activation(caller: &Caller, id: &str, major: &str) -> Result<Activation> {
    let major: u32 = major
        .trim_start_matches('v')
        .parse()
        .map_err(|_| Error::NotFound(format!("capability {id} version {major}")))?;
    let capability = capabilities::offered(id, major)
        .ok_or_else(|| Error::NotFound(format!("capability {id} v{major} is not offered")))?;
    Ok(Activation {
        server_id: caller.0.server.server_id.clone(),
        capability: capability.id.to_string(),
        major,
    })
}

async fn activate(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((id, major)): Path<(String, String)>,
) -> Result<StatusCode> {
    let a = activation(&caller, &id, &major)?;
    tracing::info!(server_id = %a.server_id, capability = %a.capability, major = a.major, "FASP capability activated");
    let data_sharing = is(&a, DATA_SHARING);
    state.fasp.registry.set_active(a, true).await?;
    if data_sharing {
        subscriptions::spawn_subscribe(state.clone(), caller.0.clone());
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn deactivate(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((id, major)): Path<(String, String)>,
) -> Result<StatusCode> {
    let a = activation(&caller, &id, &major)?;
    tracing::info!(server_id = %a.server_id, capability = %a.capability, major = a.major, "FASP capability deactivated");
    let data_sharing = is(&a, DATA_SHARING);
    state.fasp.registry.set_active(a, false).await?;
    if data_sharing {
        subscriptions::cancel(&state, caller.0.clone()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn is(activation: &Activation, capability: Capability) -> bool {
    activation.capability == capability.id && activation.major == capability.major
}

/// [`Error::CapabilityInactive`] unless the caller activated `capability`.
fn require_active(state: &AppState, caller: &Caller, capability: Capability) -> Result<()> {
    let server_id = &caller.0.server.server_id;
    if state
        .fasp
        .registry
        .is_active(server_id, capability.id, capability.major)
    {
        Ok(())
    } else {
        Err(Error::CapabilityInactive(format!(
            "{} v{}",
            capability.id, capability.major
        )))
    }
}

/// `data_sharing` announcements: checked, queued, answered 204 (422 malformed, 429 queue full).
async fn announce(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response> {
    require_active(&state, &caller, DATA_SHARING)?;
    let server_id = &caller.0.server.server_id;
    let bound = state.config.fasp_share_queue_per_server;
    match state
        .fasp
        .shares
        .accept(&state.store, server_id, &body, bound)
        .await?
    {
        Accepted::Queued(a) => {
            tracing::debug!(%server_id, uris = a.uris.len(), event = a.event.as_str(), "FASP announcement queued");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Accepted::Full => {
            tracing::info!(%server_id, "FASP announcement refused: the server's share queue is full");
            let mut response =
                Error::RateLimited(format!("{server_id}'s share queue")).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            Ok(response)
        }
    }
}

async fn search(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Query(params): Query<account_search::Params>,
) -> Result<Response> {
    require_active(&state, &caller, ACCOUNT_SEARCH)?;
    let request = account_search::request(&params)?;
    let asked = request.clone();
    let page = state.search_index(move |i| i.directory(&asked)).await?;
    let uris: Vec<&str> = page.hits.iter().map(|h| h.account.uri.as_str()).collect();
    let mut response = Json(uris).into_response();
    if let Some(offset) = account_search::next_offset(&request, page.hits.len(), page.total) {
        let endpoint = format!("{}{}/account_search/v0/search", state.base, super::PREFIX);
        let link = account_search::next_link(&endpoint, &request, offset);
        if let Ok(link) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// `trends` v0: what is trending of `kind`, in the specification's shape.
async fn trends_of(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    params: &trends::Params,
) -> Result<Json<Value>> {
    require_active(state, caller, TRENDS)?;
    let request = trends::request(params)?;
    let found = trending(state, kind, request).await?;
    Ok(Json(trends::answer(kind, &found)))
}

async fn trending_content(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Query(params): Query<trends::Params>,
) -> Result<Json<Value>> {
    trends_of(&state, &caller, Kind::Posts, &params).await
}

async fn trending_hashtags(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Query(params): Query<trends::Params>,
) -> Result<Json<Value>> {
    trends_of(&state, &caller, Kind::Tags, &params).await
}

async fn trending_links(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Query(params): Query<trends::Params>,
) -> Result<Json<Value>> {
    trends_of(&state, &caller, Kind::Links, &params).await
}

/// `follow_recommendation`: the actor URIs of the accounts recommended, best first.
async fn recommend(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Query(params): Query<follow_recommendation::Params>,
) -> Result<Json<Vec<String>>> {
    require_active(&state, &caller, FOLLOW_RECOMMENDATION)?;
    let request = follow_recommendation::request(&params)?;
    let found = state
        .search_index(move |i| i.recommend_follows(&request))
        .await?;
    Ok(Json(found.into_iter().map(|r| r.uri).collect()))
}
