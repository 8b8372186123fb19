//! The relay's web pages for people in a browser: `/` (what the relay is, how to join, live counts),
//! `/search`, `/directory`, `/topics`, `/instances`, `/about`, `/tags/{tag}`, their Atom feeds, the
//! OpenSearch description, the stylesheet and the avatar proxy. (A topic's own page shares its address
//! with the topic actor: [`crate::web::topics`].)
//!
//! Handlers are thin: they read the request, run the search through the relay's search gateway
//! ([`crate::web::search`]: blocking pool, time limit, metrics), hand the results to
//! [`crate::web::views`] (plain Rust that builds what the templates show) and send the rendered page with
//! a strict Content-Security-Policy: nothing but this relay's own stylesheet and images may load, no
//! script runs at all, and no page can be framed. The pages need no JavaScript.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plaza_index::{DirectoryRequest, SearchRequest, Sort, TimelineRequest, TrendRequest};

use crate::state::AppState;
use crate::web::feeds::{self, Feed, OpenSearch};
use crate::web::mastodon_trends;
use crate::web::media_proxy::{self, Fetched};
use crate::web::topics as web_topics;
use crate::web::trends::{Kind, trending};
use crate::web::views::{
    self, AboutPage, Contact, DirectoryFilters, DirectoryPage, ErrorPage, Figures, HomePage,
    InstancesPage, Layout, Link, PAGE_SIZE, Pager, PostCard, ProfileCard, SearchPage, TagPage,
    Trending,
};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;
type Params = Query<HashMap<String, String>>;

/// The policy every page is sent with: only this relay's stylesheet and images, no script, no frames,
/// forms only to this relay.
pub const CSP: &str = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'none'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The stylesheet, built into the binary.
const STYLESHEET: &str = include_str!("../../static/plaza.css");

/// Posts on the home page.
const RECENT_POSTS: usize = 5;

/// The pages' routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/search.atom", get(search_feed))
        .route("/directory", get(directory))
        .route("/topics", get(topics))
        .route("/instances", get(instances))
        .route("/about", get(about))
        .route("/tags/{tag}", get(tag))
        .route("/opensearch.xml", get(opensearch))
        .route("/static/plaza.css", get(stylesheet))
        .route(media_proxy::PATH, get(media))
        .fallback(not_found)
}

/// Any other address: the 404 page for a browser, the relay's JSON error for anything else.
async fn not_found(State(state): Shared, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let error = Error::NotFound(uri.path().to_owned());
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        error_page(&state, &error)
    } else {
        error.into_response()
    }
}

