//! Plaza's requests to a server's `data_sharing` endpoints (FASP discovery v0.1, provider side): when a
//! server activates `data_sharing`, Plaza subscribes to `content`/`lifecycle`, `content`/`trends` and
//! `account`/`lifecycle` events and asks for a `content` and an `account` backfill, keeping every id
//! the server hands out in the store ([`crate::store::fasp_shares`]); while a backfill delivery says
//! `moreObjectsAvailable`, a paced loop asks for its continuation (one per server every
//! `fasp_continuation_interval_ms`; 404 ends it); deactivation and removal cancel the subscriptions
//! (best effort, logged).
//!
//! Every request is signed as the specification says: `Content-Digest`, RFC 9421 Ed25519 over
//! `@method`, `@target-uri` and `content-digest`, `keyid` = the `faspId` the server assigned, with the
//! key Plaza made for that server. Every answer must carry a matching `Content-Digest` and the
//! server's Ed25519 signature over `@status` and `content-digest` (Mastodon signs its answers), and
//! the status and shape the specification gives; anything else is an error, retried with backoff.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderName, HeaderValue, Method, header};
use serde_json::Value;

use super::auth::verify_response;
use super::capabilities::DATA_SHARING;
use super::data_sharing::{Category, SUBSCRIPTIONS, backfill_body, created_id, subscription_body};
use super::registry::Registration;
use super::signing::{sign, unix_secs};
use crate::httpsig::content_digest_header;
use crate::state::AppState;
use crate::store::fasp_shares::{BACKFILL, SUBSCRIPTION, ShareSource};
use crate::{Error, Result};

/// The `maxBatchSize` asked for in each event subscription.
const MAX_BATCH: u32 = 100;
/// First pause after a failed subscription attempt; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between two subscription attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Attempts before giving up until the next activation (about a day with [`MAX_BACKOFF`]).
const ATTEMPTS: u32 = 150;

/// Sends a signed `method` to `{faspBaseUrl}/data_sharing/v0{path}` of `registration`'s server and
/// checks the signed answer. The status and the answer as JSON (`Null` for an empty body).
pub async fn call(
    state: &AppState,
    registration: &Registration,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let url = format!(
        "{}/data_sharing/v0{path}",
        registration.server.fasp_base_url
    );
    let bytes = match body {
        Some(b) => serde_json::to_vec(b).map_err(|e| Error::fetch(&url, e))?,
        None => Vec::new(),
    };
    let digest = content_digest_header(&bytes);
    let signed = sign(
        &registration.signing,
        &[
            ("@method", method.as_str()),
            ("@target-uri", &url),
            ("content-digest", &digest),
        ],
        unix_secs(SystemTime::now()),
        &registration.server.fasp_id,
    )?;
    let digest_value =
        HeaderValue::from_str(&digest).map_err(|_| Error::Crypto("content digest".into()))?;
    let mut headers = vec![(HeaderName::from_static("content-digest"), digest_value)];
    if body.is_some() {
        headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
    }
    headers.extend(signed.into_headers()?);
    let (status, answer_headers, answer) =
        state.http.exchange(method, &url, bytes, headers).await?;
    verify_response(status, &answer_headers, &answer, &registration.verifying)
        .map_err(|e| Error::fetch(&url, format!("answer not authentic: {e}")))?;
    let json = if answer.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&answer)
            .map_err(|e| Error::fetch(&url, format!("answer is not JSON: {e}")))?
    };
    Ok((status, json))
}

/// Creates what is missing of the subscriptions and backfill requests at the server.
pub async fn subscribe(state: &AppState, registration: &Registration) -> Result<()> {
    let server_id = &registration.server.server_id;
    let held = state.store.share_sources(server_id).await?;
    let has = |kind: &str, category: Category, detail: Option<&str>| {
        held.iter().any(|s| {
            s.kind == kind
                && s.category == category.as_str()
                && detail.is_none_or(|d| s.detail == d)
        })
    };
    for (category, kind) in SUBSCRIPTIONS {
        if has(SUBSCRIPTION, category, Some(kind)) {
            continue;
        }
        let body = subscription_body(category, kind, MAX_BATCH);
        let (status, answer) = call(
            state,
            registration,
            Method::POST,
            "/event_subscriptions",
            Some(&body),
        )
        .await?;
        expect_created(status, &answer, "event_subscriptions")?;
        let id = created_id(&answer, "subscription")?;
        tracing::info!(%server_id, category = category.as_str(), kind, subscription = %id, "FASP: subscribed");
        state
            .store
            .add_share_source(ShareSource {
                server_id: server_id.clone(),
                kind: SUBSCRIPTION.into(),
                remote_id: id,
                category: category.as_str().into(),
                detail: kind.into(),
                more: false,
            })
            .await?;
    }
    let max_count = state.config.fasp_backfill_max_count.max(1);
    for category in [Category::Content, Category::Account] {
        if has(BACKFILL, category, None) {
            continue;
        }
        let body = backfill_body(category, max_count);
        let (status, answer) = call(
            state,
            registration,
            Method::POST,
            "/backfill_requests",
            Some(&body),
        )
        .await?;
        expect_created(status, &answer, "backfill_requests")?;
        let id = created_id(&answer, "backfillRequest")?;
        tracing::info!(%server_id, category = category.as_str(), backfill = %id, "FASP: backfill requested");
        state
            .store
            .add_share_source(ShareSource {
                server_id: server_id.clone(),
                kind: BACKFILL.into(),
                remote_id: id,
                category: category.as_str().into(),
                detail: max_count.to_string(),
                more: false,
            })
            .await?;
    }
    Ok(())
}

