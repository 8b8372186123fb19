//! Inbound verification: from a request as the inbox received it to a [`Claim`] (which key, which
//! bytes), applying Mastodon's policy (what must be signed, digests, the clock window) before any key
//! is fetched.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method};

use crate::httpsig::{
    CLOCK_SKEW_MARGIN_SECS, Claim, DEFAULT_EXPIRY_SECS, EXPIRATION_WINDOW_LIMIT_SECS,
    MAX_SIGNATURE_HEADER_BYTES, Scheme, SigAlgorithm, SignedRequest, cavage, check_content_digest,
    check_digest, rfc9421,
};
use crate::{Error, Result};

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
/// [`MAX_SIGNATURE_HEADER_BYTES`] or with more than
/// [`MAX_SIGNATURE_ENTRIES`](super::MAX_SIGNATURE_ENTRIES) entries in a list are refused, and the
/// body is hashed at most once per digest algorithm.
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

pub(super) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Mastodon's clock window (see [`extract_claim`]).
pub(super) fn check_window(created: i64, expires: Option<i64>, now: SystemTime) -> Result<()> {
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
