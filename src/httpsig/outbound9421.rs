//! Signing the relay's own requests with RFC 9421, for receivers that accept it or require it.
//!
//! Draft-cavage is what every server accepts today and stays the default; Mastodon ≥ 4.5 and Fedify also
//! take RFC 9421, and some receivers will take only it. The relay signs one fixed shape, the one those
//! servers check: `@method`, `@target-uri`, and for a body `content-digest` (RFC 9530 `sha-256`) and
//! `content-type`, with `created`, `keyid` and `alg="rsa-v1_5-sha256"`, under the label `sig1`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{PrivateKey, SigAlgorithm, authority, header_value, request_target};
use crate::{Error, Result};

/// The `Content-Digest` value (`sha-256=:…:`) of a body whose `Digest` value (`SHA-256=…`) is known: both
/// carry the same base64 SHA-256, so the fan-out still hashes each body once.
pub fn content_digest_from_digest(digest: &str) -> Result<String> {
    let b64 = digest
        .strip_prefix("SHA-256=")
        .ok_or_else(|| Error::Crypto(format!("digest {digest:?} is not SHA-256")))?;
    Ok(format!("sha-256=:{b64}:"))
}

/// The headers to add to a request the relay sends, signed with RFC 9421: `Date` (unsigned, for servers
/// that log it), and with a body `Content-Digest` and `Content-Type`, then `Signature-Input` and
/// `Signature`. `content_digest` is the `Content-Digest` value ([`content_digest_from_digest`]); `None`
/// signs no body (GET). `Host` is set by the HTTP client from the URL, as `@target-uri` says.
pub fn sign_request_rfc9421(
    key: &PrivateKey,
    key_id: &str,
    method: &Method,
    url: &url::Url,
    content_type: Option<&str>,
    content_digest: Option<&str>,
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    if key_id.contains(['"', '\\']) || !key_id.is_ascii() {
        return Err(Error::Config(format!(
            "key id {key_id:?} cannot be an RFC 8941 string"
        )));
    }
    let created = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let target_uri = format!(
        "{}://{}{}",
        url.scheme(),
        authority(url)?.to_ascii_lowercase(),
        request_target(url)
    );
    let mut components = String::from("\"@method\" \"@target-uri\"");
    let mut base = format!(
        "\"@method\": {}\n\"@target-uri\": {target_uri}\n",
        method.as_str()
    );
    if let Some(d) = content_digest {
        components.push_str(" \"content-digest\"");
        base.push_str("\"content-digest\": ");
        base.push_str(d);
        base.push('\n');
    }
    if let Some(ct) = content_type {
        components.push_str(" \"content-type\"");
        base.push_str("\"content-type\": ");
        base.push_str(ct);
        base.push('\n');
    }
    let params = format!(
        "({components});created={created};keyid=\"{key_id}\";alg=\"{}\"",
        SigAlgorithm::RsaPkcs1Sha256.rfc9421_name()
    );
    base.push_str("\"@signature-params\": ");
    base.push_str(&params);
    let signature = STANDARD.encode(key.sign_rsa_sha256(base.as_bytes())?);

    let mut out = Vec::with_capacity(5);
    out.push((
        axum::http::header::DATE,
        header_value("Date", &httpdate::fmt_http_date(now))?,
    ));
    if let Some(d) = content_digest {
        out.push((
            HeaderName::from_static("content-digest"),
            header_value("Content-Digest", d)?,
        ));
    }
    if let Some(ct) = content_type {
        out.push((
            axum::http::header::CONTENT_TYPE,
            header_value("Content-Type", ct)?,
        ));
    }
    out.push((
        HeaderName::from_static("signature-input"),
        header_value("Signature-Input", &format!("sig1={params}"))?,
    ));
    out.push((
        HeaderName::from_static("signature"),
        header_value("Signature", &format!("sig1=:{signature}:"))?,
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpsig::{Scheme, SignedRequest, digest_header, extract_claim, sign_request_as};
    use axum::http::HeaderMap;
    use std::sync::OnceLock;

    fn key() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate().expect("generate"))
    }

    /// Signs a request as the relay would and checks it as the inbox would.
    fn round_trip(method: Method, url: &str, body: &[u8]) -> crate::httpsig::Claim {
        let url = url::Url::parse(url).expect("url");
        let with_body = method == Method::POST;
        let digest = with_body.then(|| digest_header(body));
        let now = SystemTime::now();
        let signed = sign_request_as(
            Scheme::Rfc9421,
            key(),
            "https://relay.example/actor#main-key",
            &method,
            &url,
            with_body.then_some("application/activity+json"),
            digest.as_deref(),
            now,
        )
        .expect("sign");
        let mut headers = HeaderMap::new();
        let host = authority(&url).expect("authority");
        headers.insert("host", HeaderValue::from_str(&host).expect("host"));
        for (n, v) in signed {
            headers.append(n, v);
        }
        let target = request_target(&url);
        let request = SignedRequest {
            method: &method,
            path_and_query: &target,
            authority: &host,
            scheme: url.scheme(),
            headers: &headers,
            body,
        };
        let claim = extract_claim(&request, now).expect("claim");
        claim
            .verify(&key().public_key().expect("public"))
            .expect("verifies");
        claim
    }

    #[test]
    fn posts_and_gets_verify_as_rfc9421() {
        let post = round_trip(
            Method::POST,
            "https://b.example:8443/inbox?x=1",
            br#"{"type":"Announce"}"#,
        );
        assert_eq!(post.scheme, Scheme::Rfc9421);
        assert_eq!(post.key_id, "https://relay.example/actor#main-key");
        assert_eq!(post.algorithm, Some(SigAlgorithm::RsaPkcs1Sha256));
        let text = String::from_utf8(post.message).expect("utf-8");
        assert!(text.starts_with("\"@method\": POST\n\"@target-uri\": https://b.example:8443/inbox?x=1\n\"content-digest\": sha-256=:"), "{text}");
        assert!(
            text.contains("\n\"content-type\": application/activity+json\n"),
            "{text}"
        );
        let get = round_trip(Method::GET, "https://b.example/users/a", b"");
        assert_eq!(
            String::from_utf8(get.message)
                .expect("utf-8")
                .lines()
                .count(),
            3,
            "GET signs @method, @target-uri and the parameters only"
        );
    }

    #[test]
    fn a_changed_body_fails_the_content_digest() {
        let url = url::Url::parse("https://b.example/inbox").expect("url");
        let signed = sign_request_as(
            Scheme::Rfc9421,
            key(),
            "https://relay.example/actor#main-key",
            &Method::POST,
            &url,
            Some("application/activity+json"),
            Some(&digest_header(b"{}")),
            SystemTime::now(),
        )
        .expect("sign");
        let mut headers = HeaderMap::new();
        for (n, v) in signed {
            headers.append(n, v);
        }
        let request = SignedRequest {
            method: &Method::POST,
            path_and_query: "/inbox",
            authority: "b.example",
            scheme: "https",
            headers: &headers,
            body: b"{\"changed\":1}",
        };
        assert!(extract_claim(&request, SystemTime::now()).is_err());
    }
}
