//! Plaza's native read API under `/api/plaza/v1/`, for what Mastodon's lacks: highlighted snippets,
//! facet counts (instance, language, tag, actor type, month), cursor pagination, the directory of
//! discoverable profiles with filters, the instance list, document counts and the topic feeds one can
//! follow. Its OpenAPI 3 document
//! (`GET /api/openapi.json`) is generated from the handlers and types below with utoipa, so it cannot
//! drift from the code.
//!
//! The response types here mirror the index's result structs on purpose: they are the API's published
//! contract (and carry its OpenAPI schema), so a change in how the index stores results cannot change
//! the API unnoticed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::Uri;
use plaza_index::{ActorType, DirectoryRequest, SearchRequest, Sort};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::state::AppState;
use crate::topics::TopicKind;
use crate::topics::actor::TopicUrls;
use crate::web::openapi::{ApiRoutes, IndexErrors, ParamErrors, SearchErrors};
use crate::web::{mastodon_accounts, mastodon_api, mastodon_tags, mastodon_trends};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;
/// Most results per page.
pub const MAX_LIMIT: usize = 100;

/// The native API's routes and its OpenAPI document.
pub fn routes() -> ApiRoutes {
    ApiRoutes::default()
        .get("/api/plaza/v1/search", search)
        .get("/api/plaza/v1/directory", directory)
        .get("/api/plaza/v1/tags", tags)
        .get("/api/plaza/v1/instances", instances)
        .get("/api/plaza/v1/counts", counts)
        .get("/api/plaza/v1/topics", topics)
        .undocumented("/api/openapi.json", openapi)
}

/// The OpenAPI document of the native API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Plaza discovery API",
        description = "Search what a Plaza relay indexed: posts whose authors opted in to search, the \
                       directory of discoverable profiles, hashtags and the relay's instances. \
                       Read-only, no authentication, CORS open. The Mastodon-compatible \
                       /api/v2/search, /api/v1/timelines/*, /api/v1/statuses/*, /api/v1/directory, \
                       /api/v1/accounts/*, /api/v1/tags/*, /api/v1|v2/instance, /api/v1/instance/peers, \
                       /api/v1/custom_emojis and /api/v1/trends/* are served too.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        search,
        directory,
        tags,
        instances,
        counts,
        topics,
        mastodon_api::search,
        mastodon_api::public_timeline,
        mastodon_api::tag_timeline,
        mastodon_api::status,
        mastodon_api::status_context,
        mastodon_api::instance_v1,
        mastodon_api::instance_v2,
        mastodon_api::instance_peers,
        mastodon_api::custom_emojis,
        mastodon_trends::trending_tags,
        mastodon_trends::trending_tags_v1,
        mastodon_trends::trending_statuses,
        mastodon_trends::trending_links,
        mastodon_accounts::directory,
        mastodon_accounts::lookup,
        mastodon_accounts::account,
        mastodon_accounts::account_statuses,
        mastodon_tags::tag
    ),
    // Every error body (the error answers reference it by name: crate::web::openapi).
    components(schemas(ApiError)),
    tags(
        (name = "plaza", description = "The native discovery API"),
        (name = "mastodon", description = "Mastodon-compatible endpoints over the same index")
    )
)]
pub struct ApiDoc;

/// An error: the reason, meant for the person who made the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong and what to change.
    pub error: String,
}

/// Reads the query string into `T`; a malformed one is a 400 with the reason, as JSON.
fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| Error::BadRequest(e.body_text()))
}

fn page_limit(limit: Option<usize>) -> Result<usize> {
    bounded_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `limit` if given and from 1 to `max`, else `default`; out of range is a 400 with the bounds.
fn bounded_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Error::BadRequest(format!(
            "limit must be from 1 to {max}, not {n}"
        ))),
    }
}

/// Result order of a post search.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Best match first, recent posts boosted.
    #[default]
    Relevance,
    /// Newest first.
    Newest,
    /// Oldest first.
    Oldest,
}

