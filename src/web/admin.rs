//! The admin API under `/api/v1/admin/`: thin handlers over [`crate::moderation::actions`].
//!
//! Every call needs `Authorization: Bearer <token>` (see [`crate::moderation::tokens`]); with no token
//! configured the API does not exist (404), so a fresh relay exposes nothing by default. A refused call
//! is logged with its path and client address, never with what it presented as a token, and costs the
//! client one request of its per-IP allowance (429 once it is spent), so tokens cannot be guessed fast.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::moderation::actions;
use crate::moderation::blocks::{Block, BlockKind, Severity};
use crate::moderation::csv;
use crate::moderation::policy::{Policy, PolicySettings};
use crate::state::AppState;
use crate::store::moderation::LimitOverride;
use crate::{Error, Result};

type Shared = State<Arc<AppState>>;
type Reply = Result<axum::Json<Value>>;

/// Where the admin API lives.
pub const PREFIX: &str = "/api/v1/admin";

/// The admin API's routes (nested under [`PREFIX`]).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/subscribers", get(list_subscribers))
        .route("/subscribers/{instance}", axum::routing::delete(remove))
        .route("/pending", get(list_pending))
        .route("/pending/{instance}/approve", post(approve))
        .route("/pending/{instance}/reject", post(reject))
        .route("/policy", get(get_policy).put(set_policy))
        .route("/blocks", get(list_blocks).post(add_block))
        .route("/blocks/{domain}", axum::routing::delete(unblock))
        .route("/blocks/export", get(export_blocks))
        .route("/blocks/import", post(import_blocks))
        .route("/limits", get(list_limits))
        .route("/limits/{instance}", put(set_limit).delete(clear_limit))
        .route("/stats", get(stats))
        .route("/audit", get(audit))
}

/// Records an admin's change in the audit log: who (`admin`), what (`action`), to what (`target`),
/// and the details.
pub async fn record_change(
    state: &AppState,
    admin: &str,
    action: &'static str,
    target: &str,
    detail: Value,
) -> Result<()> {
    state
        .store
        .record_audit(crate::moderation::audit::NewAudit {
            admin: admin.to_string(),
            action,
            target: target.to_string(),
            detail,
        })
        .await
}

/// An authorised admin: the name of the token presented.
pub struct Admin(pub String);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Admin> {
        if !state.admin_tokens.enabled() {
            return Err(Error::NotFound(
                "the admin API is disabled (set admin_token)".into(),
            ));
        }
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        match state.admin_tokens.identify(given) {
            Some(name) => Ok(Admin(name.to_string())),
            None => {
                let client = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| state.client_limiter.client_ip(c.0.ip(), &parts.headers));
                let shown = client.map(|ip| ip.to_string()).unwrap_or_default();
                tracing::warn!(path = %parts.uri.path(), client = %shown, "admin request with a missing or wrong token");
                // Wrong guesses spend the client's public-read allowance: guessing is as slow as reading.
                if let Some(ip) = client
                    && state.client_limiter.check(ip).is_err()
                {
                    return Err(Error::RateLimited(shown));
                }
                Err(Error::AdminUnauthorized)
            }
        }
    }
}

async fn list_subscribers(State(state): Shared, _: Admin) -> Reply {
    Ok(axum::Json(
        json!({ "subscribers": actions::subscribers(&state).await? }),
    ))
}

#[derive(Deserialize)]
struct RemoveQuery {
    /// Also block the instance's domain (default), so a new Follow is refused.
    block: Option<bool>,
    reason: Option<String>,
}

