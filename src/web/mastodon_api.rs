//! The Mastodon-compatible read API over the discovery index: `GET /api/v2/search`, the public and
//! hashtag timelines with Mastodon's `Link` pagination, single statuses, `GET /api/v1|v2/instance`
//! describing the relay, its peers and its (empty) custom emojis, so that a Mastodon client or library pointed at the relay can search and browse
//! what it indexed. Parameters are read and checked here (plain functions, tested without a server);
//! the index answers through [`crate::web::search`]; [`crate::web::mastodon_entities`] shapes the JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use plaza_index::{Page, PostHit, SearchRequest, Sort, TimelineRequest};
use serde_json::json;

use crate::state::AppState;
use crate::web::mastodon_entities::{
    self as entities, MISSING_AVATAR_PATH, MISSING_HEADER_PATH, Relay, RelayFacts, SearchResults,
};
use crate::web::openapi::{ApiRoutes, IndexErrors, LookupErrors, ReadErrors, SearchErrors};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;
/// Most results per page (Mastodon's own limit).
pub const MAX_LIMIT: usize = 40;

/// The Mastodon-compatible routes.
pub fn routes() -> ApiRoutes {
    ApiRoutes::default()
        .get("/api/v2/search", search)
        .get("/api/v1/timelines/public", public_timeline)
        .get("/api/v1/timelines/tag/{hashtag}", tag_timeline)
        .get("/api/v1/statuses/{id}", status)
        .get("/api/v1/statuses/{id}/context", status_context)
        .get("/api/v1/instance", instance_v1)
        .get("/api/v2/instance", instance_v2)
        .get("/api/v1/instance/peers", instance_peers)
        .get("/api/v1/custom_emojis", custom_emojis)
        .undocumented(MISSING_AVATAR_PATH, missing_picture)
        .undocumented(MISSING_HEADER_PATH, missing_picture)
}

/// Query parameters by name (the last value wins), read leniently: a client's unknown parameters are
/// ignored, and a malformed value is reported by the parameter's own check, as JSON.
pub fn params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `limit`: absent means [`DEFAULT_LIMIT`], more than [`MAX_LIMIT`] means the maximum (as Mastodon
/// does), 0 or junk is refused.
pub fn limit(params: &HashMap<String, String>) -> Result<usize> {
    limit_within(params, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `limit` with an endpoint's own default and maximum (the directory's are 40 and 80).
pub fn limit_within(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize> {
    match params.get("limit").map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => Err(Error::BadRequest(format!(
                "limit must be a whole number from 1 to {max}, not {text:?}"
            ))),
            Ok(n) => Ok(n.min(max)),
        },
    }
}

/// A status id parameter (`max_id`, `min_id`, `since_id`, `offset`…): a decimal number, or absent.
pub fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>> {
    match params.get(name).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
            Error::BadRequest(format!(
                "{name} must be a status id (a number), not {text:?}"
            ))
        }),
    }
}

/// A boolean parameter as Mastodon reads them (`true`, `1`, `on`…).
pub fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "on" | "yes" | "t"
        )
    })
}

/// What `type` of `/api/v2/search` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Accounts.
    pub accounts: bool,
    /// Statuses.
    pub statuses: bool,
    /// Hashtags.
    pub hashtags: bool,
}

/// Reads `type`: absent means everything.
pub fn wanted(params: &HashMap<String, String>) -> Result<Wanted> {
    let only = |accounts, statuses, hashtags| Wanted {
        accounts,
        statuses,
        hashtags,
    };
    match params.get("type").map(|s| s.trim()) {
        None | Some("") => Ok(only(true, true, true)),
        Some("accounts") => Ok(only(true, false, false)),
        Some("statuses") => Ok(only(false, true, false)),
        Some("hashtags") => Ok(only(false, false, true)),
        Some(other) => Err(Error::BadRequest(format!(
            "type must be accounts, statuses or hashtags, not {other:?}"
        ))),
    }
}

/// The hashtag prefix a search text stands for: one word, with or without `#`.
pub fn hashtag_prefix(q: &str) -> Option<String> {
    let q = q.trim();
    if q.is_empty() || q.contains(char::is_whitespace) || q.contains(':') {
        return None;
    }
    plaza_index::document::normalize_tag(q)
}