impl From<Order> for Sort {
    fn from(order: Order) -> Sort {
        match order {
            Order::Relevance => Sort::Relevance,
            Order::Newest => Sort::Newest,
            Order::Oldest => Sort::Oldest,
        }
    }
}

/// Parameters of a post search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query: words (all must match), `"phrases"`, `-exclude`, `a OR b`, `#tag`,
    /// `from:user@host`, `instance:host`, `language:xx`, `before:`/`after:`/`during:` dates,
    /// `has:media`, `has:poll`, `is:reply`, `is:sensitive`, `is:quote`, `type:organization`…
    pub q: String,
    /// Order of results.
    #[param(value_type = Option<String>, example = "relevance")]
    pub sort: Option<Order>,
    /// Results per page, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (same query and order).
    pub cursor: Option<String>,
    /// Count facets (instance, language, tag, actor type, month) over the matches (sampled past
    /// the first 4,096, and marked so).
    pub facets: Option<bool>,
}

/// Parameters of a directory listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryParams {
    /// Words to look for in names, bios and profile fields (query language; none lists everyone,
    /// newest accounts first).
    pub q: Option<String>,
    /// Only this actor type: person, organization, group, service or application.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub actor_type: Option<String>,
    /// Only profiles with this hashtag in their bio or featured tags (with or without `#`).
    pub tag: Option<String>,
    /// Only profiles of this instance (host).
    pub instance: Option<String>,
    /// Only profiles whose bio is in this language (ISO 639-1).
    pub language: Option<String>,
    /// Results per page, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Count facets over all matches.
    pub facets: Option<bool>,
}

/// Parameters of a hashtag lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagParams {
    /// The beginning of the hashtag (with or without `#`).
    pub q: String,
    /// Tags returned, 1 to 40 (default 10).
    pub limit: Option<usize>,
}

/// How many matches have one value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FacetCount {
    /// The value: a host, a language, a tag, an actor type or a month (`YYYY-MM`).
    pub value: String,
    /// Matching documents with it.
    pub count: u64,
}

/// Facet counts over the matches (top values of each; estimates when `sampled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Facets {
    /// By instance host.
    pub instance: Vec<FacetCount>,
    /// By language.
    pub language: Vec<FacetCount>,
    /// By hashtag.
    pub tag: Vec<FacetCount>,
    /// By actor type (of the author, for posts).
    pub actor_type: Vec<FacetCount>,
    /// By month, newest first.
    pub month: Vec<FacetCount>,
    /// The counts are estimates: past the first 4,096 matches, one match in 2, then 4, 8… is
    /// counted (each weighing for the ones it stands for). `total` stays exact.
    pub sampled: bool,
}

fn counts_of(list: &[plaza_index::FacetCount]) -> Vec<FacetCount> {
    list.iter()
        .map(|f| FacetCount {
            value: f.value.clone(),
            count: f.count,
        })
        .collect()
}

fn facets(f: &plaza_index::Facets) -> Facets {
    Facets {
        instance: counts_of(&f.instance),
        language: counts_of(&f.language),
        tag: counts_of(&f.tag),
        actor_type: counts_of(&f.actor_type),
        month: counts_of(&f.month),
        sampled: f.sampled,
    }
}

/// A profile field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProfileField {
    /// The label.
    pub name: String,
    /// The value, safe HTML.
    pub value_html: String,
    /// The value as text.
    pub value_text: String,
}

/// A profile (the author of a post, or a directory entry).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Profile {
    /// Stable numeric id (the same as the Mastodon API's account id).
    pub id: String,
    /// The actor id.
    pub uri: String,
    /// `user@host`.
    pub acct: String,
    /// `preferredUsername`.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Bio, safe HTML.
    pub note_html: String,
    /// Profile page on its instance.
    pub url: String,
    /// Avatar address.
    pub avatar: Option<String>,
    /// Header image address.
    pub header: Option<String>,
    /// Profile fields.
    pub fields: Vec<ProfileField>,
    /// person, organization, group, service or application.
    pub actor_type: String,
    /// Listed in the directory.
    pub discoverable: bool,
    /// Account creation, RFC 3339.
    pub created_at: Option<String>,
    /// The instance host.
    pub instance: String,
    /// Hashtags of the bio.
    pub tags: Vec<String>,
    /// Featured hashtags.
    pub featured_tags: Vec<String>,
    /// Language of the bio.
    pub language: Option<String>,
}

