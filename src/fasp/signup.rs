//! FASP sign-up from the public `/fasp` page: a server's admin enters their server's URL and the relay
//! follows its subscription policy — `open`: it registers with the server at once
//! ([`super::registration::register`]) and shows the fingerprint and the completion URI; `approval`:
//! the sign-up waits durably in the admins' pending list (at most [`MAX_PENDING`]) until one approves
//! (which registers) or rejects it; `allowlist`: only servers under a listed domain. Blocked domains are
//! refused. The form only ever starts a registration the server's own admin must still accept, and the
//! per-IP sign-up budget ([`crate::web::ip_limit`]) bounds how often one client can make the relay
//! contact a server.

use std::sync::Arc;

use super::registration;
use super::registry::Registration;
use crate::moderation::policy::Admission;
use crate::state::AppState;
use crate::store::fasp::FaspSignup;
use crate::{Error, Result};

/// Where the form posts.
pub const PATH: &str = "/fasp/signup";
/// Sign-ups that may wait for approval at once; more are refused until admins decide.
pub const MAX_PENDING: usize = 100;
/// The longest form body read, in bytes.
pub const MAX_FORM_BYTES: usize = 4096;

/// What became of a sign-up.
#[derive(Debug)]
pub enum Outcome {
    /// Registered with the server (open policy).
    Registered(Arc<Registration>),
    /// Waiting for an admin (approval policy); `already` when it was waiting before.
    Pending {
        /// The server's origin.
        server: String,
        /// It was already in the list.
        already: bool,
    },
}

/// The server URL of a posted form (`server=…`), checked: 400 without one or when too long.
pub fn read_form(body: &[u8]) -> Result<String> {
    if body.len() > MAX_FORM_BYTES {
        return Err(Error::TooLarge(format!(
            "a sign-up form of {} bytes (at most {MAX_FORM_BYTES})",
            body.len()
        )));
    }
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "server")
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::BadRequest("enter your server's address, e.g. https://social.example".into())
        })
}

/// The `host[:port]` the blocks and the policy judge for a server origin.
fn authority(origin: &str) -> Result<String> {
    let url = url::Url::parse(origin)
        .map_err(|e| Error::BadRequest(format!("server {origin:?} is not a URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::BadRequest(format!("server {origin:?} has no host")))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The origin of `server` when blocks, the policy's allowlist and existing registrations let it sign
/// up, with what the policy says.
fn admissible(state: &AppState, server: &str) -> Result<(String, Admission)> {
    let origin = registration::server_origin(server)?;
    let authority = authority(&origin)?;
    if state.curation.refuses(&authority).is_some() {
        return Err(Error::InstanceBlocked(authority));
    }
    if state
        .fasp
        .registry
        .list()
        .iter()
        .any(|r| r.server.server_url == origin)
    {
        return Err(Error::Refused(format!(
            "{origin} is already registered; its admin can accept the pending provider, or ask this relay's admin to remove the registration first"
        )));
    }
    let admission = state.curation.admit(&authority);
    if let Admission::Refuse(reason) = admission {
        return Err(Error::Refused(reason.to_string()));
    }
    Ok((origin, admission))
}

/// A sign-up from the form for `server` (see the module documentation).
pub async fn sign_up(state: &AppState, server: &str) -> Result<Outcome> {
    let (origin, admission) = admissible(state, server)?;
    if admission == Admission::Admit {
        return Ok(Outcome::Registered(
            registration::register(state, &origin).await?,
        ));
    }
    match state.store.add_fasp_signup(&origin, MAX_PENDING).await? {
        Some(added) => {
            tracing::info!(server = %origin, "FASP sign-up waits for approval");
            Ok(Outcome::Pending {
                server: origin,
                already: !added,
            })
        }
        None => Err(Error::RateLimited(format!(
            "FASP sign-ups: {MAX_PENDING} already wait for approval; try again later"
        ))),
    }
}

/// The sign-ups waiting for approval.
pub async fn pending(state: &AppState) -> Result<Vec<FaspSignup>> {
    state.store.fasp_signups().await
}

/// The waiting sign-up of `server` (404 without one), by its URL as listed or as typed.
async fn waiting(state: &AppState, server: &str) -> Result<String> {
    let origin = registration::server_origin(server)?;
    if pending(state).await?.iter().any(|s| s.server_url == origin) {
        Ok(origin)
    } else {
        Err(Error::NotFound(format!("FASP sign-up of {origin}")))
    }
}

/// Approves a waiting sign-up: registers with the server (blocks still apply), then forgets the
/// sign-up. A failed registration leaves it waiting.
pub async fn approve(state: &AppState, server: &str) -> Result<Arc<Registration>> {
    let origin = waiting(state, server).await?;
    let authority = authority(&origin)?;
    if state.curation.refuses(&authority).is_some() {
        return Err(Error::InstanceBlocked(authority));
    }
    let registration = registration::register(state, &origin).await?;
    state.store.remove_fasp_signup(&origin).await?;
    Ok(registration)
}

/// Rejects a waiting sign-up: it leaves the list; the server is not contacted.
pub async fn reject(state: &AppState, server: &str) -> Result<String> {
    let origin = waiting(state, server).await?;
    state.store.remove_fasp_signup(&origin).await?;
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_draws_from_the_sign_up_budget() {
        use crate::web::ip_limit::{Budget, SIGNUP_PATH};
        assert_eq!(PATH, SIGNUP_PATH);
        assert_eq!(Budget::of(&axum::http::Method::POST, PATH), Budget::Signup);
    }

    #[test]
    fn forms_and_authorities_are_read_and_checked() {
        assert_eq!(
            read_form(b"server=https%3A%2F%2Fsocial.example%2F&go=1").unwrap(),
            "https://social.example/"
        );
        assert_eq!(read_form(b"server=+").unwrap_err().status().as_u16(), 400);
        assert_eq!(read_form(b"other=x").unwrap_err().status().as_u16(), 400);
        let big = vec![b'a'; MAX_FORM_BYTES + 1];
        assert_eq!(read_form(&big).unwrap_err().status().as_u16(), 413);
        assert_eq!(
            authority("http://127.0.0.2:3000").unwrap(),
            "127.0.0.2:3000"
        );
        assert_eq!(
            authority("https://Social.Example").unwrap(),
            "social.example"
        );
    }
}