/// 201 (the specification) or 200 with a JSON object.
fn expect_created(status: u16, answer: &Value, what: &str) -> Result<()> {
    if (status == 201 || status == 200) && answer.is_object() {
        Ok(())
    } else {
        Err(Error::fetch(
            what,
            format!("the server answered HTTP {status}: {answer}"),
        ))
    }
}

/// Subscribes in the background, retrying with backoff while `data_sharing` stays active.
pub fn spawn_subscribe(state: Arc<AppState>, registration: Arc<Registration>) {
    tokio::spawn(async move {
        let server_id = registration.server.server_id.clone();
        let mut pause = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let active =
                state
                    .fasp
                    .registry
                    .is_active(&server_id, DATA_SHARING.id, DATA_SHARING.major);
            if !active || state.fasp.registry.get(&server_id).is_none() {
                return;
            }
            match subscribe(&state, &registration).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(%server_id, attempt, error = %e, retry_in = ?pause, "FASP: subscribing failed");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    });
}

/// Forgets what Plaza holds at the server (and its queued URIs) at once, then cancels the event
/// subscriptions there in the background (best effort, logged). Backfills end by themselves.
pub async fn cancel(state: &Arc<AppState>, registration: Arc<Registration>) -> Result<()> {
    let server_id = registration.server.server_id.clone();
    let sources = state.store.share_sources(&server_id).await?;
    state.store.forget_share_sources(&server_id).await?;
    let state = state.clone();
    tokio::spawn(async move {
        for source in sources.iter().filter(|s| s.kind == SUBSCRIPTION) {
            let path = format!("/event_subscriptions/{}", source.remote_id);
            match call(&state, &registration, Method::DELETE, &path, None).await {
                Ok((status, _)) if (200..300).contains(&status) || status == 404 => {
                    tracing::info!(%server_id, subscription = %source.remote_id, "FASP: unsubscribed")
                }
                Ok((status, answer)) => {
                    tracing::warn!(%server_id, subscription = %source.remote_id, status, %answer, "FASP: unsubscribing refused")
                }
                Err(e) => {
                    tracing::warn!(%server_id, subscription = %source.remote_id, error = %e, "FASP: unsubscribing failed")
                }
            }
        }
    });
    Ok(())
}

/// Asks for the continuation of every backfill whose last delivery said more objects are available,
/// at most one per server per `fasp_continuation_interval_ms`; runs for the relay's life.
pub async fn continuations(state: Arc<AppState>) {
    let interval = Duration::from_millis(state.config.fasp_continuation_interval_ms.max(10));
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for registration in state.fasp.registry.list() {
            let server_id = registration.server.server_id.clone();
            if !state
                .fasp
                .registry
                .is_active(&server_id, DATA_SHARING.id, DATA_SHARING.major)
            {
                continue;
            }
            if let Err(e) = continue_one(&state, &registration).await {
                tracing::warn!(%server_id, error = %e, "FASP: backfill continuation failed; retried later");
            }
        }
    }
}

/// One continuation for the first backfill of `registration` that has more to deliver.
async fn continue_one(state: &AppState, registration: &Registration) -> Result<()> {
    let server_id = &registration.server.server_id;
    let sources = state.store.share_sources(server_id).await?;
    let Some(backfill) = sources.iter().find(|s| s.kind == BACKFILL && s.more) else {
        return Ok(());
    };
    let id = &backfill.remote_id;
    // Cleared first: the delivery this asks for says again whether more is available.
    state.store.set_backfill_more(server_id, id, false).await?;
    let path = format!("/backfill_requests/{id}/continuation");
    match call(state, registration, Method::POST, &path, None).await {
        Ok((status, _)) if (200..300).contains(&status) => {
            tracing::debug!(%server_id, backfill = %id, "FASP: continuation asked");
            Ok(())
        }
        Ok((404, _)) => {
            tracing::info!(%server_id, backfill = %id, "FASP: backfill complete");
            Ok(())
        }
        Ok((status, answer)) => {
            state.store.set_backfill_more(server_id, id, true).await?;
            Err(Error::fetch(
                path,
                format!("the server answered HTTP {status}: {answer}"),
            ))
        }
        Err(e) => {
            state.store.set_backfill_more(server_id, id, true).await?;
            Err(e)
        }
    }
}