fn profile(view: &plaza_index::AccountView) -> Profile {
    Profile {
        id: crate::web::mastodon_entities::account_id(view).to_string(),
        uri: view.uri.clone(),
        acct: view.acct.clone(),
        username: view.username.clone(),
        display_name: view.display_name.clone(),
        note_html: view.note_html.clone(),
        url: view.url.clone(),
        avatar: view.avatar.clone(),
        header: view.header.clone(),
        fields: view
            .fields
            .iter()
            .map(|f| ProfileField {
                name: f.name.clone(),
                value_html: f.value_html.clone(),
                value_text: f.value_text.clone(),
            })
            .collect(),
        actor_type: view.actor_type.as_str().to_owned(),
        discoverable: view.discoverable,
        created_at: view.created_at.clone(),
        instance: view.instance.clone(),
        tags: view.tags.clone(),
        featured_tags: view.featured_tags.clone(),
        language: view.language.clone(),
    }
}

/// A media attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediaItem {
    /// The file on its origin server.
    pub url: String,
    /// MIME type.
    pub media_type: Option<String>,
    /// Alt text.
    pub description: Option<String>,
}

/// A post found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PostResult {
    /// Stable, time-ordered numeric id (the Mastodon API's status id).
    pub id: String,
    /// The object id.
    pub uri: String,
    /// The page on its origin server.
    pub url: String,
    /// ActivityStreams type (Note, Article, Question…).
    pub kind: String,
    /// Title of an article.
    pub title: Option<String>,
    /// A fragment of the text with the matched words in `<b>…</b>` (HTML-escaped otherwise).
    pub snippet_html: String,
    /// The whole content, safe HTML.
    pub content_html: String,
    /// Content warning, empty when none.
    pub spoiler_text: String,
    /// Marked sensitive.
    pub sensitive: bool,
    /// ISO 639-1 language.
    pub language: Option<String>,
    /// Publication time, RFC 3339.
    pub created_at: String,
    /// The instance it came from.
    pub instance: String,
    /// Hashtags.
    pub tags: Vec<String>,
    /// Media attachments.
    pub media: Vec<MediaItem>,
    /// The post it replies to (object id).
    pub in_reply_to: Option<String>,
    /// Quotes another post.
    pub is_quote: bool,
    /// Is a poll.
    pub has_poll: bool,
    /// Ranking score (0 in date order).
    pub score: f32,
    /// The author.
    pub author: Profile,
}

fn post_result(hit: &plaza_index::PostHit) -> PostResult {
    let post = &hit.post;
    PostResult {
        id: post.key.to_string(),
        uri: post.uri.clone(),
        url: post.url.clone(),
        kind: post.kind.clone(),
        title: post.title.clone(),
        snippet_html: hit.snippet_html.clone(),
        content_html: post.content_html.clone(),
        spoiler_text: post.spoiler_text.clone(),
        sensitive: post.sensitive,
        language: post.language.clone(),
        created_at: post.created_at.clone(),
        instance: post.instance.clone(),
        tags: post.tags.clone(),
        media: post
            .media
            .iter()
            .map(|m| MediaItem {
                url: m.url.clone(),
                media_type: m.media_type.clone(),
                description: m.description.clone(),
            })
            .collect(),
        in_reply_to: post.in_reply_to.clone(),
        is_quote: post.is_quote,
        has_poll: post.has_poll,
        score: hit.score,
        author: profile(&hit.account),
    }
}

/// A page of posts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PostPage {
    /// Matching posts in all.
    pub total: u64,
    /// The search ran out of time: some of the index was not searched.
    pub partial: bool,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
    /// Facet counts, when asked for.
    pub facets: Option<Facets>,
    /// This page.
    pub posts: Vec<PostResult>,
}