/// The headers of every page.
fn page_headers(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// A rendered template with `status` and the page headers.
fn render(status: StatusCode, template: &impl Template, content_type: &'static str) -> Response {
    match template.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            page_headers(&mut response, content_type);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

pub(crate) fn html(status: StatusCode, template: &impl Template) -> Response {
    render(status, template, "text/html; charset=utf-8")
}

/// An error as a page, with the error's status.
fn error_page(state: &AppState, error: &Error) -> Response {
    let status = error.status();
    let (title, message) = match error {
        Error::NotFound(_) => ("Not found", "There is nothing at this address.".to_owned()),
        Error::SearchUnavailable(reason) => ("Search unavailable", reason.clone()),
        e if status.is_client_error() => ("Bad request", e.to_string()),
        e => {
            tracing::error!(error = %e, "page failed");
            (
                "Something went wrong",
                "The relay could not build this page. Try again in a moment.".to_owned(),
            )
        }
    };
    let page = ErrorPage {
        layout: Layout::new(&state.config, "error", title),
        message,
    };
    html(status, &page)
}

fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> &'a str {
    params.get(key).map(|v| v.trim()).unwrap_or_default()
}

/// `page=N` from 1, capped to what the result window reaches.
fn page_number(params: &HashMap<String, String>, state: &AppState) -> usize {
    let window = state
        .index
        .as_ref()
        .map_or(PAGE_SIZE, |i| i.config().limits.max_window);
    param(params, "page")
        .parse::<usize>()
        .unwrap_or(1)
        .clamp(1, (window / PAGE_SIZE).max(1))
}

fn window(state: &AppState) -> usize {
    state
        .index
        .as_ref()
        .map_or(0, |i| i.config().limits.max_window)
}

async fn home(State(state): Shared) -> Response {
    let searchable = state.index.is_some();
    let (figures, recent) = if searchable {
        let counts = state.search_index(|index| index.counts()).await;
        let recent = state
            .search_index(|index| {
                index.timeline(&TimelineRequest {
                    limit: RECENT_POSTS,
                    ..TimelineRequest::default()
                })
            })
            .await;
        let found = counts.and_then(|counts| Ok((counts, recent?)));
        match found {
            Ok((counts, recent)) => (
                Figures {
                    subscribers: state.store.subscriber_count(),
                    posts: Some(counts.posts),
                    profiles: Some(counts.profiles),
                },
                recent
                    .hits
                    .iter()
                    .map(|hit| PostCard::full(hit, &state.media_proxy))
                    .collect(),
            ),
            Err(e) => return error_page(&state, &e),
        }
    } else {
        (
            Figures {
                subscribers: state.store.subscriber_count(),
                ..Figures::default()
            },
            Vec::new(),
        )
    };
    let page = HomePage {
        layout: Layout::new(&state.config, "home", "Home"),
        summary: state.config.relay_summary.clone(),
        base: state.base.clone(),
        join: views::join_steps(&state.base),
        figures,
        recent,
        tags: views::COOP_TAGS[..4]
            .iter()
            .map(|t| views::TagLink {
                name: (*t).to_owned(),
                href: views::tag_path(t),
            })
            .collect(),
        trending: trending_section(&state, None).await,
        trending_title: "Trending today".into(),
    };
    html(StatusCode::OK, &page)
}

/// Trending hashtags, posts and links of the day for a page (on `tag`'s page: its trending posts and
/// the other hashtags). A page never fails for want of trends: without an index, or when the index
/// fails, the section is empty.
async fn trending_section(state: &AppState, tag: Option<&str>) -> Trending {
    const SHOWN: usize = 5;
    if state.index.is_none() {
        return Trending::default();
    }
    let ask = |count: usize| TrendRequest::new(mastodon_trends::WINDOW_HOURS, count, None);
    let (Ok(few), Ok(many)) = (ask(SHOWN), ask(SHOWN * 8)) else {
        return Trending::default();
    };
    let tags = trending(state, Kind::Tags, few.clone()).await;
    let links = match tag {
        None => trending(state, Kind::Links, few).await,
        Some(_) => Ok(Vec::new()),
    };
    let posts = trending(state, Kind::Posts, many).await;
    let (Ok(tags), Ok(links), Ok(posts)) = (tags, links, posts) else {
        return Trending::default();
    };
    let mut hits = Vec::new();
    for trend in posts {
        if hits.len() == SHOWN {
            break;
        }
        let found = state.search_index(move |i| i.post(&trend.name)).await;
        if let Ok(Some(hit)) = found
            && tag.is_none_or(|t| hit.post.tags.iter().any(|own| own == t))
        {
            hits.push(hit);
        }
    }
    Trending::new(&tags, &hits, &links, tag, &state.media_proxy)
}

fn sort_of(params: &HashMap<String, String>) -> (Sort, &'static str) {
    match param(params, "sort") {
        "newest" => (Sort::Newest, "newest"),
        _ => (Sort::Relevance, "relevance"),
    }
}

async fn search(State(state): Shared, Query(params): Params) -> Response {
    let q = param(&params, "q").to_owned();
    let (sort, sort_name) = sort_of(&params);
    let page_no = page_number(&params, &state);
    let mut page = SearchPage::new(&state.config, &q, sort_name, state.index.is_none());
    if q.is_empty() || page.disabled {
        let status = if page.disabled {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        return html(status, &page);
    }
    let request = SearchRequest {
        q: q.clone(),
        sort,
        limit: PAGE_SIZE,
        offset: views::offset_of(page_no),
        facets: true,
        ..SearchRequest::default()
    };
    match state
        .search_index(move |index| index.search_posts(&request))
        .await
    {
        Ok(found) => {
            page.show(&found, page_no, window(&state), &state.media_proxy);
            page.follow = web_topics::follow_link_for_query(&state, &q).await;
            html(StatusCode::OK, &page)
        }
        Err(Error::InvalidQuery(reason)) => {
            page.error = Some(reason);
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => error_page(&state, &e),
    }
}

async fn search_feed(State(state): Shared, Query(params): Params) -> Response {
    let q = param(&params, "q").to_owned();
    if q.is_empty() {
        return error_page(
            &state,
            &Error::BadRequest("a feed needs a query: /search.atom?q=…".into()),
        );
    }
    let request = SearchRequest {
        q: q.clone(),
        sort: Sort::Newest,
        limit: PAGE_SIZE,
        ..SearchRequest::default()
    };
    match state
        .search_index(move |index| index.search_posts(&request))
        .await
    {
        Ok(found) => {
            let feed = Feed::new(
                format!(
                    "{}{}",
                    state.base,
                    views::path_with_query("/search.atom", &[("q", &q)])
                ),
                format!(
                    "{}{}",
                    state.base,
                    views::path_with_query("/search", &[("q", &q), ("sort", "newest")])
                ),
                format!("{}: {q}", state.config.relay_name),
                format!("The newest posts matching “{q}”"),
                &found.hits,
            );
            render(StatusCode::OK, &feed, feeds::ATOM)
        }
        Err(e) => error_page(&state, &e),
    }
}

async fn directory(State(state): Shared, Query(params): Params) -> Response {
    let filters = DirectoryFilters {
        q: param(&params, "q").to_owned(),
        kind: param(&params, "type").to_ascii_lowercase(),
        tag: param(&params, "tag").trim_start_matches('#').to_owned(),
        instance: param(&params, "instance").to_ascii_lowercase(),
        language: param(&params, "language").to_ascii_lowercase(),
    };
    let page_no = page_number(&params, &state);
    let mut page = DirectoryPage {
        layout: Layout::new(&state.config, "directory", "Directory"),
        types: views::type_options(&filters),
        quick_tags: views::quick_tags(&filters),
        filters: filters.clone(),
        error: None,
        disabled: state.index.is_none(),
        total: 0,
        profiles: Vec::new(),
        facets: Vec::new(),
        pager: Pager::default(),
    };
    if page.disabled {
        return html(StatusCode::SERVICE_UNAVAILABLE, &page);
    }
    let actor_type = filters.actor_type();
    if !filters.kind.is_empty() && actor_type.is_none() {
        page.error = Some(format!(
            "{:?} is not a type; choose Organization, Group, Person or Service",
            filters.kind
        ));
        return html(StatusCode::BAD_REQUEST, &page);
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let request = DirectoryRequest {
        text: non_empty(&filters.q),
        actor_type,
        tag: non_empty(&filters.tag),
        instance: non_empty(&filters.instance),
        language: non_empty(&filters.language),
        limit: PAGE_SIZE,
        offset: views::offset_of(page_no),
        cursor: None,
        facets: true,
    };
    match state
        .search_index(move |index| index.directory(&request))
        .await
    {
        Ok(found) => {
            page.total = found.total;
            page.profiles = found
                .hits
                .iter()
                .map(|hit| ProfileCard::from_hit(hit, &state.media_proxy))
                .collect();
            if let Some(facets) = &found.facets {
                page.facets = views::directory_facets(&filters, facets);
            }
            page.pager = Pager::new(page_no, found.total, window(&state), |n| {
                filters.href(None, n)
            });
            html(StatusCode::OK, &page)
        }
        Err(Error::InvalidQuery(reason)) => {
            page.error = Some(reason);
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => error_page(&state, &e),
    }
}

async fn instances(State(state): Shared) -> Response {
    let subscribers = match state.store.subscribers().await {
        Ok(s) => s,
        Err(e) => return error_page(&state, &e),
    };
    let known = if state.index.is_some() {
        match state.search_index(|index| index.instances()).await {
            Ok(known) => known,
            Err(e) => return error_page(&state, &e),
        }
    } else {
        Vec::new()
    };
    let show_since = state.config.show_subscribed_since;
    let page = InstancesPage {
        layout: Layout::new(&state.config, "instances", "Instances"),
        rows: views::instance_rows(&subscribers, &known, show_since),
        show_since,
    };
    html(StatusCode::OK, &page)
}

async fn topics(State(state): Shared) -> Response {
    match web_topics::topics_page(&state).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => error_page(&state, &e),
    }
}

async fn about(State(state): Shared) -> Response {
    let page = AboutPage {
        layout: Layout::new(&state.config, "about", "About"),
        base: state.base.clone(),
        contact: Contact::parse(&state.config.admin_contact),
        indexing: state.index.is_some(),
        retention_days: state.config.index_retention_days,
        purges: state.config.purge_on_unsubscribe,
    };
    html(StatusCode::OK, &page)
}

async fn tag(State(state): Shared, Path(raw): Path<String>, Query(params): Params) -> Response {
    let (name, atom) = match raw.strip_suffix(".atom") {
        Some(name) => (name, true),
        None => (raw.as_str(), false),
    };
    let Some(tag) = plaza_index::document::normalize_tag(name) else {
        return error_page(&state, &Error::NotFound(raw.clone()));
    };
    let cursor = (!atom)
        .then(|| param(&params, "cursor").to_owned())
        .filter(|c| !c.is_empty());
    let request = TimelineRequest {
        tag: Some(tag.clone()),
        limit: PAGE_SIZE,
        cursor,
        ..TimelineRequest::default()
    };
    let name = tag.clone();
    // The feed shows the posts only; the page also says how often the tag is used (a second search).
    let found = match state
        .search_index(move |index| index.timeline(&request))
        .await
    {
        Ok(page) if atom => Ok((page, None)),
        Ok(page) => state
            .search_index(move |index| index.tag(&name))
            .await
            .map(|view| (page, Some(view.uses))),
        Err(e) => Err(e),
    };
    let tag_page = views::tag_path(&tag);
    match found {
        Ok((found, None)) => {
            let feed = Feed::new(
                format!("{}{tag_page}.atom", state.base),
                format!("{}{tag_page}", state.base),
                format!("{}: #{tag}", state.config.relay_name),
                format!("The newest posts with #{tag}"),
                &found.hits,
            );
            render(StatusCode::OK, &feed, feeds::ATOM)
        }
        Ok((found, Some(uses))) => {
            let mut layout = Layout::new(&state.config, "tag", format!("#{tag}"));
            layout.feed = Some(Link {
                label: format!("Posts with #{tag}"),
                href: format!("{tag_page}.atom"),
            });
            let page = TagPage {
                layout,
                uses,
                disabled: false,
                posts: found
                    .hits
                    .iter()
                    .map(|hit| PostCard::full(hit, &state.media_proxy))
                    .collect(),
                older: found
                    .next_cursor
                    .map(|c| views::path_with_query(&tag_page, &[("cursor", &c)])),
                trending: trending_section(&state, Some(&tag)).await,
                trending_title: format!("Trending with #{tag} today"),
                follow: web_topics::follow_link_for_tag(&state, &tag),
                tag,
            };
            html(StatusCode::OK, &page)
        }
        Err(Error::InvalidQuery(reason)) => error_page(&state, &Error::BadRequest(reason)),
        Err(e) => error_page(&state, &e),
    }
}

async fn opensearch(State(state): Shared) -> Response {
    render(
        StatusCode::OK,
        &OpenSearch::new(&state.config.relay_name, &state.base),
        feeds::OPENSEARCH,
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn media(State(state): Shared, Query(params): Params) -> Result<Response> {
    let fetched = state
        .media_proxy
        .get(param(&params, "url"), param(&params, "sig"))
        .await?;
    Ok(match &*fetched {
        Fetched::Image { content_type, body } => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; sandbox",
                ),
                (header::CONTENT_DISPOSITION, "inline"),
            ],
            body.clone(),
        )
            .into_response(),
        Fetched::Refused(_) => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "public, max-age=600")],
            "no image",
        )
            .into_response(),
    })
}