async fn remove(
    State(state): Shared,
    Admin(admin): Admin,
    Path(instance): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Reply {
    let sticky = q
        .block
        .unwrap_or(true)
        .then(|| q.reason.as_deref().unwrap_or(""));
    if !actions::remove(&state, &instance, &admin, sticky).await? {
        return Err(Error::NotFound(format!(
            "instance {instance} is not subscribed"
        )));
    }
    Ok(axum::Json(
        json!({ "removed": instance, "blocked": sticky.is_some() }),
    ))
}

async fn list_pending(State(state): Shared, _: Admin) -> Reply {
    Ok(axum::Json(
        json!({ "pending": actions::pending(&state).await? }),
    ))
}

/// Approves a waiting subscription, and with it the instance's waiting topic follows.
async fn approve(State(state): Shared, Admin(admin): Admin, Path(instance): Path<String>) -> Reply {
    crate::federation::admission::approve(&state, &instance, &admin).await?;
    let topic_follows = crate::topics::inbox::release_instance(&state, &instance).await?;
    Ok(axum::Json(
        json!({ "approved": instance, "topic_follows_accepted": topic_follows }),
    ))
}

async fn reject(State(state): Shared, Admin(admin): Admin, Path(instance): Path<String>) -> Reply {
    crate::federation::admission::reject(&state, &instance, &admin).await?;
    Ok(axum::Json(json!({ "rejected": instance })))
}

async fn get_policy(State(state): Shared, _: Admin) -> Reply {
    Ok(axum::Json(json!(state.curation.policy())))
}

#[derive(Deserialize)]
struct PolicyBody {
    policy: String,
    /// Replaces the allowlist when given.
    allowlist: Option<Vec<String>>,
}

async fn set_policy(
    State(state): Shared,
    Admin(admin): Admin,
    axum::Json(body): axum::Json<PolicyBody>,
) -> Reply {
    let allowlist = body
        .allowlist
        .unwrap_or_else(|| state.curation.policy().allowlist);
    let settings = PolicySettings::new(Policy::parse(&body.policy)?, &allowlist)?;
    actions::set_policy(&state, settings.clone(), &admin).await?;
    Ok(axum::Json(json!(settings)))
}

async fn list_blocks(State(state): Shared, _: Admin) -> Reply {
    Ok(axum::Json(json!({ "blocks": state.store.blocks().await? })))
}

#[derive(Deserialize)]
struct BlockBody {
    /// The domain, or the software name for a software block.
    domain: String,
    kind: Option<String>,
    severity: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    purge: bool,
    #[serde(default)]
    reject_media: bool,
    #[serde(default)]
    reject_reports: bool,
    #[serde(default)]
    obfuscate: bool,
}

async fn add_block(
    State(state): Shared,
    Admin(admin): Admin,
    axum::Json(body): axum::Json<BlockBody>,
) -> Reply {
    let kind = BlockKind::parse(body.kind.as_deref().unwrap_or("domain"))?;
    let mut block = Block::new(kind, &body.domain, body.reason.as_deref().unwrap_or(""))?;
    block.severity = Severity::parse(body.severity.as_deref().unwrap_or(""))?;
    block.purge = body.purge;
    block.reject_media = body.reject_media;
    block.reject_reports = body.reject_reports;
    block.obfuscate = body.obfuscate;
    let ended = actions::block(&state, vec![block.clone()], &admin, "block").await?;
    Ok(axum::Json(json!({ "block": block, "ended": ended })))
}

#[derive(Deserialize)]
struct KindQuery {
    kind: Option<String>,
}

async fn unblock(
    State(state): Shared,
    Admin(admin): Admin,
    Path(domain): Path<String>,
    Query(q): Query<KindQuery>,
) -> Reply {
    let kind = BlockKind::parse(q.kind.as_deref().unwrap_or("domain"))?;
    if !actions::unblock(&state, kind, &domain, &admin).await? {
        return Err(Error::NotFound(format!(
            "no {} block on {domain}",
            kind.as_str()
        )));
    }
    Ok(axum::Json(json!({ "unblocked": domain })))
}

async fn export_blocks(State(state): Shared, _: Admin) -> Result<Response> {
    let text = csv::export(&state.store.blocks().await?);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

async fn import_blocks(State(state): Shared, Admin(admin): Admin, body: Bytes) -> Reply {
    let text =
        std::str::from_utf8(&body).map_err(|_| Error::BadRequest("the CSV is not UTF-8".into()))?;
    let imported = csv::import(text)?;
    let count = imported.blocks.len();
    let ended = if count > 0 {
        actions::block(&state, imported.blocks, &admin, "import-blocks").await?
    } else {
        Vec::new()
    };
    let skipped: Vec<Value> = imported
        .skipped
        .iter()
        .map(|(line, why)| json!({ "line": line, "reason": why }))
        .collect();
    Ok(axum::Json(
        json!({ "imported": count, "skipped": skipped, "ended": ended }),
    ))
}

async fn list_limits(State(state): Shared, _: Admin) -> Reply {
    let limits: Vec<Value> = state
        .store
        .limits()
        .await?
        .into_iter()
        .map(|(instance, l)| json!({ "instance": instance, "rate": l.rate, "burst": l.burst }))
        .collect();
    Ok(axum::Json(json!({
        "default": { "rate": state.config.inbound_rate_per_instance, "burst": state.config.inbound_burst_per_instance },
        "client_ip": { "rate": state.config.client_ip_rate, "burst": state.config.client_ip_burst },
        "client_ip_media": { "rate": state.config.client_ip_media_rate, "burst": state.config.client_ip_media_burst },
        "overrides": limits,
    })))
}

async fn set_limit(
    State(state): Shared,
    Admin(admin): Admin,
    Path(instance): Path<String>,
    axum::Json(limit): axum::Json<LimitBody>,
) -> Reply {
    let limit = LimitOverride {
        rate: limit.rate,
        burst: limit.burst.unwrap_or(limit.rate),
    };
    actions::set_limit(&state, &instance, Some(limit), &admin).await?;
    Ok(axum::Json(
        json!({ "instance": instance, "rate": limit.rate, "burst": limit.burst }),
    ))
}

#[derive(Deserialize)]
struct LimitBody {
    rate: u32,
    burst: Option<u32>,
}

async fn clear_limit(
    State(state): Shared,
    Admin(admin): Admin,
    Path(instance): Path<String>,
) -> Reply {
    if !actions::set_limit(&state, &instance, None, &admin).await? {
        return Err(Error::NotFound(format!(
            "{instance} has no limit of its own"
        )));
    }
    Ok(axum::Json(json!({ "cleared": instance })))
}

async fn stats(State(state): Shared, _: Admin) -> Reply {
    Ok(axum::Json(actions::stats(&state).await?))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(State(state): Shared, _: Admin, Query(q): Query<AuditQuery>) -> Reply {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(axum::Json(
        json!({ "audit": state.store.audit_log(limit).await? }),
    ))
}
