//! HTTP signatures: checking what instances send to the inbox, signing what the relay sends out.
//!
//! The inbox calls [`extract_claim`] before fetching any key: it parses whichever signature the request
//! carries (RFC 9421 when `Signature-Input` is present, else draft-cavage), applies Mastodon's policy (what
//! must be signed, digest, clock window) and returns a [`Claim`]: the key id to resolve and the exact bytes
//! to verify. Once the key is known (and cached), [`Claim::verify`] does one public-key operation.
//! Outgoing requests are signed with [`sign_request`] (draft-cavage, `rsa-sha256`, what every server
//! accepts); the fan-out hashes a body once and uses [`sign_request_with_digest`] per subscriber.
//!
//! Files: `cavage` and `rfc9421` build the signed bytes of each scheme, `digest` ties bodies to headers,
//! `keys` holds public and private keys, `sfv` parses RFC 8941 structured fields.

pub mod cavage;
pub mod digest;
pub mod keys;
pub mod outbound9421;
pub mod rfc9421;
mod sfv;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use digest::{check_content_digest, check_digest, content_digest_header, digest_header};
pub use keys::{KeyType, PrivateKey, PublicKey, SigAlgorithm, verify_hmac_sha256};

use crate::{Error, Result};

/// How far a signature's date may lie in the future, and how long after expiry it is still accepted
/// (Mastodon's `CLOCK_SKEW_MARGIN`).
pub const CLOCK_SKEW_MARGIN_SECS: i64 = 60 * 60;
/// Validity of a signature that does not say `expires` (Mastodon: 5 minutes).
pub const DEFAULT_EXPIRY_SECS: i64 = 5 * 60;
/// The longest validity a signature may claim (Mastodon's `EXPIRATION_WINDOW_LIMIT`).
pub const EXPIRATION_WINDOW_LIMIT_SECS: i64 = 12 * 60 * 60;

/// The longest signature-related header value read (`Signature`, `Signature-Input`, `Authorization`,
/// `Digest`, `Content-Digest`; several field lines count together), in bytes. Real ones are under 1 KB
/// (an RSA-4096 signature is 684 base64 characters); anything longer is refused before it is parsed.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 8 * 1024;

/// The most entries read in any list of a signature header: cavage parameters and `headers=` names,
/// structured-field dictionary members, inner-list items and parameters per item, `Digest` entries. Real
/// signatures use fewer than ten; parsers stop with an error at the first entry past the cap.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;

/// A request as the inbox received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target: path and query, as received (`/inbox?x=1`).
    pub path_and_query: &'a str,
    /// The relay's own authority (host and non-default port of its public URL): the signature must have
    /// been made for it. A `Host` header, when present, must name it; `host` (when there is no Host
    /// header, as over HTTP/2), `@authority` and `@target-uri` are built from it.
    pub authority: &'a str,
    /// `https` (or `http` behind a terminating proxy, as configured).
    pub scheme: &'a str,
    /// The request's header fields.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
}

/// Which specification a signature follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// draft-cavage-http-signatures (`Signature` header).
    Cavage,
    /// RFC 9421 (`Signature-Input` + `Signature`).
    Rfc9421,
}

/// A signature that passed every check that needs no key: what remains is one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key to fetch (`keyId` / `keyid`).
    pub key_id: String,
    /// The algorithm the signature names; `None` means "the key's usual one" (cavage `hs2019`, RFC 9421
    /// without `alg`).
    pub algorithm: Option<SigAlgorithm>,
    /// The signed bytes (signing string or signature base).
    pub message: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
    /// The scheme the request used (worth remembering per host for outgoing requests).
    pub scheme: Scheme,
}

impl Claim {
    /// Verifies the signature with the signer's key.
    ///
    /// [`Error::KeyUnusable`] when the named algorithm does not fit the key, [`Error::SignatureInvalid`]
    /// when the signature is wrong (the caller may refetch the key once, then answer 401).
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        let alg = self
            .algorithm
            .unwrap_or_else(|| key.key_type().default_algorithm());
        key.verify(alg, &self.message, &self.signature)
    }
}