/// A page of a timeline as asked by Mastodon's paging parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePage {
    /// Posts per page.
    pub limit: usize,
    /// Older than this (`max_id`).
    pub max_key: Option<u64>,
    /// Newer than this (`min_id`, or `since_id`).
    pub min_key: Option<u64>,
    /// The page just after `min_id` rather than the newest posts above `since_id`.
    pub oldest_first: bool,
}

/// Reads `limit`, `max_id`, `min_id` and `since_id` (`min_id` wins over `since_id`, as in Mastodon).
pub fn timeline_page(params: &HashMap<String, String>) -> Result<TimelinePage> {
    let min_id = number(params, "min_id")?;
    let since_id = number(params, "since_id")?;
    Ok(TimelinePage {
        limit: limit(params)?,
        max_key: number(params, "max_id")?,
        min_key: min_id.or(since_id),
        oldest_first: min_id.is_some(),
    })
}

/// Mastodon's `Link` header for a page of statuses whose ids run from `newest` to `oldest`: `next`
/// pages to older posts (`max_id`), `prev` to newer ones (`min_id`). The other parameters of the
/// request (`limit`, `only_media`…) are kept; the paging ones are replaced.
pub fn link_header(
    url: &str,
    params: &HashMap<String, String>,
    newest: &str,
    oldest: &str,
) -> String {
    let mut kept: Vec<(&String, &String)> = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "max_id" | "min_id" | "since_id"))
        .collect();
    kept.sort();
    let with = |name: &str, id: &str| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        query.append_pair(name, id);
        format!("{url}?{}", query.finish())
    };
    format!(
        "<{}>; rel=\"next\", <{}>; rel=\"prev\"",
        with("max_id", oldest),
        with("min_id", newest)
    )
}

pub(crate) fn relay(state: &AppState) -> Relay<'_> {
    Relay { base: &state.base }
}

/// Statuses of a page, newest first.
pub(crate) fn statuses(state: &AppState, hits: &[PostHit]) -> Vec<entities::Status> {
    hits.iter()
        .map(|hit| entities::status(relay(state), hit))
        .collect()
}

/// `account_id`: an account id (derived from the actor id, so any indexed account's works), or an
/// actor id.
fn author(params: &HashMap<String, String>) -> Result<Option<u64>> {
    let Some(id) = params
        .get("account_id")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if id.starts_with("https://") || id.starts_with("http://") {
        return Ok(Some(plaza_index::account_id(id)));
    }
    id.parse::<u64>()
        .map(Some)
        .map_err(|_| Error::BadRequest(format!("account_id {id:?} is not an account id")))
}

/// What `/api/v2/search` was asked, read and checked.
struct SearchAsk {
    q: String,
    wanted: Wanted,
    limit: usize,
    offset: usize,
    min_key: Option<u64>,
    max_key: Option<u64>,
    author: Option<u64>,
}

fn search_ask(params: &HashMap<String, String>) -> Result<SearchAsk> {
    let q = params
        .get("q")
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| Error::BadRequest("q is required: the text to search for".into()))?;
    Ok(SearchAsk {
        q,
        wanted: wanted(params)?,
        limit: limit(params)?,
        offset: number(params, "offset")?.unwrap_or(0) as usize,
        min_key: number(params, "min_id")?,
        max_key: number(params, "max_id")?,
        author: author(params)?,
    })
}

/// A search text that is one `http(s)` address: what a person pastes to open a post or a profile.
pub fn as_address(q: &str) -> Option<String> {
    let url = url::Url::parse(q.trim()).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.to_string())
}

