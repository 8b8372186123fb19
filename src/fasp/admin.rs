//! The admin API's FASP routes (under `/api/v1/admin`, same bearer tokens): register Plaza with a
//! fediverse server, list the registrations, remove one (its signed requests are refused at once), and
//! decide the sign-ups from the `/fasp` form waiting for approval (list, approve: registers; reject).
//! Each change is recorded in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::keys::fingerprint;
use super::registration;
use super::registry::Registration;
use super::signup;
use crate::state::AppState;
use crate::web::admin::{Admin, record_change as audit};
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;

/// The routes, relative to the admin API's prefix.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/fasp/registrations", get(list).post(register))
        .route("/fasp/registrations/{server_id}", delete(remove))
        .route("/fasp/signups", get(signups))
        .route("/fasp/signups/approve", post(approve))
        .route("/fasp/signups/reject", post(reject))
}

/// How a registration is shown to admins (never its private key).
pub fn view(r: &Registration) -> Value {
    let s = &r.server;
    let own = crate::httpsig::decode_base64_lax(&s.own_public_key).unwrap_or_default();
    json!({
        "serverId": s.server_id,
        "server": s.server_url,
        "faspBaseUrl": s.fasp_base_url,
        "faspId": s.fasp_id,
        "fingerprint": fingerprint(&own),
        "registrationCompletionUri": s.completion_uri,
        "createdAt": s.created_at / 1000,
    })
}

#[derive(Deserialize)]
struct RegisterBody {
    server: String,
}

/// The `{"server": "https://…"}` body of a request.
fn server_body(body: &[u8]) -> Result<RegisterBody> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"server\": \"https://…\"}}: {e}")))
}

async fn register(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let body = server_body(&body)?;
    let registration = registration::register(&state, &body.server).await?;
    let shown = view(&registration);
    audit(
        &state,
        &admin,
        "fasp-register",
        &registration.server.server_url,
        shown.clone(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

async fn list(State(state): Shared, _: Admin) -> Json<Value> {
    let all: Vec<Value> = state.fasp.registry.list().iter().map(|r| view(r)).collect();
    Json(json!({ "registrations": all }))
}

async fn remove(
    State(state): Shared,
    Admin(admin): Admin,
    Path(server_id): Path<String>,
) -> Result<Json<Value>> {
    let registration = state.fasp.registry.get(&server_id);
    if !state.fasp.registry.remove(&server_id).await? {
        return Err(Error::NotFound(format!("FASP registration {server_id}")));
    }
    if let Some(registration) = registration {
        // Its data_sharing subscriptions are cancelled at the server (best effort).
        super::subscriptions::cancel(&state, registration).await?;
    }
    audit(&state, &admin, "fasp-remove", &server_id, json!({})).await?;
    Ok(Json(json!({ "removed": server_id })))
}

async fn signups(State(state): Shared, _: Admin) -> Result<Json<Value>> {
    let waiting: Vec<Value> = signup::pending(&state)
        .await?
        .iter()
        .map(|s| json!({ "server": s.server_url, "requestedAt": s.requested_at / 1000 }))
        .collect();
    Ok(Json(json!({ "signups": waiting })))
}

async fn approve(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let body = server_body(&body)?;
    let registration = signup::approve(&state, &body.server).await?;
    let shown = view(&registration);
    audit(
        &state,
        &admin,
        "fasp-signup-approve",
        &registration.server.server_url,
        shown.clone(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

async fn reject(
    State(state): Shared,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = server_body(&body)?;
    let server = signup::reject(&state, &body.server).await?;
    audit(&state, &admin, "fasp-signup-reject", &server, json!({})).await?;
    Ok(Json(json!({ "rejected": server })))
}