/// A directory entry found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProfileResult {
    /// The profile.
    #[serde(flatten)]
    pub profile: Profile,
    /// A fragment of the bio and fields with the matched words highlighted.
    pub snippet_html: String,
    /// Ranking score.
    pub score: f32,
}

/// A page of the directory.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProfilePage {
    /// Matching profiles in all.
    pub total: u64,
    /// The search ran out of time.
    pub partial: bool,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
    /// Facet counts, when asked for.
    pub facets: Option<Facets>,
    /// This page.
    pub profiles: Vec<ProfileResult>,
}

/// Use of a hashtag on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TagDay {
    /// Midnight UTC, Unix seconds.
    pub day: i64,
    /// Posts.
    pub uses: u64,
    /// Distinct authors.
    pub accounts: u64,
}

/// A hashtag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TagResult {
    /// Lowercase, without `#`.
    pub name: String,
    /// Indexed posts with it.
    pub uses: u64,
    /// The last seven days, today first.
    pub history: Vec<TagDay>,
}

/// Hashtags found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TagList {
    /// Most used first (an exact match leads).
    pub tags: Vec<TagResult>,
    /// The search ran out of time: tags may be missing, counts and histories low.
    pub partial: bool,
}

/// A subscribed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceResult {
    /// The host.
    pub host: String,
    /// NodeInfo node name.
    pub name: Option<String>,
    /// Software (mastodon, misskey, pleroma…).
    pub software: Option<String>,
    /// Software version.
    pub version: Option<String>,
    /// Total users.
    pub users: Option<u64>,
    /// Open registrations.
    pub open_registrations: Option<bool>,
    /// Description.
    pub description: Option<String>,
    /// Subscribed since, RFC 3339.
    pub subscribed_since: Option<String>,
    /// Last activity seen, RFC 3339.
    pub last_activity: Option<String>,
    /// Posts indexed from it.
    pub posts: u64,
}

/// The instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceList {
    /// By host.
    pub instances: Vec<InstanceResult>,
    /// Counting ran out of time: some instances' `posts` are low.
    pub partial: bool,
}

/// Documents in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct CountsResult {
    /// Posts.
    pub posts: u64,
    /// Actors kept (authors of indexed posts and listed profiles).
    pub actors: u64,
    /// Profiles listed in the directory.
    pub profiles: u64,
    /// Instances.
    pub instances: u64,
    /// Counting ran out of time: some counts are low.
    pub partial: bool,
}

fn tag_result(view: &plaza_index::TagView) -> TagResult {
    TagResult {
        name: view.name.clone(),
        uses: view.uses,
        history: view
            .history
            .iter()
            .map(|d| TagDay {
                day: d.day,
                uses: d.uses,
                accounts: d.accounts,
            })
            .collect(),
    }
}

fn instance_result(view: &plaza_index::InstanceView) -> InstanceResult {
    InstanceResult {
        host: view.host.clone(),
        name: view.name.clone(),
        software: view.software.clone(),
        version: view.version.clone(),
        users: view.users,
        open_registrations: view.open_registrations,
        description: view.description.clone(),
        subscribed_since: view.subscribed_since.clone(),
        last_activity: view.last_activity.clone(),
        posts: view.posts,
    }
}

/// Search posts
///
/// Full-text search of the indexed posts in Plaza's query language, with highlighted snippets,
/// optional facet counts and cursor pagination.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/search",
    tag = "plaza",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of posts", body = PostPage),
        SearchErrors
    )
)]
async fn search(State(state): Shared, uri: Uri) -> Result<axum::Json<PostPage>> {
    let params: SearchParams = query(&uri)?;
    let request = SearchRequest {
        q: params.q,
        sort: params.sort.unwrap_or_default().into(),
        limit: page_limit(params.limit)?,
        cursor: params.cursor,
        facets: params.facets.unwrap_or(false),
        ..SearchRequest::default()
    };
    let page = state
        .search_index(move |i| i.search_posts(&request))
        .await?;
    Ok(axum::Json(PostPage {
        total: page.total,
        partial: page.partial,
        next_cursor: page.next_cursor,
        facets: page.facets.as_ref().map(facets),
        posts: page.hits.iter().map(post_result).collect(),
    }))
}

