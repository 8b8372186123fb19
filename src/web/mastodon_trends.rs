//! Mastodon's Explore trends for apps: `GET /api/v1/trends/tags` (and its old name `/api/v1/trends`),
//! `/api/v1/trends/statuses` and `/api/v1/trends/links`, paged with `limit` and `offset` as Mastodon
//! does, from the same computation as the FASP `trends` capability ([`crate::web::trends`]) over the
//! last day. Anonymous, and limited per client like the other public reads.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use plaza_index::{Trend, TrendRequest};

use crate::state::AppState;
use crate::web::mastodon_api::{params, relay, statuses};
use crate::web::mastodon_entities::{self as entities, PreviewCard};
use crate::web::openapi::{ApiRoutes, SearchErrors};
use crate::web::trends::{Kind, trending};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// The window Explore shows: the last day.
pub const WINDOW_HOURS: u32 = 24;

/// The trends routes.
pub fn routes() -> ApiRoutes {
    ApiRoutes::default()
        .get("/api/v1/trends/tags", trending_tags)
        .get("/api/v1/trends", trending_tags_v1)
        .get("/api/v1/trends/statuses", trending_statuses)
        .get("/api/v1/trends/links", trending_links)
}

/// A page of trends: `limit` (default `default`, at most `max`, as Mastodon: more is the maximum) and
/// `offset`; junk is a 400 with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendPage {
    /// Items on the page.
    pub limit: usize,
    /// Items skipped.
    pub offset: usize,
}

impl TrendPage {
    /// Reads `limit` and `offset` from `params`.
    pub fn read(params: &HashMap<String, String>, default: usize, max: usize) -> Result<TrendPage> {
        let number = |name: &str| -> Result<Option<usize>> {
            match params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(text) => text.parse::<usize>().map(Some).map_err(|_| {
                    Error::BadRequest(format!("{name} must be a number, not {text:?}"))
                }),
            }
        };
        let limit = match number("limit")? {
            None => default,
            Some(0) => return Err(Error::BadRequest("limit must be at least 1".into())),
            Some(n) => n.min(max),
        };
        let offset = number("offset")?.unwrap_or(0);
        if offset >= plaza_index::trends::MAX_COUNT {
            return Err(Error::BadRequest(format!(
                "offset must be below {}",
                plaza_index::trends::MAX_COUNT
            )));
        }
        Ok(TrendPage { limit, offset })
    }

    /// The trends this page needs computed (all up to its end).
    fn request(&self) -> Result<TrendRequest> {
        let count = (self.offset + self.limit).min(plaza_index::trends::MAX_COUNT);
        TrendRequest::new(WINDOW_HOURS, count, None).map_err(Error::from_index)
    }

    fn of(&self, trends: Vec<Trend>) -> Vec<Trend> {
        trends
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

async fn page_of(state: &AppState, kind: Kind, page: TrendPage) -> Result<Vec<Trend>> {
    Ok(page.of(trending(state, kind, page.request()?).await?))
}

/// Trending hashtags (Mastodon)
///
/// Hashtags more accounts than usual use over the last day (at least three accounts on two
/// instances), as Tag entities with their seven-day history, most trending first.
#[utoipa::path(
    get,
    path = "/api/v1/trends/tags",
    operation_id = "mastodon_trends_tags",
    tag = "mastodon",
    params(
        ("limit" = Option<u32>, Query, description = "Tags per page, at most 20 (default 10)"),
        ("offset" = Option<u32>, Query, description = "Tags to skip")
    ),
    responses((status = 200, description = "Mastodon Tag entities", body = [entities::Tag]), SearchErrors)
)]
pub(crate) async fn trending_tags(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<entities::Tag>>> {
    let page = TrendPage::read(&params(raw.as_deref()), 10, 20)?;
    let found = page_of(&state, Kind::Tags, page).await?;
    let mut tags = Vec::with_capacity(found.len());
    for trend in found {
        let view = state.search_index(move |i| i.tag(&trend.name)).await?;
        tags.push(entities::tag(relay(&state), &view));
    }
    Ok(Json(tags))
}

/// Trending hashtags, by Mastodon's old path (Mastodon)
///
/// The same as `/api/v1/trends/tags`, for apps that still ask here.
#[utoipa::path(
    get,
    path = "/api/v1/trends",
    operation_id = "mastodon_trends_v1",
    tag = "mastodon",
    params(
        ("limit" = Option<u32>, Query, description = "Tags per page, at most 20 (default 10)"),
        ("offset" = Option<u32>, Query, description = "Tags to skip")
    ),
    responses((status = 200, description = "Mastodon Tag entities", body = [entities::Tag]), SearchErrors)
)]
pub(crate) async fn trending_tags_v1(
    state: Shared,
    raw: RawQuery,
) -> Result<Json<Vec<entities::Tag>>> {
    trending_tags(state, raw).await
}

