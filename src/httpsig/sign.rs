//! Outbound signing: the headers that make a request the relay sends verifiable by the receiver,
//! draft-cavage `rsa-sha256` here, RFC 9421 through [`crate::httpsig::outbound9421`].

use std::time::SystemTime;

use axum::http::{HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::httpsig::{PrivateKey, Scheme, authority, digest_header, outbound9421, request_target};
use crate::{Error, Result};

/// Signs a request the relay sends with `scheme`: [`sign_request_with_digest`] (draft-cavage) or
/// [`outbound9421::sign_request_rfc9421`]. `digest` is the body's `Digest` value ([`digest_header`]),
/// `None` for a request without body (GET); RFC 9421 turns it into `Content-Digest` without rehashing.
#[allow(clippy::too_many_arguments)]
pub fn sign_request_as(
    scheme: Scheme,
    key: &PrivateKey,
    key_id: &str,
    method: &Method,
    url: &url::Url,
    content_type: Option<&str>,
    digest: Option<&str>,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    match scheme {
        Scheme::Cavage => {
            sign_request_with_digest(key, key_id, method, url, content_type, digest, now)
        }
        Scheme::Rfc9421 => {
            let content_digest = digest
                .map(outbound9421::content_digest_from_digest)
                .transpose()?;
            outbound9421::sign_request_rfc9421(
                key,
                key_id,
                method,
                url,
                content_type,
                content_digest.as_deref(),
                now,
            )
        }
    }
}

/// The headers to add to a request the relay sends, signed with draft-cavage `rsa-sha256`.
///
/// With a body (always for POST; an absent body counts as empty): `Date`, `Digest`, `Content-Type` (when
/// given) and `Signature` over `(request-target) host date digest [content-type]`. Without: `Date` and
/// `Signature` over `(request-target) host date [content-type]`. `Host` is not returned: HTTP clients set
/// it from the URL (authority with the port when it is not the default), which is what is signed. Set
/// neither `Date`, `Digest` nor `Content-Type` separately.
pub fn sign_request(
    key: &PrivateKey,
    key_id: &str,
    method: &Method,
    url: &url::Url,
    content_type: Option<&str>,
    body: Option<&[u8]>,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let digest = match body {
        Some(b) => Some(digest_header(b)),
        None if *method == Method::POST => Some(digest_header(b"")),
        None => None,
    };
    sign_request_with_digest(
        key,
        key_id,
        method,
        url,
        content_type,
        digest.as_deref(),
        now,
    )
}

/// [`sign_request`] with the `Digest` value computed by the caller ([`digest_header`]), so that a body
/// delivered to many subscribers is hashed once. Costs one RSA signature. `digest: None` signs no digest
/// (GET).
pub fn sign_request_with_digest(
    key: &PrivateKey,
    key_id: &str,
    method: &Method,
    url: &url::Url,
    content_type: Option<&str>,
    digest: Option<&str>,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let host = authority(url)?;
    let target = request_target(url);
    let date = httpdate::fmt_http_date(now);

    let mut names = String::from("(request-target) host date");
    let mut signing = format!(
        "(request-target): {} {target}\nhost: {host}\ndate: {date}",
        method.as_str().to_ascii_lowercase()
    );
    if let Some(d) = digest {
        names.push_str(" digest");
        signing.push_str("\ndigest: ");
        signing.push_str(d);
    }
    if let Some(ct) = content_type {
        names.push_str(" content-type");
        signing.push_str("\ncontent-type: ");
        signing.push_str(ct);
    }
    if key_id.contains(['"', '\\']) {
        return Err(Error::Config(format!(
            "key id {key_id:?} cannot be quoted in a Signature header"
        )));
    }
    let signature = STANDARD.encode(key.sign_rsa_sha256(signing.as_bytes())?);
    let header = format!(
        r#"keyId="{key_id}",algorithm="rsa-sha256",headers="{names}",signature="{signature}""#
    );

    let value = |name: &str, v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| Error::Config(format!("{name} value {v:?} is not a valid header")))
    };
    let mut out = Vec::with_capacity(4);
    out.push((axum::http::header::DATE, value("Date", &date)?));
    if let Some(d) = digest {
        out.push((HeaderName::from_static("digest"), value("Digest", d)?));
    }
    if let Some(ct) = content_type {
        out.push((axum::http::header::CONTENT_TYPE, value("Content-Type", ct)?));
    }
    out.push((
        HeaderName::from_static("signature"),
        value("Signature", &header)?,
    ));
    Ok(out)
}