/// Reads the directory filters.
fn directory_request(params: DirectoryParams) -> Result<DirectoryRequest> {
    let actor_type = match params.actor_type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(ActorType::parse(name).ok_or_else(|| {
            Error::BadRequest(format!(
                "type must be person, organization, group, service or application, not {name:?}"
            ))
        })?),
    };
    let language = match params.language.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code) => Some(plaza_index::language::normalize(code).ok_or_else(|| {
            Error::BadRequest(format!("language {code:?} is not an ISO 639-1 code"))
        })?),
    };
    Ok(DirectoryRequest {
        text: params.q,
        actor_type,
        tag: params.tag,
        instance: params.instance.filter(|i| !i.trim().is_empty()),
        language,
        limit: page_limit(params.limit)?,
        cursor: params.cursor,
        facets: params.facets.unwrap_or(false),
        ..DirectoryRequest::default()
    })
}

/// List the directory
///
/// Discoverable profiles, filtered by actor type, hashtag, instance and language, and by words in
/// names, bios and profile fields; e.g. `?type=organization&tag=coop`.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/directory",
    tag = "plaza",
    params(DirectoryParams),
    responses(
        (status = 200, description = "A page of profiles", body = ProfilePage),
        SearchErrors
    )
)]
async fn directory(State(state): Shared, uri: Uri) -> Result<axum::Json<ProfilePage>> {
    let request = directory_request(query(&uri)?)?;
    let page = state.search_index(move |i| i.directory(&request)).await?;
    Ok(axum::Json(ProfilePage {
        total: page.total,
        partial: page.partial,
        next_cursor: page.next_cursor,
        facets: page.facets.as_ref().map(facets),
        profiles: page
            .hits
            .iter()
            .map(|hit| ProfileResult {
                profile: profile(&hit.account),
                snippet_html: hit.snippet_html.clone(),
                score: hit.score,
            })
            .collect(),
    }))
}

/// Look up hashtags
///
/// Hashtags starting with `q`, most used first, each with its seven-day history.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/tags",
    tag = "plaza",
    params(TagParams),
    responses(
        (status = 200, description = "Hashtags", body = TagList),
        SearchErrors
    )
)]
async fn tags(State(state): Shared, uri: Uri) -> Result<axum::Json<TagList>> {
    let params: TagParams = query(&uri)?;
    let limit = bounded_limit(params.limit, 10, plaza_index::MAX_TAGS)?;
    let found = state
        .search_index(move |i| i.search_tags(&params.q, limit))
        .await?;
    Ok(axum::Json(TagList {
        tags: found.tags.iter().map(tag_result).collect(),
        partial: found.partial,
    }))
}

/// List the instances
///
/// Every subscribed instance the index knows, with its NodeInfo and the number of its posts indexed.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/instances",
    tag = "plaza",
    responses(
        (status = 200, description = "Instances by host", body = InstanceList),
        IndexErrors
    )
)]
async fn instances(State(state): Shared) -> Result<axum::Json<InstanceList>> {
    let found = state.search_index(|i| i.instances()).await?;
    Ok(axum::Json(InstanceList {
        instances: found.iter().map(instance_result).collect(),
        partial: found.iter().any(|i| i.partial),
    }))
}

/// Count documents
///
/// Posts, actors, listed profiles and instances in the index.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/counts",
    tag = "plaza",
    responses(
        (status = 200, description = "Documents per kind", body = CountsResult),
        IndexErrors
    )
)]
async fn counts(State(state): Shared) -> Result<axum::Json<CountsResult>> {
    let c = state.search_index(|i| i.counts()).await?;
    Ok(axum::Json(CountsResult {
        posts: c.posts,
        actors: c.actors,
        profiles: c.profiles,
        instances: c.instances,
        partial: c.partial,
    }))
}

