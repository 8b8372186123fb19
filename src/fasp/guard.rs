//! The middleware in front of every provider endpoint: it authenticates the request ([`super::auth`];
//! 401 before anything else runs), charges the server's budget (429 with `Retry-After`), hands the
//! handler the caller's [`Caller`], and signs whatever the handler answers: every answer carries
//! `Content-Digest`, and once the caller is known an Ed25519 signature over `@status` and
//! `content-digest` made with Plaza's key for that server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::authenticate;
use super::registry::Registration;
use super::signing::sign_response;
use crate::Error;
use crate::httpsig::{SignedRequest, content_digest_header};
use crate::state::AppState;

/// The authenticated server a provider handler answers.
#[derive(Clone)]
pub struct Caller(pub Arc<Registration>);

/// The largest answer the guard signs (answers are JSON lists of URIs, far smaller).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Authenticates, limits, runs the handler and signs its answer.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return finish(Error::TooLarge("request body".into()).into_response(), None).await;
        }
    };
    let path_and_query = parts
        .extensions
        .get::<OriginalUri>()
        .and_then(|u| u.0.path_and_query())
        .or(parts.uri.path_and_query())
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let scheme = if state.base.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let signed = SignedRequest {
        method: &parts.method,
        path_and_query: &path_and_query,
        authority: &state.host,
        scheme,
        headers: &parts.headers,
        body: &body,
    };
    let fasp = &state.fasp;
    let caller = authenticate(&signed, SystemTime::now(), |id| {
        fasp.registry.get(id).map(|r| r.verifying.clone())
    })
    .and_then(|id| fasp.registry.get(&id).ok_or(Error::UnknownKey(id)));
    let registration = match caller {
        Ok(r) => r,
        Err(e) => {
            fasp.unauthenticated.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, path = %path_and_query, "FASP request refused");
            return finish(e.into_response(), None).await;
        }
    };
    if let Err(wait) = fasp.limiter.check(&registration.server.server_id) {
        fasp.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut response =
            Error::RateLimited(registration.server.server_id.clone()).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return finish(response, Some(&registration)).await;
    }
    fasp.authenticated.fetch_add(1, Ordering::Relaxed);
    parts.extensions.insert(Caller(registration.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    finish(response, Some(&registration)).await
}

/// Adds `Content-Digest` and, for a known caller, the response signature.
async fn finish(response: Response, caller: Option<&Registration>) -> Response {
    let (mut parts, body) = response.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "FASP answer could not be read");
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            Bytes::new()
        }
    };
    let digest = content_digest_header(&body);
    if let Ok(value) = HeaderValue::from_str(&digest) {
        parts
            .headers
            .insert(HeaderName::from_static("content-digest"), value);
    }
    if let Some(registration) = caller {
        match sign_response(
            &registration.signing,
            &registration.server.fasp_id,
            parts.status.as_u16(),
            &digest,
            SystemTime::now(),
        )
        .and_then(|s| s.into_headers())
        {
            Ok(headers) => {
                for (name, value) in headers {
                    parts.headers.insert(name, value);
                }
            }
            Err(e) => tracing::error!(error = %e, "FASP answer could not be signed"),
        }
    }
    Response::from_parts(parts, Body::from(body))
}
