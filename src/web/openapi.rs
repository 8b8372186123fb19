//! What keeps the read APIs' OpenAPI document (`GET /api/openapi.json`, [`crate::web::api::ApiDoc`])
//! true to the server: the error answers, defined once and attached to each operation by the kind of
//! work it does, and the routes, registered through [`ApiRoutes`] so that a test can compare the paths
//! routed with the paths documented.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::get;
use utoipa::IntoResponses;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::state::AppState;

/// The per-IP read limit's answer, which every documented path can give ([`crate::web::ip_limit`]).
const TOO_MANY_REQUESTS: u16 = 429;

/// What each error status of the read APIs means; every error body is an `ApiError`.
fn meaning(status: u16) -> &'static str {
    match status {
        400 => "Malformed query or parameter; `error` says which and why",
        404 => "Nothing indexed at this id",
        TOO_MANY_REQUESTS => {
            "Over the per-IP request rate (`client_ip_rate`); `Retry-After` says when to ask again"
        }
        503 => "Search is turned off on this relay, or the search ran out of time",
        _ => "Error",
    }
}

/// The error answers `statuses`, and 429, each with an `ApiError` body.
fn answers(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .copied()
        .chain([TOO_MANY_REQUESTS])
        .map(|status| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build();
            let response = ResponseBuilder::new()
                .description(meaning(status))
                .content("application/json", body)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Errors of a search with parameters: 400, 429, 503.
pub struct SearchErrors;
/// Errors of a lookup by id: 404, 429, 503.
pub struct LookupErrors;
/// Errors of a parameterless read of the index: 429, 503.
pub struct IndexErrors;
/// Errors of a read that needs no index (it answers without one): 429.
pub struct ReadErrors;
/// Errors of a read with parameters that needs no index: 400, 429.
pub struct ParamErrors;

impl IntoResponses for SearchErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[400, 503])
    }
}

impl IntoResponses for LookupErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[404, 503])
    }
}

impl IntoResponses for IndexErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[503])
    }
}

impl IntoResponses for ParamErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[400])
    }
}

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[])
    }
}

/// A router of GET routes that remembers which paths the OpenAPI document must describe.
pub struct ApiRoutes {
    router: Router<Arc<AppState>>,
    documented: Vec<&'static str>,
}

impl Default for ApiRoutes {
    fn default() -> Self {
        ApiRoutes {
            router: Router::new(),
            documented: Vec::new(),
        }
    }
}

impl ApiRoutes {
    /// A documented GET route: its handler carries a `#[utoipa::path]` listed in the document.
    pub fn get<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.router = self.router.route(path, get(handler));
        self.documented.push(path);
        self
    }

    /// A GET route outside the API's document (a picture, the document itself).
    pub fn undocumented<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.router = self.router.route(path, get(handler));
        self
    }

    /// Both sets of routes.
    pub fn merge(mut self, other: ApiRoutes) -> Self {
        self.router = self.router.merge(other.router);
        self.documented.extend(other.documented);
        self
    }

    /// The paths the document must describe.
    pub fn documented(&self) -> &[&'static str] {
        &self.documented
    }

    /// The router.
    pub fn into_router(self) -> Router<Arc<AppState>> {
        self.router
    }
}
