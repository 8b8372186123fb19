//! The public `/fasp` page: for the admin of a fediverse server who wants to connect it to this relay
//! as a FASP provider — what is offered, what the server sends (the privacy summary its admin copies
//! into their own policy; `provider_info` points at it), and how to check the key fingerprint.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::capabilities::OFFERED;
use crate::state::AppState;
use crate::web::views::Layout;

/// `GET /fasp`.
#[derive(Template)]
#[template(path = "fasp.html")]
pub struct FaspPage {
    /// Common parts.
    pub layout: Layout,
    /// The provider's base URL (`{public_url}/fasp`).
    pub provider_base: String,
    /// The offered capabilities, as `id version`.
    pub capabilities: Vec<(String, String)>,
    /// How to reach the provider's admin, when configured.
    pub contact: String,
}

/// Renders the page.
pub async fn page(State(state): State<Arc<AppState>>) -> Response {
    let contact = [
        state.config.fasp_contact_email.as_str(),
        state.config.fasp_fediverse_account.as_str(),
        state.config.admin_contact.as_str(),
    ]
    .into_iter()
    .find(|c| !c.is_empty())
    .unwrap_or_default()
    .to_string();
    let page = FaspPage {
        layout: Layout::new(&state.config, "fasp", "Connect your server (FASP)"),
        provider_base: format!("{}{}", state.base, super::PREFIX),
        capabilities: OFFERED
            .iter()
            .map(|c| (c.id.to_string(), c.version()))
            .collect(),
        contact,
    };
    crate::web::pages::html(StatusCode::OK, &page)
}
