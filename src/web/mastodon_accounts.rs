//! Mastodon's account reads for apps' Explore and profile screens: `GET /api/v1/directory` (the
//! discoverable profiles the index lists, by latest post or newest first), `GET /api/v1/accounts/lookup?acct=user@host`,
//! `GET /api/v1/accounts/{id}` and `GET /api/v1/accounts/{id}/statuses` (an account's indexed posts,
//! newest first, paged by `Link` like the timelines). Account ids are [`plaza_index::account_id`]s
//! (a hash of the actor id), so the ids an app keeps stay valid across restarts and reindexing.
//!
//! Plaza has no accounts of its own: `local=true` lists nobody, and a bare `username` is unknown.
//! Parameters are read by the plain functions here (tested without a server); the index answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use plaza_index::{AccountView, DirectoryRequest, TimelineRequest};

use crate::state::AppState;
use crate::web::mastodon_api::{
    TimelinePage, flag, limit_within, params, relay, timeline_page, timeline_response,
};
use crate::web::mastodon_entities::{self as entities, Account};
use crate::web::openapi::{ApiRoutes, LookupErrors, SearchErrors};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// Profiles per directory page unless `limit` says otherwise (Mastodon's).
pub const DIRECTORY_LIMIT: usize = 40;
/// Most profiles per directory page (Mastodon's).
pub const DIRECTORY_MAX: usize = 80;

/// The account routes.
pub fn routes() -> ApiRoutes {
    ApiRoutes::default()
        .get("/api/v1/directory", directory)
        .get("/api/v1/accounts/lookup", lookup)
        .get("/api/v1/accounts/{id}", account)
        .get("/api/v1/accounts/{id}/statuses", account_statuses)
}

/// What `/api/v1/directory` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAsk {
    /// `order=active` (the default): by latest indexed post; `order=new`: newest profile first.
    pub active: bool,
    /// `local=true`: only the relay's own accounts, of which it has none.
    pub local: bool,
    /// Profiles to skip.
    pub offset: usize,
    /// Profiles per page.
    pub limit: usize,
}

/// Reads the directory's parameters: `order=new` lists the newest profiles first, anything else (as in
/// Mastodon, `active` is the default) by latest indexed post.
pub fn directory_ask(params: &HashMap<String, String>) -> Result<DirectoryAsk> {
    let offset = match params.get("offset").map(|s| s.trim()) {
        None | Some("") => 0,
        Some(text) => text.parse::<usize>().map_err(|_| {
            Error::BadRequest(format!("offset must be a whole number, not {text:?}"))
        })?,
    };
    Ok(DirectoryAsk {
        active: params.get("order").map(|o| o.trim()) != Some("new"),
        local: flag(params, "local"),
        offset,
        limit: limit_within(params, DIRECTORY_LIMIT, DIRECTORY_MAX)?,
    })
}

/// The `user@host` handle an `acct` names (`user@host`, `@user@host`, `acct:user@host`, any case),
/// lowercase; `None` for a bare `user` (an account of this server, and Plaza has none) or junk.
pub fn handle_of(acct: &str) -> Option<String> {
    let acct = acct.trim();
    let acct = acct.strip_prefix("acct:").unwrap_or(acct);
    let acct = acct.strip_prefix('@').unwrap_or(acct);
    let (user, host) = acct.split_once('@')?;
    let valid = |s: &str| !s.is_empty() && !s.contains(|c: char| c == '@' || c.is_whitespace());
    (valid(user) && valid(host)).then(|| format!("{user}@{host}").to_lowercase())
}

/// An account id from the path: a decimal number, else no account.
pub fn account_id_of(id: &str) -> Result<u64> {
    id.trim().parse::<u64>().map_err(|_| Error::RecordNotFound)
}

