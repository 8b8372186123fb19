//! The public `/fasp` page: for the admin of a fediverse server who wants to connect it to this relay
//! as a FASP provider — what is offered, what the server sends (the privacy summary its admin copies
//! into their own policy; `provider_info` points at it), how to check the key fingerprint, and the
//! sign-up form ([`super::signup`]) with the subscription policy it follows, whose answer is this page
//! again with the outcome (or the reason for a refusal) and a matching status.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::capabilities::OFFERED;
use super::keys::fingerprint;
use super::signup::{self, Outcome};
use crate::moderation::policy::Policy;
use crate::state::AppState;
use crate::web::views::Layout;

/// What the sign-up form led to, shown on the page.
pub struct SignupView {
    /// Registered at once (else waiting, or refused).
    pub registered: bool,
    /// Waiting for the relay's admin.
    pub pending: bool,
    /// The server's origin.
    pub server: String,
    /// The fingerprint of the relay's key for that server (registered).
    pub fingerprint: String,
    /// Where the server's admin accepts the relay (registered).
    pub completion_uri: String,
    /// Why the sign-up was refused (else empty).
    pub error: String,
}

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
    /// The subscription policy sign-ups follow: `open`, `approval` or `allowlist`.
    pub policy: &'static str,
    /// Where the form posts.
    pub signup_path: &'static str,
    /// The address typed in the form (kept on a refusal).
    pub typed: String,
    /// The form's outcome, after a sign-up.
    pub signup: Option<SignupView>,
}

impl FaspPage {
    fn new(state: &AppState) -> FaspPage {
        let contact = [
            state.config.fasp_contact_email.as_str(),
            state.config.fasp_fediverse_account.as_str(),
            state.config.admin_contact.as_str(),
        ]
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or_default()
        .to_string();
        FaspPage {
            layout: Layout::new(&state.config, "fasp", "Connect your server (FASP)"),
            provider_base: format!("{}{}", state.base, super::PREFIX),
            capabilities: OFFERED
                .iter()
                .map(|c| (c.id.to_string(), c.version()))
                .collect(),
            contact,
            policy: match state.curation.policy().policy {
                Policy::Open => "open",
                Policy::Approval => "approval",
                Policy::Allowlist => "allowlist",
            },
            signup_path: signup::PATH,
            typed: String::new(),
            signup: None,
        }
    }
}

/// Renders the page.
pub async fn page(State(state): State<Arc<AppState>>) -> Response {
    crate::web::pages::html(StatusCode::OK, &FaspPage::new(&state))
}

/// `POST /fasp/signup` (a form): 201 registered, 202 waiting for approval, else the error's status,
/// each as the page with the outcome.
pub async fn sign_up(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let mut page = FaspPage::new(&state);
    let result = match signup::read_form(&body) {
        Ok(server) => {
            page.typed = server.clone();
            signup::sign_up(&state, &server).await
        }
        Err(e) => Err(e),
    };
    let (status, view) = match result {
        Ok(Outcome::Registered(r)) => {
            let own =
                crate::httpsig::decode_base64_lax(&r.server.own_public_key).unwrap_or_default();
            (
                StatusCode::CREATED,
                SignupView {
                    registered: true,
                    pending: false,
                    server: r.server.server_url.clone(),
                    fingerprint: fingerprint(&own),
                    completion_uri: r.server.completion_uri.clone(),
                    error: String::new(),
                },
            )
        }
        Ok(Outcome::Pending { server, .. }) => (
            StatusCode::ACCEPTED,
            SignupView {
                registered: false,
                pending: true,
                server,
                fingerprint: String::new(),
                completion_uri: String::new(),
                error: String::new(),
            },
        ),
        Err(e) => {
            if !e.status().is_client_error() {
                tracing::info!(error = %e, "FASP sign-up failed");
            }
            (
                e.status(),
                SignupView {
                    registered: false,
                    pending: false,
                    server: page.typed.clone(),
                    fingerprint: String::new(),
                    completion_uri: String::new(),
                    error: e.to_string(),
                },
            )
        }
    };
    page.signup = Some(view);
    crate::web::pages::html(status, &page)
}
