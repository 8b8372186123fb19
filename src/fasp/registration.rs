//! Registering Plaza with a fediverse server (FASP general v0.1, provider side): read the server's
//! NodeInfo for `metadata.faspBaseUrl`, make a key pair and a server id for it, POST
//! `{name, baseUrl, serverId, publicKey}` to `{faspBaseUrl}/registration`, and keep what the server
//! answers (`faspId`, its `publicKey`, `registrationCompletionUri`; 200 or 201). Fetches use the
//! relay's HTTP client: its address policy, timeouts and size caps.

use serde_json::{Value, json};
use url::Url;

use super::keys::{SigningKey, VerifyingKey};
use super::registry::Registration;
use crate::federation::nodeinfo::pick_link;
use crate::state::AppState;
use crate::store::fasp::FaspServer;
use crate::{Error, Result};

/// The origin (`scheme://host[:port]`) of the server URL an admin gave: http(s) only.
pub fn server_origin(server: &str) -> Result<String> {
    let url = Url::parse(server.trim())
        .map_err(|e| Error::BadRequest(format!("server {server:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::BadRequest(format!(
            "server {server:?} must be an http(s) URL with a host"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// `metadata.faspBaseUrl` of a NodeInfo document, without a trailing slash.
pub fn fasp_base_url(nodeinfo: &Value) -> Result<String> {
    let text = nodeinfo["metadata"]["faspBaseUrl"]
        .as_str()
        .ok_or_else(|| Error::BadRequest("the server's NodeInfo has no metadata.faspBaseUrl: it does not support FASP (or has it turned off)".into()))?;
    let url = Url::parse(text)
        .map_err(|e| Error::BadRequest(format!("faspBaseUrl {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::BadRequest(format!(
            "faspBaseUrl {text:?} is not http(s)"
        )));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// What the server answered to the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The id the server gave Plaza.
    pub fasp_id: String,
    /// The server's public key (base64 of 32 bytes, checked).
    pub public_key: String,
    /// Where its admin completes the registration.
    pub completion_uri: String,
}

/// Reads the server's answer: 200 or 201 with `faspId` (string or number), `publicKey` and
/// `registrationCompletionUri`.
pub fn read_answer(url: &str, status: u16, body: &Value) -> Result<Answer> {
    if status != 200 && status != 201 {
        return Err(Error::fetch(
            url,
            format!("the server answered HTTP {status}: {body}"),
        ));
    }
    let fasp_id = match &body["faspId"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Error::fetch(url, "the answer has no faspId")),
    };
    let public_key = body["publicKey"]
        .as_str()
        .ok_or_else(|| Error::fetch(url, "the answer has no publicKey"))?
        .trim()
        .to_string();
    VerifyingKey::from_base64(&public_key).map_err(|e| Error::fetch(url, e))?;
    let completion_uri = body["registrationCompletionUri"]
        .as_str()
        .ok_or_else(|| Error::fetch(url, "the answer has no registrationCompletionUri"))?
        .to_string();
    Ok(Answer {
        fasp_id,
        public_key,
        completion_uri,
    })
}

/// Registers Plaza with the server at `server` and stores the registration.
pub async fn register(state: &AppState, server: &str) -> Result<std::sync::Arc<Registration>> {
    let origin = server_origin(server)?;
    let links = state
        .http
        .get_json(&format!("{origin}/.well-known/nodeinfo"))
        .await?;
    let href = pick_link(&links, &origin)
        .ok_or_else(|| Error::fetch(&origin, "no NodeInfo document on the server's host"))?;
    let nodeinfo = state.http.get_json(&href).await?;
    let fasp_base = fasp_base_url(&nodeinfo)?;
    let key = SigningKey::generate()?;
    let server_id = uuid::Uuid::new_v4().simple().to_string();
    let url = format!("{fasp_base}/registration");
    let (status, body) = state
        .http
        .post_json_unsigned(
            &url,
            &json!({
                "name": state.config.relay_name,
                "baseUrl": format!("{}{}", state.base, super::PREFIX),
                "serverId": server_id,
                "publicKey": key.public_key_base64(),
            }),
        )
        .await?;
    let answer = read_answer(&url, status, &body)?;
    let registration = state
        .fasp
        .registry
        .add(FaspServer {
            server_id,
            server_url: origin,
            fasp_base_url: fasp_base,
            fasp_id: answer.fasp_id,
            server_public_key: answer.public_key,
            own_private_key: key.to_base64()?,
            own_public_key: key.public_key_base64(),
            completion_uri: answer.completion_uri,
            created_at: 0,
        })
        .await?;
    tracing::info!(server = %registration.server.server_url, server_id = %registration.server.server_id, "registered with a FASP server");
    Ok(registration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_base_urls_are_read_leniently_and_checked() {
        assert_eq!(
            server_origin("https://m.example/about").unwrap(),
            "https://m.example"
        );
        assert_eq!(
            server_origin(" http://127.0.0.2:3000 ").unwrap(),
            "http://127.0.0.2:3000"
        );
        assert!(server_origin("ftp://m.example").is_err());
        assert!(server_origin("m.example").is_err());
        let ni = json!({"metadata": {"faspBaseUrl": "https://m.example/api/fasp/"}});
        assert_eq!(fasp_base_url(&ni).unwrap(), "https://m.example/api/fasp");
        assert!(fasp_base_url(&json!({"metadata": {}})).is_err());
        assert!(fasp_base_url(&json!({"metadata": {"faspBaseUrl": "javascript:x"}})).is_err());
    }

    #[test]
    fn answers_with_200_or_201_are_read() {
        let key = SigningKey::generate().unwrap().public_key_base64();
        let body = json!({"faspId": 7, "publicKey": key, "registrationCompletionUri": "https://m.example/admin/fasp/7"});
        let a = read_answer("u", 200, &body).unwrap();
        assert_eq!(a.fasp_id, "7");
        assert_eq!(read_answer("u", 201, &body).unwrap(), a);
        assert_eq!(
            read_answer("u", 500, &body).unwrap_err().status().as_u16(),
            502
        );
        let mut bad = body.clone();
        bad["publicKey"] = json!("c2hvcnQ=");
        assert!(read_answer("u", 200, &bad).is_err());
        assert!(read_answer("u", 200, &json!({})).is_err());
    }
}
