//! Mastodon's `GET /api/v1/tags/{name}`: one hashtag with its seven-day history (posts and distinct
//! authors per day, counted by the index over the last seven days only), as an app's hashtag screen
//! shows it. A tag the index never saw is Mastodon's 404.

use std::sync::Arc;

use axum::extract::{Path, State};

use crate::state::AppState;
use crate::web::mastodon_api::relay;
use crate::web::mastodon_entities::{self as entities, TagFollowing};
use crate::web::openapi::{ApiRoutes, LookupErrors};
use crate::{Error, Result};

/// The hashtag routes.
pub fn routes() -> ApiRoutes {
    ApiRoutes::default().get("/api/v1/tags/{name}", tag)
}

/// Hashtag (Mastodon)
///
/// A hashtag the index holds, with its history of the last seven days (most recent first) and
/// `following: false`.
#[utoipa::path(
    get,
    path = "/api/v1/tags/{name}",
    operation_id = "mastodon_tag",
    tag = "mastodon",
    params(("name" = String, Path, description = "The hashtag, with or without #")),
    responses(
        (status = 200, description = "Mastodon Tag", body = TagFollowing),
        LookupErrors
    )
)]
pub(crate) async fn tag(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<axum::Json<TagFollowing>> {
    let name = plaza_index::document::normalize_tag(&name).ok_or(Error::RecordNotFound)?;
    let view = state.search_index(move |i| i.tag(&name)).await?;
    if view.uses == 0 {
        return Err(Error::RecordNotFound);
    }
    Ok(axum::Json(TagFollowing {
        tag: entities::tag(relay(&state), &view),
        following: false,
    }))
}