/// The index request for `/api/v1/accounts/{id}/statuses`, or `None` when nothing can match
/// (`pinned=true`: the relay knows no pins; a `tagged` that is no hashtag).
pub fn statuses_request(
    params: &HashMap<String, String>,
    page: &TimelinePage,
    account: u64,
) -> Option<TimelineRequest> {
    if flag(params, "pinned") {
        return None;
    }
    let tag = match params.get("tagged").map(|t| t.trim()) {
        None | Some("") => None,
        Some(text) => Some(plaza_index::document::normalize_tag(text)?),
    };
    Some(TimelineRequest {
        tag,
        account: Some(account),
        only_media: flag(params, "only_media"),
        exclude_replies: flag(params, "exclude_replies"),
        limit: page.limit,
        min_key: page.min_key,
        max_key: page.max_key,
        oldest_first: page.oldest_first,
        ..TimelineRequest::default()
    })
}

/// The account with this id, held by the index; else Mastodon's 404.
async fn held(state: &AppState, id: &str) -> Result<AccountView> {
    let id = account_id_of(id)?;
    state
        .search_index(move |i| i.account_by_id(id))
        .await?
        .ok_or(Error::RecordNotFound)
}

/// Profile directory (Mastodon)
///
/// The discoverable profiles the index lists: by their latest indexed post (`order=active`, the
/// default; profiles without indexed posts last), or newest profile first (`order=new`). `local=true`
/// lists nobody: Plaza has no accounts of its own.
#[utoipa::path(
    get,
    path = "/api/v1/directory",
    operation_id = "mastodon_directory",
    tag = "mastodon",
    params(
        ("order" = Option<String>, Query, description = "active (by latest post, the default) or new (newest profile first)"),
        ("local" = Option<bool>, Query, description = "Only the relay's own accounts: none"),
        ("offset" = Option<u32>, Query, description = "Profiles to skip"),
        ("limit" = Option<u32>, Query, description = "Profiles per page, at most 80 (default 40)")
    ),
    responses(
        (status = 200, description = "Mastodon Account list", body = [Account]),
        SearchErrors
    )
)]
pub(crate) async fn directory(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Vec<Account>>> {
    let ask = directory_ask(&params(raw.as_deref()))?;
    if ask.local {
        return Ok(axum::Json(Vec::new()));
    }
    let page = if ask.active {
        let (limit, offset) = (ask.limit, ask.offset);
        state
            .search_index(move |i| i.active_profiles(limit, offset))
            .await?
    } else {
        let request = DirectoryRequest {
            limit: ask.limit,
            offset: ask.offset,
            ..DirectoryRequest::default()
        };
        state.search_index(move |i| i.directory(&request)).await?
    };
    Ok(axum::Json(
        page.hits
            .iter()
            .map(|hit| entities::account(relay(&state), &hit.account))
            .collect(),
    ))
}

/// Account by handle (Mastodon)
///
/// The account `user@host` (also `@user@host`), if the index holds it: a listed profile, or an author
/// whose posts may be indexed. A bare `user` is not found: Plaza has no accounts of its own.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/lookup",
    operation_id = "mastodon_account_lookup",
    tag = "mastodon",
    params(("acct" = String, Query, description = "user@host")),
    responses(
        (status = 200, description = "Mastodon Account", body = Account),
        LookupErrors
    )
)]
pub(crate) async fn lookup(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Account>> {
    let params = params(raw.as_deref());
    let handle = params
        .get("acct")
        .and_then(|a| handle_of(a))
        .ok_or(Error::RecordNotFound)?;
    let view = state
        .search_index(move |i| i.account_by_handle(&handle))
        .await?
        .ok_or(Error::RecordNotFound)?;
    Ok(axum::Json(entities::account(relay(&state), &view)))
}

/// Account (Mastodon)
///
/// The account with this id, if the index holds it.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}",
    operation_id = "mastodon_account",
    tag = "mastodon",
    params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "Mastodon Account", body = Account),
        LookupErrors
    )
)]
pub(crate) async fn account(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Account>> {
    let view = held(&state, &id).await?;
    Ok(axum::Json(entities::account(relay(&state), &view)))
}

/// An account's statuses (Mastodon)
///
/// The account's indexed posts, newest first, paged by the `Link` header (`next`: older, `prev`:
/// newer). `pinned=true` lists none (the relay knows no pins). An unknown account is a 404.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}/statuses",
    operation_id = "mastodon_account_statuses",
    tag = "mastodon",
    params(
        ("id" = String, Path, description = "The account id"),
        ("limit" = Option<u32>, Query, description = "Statuses per page, at most 40 (default 20)"),
        ("max_id" = Option<String>, Query, description = "Older than this id"),
        ("since_id" = Option<String>, Query, description = "Newer than this id (the newest page)"),
        ("min_id" = Option<String>, Query, description = "Newer than this id (the page just after it)"),
        ("only_media" = Option<bool>, Query, description = "Only statuses with media"),
        ("exclude_replies" = Option<bool>, Query, description = "No replies"),
        ("tagged" = Option<String>, Query, description = "Only statuses with this hashtag"),
        ("pinned" = Option<bool>, Query, description = "Pinned statuses: none are known")
    ),
    responses(
        (status = 200, description = "Statuses, newest first", body = [entities::Status]),
        SearchErrors,
        LookupErrors
    )
)]
pub(crate) async fn account_statuses(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = params(raw.as_deref());
    let page = timeline_page(&params)?;
    let view = held(&state, &id).await?;
    let account = entities::account_id(&view);
    let Some(request) = statuses_request(&params, &page, account) else {
        return Ok(axum::Json(Vec::<entities::Status>::new()).into_response());
    };
    let found = state.search_index(move |i| i.timeline(&request)).await?;
    let path = format!("/api/v1/accounts/{account}/statuses");
    Ok(timeline_response(&state, &path, &params, page, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(query: &str) -> HashMap<String, String> {
        params(Some(query))
    }

    #[test]
    fn directory_parameters_default_clamp_and_refuse_junk() {
        assert_eq!(
            directory_ask(&p("")).unwrap(),
            DirectoryAsk {
                active: true,
                local: false,
                offset: 0,
                limit: 40
            }
        );
        let ask = directory_ask(&p("order=new&local=true&offset=80&limit=500")).unwrap();
        assert_eq!(
            ask,
            DirectoryAsk {
                active: false,
                local: true,
                offset: 80,
                limit: 80
            }
        );
        assert!(directory_ask(&p("order=active")).unwrap().active);
        for bad in ["offset=-1", "offset=x", "limit=0"] {
            let e = directory_ask(&p(bad)).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn accts_name_remote_accounts_only() {
        for acct in [
            "ann@a.example",
            "@ann@a.example",
            " acct:Ann@A.Example ",
            "ANN@a.example",
        ] {
            assert_eq!(handle_of(acct).as_deref(), Some("ann@a.example"), "{acct}");
        }
        for junk in [
            "ann",
            "@ann",
            "",
            "@",
            "ann@",
            "@a.example",
            "a@b@c",
            "a b@c",
        ] {
            assert_eq!(handle_of(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn account_ids_are_numbers_else_not_found() {
        assert_eq!(account_id_of("123").unwrap(), 123);
        let e = account_id_of("ann").unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::NOT_FOUND);
        assert_eq!(e.to_string(), "Record not found");
    }

    #[test]
    fn statuses_filters_become_the_index_request() {
        let page = timeline_page(&p("limit=5&max_id=99")).unwrap();
        let r = statuses_request(
            &p("only_media=true&exclude_replies=1&tagged=%23Bread"),
            &page,
            7,
        )
        .unwrap();
        assert_eq!(r.account, Some(7));
        assert!(r.only_media && r.exclude_replies);
        assert_eq!(r.tag.as_deref(), Some("bread"));
        assert_eq!((r.limit, r.max_key), (5, Some(99)));
        assert!(statuses_request(&p("pinned=true"), &page, 7).is_none());
        assert!(statuses_request(&p("tagged=%23"), &page, 7).is_none());
        let plain = statuses_request(&p("pinned=false"), &page, 7).unwrap();
        assert!(plain.tag.is_none() && !plain.only_media && !plain.exclude_replies);
    }
}
