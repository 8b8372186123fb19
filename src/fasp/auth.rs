//! Authenticating a fediverse server's request to the provider endpoints, as the FASP specification
//! says and Mastodon does: RFC 9530 `Content-Digest` (required, the empty body too) matching the body,
//! one RFC 9421 signature covering `@method`, `@target-uri` and `content-digest` with `created` no
//! older than five minutes, `keyid` naming a server id Plaza handed out, checked with that server's
//! Ed25519 key. Plain Rust over a [`SignedRequest`]: the caller answers 401 on any error, before any
//! other work.
//!
//! Cost for an unauthenticated caller stays bounded: header sizes are capped by the parsers of
//! `src/httpsig`, the body is hashed once, and at most one signature is verified.

use std::time::SystemTime;

use axum::http::HeaderMap;

use super::keys::VerifyingKey;
use super::signing::unix_secs;
use crate::httpsig::rfc9421::{self, Message};
use crate::httpsig::{SignedRequest, check_content_digest};
use crate::{Error, Result};

/// How old a signature's `created` may be (Mastodon: five minutes); a `created` this far in the future
/// is refused too.
pub const MAX_AGE_SECS: i64 = 5 * 60;

/// The components a server's signature must cover.
pub const REQUIRED_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

/// Checks `request` and returns the server id it was signed for; `key_of` gives the public key of a
/// registered server id (`None`: unknown or removed).
pub fn authenticate(
    request: &SignedRequest<'_>,
    now: SystemTime,
    key_of: impl Fn(&str) -> Option<VerifyingKey>,
) -> Result<String> {
    let header = |name: &str| single_header(request.headers, name);
    let digest = header("content-digest")?
        .ok_or_else(|| Error::Digest("Content-Digest is required".into()))?;
    check_content_digest(digest, request.body)?;
    let (Some(input), Some(signature)) = (header("signature-input")?, header("signature")?) else {
        return Err(Error::SignatureMissing);
    };
    let sig = rfc9421::parse(input, signature, None)?;
    for name in REQUIRED_COMPONENTS {
        if !sig.covers(name) {
            return Err(Error::SignatureIncomplete(name.to_string()));
        }
    }
    if sig.alg.as_deref().is_some_and(|a| a != "ed25519") {
        return Err(Error::SignatureMalformed(format!(
            "alg {:?} is not ed25519",
            sig.alg.as_deref().unwrap_or_default()
        )));
    }
    let created = sig
        .created
        .ok_or_else(|| Error::SignatureMalformed("created is required".into()))?;
    let age = unix_secs(now) - created;
    if !(-MAX_AGE_SECS..=MAX_AGE_SECS).contains(&age) {
        return Err(Error::SignatureExpired(format!(
            "created {created} is {age} seconds from now"
        )));
    }
    if sig.expires.is_some_and(|e| e < unix_secs(now)) {
        return Err(Error::SignatureExpired("expires is past".into()));
    }
    let key_id = sig
        .key_id
        .clone()
        .ok_or_else(|| Error::SignatureMalformed("keyid is required".into()))?;
    let key = key_of(&key_id).ok_or_else(|| Error::UnknownKey(key_id.clone()))?;
    let base = rfc9421::signature_base(&sig, &Message::Request(request))?;
    key.verify(&base, &sig.signature)?;
    Ok(key_id)
}

/// The one value of header field `name` (`None` when absent; given twice or not ASCII: malformed).
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::SignatureMalformed(format!("{name} given twice")));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| Error::SignatureMalformed(format!("{name} is not ASCII")))
}