/// Topics listed unless `limit` says otherwise.
pub const DEFAULT_TOPICS: usize = 40;
/// Most topics listed.
pub const MAX_TOPICS: usize = 200;

/// Parameters of the topic listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopicsParams {
    /// Only topics of this kind: `tag`, `language`, `instance` or `search`.
    pub kind: Option<String>,
    /// Topics listed, 1 to 200 (default 40); a larger number lists 200.
    pub limit: Option<usize>,
}

/// A topic feed: an ActivityPub actor that carries the public posts of a hashtag, a language, an
/// instance or a curated search whose authors agreed to be found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TopicResult {
    /// `tag`, `language`, `instance` or `search`.
    pub kind: String,
    /// The canonical name: the hashtag (case-folded), the language code, the host, the slug.
    pub name: String,
    /// How it is written for people: `#coop`, `language: es`, `search: co-ops`.
    pub label: String,
    /// The topic actor (a `Service`); a LitePub admin follows it, a browser gets its page.
    pub actor: String,
    /// Its inbox, which a Mastodon admin adds as a relay.
    pub inbox: String,
    /// The handle a person follows from their own account, `tag.coop@relay.example`.
    pub handle: String,
    /// Who follows it.
    pub followers: u64,
    /// Posts it carried within the relay log's retention.
    pub carried: u64,
    /// A curated search's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A curated search's query, in the query language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// The topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TopicList {
    /// Most followed first.
    pub topics: Vec<TopicResult>,
}

/// Reads the `kind` filter of the topic listing.
fn topic_kind(kind: Option<&str>) -> Result<Option<TopicKind>> {
    match kind.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => TopicKind::parse(&name.to_ascii_lowercase())
            .map(Some)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "kind must be tag, language, instance or search, not {name:?}"
                ))
            }),
    }
}

/// List the topic feeds
///
/// The topics one can follow through this relay that somebody follows, and every search its admins
/// curated: most followed first, each with the three ways to follow it (the actor, its inbox, the
/// handle) and its counts. Needs no index.
#[utoipa::path(
    get,
    path = "/api/plaza/v1/topics",
    tag = "plaza",
    params(TopicsParams),
    responses(
        (status = 200, description = "Topics, most followed first", body = TopicList),
        ParamErrors
    )
)]
async fn topics(State(state): Shared, uri: Uri) -> Result<axum::Json<TopicList>> {
    let params: TopicsParams = query(&uri)?;
    let kind = topic_kind(params.kind.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_TOPICS).clamp(1, MAX_TOPICS);
    let listed = crate::web::topics::listed(&state, kind, limit, 0).await?;
    Ok(axum::Json(TopicList {
        topics: listed
            .into_iter()
            .map(|l| {
                let urls = TopicUrls::new(&state.base, &l.topic);
                TopicResult {
                    kind: l.topic.kind().as_str().to_owned(),
                    name: l.topic.name().to_owned(),
                    label: l.topic.label(),
                    handle: format!("{}@{}", l.topic.user(), state.host),
                    actor: urls.actor,
                    inbox: urls.inbox,
                    followers: l.followers,
                    carried: l.carried,
                    title: l.curated.as_ref().map(|c| c.name.clone()),
                    query: l.curated.map(|c| c.query),
                }
            })
            .collect(),
    }))
}

/// The OpenAPI document, built once: it depends only on the code, not on the request.
static OPENAPI: std::sync::LazyLock<utoipa::openapi::OpenApi> =
    std::sync::LazyLock::new(ApiDoc::openapi);