/// Parses whichever signature the request carries (RFC 9421 when `Signature-Input` is present, else
/// draft-cavage from `Signature`, or from `Authorization: Signature …`) and applies Mastodon's policy
/// before any key is fetched.
///
/// Every request must have been made for this relay: a `Host` header, when present, must name
/// [`SignedRequest::authority`] ([`Error::SignatureWrongHost`] otherwise), and the signature must cover it.
///
/// draft-cavage: `keyId` and `signature` required; `date` or `(created)` must be signed, `host` and
/// `(request-target)` always (deviations from Mastodon, which lets a POST leave out `host` and accepts
/// `digest` in place of `(request-target)`: a signature that does not bind the host and path can be
/// replayed to another server or endpoint); a POST must sign `digest`, and the `Digest` header must match
/// the body. `expires` counts only when `(expires)` is signed. Algorithms: `rsa-sha256`, `hs2019`
/// (decided by the key type), `ed25519`.
///
/// RFC 9421: `keyid` and `created` required; `@method` signed; the target signed either as `@target-uri`
/// or as `@authority` plus `@request-target`, or `@authority` plus `@path` plus `@query` (`@query` may be
/// left out when the request has no query); a POST must sign `content-digest`, which must match the body.
///
/// Clock window, as Mastodon: the date (`Date` header, or `created` when `(created)` is signed / in
/// RFC 9421) may be at most one hour ahead of `now`; the signature expires at `expires` or `created` +
/// 5 min, never later than `created` + 12 h, and is refused one hour after that.
///
/// Cost is bounded before anything is parsed: signature headers longer than
/// [`MAX_SIGNATURE_HEADER_BYTES`] or with more than [`MAX_SIGNATURE_ENTRIES`] entries in a list are
/// refused, and the body is hashed at most once per digest algorithm.
pub fn extract_claim(req: &SignedRequest<'_>, now: SystemTime) -> Result<Claim> {
    check_host(req)?;
    if req.headers.contains_key("signature-input") {
        return rfc9421_claim(req, now);
    }
    let value = match joined_header(req.headers, "signature")? {
        Some(v) => v,
        None => match req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            Some(auth) if auth.len() > MAX_SIGNATURE_HEADER_BYTES => {
                return Err(too_long("authorization", auth.len()));
            }
            Some(auth) => match (auth.get(..10), auth.get(10..)) {
                (Some(scheme), Some(params)) if scheme.eq_ignore_ascii_case("signature ") => {
                    params.to_owned()
                }
                _ => return Err(Error::SignatureMissing),
            },
            None => return Err(Error::SignatureMissing),
        },
    };
    cavage_claim(req, &value, now)
}

fn cavage_claim(req: &SignedRequest<'_>, value: &str, now: SystemTime) -> Result<Claim> {
    let sig = cavage::parse_signature_header(value)?;
    let algorithm = match sig.algorithm.as_deref() {
        None | Some("hs2019") => None,
        Some("rsa-sha256") => Some(SigAlgorithm::RsaPkcs1Sha256),
        Some("ed25519") => Some(SigAlgorithm::Ed25519),
        Some(other) => {
            return Err(Error::SignatureMalformed(format!(
                "unsupported algorithm {other:?}"
            )));
        }
    };
    let signs = |h: &str| sig.headers.iter().any(|s| s == h);
    if !signs("date") && !signs("(created)") {
        return Err(Error::SignatureIncomplete("date or (created)".into()));
    }
    if !signs("(request-target)") {
        return Err(Error::SignatureIncomplete("(request-target)".into()));
    }
    if !signs("host") {
        return Err(Error::SignatureIncomplete(
            "host (the relay's authority must be signed)".into(),
        ));
    }
    if req.method == Method::POST && !signs("digest") {
        return Err(Error::SignatureIncomplete(
            "digest (required for POST)".into(),
        ));
    }
    let created = if signs("(created)") {
        sig.created.ok_or_else(|| {
            Error::SignatureIncomplete("(created) without created parameter".into())
        })?
    } else {
        let date = req
            .headers
            .get("date")
            .and_then(|d| d.to_str().ok())
            .ok_or_else(|| Error::SignatureIncomplete("the date header (absent)".into()))?;
        let t = httpdate::parse_http_date(date)
            .map_err(|_| Error::SignatureMalformed(format!("Date {date:?} is not an HTTP date")))?;
        unix_secs(t)
    };
    // An `expires` that is not signed could be appended by anyone to revive an old signature.
    let expires = if signs("(expires)") {
        sig.expires
    } else {
        None
    };
    check_window(created, expires, now)?;
    let message = cavage::signing_string(&sig, req)?;
    if signs("digest") {
        let digest = joined_header(req.headers, "digest")?
            .ok_or_else(|| Error::SignatureIncomplete("the digest header (absent)".into()))?;
        check_digest(&digest, req.body)?;
    }
    Ok(Claim {
        key_id: sig.key_id,
        algorithm,
        message,
        signature: sig.signature,
        scheme: Scheme::Cavage,
    })
}

