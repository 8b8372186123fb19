//! The admin API's topic routes (under `/api/v1/admin`, same bearer tokens): list every topic with its
//! followers, add or redefine a curated search topic, remove one. Each change is in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::topics::curated;
use crate::web::admin::{Admin, record_change as audit};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// The routes, relative to the admin API's prefix.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/topics", get(list).post(add))
        .route("/topics/search/{slug}", delete(remove))
}

#[derive(Deserialize)]
struct AddBody {
    slug: String,
    name: String,
    query: String,
}

async fn list(State(state): Shared, _: Admin) -> Result<Json<Value>> {
    let summaries = state.store.topic_summaries().await?;
    let snapshot = state.topics.registry.snapshot();
    let topics: Vec<Value> = summaries
        .iter()
        .map(|s| {
            let mut shown = json!({
                "kind": s.topic.kind().as_str(),
                "name": s.topic.name(),
                "followers": s.followers,
                "carried": s.carried,
            });
            if let Some(curated) = snapshot
                .curated(s.topic.name())
                .filter(|_| s.topic.kind() == crate::topics::TopicKind::Search)
            {
                shown["title"] = json!(curated.name);
                shown["query"] = json!(curated.query);
            }
            shown
        })
        .collect();
    Ok(Json(json!({ "topics": topics })))
}

async fn add(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let body: AddBody = serde_json::from_slice(&body).map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"slug\": …, \"name\": …, \"query\": …}}: {e}"
        ))
    })?;
    let definition = curated::check(&body.slug, &body.name, &body.query)?;
    let stored = curated::put(&state, definition).await?;
    let shown = json!({
        "slug": stored.slug,
        "name": stored.name,
        "query": stored.query,
        "actor": format!("{}/topics/search/{}", state.base, stored.slug),
    });
    audit(&state, &admin, "topic-add", &stored.slug, shown.clone()).await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

async fn remove(
    State(state): Shared,
    Admin(admin): Admin,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    curated::remove(&state, &slug).await?;
    audit(&state, &admin, "topic-remove", &slug, json!({})).await?;
    Ok(Json(json!({ "removed": slug })))
}