/// Checks a server's answer to a request Plaza made, as Mastodon checks Plaza's: `Content-Digest`
/// present and matching the body, and an Ed25519 signature by the server's `key` covering `@status`
/// and `content-digest`.
pub fn verify_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    key: &VerifyingKey,
) -> Result<()> {
    let digest = single_header(headers, "content-digest")?
        .ok_or_else(|| Error::Digest("the answer has no Content-Digest".into()))?;
    check_content_digest(digest, body)?;
    let (Some(input), Some(signature)) = (
        single_header(headers, "signature-input")?,
        single_header(headers, "signature")?,
    ) else {
        return Err(Error::SignatureMissing);
    };
    let sig = rfc9421::parse(input, signature, None)?;
    for name in ["@status", "content-digest"] {
        if !sig.covers(name) {
            return Err(Error::SignatureIncomplete(name.to_string()));
        }
    }
    let base = rfc9421::signature_base(
        &sig,
        &Message::Response {
            status,
            headers,
            request: None,
        },
    )?;
    key.verify(&base, &sig.signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fasp::keys::SigningKey;
    use crate::fasp::signing::sign;
    use crate::httpsig::content_digest_header;
    use axum::http::{HeaderMap, HeaderValue, Method};
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: u64 = 1_800_000_000;
    const TARGET: &str = "https://plaza.example/fasp/account_search/v0/search?term=x";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    /// A request signed the way Mastodon signs (label, components, parameters), with knobs to break it.
    struct Case {
        key: SigningKey,
        key_id: &'static str,
        created: i64,
        components: Vec<&'static str>,
        body: &'static [u8],
        digest_of: &'static [u8],
        digest: bool,
        signed: bool,
    }

    impl Case {
        fn good() -> Case {
            Case {
                key: SigningKey::generate().unwrap(),
                key_id: "server-1",
                created: NOW as i64 - 10,
                components: REQUIRED_COMPONENTS.to_vec(),
                body: b"",
                digest_of: b"",
                digest: true,
                signed: true,
            }
        }

        fn headers(&self) -> HeaderMap {
            let digest = content_digest_header(self.digest_of);
            let mut values = Vec::new();
            for c in &self.components {
                values.push((
                    *c,
                    match *c {
                        "@method" => "GET".to_string(),
                        "@target-uri" => TARGET.to_string(),
                        _ => digest.clone(),
                    },
                ));
            }
            let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let signed = sign(&self.key, &pairs, self.created, self.key_id).unwrap();
            let mut headers = HeaderMap::new();
            if self.digest {
                headers.insert("content-digest", HeaderValue::from_str(&digest).unwrap());
            }
            if self.signed {
                for (name, value) in signed.into_headers().unwrap() {
                    headers.insert(name, value);
                }
            }
            headers
        }

        fn run(&self, known: &SigningKey) -> Result<String> {
            let headers = self.headers();
            let request = SignedRequest {
                method: &Method::GET,
                path_and_query: "/fasp/account_search/v0/search?term=x",
                authority: "plaza.example",
                scheme: "https",
                headers: &headers,
                body: self.body,
            };
            let public = VerifyingKey::from_base64(&known.public_key_base64()).unwrap();
            authenticate(&request, now(), |id| {
                (id == "server-1").then(|| public.clone())
            })
        }
    }

    #[test]
    fn a_mastodon_style_request_passes() {
        let case = Case::good();
        assert_eq!(case.run(&case.key).unwrap(), "server-1");
    }

    /// The rejection matrix: each of these is refused (all answer 401).
    #[test]
    fn rejection_matrix() {
        let other = SigningKey::generate().unwrap();
        let mut cases: Vec<(&str, Case, bool)> = Vec::new();
        cases.push((
            "unsigned",
            Case {
                signed: false,
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "no content-digest",
            Case {
                digest: false,
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "unknown keyid",
            Case {
                key_id: "server-2",
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "stale created",
            Case {
                created: NOW as i64 - 301,
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "future created",
            Case {
                created: NOW as i64 + 301,
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "body not matching",
            Case {
                body: b"{}",
                ..Case::good()
            },
            false,
        ));
        cases.push((
            "content-digest not covered",
            Case {
                components: vec!["@method", "@target-uri"],
                ..Case::good()
            },
            false,
        ));
        cases.push(("wrong key", Case::good(), true));
        for (what, case, with_other_key) in cases {
            let known = if with_other_key { &other } else { &case.key };
            let err = case.run(known).expect_err(what);
            assert_eq!(
                err.status(),
                axum::http::StatusCode::UNAUTHORIZED,
                "{what}: {err}"
            );
        }
    }

    #[test]
    fn a_wrong_target_or_method_does_not_verify() {
        let case = Case::good();
        let headers = case.headers();
        let public = VerifyingKey::from_base64(&case.key.public_key_base64()).unwrap();
        for (method, pq) in [
            (Method::POST, "/fasp/account_search/v0/search?term=x"),
            (Method::GET, "/fasp/account_search/v0/search?term=y"),
        ] {
            let request = SignedRequest {
                method: &method,
                path_and_query: pq,
                authority: "plaza.example",
                scheme: "https",
                headers: &headers,
                body: b"",
            };
            assert!(matches!(
                authenticate(&request, now(), |_| Some(public.clone())),
                Err(Error::SignatureInvalid)
            ));
        }
    }

    /// A server's answer to Plaza: its digest and signature (over `@status`, `content-digest`) must hold.
    #[test]
    fn answers_must_carry_a_matching_digest_and_the_servers_signature() {
        let server = SigningKey::generate().unwrap();
        let public = VerifyingKey::from_base64(&server.public_key_base64()).unwrap();
        let body = br#"{"subscription":{"id":"1"}}"#;
        let answer = |status: u16, signed_status: u16, digest_of: &[u8], key: &SigningKey| {
            let digest = content_digest_header(digest_of);
            let mut headers = HeaderMap::new();
            headers.insert("content-digest", HeaderValue::from_str(&digest).unwrap());
            let sig = crate::fasp::signing::sign_response(key, "s", signed_status, &digest, now())
                .unwrap();
            for (name, value) in sig.into_headers().unwrap() {
                headers.insert(name, value);
            }
            (status, headers)
        };
        let (status, headers) = answer(201, 201, body, &server);
        verify_response(status, &headers, body, &public).unwrap();
        // Another body, another status, another key, no signature, no digest: refused.
        assert!(verify_response(status, &headers, b"{}", &public).is_err());
        let (status, headers) = answer(201, 200, body, &server);
        assert!(verify_response(status, &headers, body, &public).is_err());
        let (status, headers) = answer(201, 201, body, &SigningKey::generate().unwrap());
        assert!(verify_response(status, &headers, body, &public).is_err());
        let (status, mut headers) = answer(201, 201, body, &server);
        headers.remove("signature");
        assert!(matches!(
            verify_response(status, &headers, body, &public),
            Err(Error::SignatureMissing)
        ));
        headers.remove("content-digest");
        assert!(matches!(
            verify_response(status, &headers, body, &public),
            Err(Error::Digest(_))
        ));
    }
}