fn rfc9421_claim(req: &SignedRequest<'_>, now: SystemTime) -> Result<Claim> {
    let input = joined_header(req.headers, "signature-input")?.unwrap_or_default();
    let signature = joined_header(req.headers, "signature")?
        .ok_or_else(|| Error::SignatureMalformed("Signature-Input without Signature".into()))?;
    let sig = rfc9421::parse(&input, &signature, None)?;
    let key_id = sig
        .key_id
        .clone()
        .ok_or_else(|| Error::SignatureMalformed("keyid missing".into()))?;
    let algorithm = match sig.alg.as_deref() {
        None => None,
        Some(name) => match SigAlgorithm::from_rfc9421_name(name) {
            Some(SigAlgorithm::HmacSha256) | None => {
                return Err(Error::SignatureMalformed(format!(
                    "unsupported alg {name:?}"
                )));
            }
            some => some,
        },
    };
    let created = sig
        .created
        .ok_or_else(|| Error::SignatureIncomplete("created".into()))?;
    if !sig.covers("@method") {
        return Err(Error::SignatureIncomplete("@method".into()));
    }
    let has_query = req.path_and_query.contains('?');
    let target = sig.covers("@target-uri")
        || (sig.covers("@authority")
            && (sig.covers("@request-target")
                || (sig.covers("@path") && (sig.covers("@query") || !has_query))));
    if !target {
        return Err(Error::SignatureIncomplete(
            "@target-uri (or @authority with @path and @query)".into(),
        ));
    }
    if req.method == Method::POST && !sig.covers("content-digest") {
        return Err(Error::SignatureIncomplete(
            "content-digest (required for POST)".into(),
        ));
    }
    check_window(created, sig.expires, now)?;
    let message = rfc9421::signature_base(&sig, &rfc9421::Message::Request(req))?;
    if sig.covers("content-digest") {
        let value = joined_header(req.headers, "content-digest")?.ok_or_else(|| {
            Error::SignatureIncomplete("the content-digest header (absent)".into())
        })?;
        check_content_digest(&value, req.body)?;
    }
    Ok(Claim {
        key_id,
        algorithm,
        message,
        signature: sig.signature,
        scheme: Scheme::Rfc9421,
    })
}

/// Refuses a request whose `Host` header names another server than the relay (a signature made for
/// that server, replayed here). Absent Host (HTTP/2) is fine: the signature is then checked against the
/// relay's own authority.
fn check_host(req: &SignedRequest<'_>) -> Result<()> {
    let mut values = req.headers.get_all(axum::http::header::HOST).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    let host = first.to_str().unwrap_or("(not visible ASCII)");
    if values.next().is_some() {
        return Err(Error::BadRequest("more than one Host header".into()));
    }
    if rfc9421::normalized_authority(req.scheme, host)
        != rfc9421::normalized_authority(req.scheme, req.authority)
    {
        return Err(Error::SignatureWrongHost {
            host: host.chars().take(100).collect(),
            relay: req.authority.to_owned(),
        });
    }
    Ok(())
}

fn too_long(name: &str, len: usize) -> Error {
    Error::SignatureMalformed(format!(
        "{name} header is {len} bytes, over the limit of {MAX_SIGNATURE_HEADER_BYTES}"
    ))
}

