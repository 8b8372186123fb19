//! The admin API's topic routes (under `/api/v1/admin`, same bearer tokens): list every topic with its
//! followers, add or redefine a curated search topic, remove one; list the Follows of topics waiting
//! for approval (the approval policy) and approve or reject one. Each change is in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::topics::{Topic, curated, inbox};
use crate::web::admin::{Admin, record_change as audit};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// The routes, relative to the admin API's prefix.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/topics", get(list).post(add))
        .route("/topics/search/{slug}", delete(remove))
        .route("/topics/pending", get(pending))
        .route("/topics/pending/approve", post(approve))
        .route("/topics/pending/reject", post(reject))
}

/// Which waiting Follow an approval or a rejection is about.
#[derive(Deserialize)]
struct PendingBody {
    /// The topic as `tag/coop`, `language/es`, `instance/host` or `search/slug`.
    topic: String,
    /// The follower's actor id.
    actor: String,
}

/// The Follows of topics waiting for an admin, oldest first.
async fn pending(State(state): Shared, _: Admin) -> Result<Json<Value>> {
    let waiting: Vec<Value> = state
        .store
        .topic_pending()
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "topic": p.topic.key(),
                "actor": p.follower.actor_id,
                "instance": p.follower.authority,
                "inbox": p.follower.inbox,
                "style": p.follower.style.as_str(),
                "requested_at": p.created_at / 1000,
            })
        })
        .collect();
    Ok(Json(json!({ "pending": waiting })))
}

/// Reads the body of an approval or a rejection and takes that Follow out of the queue.
async fn take(state: &AppState, body: &[u8]) -> Result<crate::store::topics::PendingTopicFollow> {
    let body: PendingBody = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"topic\": \"tag/coop\", \"actor\": \"https://…\"}}: {e}"
        ))
    })?;
    let topic = Topic::from_key(&body.topic).ok_or_else(|| {
        Error::BadRequest(format!(
            "{:?} is no topic: write it as tag/coop, language/es, instance/host or search/slug",
            body.topic
        ))
    })?;
    state
        .store
        .take_topic_pending(&topic, &body.actor)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no Follow of {} by {} waits for approval",
                body.topic, body.actor
            ))
        })
}

/// Approves a waiting Follow: it is recorded and the topic sends its Accept (or a Reject when the
/// topic or the follower's instance follows as many as it may by now).
async fn approve(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let waiting = take(&state, &body).await?;
    let (topic, actor) = (waiting.topic.key(), waiting.follower.actor_id.clone());
    let receipt =
        inbox::accept_follower(&state, &waiting.topic, waiting.follower, &waiting.follow).await?;
    let shown = json!({ "topic": topic, "actor": actor, "outcome": receipt.describe() });
    audit(
        &state,
        &admin,
        "topic-follow-approve",
        &topic,
        shown.clone(),
    )
    .await?;
    Ok(Json(json!({ "approved": shown })))
}

/// Rejects a waiting Follow: the topic sends a Reject.
async fn reject(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let waiting = take(&state, &body).await?;
    inbox::refuse(
        &state,
        &waiting.topic,
        &waiting.follow,
        &waiting.follower,
        "rejected by this relay's admins",
    )
    .await?;
    let shown = json!({ "topic": waiting.topic.key(), "actor": waiting.follower.actor_id });
    audit(
        &state,
        &admin,
        "topic-follow-reject",
        &waiting.topic.key(),
        shown.clone(),
    )
    .await?;
    Ok(Json(json!({ "rejected": shown })))
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