/// Search (Mastodon)
///
/// Mastodon's `GET /api/v2/search`: statuses, accounts and hashtags matching `q` in Plaza's query
/// language; a pasted link finds the post or profile at that address.
#[utoipa::path(
    get,
    path = "/api/v2/search",
    operation_id = "mastodon_search",
    tag = "mastodon",
    params(
        ("q" = String, Query, description = "The query (Plaza's query language), or a link"),
        ("type" = Option<String>, Query, description = "accounts, statuses or hashtags (default: all)"),
        ("limit" = Option<u32>, Query, description = "Results per kind, at most 40 (default 20)"),
        ("offset" = Option<u32>, Query, description = "Results to skip"),
        ("min_id" = Option<String>, Query, description = "Only statuses newer than this id"),
        ("max_id" = Option<String>, Query, description = "Only statuses older than this id"),
        ("account_id" = Option<String>, Query, description = "Only statuses by this account"),
        ("resolve" = Option<bool>, Query, description = "Ignored: the relay never fetches for a search")
    ),
    responses(
        (status = 200, description = "Mastodon Search results", body = SearchResults),
        SearchErrors
    )
)]
pub(crate) async fn search(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<SearchResults>> {
    let ask = search_ask(&params(raw.as_deref()))?;
    if let Some(address) = as_address(&ask.q) {
        return look_up(&state, &ask, address).await.map(axum::Json);
    }
    let mut results = SearchResults::default();
    if ask.wanted.statuses {
        results.statuses = find_statuses(&state, &ask).await?;
    }
    if ask.wanted.accounts && ask.author.is_none() {
        match find_accounts(&state, &ask).await {
            Ok(accounts) => results.accounts = accounts,
            // A query of post operators (`has:media`) has no accounts; alone, it is a mistake.
            Err(Error::InvalidQuery(_)) if ask.wanted.statuses => {}
            Err(e) => return Err(e),
        }
    }
    if ask.wanted.hashtags
        && ask.author.is_none()
        && let Some(prefix) = hashtag_prefix(&ask.q)
    {
        let (offset, limit) = (ask.offset, ask.limit);
        let tags = state
            .search_index(move |i| i.search_tags(&prefix, offset.saturating_add(limit)))
            .await?;
        results.hashtags = tags
            .tags
            .iter()
            .skip(offset)
            .map(|t| entities::tag(relay(&state), t))
            .collect();
    }
    Ok(axum::Json(results))
}

async fn find_statuses(state: &AppState, ask: &SearchAsk) -> Result<Vec<entities::Status>> {
    let request = SearchRequest {
        q: ask.q.clone(),
        // Paging by id only makes sense in id (date) order.
        sort: if ask.min_key.is_some() || ask.max_key.is_some() {
            Sort::Newest
        } else {
            Sort::Relevance
        },
        limit: ask.limit,
        offset: ask.offset,
        min_key: ask.min_key,
        max_key: ask.max_key,
        account: ask.author,
        ..SearchRequest::default()
    };
    let page = state
        .search_index(move |i| i.search_posts(&request))
        .await?;
    Ok(statuses(state, &page.hits))
}

fn accounts(state: &AppState, views: &[&plaza_index::AccountView]) -> Vec<entities::Account> {
    views
        .iter()
        .map(|view| entities::account(relay(state), view))
        .collect()
}

async fn find_accounts(state: &AppState, ask: &SearchAsk) -> Result<Vec<entities::Account>> {
    let request = SearchRequest {
        q: ask.q.clone(),
        limit: ask.limit,
        offset: ask.offset,
        ..SearchRequest::default()
    };
    let page = state
        .search_index(move |i| i.search_profiles(&request))
        .await?;
    let views: Vec<_> = page.hits.iter().map(|hit| &hit.account).collect();
    Ok(accounts(state, &views))
}

/// The post or the listed profile with this address, as Mastodon's search does with a pasted link.
async fn look_up(state: &AppState, ask: &SearchAsk, address: String) -> Result<SearchResults> {
    let mut results = SearchResults::default();
    if !ask.wanted.statuses && !ask.wanted.accounts {
        return Ok(results);
    }
    // An address is a post's or an actor's, not both; the post is looked up once, first, because
    // `Index::account` must not be asked about a post's id (it reads whatever document has that id as
    // an account).
    let id = address.clone();
    match state.search_index(move |i| i.post(&id)).await? {
        Some(hit) if ask.wanted.statuses => {
            results.statuses = statuses(state, std::slice::from_ref(&hit));
        }
        Some(_) => {}
        None if ask.wanted.accounts => {
            let found = state.search_index(move |i| i.account(&address)).await?;
            // Only profiles listed in the directory are found by their address too.
            if let Some(view) = found.filter(|v| v.discoverable) {
                results.accounts = accounts(state, &[&view]);
            }
        }
        None => {}
    }
    Ok(results)
}

/// Answers a timeline page with its `Link` header.
pub(crate) fn timeline_response(
    state: &AppState,
    path: &str,
    params: &HashMap<String, String>,
    page: TimelinePage,
    found: Page<PostHit>,
) -> Response {
    let mut hits = found.hits;
    if page.oldest_first {
        hits.reverse();
    }
    let list = statuses(state, &hits);
    let link = match (list.first(), list.last()) {
        (Some(newest), Some(oldest)) => Some(link_header(
            &format!("{}{path}", state.base),
            params,
            &newest.id,
            &oldest.id,
        )),
        _ => None,
    };
    let mut response = axum::Json(list).into_response();
    if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// The newest indexed posts (of a hashtag, with media only) for a timeline page.
async fn timeline(
    state: &AppState,
    tag: Option<String>,
    params: &HashMap<String, String>,
    page: &TimelinePage,
) -> Result<Page<PostHit>> {
    if flag(params, "only_media") {
        let q = match &tag {
            Some(tag) => format!("#{tag} has:media"),
            None => "has:media".to_owned(),
        };
        let request = SearchRequest {
            q,
            sort: if page.oldest_first {
                Sort::Oldest
            } else {
                Sort::Newest
            },
            limit: page.limit,
            min_key: page.min_key,
            max_key: page.max_key,
            ..SearchRequest::default()
        };
        return state.search_index(move |i| i.search_posts(&request)).await;
    }
    let request = TimelineRequest {
        tag,
        limit: page.limit,
        min_key: page.min_key,
        max_key: page.max_key,
        oldest_first: page.oldest_first,
        ..TimelineRequest::default()
    };
    state.search_index(move |i| i.timeline(&request)).await
}

/// Public timeline (Mastodon)
///
/// The newest indexed statuses, paged by the `Link` header (`next`: older, `prev`: newer).
#[utoipa::path(
    get,
    path = "/api/v1/timelines/public",
    operation_id = "mastodon_public_timeline",
    tag = "mastodon",
    params(
        ("limit" = Option<u32>, Query, description = "Statuses per page, at most 40 (default 20)"),
        ("max_id" = Option<String>, Query, description = "Older than this id"),
        ("since_id" = Option<String>, Query, description = "Newer than this id (the newest page)"),
        ("min_id" = Option<String>, Query, description = "Newer than this id (the page just after it)"),
        ("only_media" = Option<bool>, Query, description = "Only statuses with media")
    ),
    responses(
        (status = 200, description = "Statuses, newest first", body = [entities::Status]),
        SearchErrors
    )
)]
pub(crate) async fn public_timeline(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = params(raw.as_deref());
    let page = timeline_page(&params)?;
    let found = timeline(&state, None, &params, &page).await?;
    Ok(timeline_response(
        &state,
        "/api/v1/timelines/public",
        &params,
        page,
        found,
    ))
}