/// All values of a header joined with `, ` (RFC 9110 field-line combination); `None` when absent.
/// Longer than [`MAX_SIGNATURE_HEADER_BYTES`] in total is [`Error::SignatureMalformed`], checked before
/// anything is copied.
fn joined_header(headers: &HeaderMap, name: &str) -> Result<Option<String>> {
    let values = headers.get_all(name);
    let total = values
        .iter()
        .map(|v| v.len() + 2)
        .sum::<usize>()
        .saturating_sub(2);
    if total > MAX_SIGNATURE_HEADER_BYTES {
        return Err(too_long(name, total));
    }
    let mut out: Option<String> = None;
    for v in values {
        let s = v.to_str().map_err(|_| {
            Error::SignatureMalformed(format!("{name} header is not visible ASCII"))
        })?;
        match &mut out {
            Some(acc) => {
                acc.push_str(", ");
                acc.push_str(s);
            }
            None => out = Some(s.to_owned()),
        }
    }
    Ok(out)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Mastodon's clock window (see [`extract_claim`]).
fn check_window(created: i64, expires: Option<i64>, now: SystemTime) -> Result<()> {
    let now = unix_secs(now);
    if created > now.saturating_add(CLOCK_SKEW_MARGIN_SECS) {
        return Err(Error::SignatureExpired(format!(
            "signed {}s in the future",
            created.saturating_sub(now)
        )));
    }
    let expires = expires
        .unwrap_or_else(|| created.saturating_add(DEFAULT_EXPIRY_SECS))
        .min(created.saturating_add(EXPIRATION_WINDOW_LIMIT_SECS));
    if now > expires.saturating_add(CLOCK_SKEW_MARGIN_SECS) {
        return Err(Error::SignatureExpired(format!(
            "expired {}s ago",
            now.saturating_sub(expires)
        )));
    }
    Ok(())
}

/// The `Host` of a request to `url`, as signed: the host, with the port when it is not the scheme's
/// default.
pub fn authority(url: &url::Url) -> Result<String> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::fetch(url.as_str(), "URL has no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The request target of a request to `url` in origin form, as signed: path, and `?query` when there is
/// one.
pub fn request_target(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

impl Scheme {
    /// The other scheme: what to try once when a receiver refuses this one (the "double knock").
    pub fn other(self) -> Scheme {
        match self {
            Scheme::Cavage => Scheme::Rfc9421,
            Scheme::Rfc9421 => Scheme::Cavage,
        }
    }

    /// The name used in the configuration and the store: `cavage` or `rfc9421`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Cavage => "cavage",
            Scheme::Rfc9421 => "rfc9421",
        }
    }

    /// Reads [`Scheme::as_str`] back.
    pub fn parse(name: &str) -> Option<Scheme> {
        match name {
            "cavage" => Some(Scheme::Cavage),
            "rfc9421" => Some(Scheme::Rfc9421),
            _ => None,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::text as fixture;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// One generated key for the whole test module (generation is the slow part).
    fn relay_key() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate().expect("generate"))
    }

    /// Seconds since the epoch of an RFC 3339 UTC timestamp like `2024-03-05T07:49:44Z`.
    fn rfc3339(s: &str) -> SystemTime {
        let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
        let (y, m, d) = (n(0..4), n(5..7), n(8..10));
        let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
        let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d - 719469;
        let secs = days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("positive"))
    }

    struct Owned {
        method: Method,
        pq: String,
        authority: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Owned {
        fn req(&self) -> SignedRequest<'_> {
            SignedRequest {
                method: &self.method,
                path_and_query: &self.pq,
                authority: &self.authority,
                scheme: "https",
                headers: &self.headers,
                body: &self.body,
            }
        }
    }

    /// What the receiving side of `sign_request` sees: the returned headers plus Host.
    fn signed(method: Method, url: &str, body: Option<&[u8]>, now: SystemTime) -> Owned {
        let url = url::Url::parse(url).expect("url");
        let ct = body.map(|_| "application/activity+json");
        let hs = sign_request(
            relay_key(),
            "https://relay.example/actor#main-key",
            &method,
            &url,
            ct,
            body,
            now,
        )
        .expect("sign");
        let mut headers = HeaderMap::new();
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().expect("host")),
            None => url.host_str().expect("host").to_owned(),
        };
        headers.insert("host", HeaderValue::from_str(&authority).expect("host"));
        for (n, v) in hs {
            headers.append(n, v);
        }
        let pq = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Owned {
            method,
            pq,
            authority,
            headers,
            body: body.unwrap_or_default().to_vec(),
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn fedify_cavage_vector() {
        let v: serde_json::Value =
            serde_json::from_str(&fixture("httpsig-fedify-cavage-vector.json")).expect("json");
        let key_doc: serde_json::Value =
            serde_json::from_str(&fixture("httpsig-fedify-example-key.json")).expect("json");
        let r = &v["request"];
        let url = url::Url::parse(r["url"].as_str().expect("url")).expect("url");
        let mut headers = HeaderMap::new();
        for (k, val) in r["headers"].as_object().expect("headers") {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(val.as_str().expect("v")).expect("v"),
            );
        }
        let method =
            Method::from_bytes(r["method"].as_str().expect("m").as_bytes()).expect("method");
        let req = SignedRequest {
            method: &method,
            path_and_query: url.path(),
            authority: url.host_str().expect("host"),
            scheme: url.scheme(),
            headers: &headers,
            body: r["body"].as_str().expect("body").as_bytes(),
        };
        let now = rfc3339(v["now"].as_str().expect("now"));
        let claim = extract_claim(&req, now).expect("claim");
        assert_eq!(claim.key_id, "https://example.com/key");
        assert_eq!(claim.algorithm, None);
        assert_eq!(claim.scheme, Scheme::Cavage);
        assert_eq!(
            String::from_utf8(claim.message.clone()).expect("utf8"),
            v["signing_string"].as_str().expect("s")
        );
        let key = PublicKey::from_pem(key_doc["publicKeyPem"].as_str().expect("pem")).expect("key");
        claim.verify(&key).expect("verifies");

        let mut tampered = claim.clone();
        tampered.message.push(b' ');
        assert!(matches!(
            tampered.verify(&key),
            Err(Error::SignatureInvalid)
        ));
        // Two hours later the same request is refused.
        assert!(matches!(
            extract_claim(&req, now + Duration::from_secs(7200)),
            Err(Error::SignatureExpired(_))
        ));
    }

    #[test]
    fn round_trip_post_and_get() {
        let public = relay_key().public_key().expect("public");
        let body = br#"{"type":"Announce"}"#;
        let post = signed(
            Method::POST,
            "https://a.example:8443/inbox?x=1",
            Some(body),
            now(),
        );
        let claim = extract_claim(&post.req(), now()).expect("post claim");
        assert_eq!(claim.key_id, "https://relay.example/actor#main-key");
        assert_eq!(claim.algorithm, Some(SigAlgorithm::RsaPkcs1Sha256));
        let text = String::from_utf8(claim.message.clone()).expect("utf8");
        assert!(
            text.starts_with("(request-target): post /inbox?x=1\nhost: a.example:8443\ndate: "),
            "{text}"
        );
        assert!(
            text.ends_with("\ncontent-type: application/activity+json"),
            "{text}"
        );
        claim.verify(&public).expect("post verifies");

        let get = signed(Method::GET, "https://b.example/users/x", None, now());
        assert!(!get.headers.contains_key("digest"));
        let claim = extract_claim(&get.req(), now()).expect("get claim");
        assert_eq!(claim.message.iter().filter(|b| **b == b'\n').count(), 2);
        claim.verify(&public).expect("get verifies");
    }

    #[test]
    fn precomputed_digest_matches() {
        let body = b"{}";
        let url = url::Url::parse("https://a.example/inbox").expect("url");
        let d = digest_header(body);
        let hs =
            sign_request_with_digest(relay_key(), "k", &Method::POST, &url, None, Some(&d), now())
                .expect("sign");
        let names: Vec<&str> = hs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["date", "digest", "signature"]);
        assert_eq!(hs[1].1, d.as_str());
    }

    #[test]
    fn negative_cases() {
        let public = relay_key().public_key().expect("public");
        let body = br#"{"type":"Create"}"#;
        let mk = || signed(Method::POST, "https://a.example/inbox", Some(body), now());

        // Tampered body: the digest no longer matches.
        let mut o = mk();
        o.body = b"{}".to_vec();
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::Digest(_))
        ));

        // Tampered signature.
        let o = mk();
        let mut claim = extract_claim(&o.req(), now()).expect("claim");
        claim.signature[10] ^= 0x40;
        assert!(matches!(
            claim.verify(&public),
            Err(Error::SignatureInvalid)
        ));

        // A date two hours old, and one two hours ahead.
        let o = mk();
        assert!(matches!(
            extract_claim(&o.req(), now() + Duration::from_secs(7200)),
            Err(Error::SignatureExpired(_))
        ));
        assert!(matches!(
            extract_claim(&o.req(), now() - Duration::from_secs(7200)),
            Err(Error::SignatureExpired(_))
        ));
        // Within skew and expiry: fine.
        extract_claim(&o.req(), now() + Duration::from_secs(3000))
            .expect("50 minutes late is accepted");

        // POST whose signature does not cover digest.
        let o = signed(Method::POST, "https://a.example/inbox", None, now());
        let mut headers = o.headers.clone();
        let sig = headers
            .get("signature")
            .and_then(|v| v.to_str().ok())
            .expect("sig")
            .replace(" digest", "");
        headers.insert("signature", HeaderValue::from_str(&sig).expect("v"));
        let o2 = Owned { headers, ..o };
        assert!(matches!(
            extract_claim(&o2.req(), now()),
            Err(Error::SignatureIncomplete(_))
        ));

        // Unsigned.
        let mut o = mk();
        o.headers.remove("signature");
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureMissing)
        ));

        // Garbage headers.
        for garbage in [
            "garbage",
            "keyId=",
            "\"\"\"",
            "keyId=\"k\",signature=\"AAEC\",algorithm=\"rot13\"",
        ] {
            let mut o = mk();
            o.headers
                .insert("signature", HeaderValue::from_str(garbage).expect("v"));
            assert!(
                matches!(
                    extract_claim(&o.req(), now()),
                    Err(Error::SignatureMalformed(_))
                ),
                "{garbage}"
            );
        }
        let mut o = mk();
        o.headers
            .insert("signature-input", HeaderValue::from_static("((("));
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureMalformed(_))
        ));
        let mut o = mk();
        o.headers.insert(
            "signature",
            HeaderValue::from_bytes(b"keyId=\"\xff\"").expect("v"),
        );
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureMalformed(_))
        ));
    }

    #[test]
    fn authorization_header_fallback() {
        let mut o = signed(Method::GET, "https://b.example/users/x", None, now());
        let sig = o.headers.remove("signature").expect("sig");
        let auth = format!("Signature {}", sig.to_str().expect("ascii"));
        o.headers
            .insert("authorization", HeaderValue::from_str(&auth).expect("v"));
        extract_claim(&o.req(), now())
            .expect("claim")
            .verify(&relay_key().public_key().expect("pk"))
            .expect("ok");
    }

    /// Signs `components` as RFC 9421 over `o` with the relay key (what Fedify would send).
    fn rfc9421_sign(o: &mut Owned, components: &str, created: i64) {
        let input = format!(
            r#"sig1=({components});created={created};keyid="https://relay.example/actor#main-key";alg="rsa-v1_5-sha256""#
        );
        o.headers
            .insert("signature-input", HeaderValue::from_str(&input).expect("v"));
        o.headers
            .insert("signature", HeaderValue::from_static("sig1=:AAEC:"));
        let sig = rfc9421::parse(&input, "sig1=:AAEC:", None).expect("parse");
        let base =
            rfc9421::signature_base(&sig, &rfc9421::Message::Request(&o.req())).expect("base");
        let bytes = relay_key().sign_rsa_sha256(&base).expect("sign");
        let value = format!("sig1=:{}:", STANDARD.encode(bytes));
        o.headers
            .insert("signature", HeaderValue::from_str(&value).expect("v"));
    }

    #[test]
    fn rfc9421_requests() {
        let public = relay_key().public_key().expect("public");
        let body = br#"{"type":"Create"}"#.to_vec();
        let created = unix_secs(now());
        let base = || {
            let mut headers = HeaderMap::new();
            headers.insert(
                "content-digest",
                HeaderValue::from_str(&content_digest_header(&body)).expect("v"),
            );
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/activity+json"),
            );
            Owned {
                method: Method::POST,
                pq: "/inbox".into(),
                authority: "relay.example".into(),
                headers,
                body: body.clone(),
            }
        };

        let mut o = base();
        rfc9421_sign(
            &mut o,
            r#""@method" "@target-uri" "content-digest" "content-type""#,
            created,
        );
        let claim = extract_claim(&o.req(), now()).expect("claim");
        assert_eq!(claim.scheme, Scheme::Rfc9421);
        assert_eq!(claim.algorithm, Some(SigAlgorithm::RsaPkcs1Sha256));
        claim.verify(&public).expect("verifies");

        let mut o = base();
        rfc9421_sign(
            &mut o,
            r#""@method" "@authority" "@path" "content-digest""#,
            created,
        );
        extract_claim(&o.req(), now())
            .expect("authority + path")
            .verify(&public)
            .expect("verifies");

        // Tampered body.
        let mut o = base();
        rfc9421_sign(
            &mut o,
            r#""@method" "@target-uri" "content-digest""#,
            created,
        );
        o.body = b"{}".to_vec();
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::Digest(_))
        ));

        // Old.
        let mut o = base();
        rfc9421_sign(
            &mut o,
            r#""@method" "@target-uri" "content-digest""#,
            created - 7200,
        );
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureExpired(_))
        ));

        // Missing pieces.
        for components in [
            r#""@target-uri" "content-digest""#,
            r#""@method" "content-digest""#,
            r#""@method" "@target-uri""#,
            r#""@method" "@path" "content-digest""#,
        ] {
            let mut o = base();
            rfc9421_sign(&mut o, components, created);
            assert!(
                matches!(
                    extract_claim(&o.req(), now()),
                    Err(Error::SignatureIncomplete(_))
                ),
                "{components}"
            );
        }
        let mut o = base();
        o.pq = "/inbox?x=1".into();
        rfc9421_sign(
            &mut o,
            r#""@method" "@authority" "@path" "content-digest""#,
            created,
        );
        assert!(
            matches!(
                extract_claim(&o.req(), now()),
                Err(Error::SignatureIncomplete(_))
            ),
            "query unsigned"
        );

        // No created.
        let mut o = base();
        o.headers.insert(
            "signature-input",
            HeaderValue::from_static(
                r#"sig1=("@method" "@target-uri" "content-digest");keyid="k""#,
            ),
        );
        o.headers
            .insert("signature", HeaderValue::from_static("sig1=:AAEC:"));
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureIncomplete(_))
        ));
    }

    #[test]
    fn rfc9421_proxy_vector_is_refused_by_policy() {
        // RFC 9421 §4.3's proxy signature covers @authority and @path but not @query although the target
        // has one, and it is years old: the policy refuses it (it is checked byte for byte in rfc9421.rs).
        let v: serde_json::Value =
            serde_json::from_str(&fixture("rfc9421-vectors.json")).expect("json");
        let case = &v["cases"][6];
        let mut headers = HeaderMap::new();
        headers.insert(
            "signature-input",
            HeaderValue::from_str(case["Signature-Input"].as_str().expect("i")).expect("v"),
        );
        headers.insert(
            "signature",
            HeaderValue::from_str(case["Signature"].as_str().expect("s")).expect("v"),
        );
        let method = Method::POST;
        let req = SignedRequest {
            method: &method,
            path_and_query: "/foo?param=Value&Pet=dog",
            authority: "origin.host.internal.example",
            scheme: "https",
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            extract_claim(&req, now()),
            Err(Error::SignatureIncomplete(_))
        ));
    }

    #[test]
    fn mangled_headers_never_panic() {
        let o = signed(Method::POST, "https://a.example/inbox", Some(b"{}"), now());
        let cavage = o.headers.get("signature").expect("sig").as_bytes().to_vec();
        let input = br#"sig1=("@method" "@target-uri" "@query-param";name="a" "content-digest");created=1800000000;keyid="k";alg="rsa-v1_5-sha256""#;
        let sig = b"sig1=:AAECAwQ=:";
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        for (name, value) in [("signature", &cavage[..]), ("signature-input", &input[..])] {
            for cut in 0..value.len() {
                cases.push((name, value[..cut].to_vec()));
                for flip in [b'"', b',', b'=', b'(', b';', b':', b' ', b'\\', 0x80] {
                    let mut v = value.to_vec();
                    v[cut] = flip;
                    cases.push((name, v));
                }
            }
        }
        for (name, value) in cases {
            let mut headers = o.headers.clone();
            let Ok(v) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            headers.insert(name, v);
            if name == "signature-input" {
                headers.insert("signature", HeaderValue::from_static("x"));
                headers.append("signature", HeaderValue::from_bytes(sig).expect("v"));
            }
            let owned = Owned {
                method: Method::POST,
                pq: "/inbox?a=1".into(),
                authority: o.authority.clone(),
                headers,
                body: o.body.clone(),
            };
            let _ = extract_claim(&owned.req(), now());
        }
        let pem = relay_key().public_key_pem().to_owned();
        for cut in 0..pem.len() {
            let _ = PublicKey::from_pem(&pem[..cut]);
        }
    }

    #[test]
    fn window_edges() {
        let t = 1_000_000;
        let at = |s: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(s).expect("pos"));
        check_window(t, None, at(t + 300 + 3600)).expect("edge");
        assert!(check_window(t, None, at(t + 300 + 3601)).is_err());
        check_window(t, Some(t + 7200), at(t + 7200 + 3600)).expect("explicit expires");
        assert!(
            check_window(t, Some(t + 100 * 3600), at(t + 14 * 3600)).is_err(),
            "capped at 12 h"
        );
        check_window(t + 3600, None, at(t)).expect("one hour ahead");
        assert!(check_window(t + 3601, None, at(t)).is_err());
        assert!(check_window(i64::MAX, Some(i64::MIN), at(t)).is_err());
    }

    #[test]
    fn signature_made_for_another_server_is_refused() {
        let body = br#"{"type":"Undo"}"#;
        let for_relay = || {
            signed(
                Method::POST,
                "https://relay.example/inbox",
                Some(body),
                now(),
            )
        };
        // A request signed for other.example, replayed to the relay with its Host header intact.
        let mut o = signed(
            Method::POST,
            "https://other.example/inbox",
            Some(body),
            now(),
        );
        extract_claim(&o.req(), now()).expect("valid where it was sent");
        o.authority = "relay.example".into();
        let err = extract_claim(&o.req(), now()).expect_err("replayed here");
        assert!(matches!(err, Error::SignatureWrongHost { .. }), "{err}");
        assert_eq!(err.status(), axum::http::StatusCode::UNAUTHORIZED);
        assert!(err.to_string().contains("other.example"), "{err}");

        // Host normalisation: case and the scheme's default port do not matter.
        let mut o = for_relay();
        o.authority = "Relay.Example:443".into();
        extract_claim(&o.req(), now()).expect("same authority");

        // A POST must sign host (Mastodon does not require it; a relay must).
        let o = for_relay();
        let mut headers = o.headers.clone();
        let sig = headers
            .get("signature")
            .and_then(|v| v.to_str().ok())
            .expect("sig")
            .replace(" host", "");
        headers.insert("signature", HeaderValue::from_str(&sig).expect("v"));
        let o = Owned { headers, ..o };
        let err = extract_claim(&o.req(), now()).expect_err("host unsigned");
        assert!(matches!(err, Error::SignatureIncomplete(_)), "{err}");
        assert!(err.to_string().contains("host"), "{err}");

        // RFC 9421: the Host header must name the relay too.
        let mut o = for_relay();
        o.headers.insert(
            "content-digest",
            HeaderValue::from_str(&content_digest_header(body)).expect("v"),
        );
        rfc9421_sign(
            &mut o,
            r#""@method" "@target-uri" "content-digest""#,
            unix_secs(now()),
        );
        extract_claim(&o.req(), now()).expect("rfc9421 for the relay");
        o.headers
            .insert("host", HeaderValue::from_static("other.example"));
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureWrongHost { .. })
        ));
    }

    #[test]
    fn unsigned_expires_is_ignored() {
        let body = br#"{"type":"Create"}"#;
        let three_hours_ago = now() - Duration::from_secs(3 * 3600);
        let mut o = signed(
            Method::POST,
            "https://relay.example/inbox",
            Some(body),
            three_hours_ago,
        );
        assert!(matches!(
            extract_claim(&o.req(), now()),
            Err(Error::SignatureExpired(_))
        ));
        let sig = o.headers["signature"].to_str().expect("ascii").to_owned();
        let revived = format!("{sig},expires=\"{}\"", unix_secs(now()) + 3600);
        o.headers
            .insert("signature", HeaderValue::from_str(&revived).expect("v"));
        let err = extract_claim(&o.req(), now()).expect_err("unsigned expires");
        assert!(matches!(err, Error::SignatureExpired(_)), "{err}");
    }

    #[test]
    fn hostile_headers_are_refused_with_a_reason() {
        let body = vec![b'x'; 1024 * 1024];
        let o = signed(
            Method::POST,
            "https://relay.example/inbox",
            Some(&body),
            now(),
        );
        let huge = "a".repeat(430 * 1024);
        let many: Vec<String> = (0..1000).map(|i| format!("p{i}=1")).collect();
        let many = many.join(",");
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "signature",
                format!(r#"keyId="k",x="{huge}""#),
                "over the limit",
            ),
            ("signature", many.clone(), "more than 32 parameters"),
            (
                "signature-input",
                format!(r#"sig1=("@method");created=1;x="{huge}""#),
                "over the limit",
            ),
            (
                "signature-input",
                format!("sig1=(\"@method\"){}", ";p=1".repeat(1000)),
                "more than 32 parameters",
            ),
            (
                "digest",
                vec![digest_header(&body); 7000].join(","),
                "over the limit",
            ),
        ];
        for (name, value, reason) in cases {
            let mut headers = o.headers.clone();
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).expect("v"),
            );
            if name == "signature-input" {
                headers.insert("signature", HeaderValue::from_static("sig1=:AAEC:"));
            }
            let owned = Owned {
                headers,
                method: Method::POST,
                pq: o.pq.clone(),
                authority: o.authority.clone(),
                body: o.body.clone(),
            };
            let err = extract_claim(&owned.req(), now()).expect_err(reason);
            assert_eq!(
                err.status(),
                axum::http::StatusCode::UNAUTHORIZED,
                "{name}: {err}"
            );
            assert!(err.to_string().contains(reason), "{name}: {err}");
        }
    }
}
