//! Outbound signing: the headers that make a request the relay sends verifiable by the receiver,
//! draft-cavage `rsa-sha256` here, RFC 9421 through [`crate::httpsig::outbound9421`].

use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::httpsig::{
    PrivateKey, Scheme, authority, digest_header, header_value, outbound9421, request_target,
};
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
    CavageTemplate::new(key_id, method, url, content_type)?.sign(key, digest, now)
}

/// What every draft-cavage signature of requests to one URL with one key shares: the request line and
/// host of the signing string, the key id and the content type. A delivery worker makes one for its
/// subscriber's inbox and signs every request with it, so that a delivery builds its signing string
/// and `Signature` value in one buffer each instead of formatting the URL, host and key id again
/// (issue 18: the glue around the RSA operation was about 1% of the relay's CPU under load).
#[derive(Debug, Clone)]
pub struct CavageTemplate {
    /// `(request-target): post /inbox\nhost: example.com\ndate: `, the date to follow.
    signing_head: String,
    /// `keyId="…",algorithm="rsa-sha256",headers="`, the signed names to follow.
    header_head: String,
    /// The `Content-Type` signed and sent, when there is one.
    content_type: Option<(String, HeaderValue)>,
    /// The key id the template was made for.
    key_id: String,
}

impl CavageTemplate {
    /// The template for requests with `method` to `url` signed as `key_id`, with `content_type` when
    /// given. [`Error::Config`] when the key id cannot be quoted or the content type is not a valid
    /// header value; [`Error::Fetch`] when the URL has no host.
    pub fn new(
        key_id: &str,
        method: &Method,
        url: &url::Url,
        content_type: Option<&str>,
    ) -> Result<CavageTemplate> {
        if key_id.contains(['"', '\\']) {
            return Err(Error::Config(format!(
                "key id {key_id:?} cannot be quoted in a Signature header"
            )));
        }
        let content_type = match content_type {
            Some(ct) => Some((ct.to_owned(), header_value("Content-Type", ct)?)),
            None => None,
        };
        Ok(CavageTemplate {
            signing_head: format!(
                "(request-target): {} {}\nhost: {}\ndate: ",
                method.as_str().to_ascii_lowercase(),
                request_target(url),
                authority(url)?
            ),
            header_head: format!(r#"keyId="{key_id}",algorithm="rsa-sha256",headers=""#),
            content_type,
            key_id: key_id.to_owned(),
        })
    }

    /// The key id this template signs as.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The headers to add to the request (see [`sign_request`]): `Date`, `Digest` when `digest` is
    /// given, `Content-Type` when the template has one, and `Signature` over them, the request target
    /// and the host. One RSA signature with `key`, which must be the key of the template's key id.
    pub fn sign(
        &self,
        key: &PrivateKey,
        digest: Option<&str>,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>> {
        let date = httpdate::fmt_http_date(now);
        let signature = key.sign_rsa_sha256(self.message(&date, digest).as_bytes())?;
        self.headers(date, digest, &signature)
    }

    /// The signing string for a request sent at `date` (an HTTP date) with `digest`.
    pub fn message(&self, date: &str, digest: Option<&str>) -> String {
        let content_type = self.content_type.as_ref().map(|(ct, _)| ct);
        let mut message = String::with_capacity(
            self.signing_head.len()
                + date.len()
                + digest.map_or(0, |d| "\ndigest: ".len() + d.len())
                + content_type.map_or(0, |ct| "\ncontent-type: ".len() + ct.len()),
        );
        message.push_str(&self.signing_head);
        message.push_str(date);
        if let Some(d) = digest {
            message.push_str("\ndigest: ");
            message.push_str(d);
        }
        if let Some(ct) = content_type {
            message.push_str("\ncontent-type: ");
            message.push_str(ct);
        }
        message
    }

    /// The headers carrying `signature`, the RSA signature of [`Self::message`] of `date` and
    /// `digest`.
    pub fn headers(
        &self,
        date: String,
        digest: Option<&str>,
        signature: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>> {
        // `…headers="(request-target) host date digest content-type",signature="…"`
        let mut header = String::with_capacity(
            self.header_head.len() + SIGNED_NAMES_MAX + signature.len().div_ceil(3) * 4 + 16,
        );
        header.push_str(&self.header_head);
        header.push_str("(request-target) host date");
        if digest.is_some() {
            header.push_str(" digest");
        }
        if self.content_type.is_some() {
            header.push_str(" content-type");
        }
        header.push_str(r#"",signature=""#);
        STANDARD.encode_string(signature, &mut header);
        header.push('"');

        let mut out = Vec::with_capacity(4);
        out.push((axum::http::header::DATE, owned_header_value("Date", date)?));
        if let Some(d) = digest {
            out.push((
                HeaderName::from_static("digest"),
                header_value("Digest", d)?,
            ));
        }
        if let Some((_, value)) = &self.content_type {
            out.push((axum::http::header::CONTENT_TYPE, value.clone()));
        }
        out.push((
            HeaderName::from_static("signature"),
            owned_header_value("Signature", header)?,
        ));
        Ok(out)
    }
}

/// The longest list of signed names a cavage `Signature` of the relay's holds.
const SIGNED_NAMES_MAX: usize = "(request-target) host date digest content-type".len();

/// [`header_value`] of a string the value takes over without copying it.
fn owned_header_value(name: &str, v: String) -> Result<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from(v))
        .map_err(|e| Error::Config(format!("{name} value is not a valid header: {e}")))
}