/// Hashtag timeline (Mastodon)
///
/// The newest indexed statuses with a hashtag, paged by the `Link` header.
#[utoipa::path(
    get,
    path = "/api/v1/timelines/tag/{hashtag}",
    operation_id = "mastodon_tag_timeline",
    tag = "mastodon",
    params(
        ("hashtag" = String, Path, description = "The hashtag, without #"),
        ("limit" = Option<u32>, Query, description = "Statuses per page, at most 40 (default 20)"),
        ("max_id" = Option<String>, Query, description = "Older than this id"),
        ("since_id" = Option<String>, Query, description = "Newer than this id (the newest page)"),
        ("min_id" = Option<String>, Query, description = "Newer than this id (the page just after it)"),
        ("only_media" = Option<bool>, Query, description = "Only statuses with media")
    ),
    responses(
        (status = 200, description = "Statuses, newest first", body = [entities::Status]),
        SearchErrors
    )
)]
pub(crate) async fn tag_timeline(
    State(state): Shared,
    Path(hashtag): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = params(raw.as_deref());
    let page = timeline_page(&params)?;
    let tag = plaza_index::document::normalize_tag(&hashtag)
        .ok_or_else(|| Error::BadRequest(format!("{hashtag:?} is not a hashtag")))?;
    let path = format!(
        "/api/v1/timelines/tag/{}",
        url::form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
    );
    let found = timeline(&state, Some(tag), &params, &page).await?;
    Ok(timeline_response(&state, &path, &params, page, found))
}