/// Trending statuses (Mastodon)
///
/// Indexed statuses that accounts on several instances shared or replied to over the last day, as
/// Status entities, most trending first.
#[utoipa::path(
    get,
    path = "/api/v1/trends/statuses",
    operation_id = "mastodon_trends_statuses",
    tag = "mastodon",
    params(
        ("limit" = Option<u32>, Query, description = "Statuses per page, at most 40 (default 20)"),
        ("offset" = Option<u32>, Query, description = "Statuses to skip")
    ),
    responses((status = 200, description = "Mastodon Status entities", body = [entities::Status]), SearchErrors)
)]
pub(crate) async fn trending_statuses(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<entities::Status>>> {
    let page = TrendPage::read(&params(raw.as_deref()), 20, 40)?;
    let found = page_of(&state, Kind::Posts, page).await?;
    let mut hits = Vec::with_capacity(found.len());
    for trend in found {
        if let Some(hit) = state.search_index(move |i| i.post(&trend.name)).await? {
            hits.push(hit);
        }
    }
    Ok(Json(statuses(&state, &hits)))
}

/// Trending links (Mastodon)
///
/// Web links more accounts than usual shared over the last day, as PreviewCard entities (Plaza does
/// not fetch the pages: the card carries the address and its site).
#[utoipa::path(
    get,
    path = "/api/v1/trends/links",
    operation_id = "mastodon_trends_links",
    tag = "mastodon",
    params(
        ("limit" = Option<u32>, Query, description = "Links per page, at most 20 (default 10)"),
        ("offset" = Option<u32>, Query, description = "Links to skip")
    ),
    responses((status = 200, description = "Mastodon PreviewCard entities", body = [PreviewCard]), SearchErrors)
)]
pub(crate) async fn trending_links(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<PreviewCard>>> {
    let page = TrendPage::read(&params(raw.as_deref()), 10, 20)?;
    let found = page_of(&state, Kind::Links, page).await?;
    Ok(Json(found.iter().map(entities::preview_card).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(query: &str) -> Result<TrendPage> {
        TrendPage::read(&params(Some(query)), 10, 20)
    }

    #[test]
    fn pages_default_clamp_and_refuse_junk() {
        assert_eq!(
            read("").unwrap(),
            TrendPage {
                limit: 10,
                offset: 0
            }
        );
        assert_eq!(
            read("limit=50&offset=5").unwrap(),
            TrendPage {
                limit: 20,
                offset: 5
            }
        );
        for bad in ["limit=0", "limit=x", "offset=-1", "offset=100"] {
            assert_eq!(read(bad).unwrap_err().status().as_u16(), 400, "{bad}");
        }
        let page = read("limit=2&offset=1").unwrap();
        let t = |n: &str| Trend {
            name: n.into(),
            rank: 1,
            score: 1.0,
            accounts: 3,
            instances: 2,
            uses: 3,
            examples: vec![],
        };
        let names: Vec<String> = page
            .of(vec![t("a"), t("b"), t("c"), t("d")])
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(page.request().unwrap().max_count, 3);
    }
}