async fn openapi() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    axum::Json(&OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_index::document::{Media, ProfileField as IndexField};
    use serde_json::{Value, json};

    fn uri(q: &str) -> Uri {
        format!("/x?{q}").parse().expect("uri")
    }

    #[test]
    fn openapi_lists_every_path_with_its_parameters() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        for path in [
            "/api/plaza/v1/search",
            "/api/plaza/v1/directory",
            "/api/plaza/v1/tags",
            "/api/plaza/v1/instances",
            "/api/plaza/v1/counts",
            "/api/plaza/v1/topics",
            "/api/v2/search",
            "/api/v1/timelines/public",
            "/api/v1/timelines/tag/{hashtag}",
            "/api/v1/statuses/{id}",
            "/api/v1/instance",
            "/api/v2/instance",
            "/api/v1/trends/tags",
            "/api/v1/trends",
            "/api/v1/trends/statuses",
            "/api/v1/trends/links",
            "/api/v1/directory",
            "/api/v1/accounts/lookup",
            "/api/v1/accounts/{id}",
            "/api/v1/accounts/{id}/statuses",
            "/api/v1/tags/{name}",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
        let names: Vec<&str> = doc["paths"]["/api/plaza/v1/directory"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in [
            "q", "type", "tag", "instance", "language", "limit", "cursor", "facets",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let mut operations: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item["get"]["operationId"].as_str())
            .collect();
        let all = operations.len();
        operations.sort();
        operations.dedup();
        assert_eq!(
            operations.len(),
            all,
            "operation ids are unique: {operations:?}"
        );
        assert_eq!(all, 24);
        for schema in [
            "PostPage",
            "ProfilePage",
            "Facets",
            "ApiError",
            "InstanceList",
            "TopicList",
        ] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
    }

    /// The paths routed and the paths documented are the same, and every operation documents the
    /// errors its kind of work can answer: 429 everywhere, 503 wherever the index is read.
    #[test]
    fn the_document_describes_every_route_and_its_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let mut documented: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort();
        let routes = crate::web::routes::read_api_routes();
        let mut routed = routes.documented().to_vec();
        routed.sort();
        assert_eq!(routed, documented);
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let responses = &item["get"]["responses"];
            assert!(responses["200"].is_object(), "{path}: {responses}");
            assert!(
                responses["429"]["content"]["application/json"].is_object(),
                "{path} can be refused by the per-IP limit: {responses}"
            );
            let reads_index = !path.ends_with("/instance")
                && !path.ends_with("/custom_emojis")
                && !path.ends_with("/plaza/v1/topics");
            assert_eq!(
                responses["503"].is_object(),
                reads_index,
                "{path}: 503 where the index is read: {responses}"
            );
        }
        for (path, status) in [
            ("/api/v2/search", "400"),
            ("/api/plaza/v1/tags", "400"),
            ("/api/plaza/v1/topics", "400"),
            ("/api/v1/statuses/{id}", "404"),
            ("/api/v1/directory", "400"),
            ("/api/v1/accounts/lookup", "404"),
            ("/api/v1/accounts/{id}", "404"),
            ("/api/v1/accounts/{id}/statuses", "400"),
            ("/api/v1/accounts/{id}/statuses", "404"),
            ("/api/v1/tags/{name}", "404"),
        ] {
            assert!(
                doc["paths"][path]["get"]["responses"][status].is_object(),
                "{path} {status}"
            );
        }
    }

    #[test]
    fn search_parameters_are_typed_and_checked() {
        let p: SearchParams = query(&uri("q=bread&sort=newest&limit=5&facets=true")).unwrap();
        assert_eq!(p.q, "bread");
        assert_eq!(p.sort, Some(Order::Newest));
        assert_eq!(p.facets, Some(true));
        let e = query::<SearchParams>(&uri("sort=newest")).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains('q'), "{e}");
        let e = query::<SearchParams>(&uri("q=x&sort=sideways")).unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(101)).is_err());
        assert_eq!(page_limit(None).unwrap(), 20);
        assert_eq!(page_limit(Some(1)).unwrap(), 1);
        assert_eq!(page_limit(Some(100)).unwrap(), 100);
        assert_eq!(bounded_limit(None, 10, 50).unwrap(), 10);
        assert_eq!(bounded_limit(Some(50), 10, 50).unwrap(), 50);
        let e = bounded_limit(Some(51), 10, 50).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("from 1 to 50, not 51"), "{e}");
    }

    #[test]
    fn topic_kinds_are_checked() {
        assert_eq!(topic_kind(None).unwrap(), None);
        assert_eq!(topic_kind(Some("")).unwrap(), None);
        assert_eq!(topic_kind(Some("Tag")).unwrap(), Some(TopicKind::Tag));
        assert_eq!(topic_kind(Some("search")).unwrap(), Some(TopicKind::Search));
        let e = topic_kind(Some("person")).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("person"), "{e}");
        let p: TopicsParams = query(&uri("kind=tag&limit=5")).unwrap();
        assert_eq!((p.kind.as_deref(), p.limit), (Some("tag"), Some(5)));
        assert!(query::<TopicsParams>(&uri("limit=many")).is_err());
    }

    #[test]
    fn directory_filters_are_checked() {
        let p: DirectoryParams = query(&uri("type=Organization&tag=%23coop&language=EN")).unwrap();
        let r = directory_request(p).unwrap();
        assert_eq!(r.actor_type, Some(ActorType::Organization));
        assert_eq!(r.tag.as_deref(), Some("#coop"));
        assert_eq!(r.language.as_deref(), Some("en"));
        let p: DirectoryParams = query(&uri("type=robot")).unwrap();
        let e = directory_request(p).unwrap_err();
        assert!(e.to_string().contains("robot"), "{e}");
        let p: DirectoryParams = query(&uri("language=klingon")).unwrap();
        assert!(directory_request(p).is_err());
    }

    #[test]
    fn post_results_carry_snippet_author_and_flags() {
        let hit = plaza_index::PostHit {
            post: plaza_index::PostView {
                key: 99,
                uri: "https://a.example/n/1".into(),
                url: "https://a.example/@x/1".into(),
                kind: "Note".into(),
                title: None,
                content_html: "<p>bread</p>".into(),
                text: "bread".into(),
                spoiler_text: String::new(),
                sensitive: false,
                language: Some("en".into()),
                created_at: "2026-01-02T03:04:05Z".into(),
                instance: "a.example".into(),
                author_uri: "https://a.example/users/x".into(),
                author_acct: "x@a.example".into(),
                tags: vec!["coop".into()],
                mentions: vec![],
                emojis: vec![],
                media: vec![Media {
                    url: "https://a.example/m.png".into(),
                    media_type: Some("image/png".into()),
                    description: Some("alt".into()),
                    blurhash: None,
                    width: None,
                    height: None,
                }],
                in_reply_to: Some("https://b.example/n/2".into()),
                is_quote: false,
                has_poll: true,
            },
            account: {
                let mut a = plaza_index::AccountView::unknown(
                    "https://a.example/users/x",
                    "x@a.example",
                    "a.example",
                );
                a.fields = vec![IndexField {
                    name: "Sector".into(),
                    value_html: "Food".into(),
                    value_text: "Food".into(),
                }];
                a
            },
            score: 2.5,
            snippet_html: "<b>bread</b>".into(),
            reply_to: None,
        };
        let v: Value = serde_json::to_value(post_result(&hit)).unwrap();
        assert_eq!(v["id"], "99");
        assert_eq!(v["snippet_html"], "<b>bread</b>");
        assert_eq!(v["has_poll"], true);
        assert_eq!(v["in_reply_to"], "https://b.example/n/2");
        assert_eq!(v["media"][0]["description"], "alt");
        assert_eq!(v["author"]["acct"], "x@a.example");
        assert_eq!(v["author"]["actor_type"], "person");
        assert_eq!(
            v["author"]["fields"],
            json!([{"name": "Sector", "value_html": "Food", "value_text": "Food"}])
        );
        let r = ProfileResult {
            profile: profile(&hit.account),
            snippet_html: "s".into(),
            score: 1.0,
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["acct"], "x@a.example");
        assert_eq!(v["snippet_html"], "s");
    }
}