/// One status (Mastodon)
#[utoipa::path(
    get,
    path = "/api/v1/statuses/{id}",
    operation_id = "mastodon_status",
    tag = "mastodon",
    params(("id" = String, Path, description = "The status id")),
    responses(
        (status = 200, description = "The status", body = entities::Status),
        LookupErrors
    )
)]
pub(crate) async fn status(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<entities::Status>> {
    let key = id
        .parse::<u64>()
        .map_err(|_| Error::NotFound(format!("status {id}")))?;
    let hit = state
        .search_index(move |i| i.post_by_key(key))
        .await?
        .ok_or_else(|| Error::NotFound(format!("status {id}")))?;
    Ok(axum::Json(
        statuses(&state, std::slice::from_ref(&hit)).remove(0),
    ))
}

/// Most ancestors a status's context lists: a thread deeper than this shows its newest part.
pub const MAX_ANCESTORS: usize = 40;

/// A status's thread (Mastodon)
///
/// `ancestors`: the indexed posts this one replies to, up through `inReplyTo` (root first, at most
/// 40, stopping at the first post not indexed). `descendants` is empty: replies are not looked for.
#[utoipa::path(
    get,
    path = "/api/v1/statuses/{id}/context",
    operation_id = "mastodon_status_context",
    tag = "mastodon",
    params(("id" = String, Path, description = "The status id")),
    responses(
        (status = 200, description = "Mastodon Context: ancestors and descendants", body = Object),
        LookupErrors
    )
)]
pub(crate) async fn status_context(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>> {
    let key = id
        .parse::<u64>()
        .map_err(|_| Error::NotFound(format!("status {id}")))?;
    let ancestors = state
        .search_index(move |i| match i.post_by_key(key)? {
            Some(hit) => i.ancestors(&hit, MAX_ANCESTORS).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| Error::NotFound(format!("status {id}")))?;
    Ok(axum::Json(json!({
        "ancestors": statuses(&state, &ancestors),
        "descendants": [],
    })))
}

async fn facts_counts(state: &AppState) -> plaza_index::Counts {
    match state.search_index(|i| i.counts()).await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::debug!(error = %e, "instance counts");
            plaza_index::Counts::default()
        }
    }
}

fn facts(state: &AppState, counts: plaza_index::Counts) -> RelayFacts<'_> {
    RelayFacts {
        base: &state.base,
        host: &state.host,
        title: &state.config.relay_name,
        description: &state.config.relay_summary,
        counts,
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The relay as a Mastodon V1::Instance
#[utoipa::path(
    get,
    path = "/api/v1/instance",
    operation_id = "mastodon_instance_v1",
    tag = "mastodon",
    responses((status = 200, description = "Mastodon V1::Instance", body = Object), ReadErrors)
)]
pub(crate) async fn instance_v1(State(state): Shared) -> axum::Json<serde_json::Value> {
    let counts = facts_counts(&state).await;
    axum::Json(entities::instance_v1(&facts(&state, counts)))
}

/// The relay as a Mastodon Instance
#[utoipa::path(
    get,
    path = "/api/v2/instance",
    operation_id = "mastodon_instance_v2",
    tag = "mastodon",
    responses((status = 200, description = "Mastodon Instance", body = Object), ReadErrors)
)]
pub(crate) async fn instance_v2(State(state): Shared) -> axum::Json<serde_json::Value> {
    let counts = facts_counts(&state).await;
    axum::Json(entities::instance_v2(&facts(&state, counts)))
}

/// The instances the relay serves (Mastodon)
///
/// The hosts of the subscribed instances the index knows, sorted: public data on Mastodon too.
#[utoipa::path(
    get,
    path = "/api/v1/instance/peers",
    operation_id = "mastodon_instance_peers",
    tag = "mastodon",
    responses((status = 200, description = "Hosts", body = Vec<String>), IndexErrors)
)]
pub(crate) async fn instance_peers(State(state): Shared) -> Result<axum::Json<Vec<String>>> {
    let found = state.search_index(|i| i.instances()).await?;
    let mut hosts: Vec<String> = found.into_iter().map(|i| i.host).collect();
    hosts.sort();
    hosts.dedup();
    Ok(axum::Json(hosts))
}

/// The relay's custom emojis (Mastodon)
///
/// A relay hosts no emojis of its own: the list is empty.
#[utoipa::path(
    get,
    path = "/api/v1/custom_emojis",
    operation_id = "mastodon_custom_emojis",
    tag = "mastodon",
    responses(
        (status = 200, description = "Mastodon CustomEmoji list (empty)", body = Vec<Object>),
        ReadErrors
    )
)]
pub(crate) async fn custom_emojis() -> axum::Json<Vec<serde_json::Value>> {
    axum::Json(Vec::new())
}

/// A neutral picture for accounts without an avatar or header (Mastodon's `missing.png`).
const MISSING_PICTURE: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 120 120\">\
<rect width=\"120\" height=\"120\" fill=\"#d9d9e3\"/><circle cx=\"60\" cy=\"46\" r=\"22\" fill=\"#9b9bb0\"/>\
<path d=\"M18 120c4-26 22-40 42-40s38 14 42 40z\" fill=\"#9b9bb0\"/></svg>";

async fn missing_picture() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        MISSING_PICTURE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(query: &str) -> HashMap<String, String> {
        params(Some(query))
    }

    #[test]
    fn limit_defaults_clamps_and_refuses_junk() {
        assert_eq!(limit(&p("")).unwrap(), 20);
        assert_eq!(limit(&p("limit=5")).unwrap(), 5);
        assert_eq!(limit(&p("limit=400")).unwrap(), 40);
        for bad in ["limit=0", "limit=-1", "limit=ten"] {
            let e = limit(&p(bad)).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.to_string().contains("limit"), "{e}");
        }
    }

    #[test]
    fn type_selects_one_kind() {
        assert_eq!(
            wanted(&p("type=statuses")).unwrap(),
            Wanted {
                accounts: false,
                statuses: true,
                hashtags: false
            }
        );
        assert!(wanted(&p("")).unwrap().accounts);
        let e = wanted(&p("type=people")).unwrap_err();
        assert!(
            e.to_string().contains("accounts, statuses or hashtags"),
            "{e}"
        );
    }

    #[test]
    fn ids_are_numbers() {
        assert_eq!(number(&p("max_id=123"), "max_id").unwrap(), Some(123));
        assert_eq!(number(&p("max_id="), "max_id").unwrap(), None);
        let e = number(&p("max_id=abc"), "max_id").unwrap_err();
        assert!(e.to_string().contains("max_id"), "{e}");
    }

    #[test]
    fn min_id_wins_over_since_id_and_pages_oldest_first() {
        let page = timeline_page(&p("since_id=5&min_id=7&max_id=90&limit=3")).unwrap();
        assert_eq!(
            page,
            TimelinePage {
                limit: 3,
                max_key: Some(90),
                min_key: Some(7),
                oldest_first: true
            }
        );
        let page = timeline_page(&p("since_id=5")).unwrap();
        assert_eq!(page.min_key, Some(5));
        assert!(!page.oldest_first);
    }

    #[test]
    fn link_header_pages_both_ways_and_keeps_other_parameters() {
        let link = link_header(
            "https://relay.example/api/v1/timelines/public",
            &p("limit=2&max_id=50&only_media=true"),
            "40",
            "30",
        );
        assert_eq!(
            link,
            "<https://relay.example/api/v1/timelines/public?limit=2&only_media=true&max_id=30>; rel=\"next\", \
             <https://relay.example/api/v1/timelines/public?limit=2&only_media=true&min_id=40>; rel=\"prev\""
        );
    }

    #[test]
    fn hashtags_are_searched_for_single_words() {
        assert_eq!(hashtag_prefix("#Coop").as_deref(), Some("coop"));
        assert_eq!(hashtag_prefix("coop").as_deref(), Some("coop"));
        assert_eq!(hashtag_prefix("bread coop"), None);
        assert_eq!(hashtag_prefix("from:a@b"), None);
        assert_eq!(hashtag_prefix("  "), None);
    }

    #[test]
    fn a_pasted_link_is_an_address() {
        assert_eq!(
            as_address(" https://coop.example/@bakery/1 ").as_deref(),
            Some("https://coop.example/@bakery/1")
        );
        assert_eq!(as_address("bread https://x.example"), None);
        assert_eq!(as_address("from:a@b.example"), None);
        assert_eq!(as_address("mailto:a@b.example"), None);
    }

    #[test]
    fn flags_read_like_mastodon() {
        assert!(flag(&p("only_media=true"), "only_media"));
        assert!(flag(&p("only_media=1"), "only_media"));
        assert!(!flag(&p("only_media=false"), "only_media"));
        assert!(!flag(&p(""), "only_media"));
    }
}
