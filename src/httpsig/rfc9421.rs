//! RFC 9421 HTTP Message Signatures: `Signature-Input` + `Signature`.
//!
//! Mastodon ≥ 4.5 accepts these and Fedify sends them first, so the inbox must read them. This module parses
//! both headers (RFC 8941 dictionaries), picks the signature to check, and rebuilds the signature base
//! (RFC 9421 §2.5) from the derived components and header fields the signer listed. The final
//! `@signature-params` line repeats the received inner list and parameters verbatim.

use std::collections::{HashMap, HashSet};

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::SignedRequest;
use super::cavage::append_header_values;
use super::sfv::{self, BareItem, MemberValue, Params};
use crate::{Error, Result};

/// One covered component (`"@method"`, `"content-digest"`, `"@query-param";name="Pet"`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The component name: a derived component (`@…`) or a lowercase header field name.
    pub name: String,
    params: Params,
}

impl Component {
    /// The serialized component identifier as it appears in the signature base.
    pub fn identifier(&self) -> String {
        let mut out = String::new();
        sfv::serialize_string(&self.name, &mut out);
        sfv::serialize_params(&self.params, &mut out);
        out
    }

    fn has(&self, flag: &str) -> bool {
        sfv::param(&self.params, flag) == Some(&BareItem::Boolean(true))
    }
}

/// One parsed RFC 9421 signature (the selected label).
#[derive(Debug, Clone, PartialEq)]
pub struct Rfc9421Signature {
    /// The dictionary key shared by `Signature-Input` and `Signature`.
    pub label: String,
    /// Covered components, in signed order.
    pub components: Vec<Component>,
    /// The inner list with its parameters exactly as received (the `@signature-params` value).
    pub params_raw: String,
    /// `created`.
    pub created: Option<i64>,
    /// `expires`.
    pub expires: Option<i64>,
    /// `keyid`.
    pub key_id: Option<String>,
    /// `alg`.
    pub alg: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

impl Rfc9421Signature {
    /// Whether the signature covers the component `name` (without parameters).
    pub fn covers(&self, name: &str) -> bool {
        self.components
            .iter()
            .any(|c| c.name == name && c.params.is_empty())
    }
}

/// Parses `Signature-Input` and `Signature` and selects a label: `label` when given, otherwise the first
/// label of `Signature-Input` that `Signature` also carries.
///
/// Syntax errors, wrong types and a missing pair are [`Error::SignatureMalformed`].
pub fn parse(
    signature_input: &str,
    signature: &str,
    label: Option<&str>,
) -> Result<Rfc9421Signature> {
    let malformed = |m: String| Error::SignatureMalformed(m);
    let inputs = sfv::parse_dictionary(signature_input)
        .map_err(|e| malformed(format!("Signature-Input: {e}")))?;
    let sigs =
        sfv::parse_dictionary(signature).map_err(|e| malformed(format!("Signature: {e}")))?;
    let sigs: HashMap<&str, &sfv::Member> = sigs.iter().map(|m| (m.key.as_str(), m)).collect();
    let (input, sig_member) = inputs
        .iter()
        .filter(|m| label.is_none_or(|l| m.key == l))
        .find_map(|m| sigs.get(m.key.as_str()).map(|s| (m, *s)))
        .ok_or_else(|| {
            malformed("no label present in both Signature-Input and Signature".into())
        })?;
    let signature = match &sig_member.value {
        MemberValue::Item(sfv::Item {
            bare: BareItem::Bytes(b),
            ..
        }) if !b.is_empty() => b.clone(),
        _ => {
            return Err(malformed(format!(
                "Signature {} is not a byte sequence",
                input.key
            )));
        }
    };
    let MemberValue::InnerList { items, params } = &input.value else {
        return Err(malformed(format!(
            "Signature-Input {} is not an inner list",
            input.key
        )));
    };

    let mut components: Vec<Component> = Vec::with_capacity(items.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    for item in items {
        let BareItem::String(name) = &item.bare else {
            return Err(malformed("component identifiers must be strings".into()));
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed(format!("bad component name {name:?}")));
        }
        if name == "@signature-params" {
            return Err(malformed("@signature-params cannot be covered".into()));
        }
        for (k, v) in &item.params {
            let ok = match k.as_str() {
                "req" | "bs" => *v == BareItem::Boolean(true),
                "name" => name == "@query-param" && matches!(v, BareItem::String(_)),
                _ => false,
            };
            if !ok {
                return Err(malformed(format!(
                    "unsupported component parameter {k} on {name}"
                )));
            }
        }
        if name == "@query-param" && sfv::param(&item.params, "name").is_none() {
            return Err(malformed("@query-param without name".into()));
        }
        let c = Component {
            name: name.clone(),
            params: item.params.clone(),
        };
        let identifier = c.identifier();
        if !seen.insert(identifier.clone()) {
            return Err(malformed(format!("component {identifier} listed twice")));
        }
        components.push(c);
    }

    let int = |k: &str| -> Result<Option<i64>> {
        match sfv::param(params, k) {
            None => Ok(None),
            Some(BareItem::Integer(n)) => Ok(Some(*n)),
            Some(_) => Err(malformed(format!("{k} must be an integer"))),
        }
    };
    let string = |k: &str| -> Result<Option<String>> {
        match sfv::param(params, k) {
            None => Ok(None),
            Some(BareItem::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("{k} must be a string"))),
        }
    };
    Ok(Rfc9421Signature {
        label: input.key.clone(),
        components,
        params_raw: input.raw.clone(),
        created: int("created")?,
        expires: int("expires")?,
        key_id: string("keyid")?,
        alg: string("alg")?,
        nonce: string("nonce")?,
        tag: string("tag")?,
        signature,
    })
}

/// The message a signature is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// A request (the inbox case).
    Request(&'a SignedRequest<'a>),
    /// A response, with the request it answers when components carry `;req`.
    Response {
        /// The status code (`@status`).
        status: u16,
        /// The response's header fields.
        headers: &'a HeaderMap,
        /// The request this response answers, if known.
        request: Option<&'a SignedRequest<'a>>,
    },
}

/// Builds the signature base (RFC 9421 §2.5) for `sig` over `msg`.
///
/// A listed header field that is absent, or a derived component that does not apply to the message, is
/// [`Error::SignatureIncomplete`].
pub fn signature_base(sig: &Rfc9421Signature, msg: &Message<'_>) -> Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(512);
    for c in &sig.components {
        let req = c.has("req");
        let request = match (msg, req) {
            (Message::Request(r), false) => Some(*r),
            (Message::Request(_), true) => {
                return Err(Error::SignatureMalformed(format!(
                    "{} uses ;req on a request",
                    c.name
                )));
            }
            (Message::Response { request, .. }, true) => Some(request.ok_or_else(|| {
                Error::SignatureIncomplete(format!(
                    "{} (the related request is unknown)",
                    c.identifier()
                ))
            })?),
            (Message::Response { .. }, false) => None,
        };
        let missing = || Error::SignatureIncomplete(c.identifier());
        let mut line_prefix = c.identifier().into_bytes();
        line_prefix.extend_from_slice(b": ");

        if let Some(derived) = c.name.strip_prefix('@') {
            if derived == "status" {
                let Message::Response { status, .. } = msg else {
                    return Err(Error::SignatureMalformed("@status on a request".into()));
                };
                if req {
                    return Err(Error::SignatureMalformed("@status;req".into()));
                }
                out.extend_from_slice(&line_prefix);
                out.extend_from_slice(status.to_string().as_bytes());
                out.push(b'\n');
                continue;
            }
            let r = request.ok_or_else(missing)?;
            let (path, query) = match r.path_and_query.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (r.path_and_query, None),
            };
            let path = if path.is_empty() { "/" } else { path };
            let values: Vec<String> = match derived {
                "method" => vec![r.method.as_str().to_owned()],
                "target-uri" => vec![format!(
                    "{}://{}{}",
                    r.scheme.to_ascii_lowercase(),
                    r.authority.to_ascii_lowercase(),
                    r.path_and_query
                )],
                "authority" => vec![normalized_authority(r.scheme, r.authority)],
                "scheme" => vec![r.scheme.to_ascii_lowercase()],
                "request-target" => vec![r.path_and_query.to_owned()],
                "path" => vec![path.to_owned()],
                "query" => vec![format!("?{}", query.unwrap_or(""))],
                "query-param" => {
                    let Some(BareItem::String(wanted)) = sfv::param(&c.params, "name") else {
                        return Err(missing());
                    };
                    let found: Vec<String> =
                        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                            .filter(|(n, _)| form_encode(n) == *wanted)
                            .map(|(_, v)| form_encode(&v))
                            .collect();
                    if found.is_empty() {
                        return Err(missing());
                    }
                    found
                }
                _ => {
                    return Err(Error::SignatureMalformed(format!(
                        "unknown derived component {}",
                        c.name
                    )));
                }
            };
            for v in values {
                out.extend_from_slice(&line_prefix);
                out.extend_from_slice(v.as_bytes());
                out.push(b'\n');
            }
        } else {
            let headers = match (msg, request) {
                (_, Some(r)) => r.headers,
                (Message::Response { headers, .. }, None) => *headers,
                (Message::Request(r), None) => r.headers,
            };
            out.extend_from_slice(&line_prefix);
            if c.has("bs") {
                let mut first = true;
                for v in headers.get_all(c.name.as_str()) {
                    if !first {
                        out.extend_from_slice(b", ");
                    }
                    first = false;
                    out.push(b':');
                    out.extend_from_slice(STANDARD.encode(v.as_bytes().trim_ascii()).as_bytes());
                    out.push(b':');
                }
                if first {
                    return Err(missing());
                }
            } else if !append_header_values(headers, &c.name, &mut out) {
                return Err(missing());
            }
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"\"@signature-params\": ");
    out.extend_from_slice(sig.params_raw.as_bytes());
    Ok(out)
}

/// `@authority`: lowercase, without the scheme's default port.
pub(crate) fn normalized_authority(scheme: &str, authority: &str) -> String {
    let a = authority.to_ascii_lowercase();
    let default = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    match a.strip_suffix(default) {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => a,
    }
}

/// Percent-encodes with the application/x-www-form-urlencoded set (RFC 9421 §2.2.8): everything but
/// ASCII alphanumerics and `*-._` becomes `%XX`, space included.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpsig::keys::{PrivateKey, PublicKey, SigAlgorithm, verify_hmac_sha256};
    use crate::test_fixtures::{headers_from, text as fixture};
    use axum::http::{HeaderValue, Method};
    use sha2::Digest as _;

    fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
        v[k].as_str().expect(k)
    }

    #[test]
    fn all_rfc9421_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(&fixture("rfc9421-vectors.json")).expect("json");
        let treq = &v["test-request"];
        let url = url::Url::parse(s(treq, "url")).expect("url");
        let pq = format!("{}?{}", url.path(), url.query().expect("query"));
        let method = Method::POST;
        let req_headers = headers_from(&treq["headers"]);
        let request = SignedRequest {
            method: &method,
            path_and_query: &pq,
            authority: url.host_str().expect("host"),
            scheme: url.scheme(),
            headers: &req_headers,
            body: s(treq, "body").as_bytes(),
        };
        // The proxy rewrote Host and Date and added Forwarded (RFC 9421 §4.3).
        let mut proxy_headers = req_headers.clone();
        proxy_headers.insert(
            "host",
            HeaderValue::from_static("origin.host.internal.example"),
        );
        proxy_headers.insert(
            "date",
            HeaderValue::from_static("Tue, 20 Apr 2021 02:07:56 GMT"),
        );
        proxy_headers.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.123;host=example.com;proto=https"),
        );
        let proxied = SignedRequest {
            authority: "origin.host.internal.example",
            headers: &proxy_headers,
            ..request
        };
        let tresp = &v["test-response"];
        let mut resp_headers = headers_from(&tresp["headers"]);
        // The fixture's test-response Content-Digest does not match its body; the signature base of
        // sig-b24 (and RFC 9421 §B.2's response) carry the body's real SHA-512, so use that.
        let resp_body = s(tresp, "body").as_bytes();
        let printed = s(&tresp["headers"], "Content-Digest");
        assert!(matches!(
            crate::httpsig::check_content_digest(printed, resp_body),
            Err(Error::Digest(_))
        ));
        let real = format!(
            "sha-512=:{}:",
            STANDARD.encode(sha2::Sha512::digest(resp_body))
        );
        crate::httpsig::check_content_digest(&real, resp_body).expect("real digest");
        resp_headers.insert("content-digest", HeaderValue::from_str(&real).expect("v"));
        let response = Message::Response {
            status: u16::try_from(tresp["status"].as_u64().expect("status")).expect("u16"),
            headers: &resp_headers,
            request: Some(&request),
        };

        let cases = v["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 7);
        for case in cases {
            let label = s(case, "label");
            let sig = parse(s(case, "Signature-Input"), s(case, "Signature"), None).expect(label);
            assert_eq!(sig.label, label);
            assert_eq!(sig.key_id.as_deref(), Some(s(case, "key")));
            let msg = match (label, s(case, "message")) {
                ("proxy_sig", _) => Message::Request(&proxied),
                (_, "test-response") => response,
                _ => Message::Request(&request),
            };
            let base = signature_base(&sig, &msg).expect(label);
            assert_eq!(
                String::from_utf8(base.clone()).expect("utf8"),
                s(case, "signature_base"),
                "{label}"
            );
            let alg = SigAlgorithm::from_rfc9421_name(s(case, "alg")).expect("alg");
            if alg == SigAlgorithm::HmacSha256 {
                let secret = STANDARD
                    .decode(fixture("rfc9421-test-shared-secret.txt").trim())
                    .expect("b64");
                verify_hmac_sha256(&secret, &base, &sig.signature).expect(label);
                assert!(verify_hmac_sha256(&secret, b"other", &sig.signature).is_err());
                continue;
            }
            let key = PublicKey::from_pem(&fixture(&format!("rfc9421-{}.pem", s(case, "key"))))
                .expect(label);
            key.verify(alg, &base, &sig.signature).expect(label);
            let mut tampered = base.clone();
            tampered[0] ^= 1;
            assert!(matches!(
                key.verify(alg, &tampered, &sig.signature),
                Err(Error::SignatureInvalid)
            ));
            if label == "proxy_sig" {
                // PKCS#1 v1.5 is deterministic: our signer reproduces the RFC's value byte for byte.
                let private =
                    PrivateKey::from_pem(&fixture("rfc9421-test-key-rsa.pem")).expect("private");
                assert_eq!(private.sign_rsa_sha256(&base).expect("sign"), sig.signature);
                assert_eq!(sig.expires, Some(1618884540));
                assert_eq!(sig.alg.as_deref(), Some("rsa-v1_5-sha256"));
            }
            if label == "sig-b21" {
                assert_eq!(sig.nonce.as_deref(), Some("b3k2pp5k7z-50gnwp.yemd"));
            }
            if label == "sig-b22" {
                assert_eq!(sig.tag.as_deref(), Some("header-example"));
            }
        }
    }

    #[test]
    fn label_selection() {
        let input = r#"a=("@method");created=1, b=("@path");created=2"#;
        assert_eq!(parse(input, "b=:AAEC:", None).expect("b").label, "b");
        assert_eq!(
            parse(input, "a=:AAEC:, b=:AAEC:", None).expect("a").label,
            "a"
        );
        assert_eq!(
            parse(input, "a=:AAEC:, b=:AAEC:", Some("b"))
                .expect("b")
                .created,
            Some(2)
        );
        assert!(matches!(
            parse(input, "c=:AAEC:", None),
            Err(Error::SignatureMalformed(_))
        ));
    }

    #[test]
    fn derived_components() {
        let method = Method::GET;
        let headers = HeaderMap::new();
        let req = SignedRequest {
            method: &method,
            path_and_query: "/p?a=1&b=two%20words&b=x+y&c",
            authority: "Example.COM:443",
            scheme: "HTTPS",
            headers: &headers,
            body: b"",
        };
        let sig = parse(
            r#"s=("@method" "@target-uri" "@authority" "@scheme" "@request-target" "@path" "@query" "@query-param";name="b" "@query-param";name="c");created=1"#,
            "s=:AAEC:",
            None,
        )
        .expect("parse");
        let base = String::from_utf8(signature_base(&sig, &Message::Request(&req)).expect("base"))
            .expect("utf8");
        assert_eq!(
            base,
            "\"@method\": GET\n\"@target-uri\": https://example.com:443/p?a=1&b=two%20words&b=x+y&c\n\
             \"@authority\": example.com\n\"@scheme\": https\n\
             \"@request-target\": /p?a=1&b=two%20words&b=x+y&c\n\"@path\": /p\n\
             \"@query\": ?a=1&b=two%20words&b=x+y&c\n\"@query-param\";name=\"b\": two%20words\n\
             \"@query-param\";name=\"b\": x%20y\n\"@query-param\";name=\"c\": \n\
             \"@signature-params\": (\"@method\" \"@target-uri\" \"@authority\" \"@scheme\" \"@request-target\" \"@path\" \"@query\" \"@query-param\";name=\"b\" \"@query-param\";name=\"c\");created=1"
        );
        for (input, expected_incomplete) in [
            (r#"s=("@query-param";name="zz")"#, true),
            (r#"s=("date")"#, true),
            (r#"s=("@status")"#, false),
            (r#"s=("@method";req)"#, false),
            (r#"s=("@nonsense")"#, false),
        ] {
            let sig = parse(input, "s=:AAEC:", None).expect(input);
            let err = signature_base(&sig, &Message::Request(&req)).expect_err(input);
            assert_eq!(
                matches!(err, Error::SignatureIncomplete(_)),
                expected_incomplete,
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        for (input, sig) in [
            ("garbage!", "s=:AAEC:"),
            (r#"s=("@method")"#, "s=AAEC"),
            (r#"s=("@method")"#, "s=::"),
            (r#"s="@method""#, "s=:AAEC:"),
            (r#"s=(@method)"#, "s=:AAEC:"),
            (r#"s=("@Method")"#, "s=:AAEC:"),
            (r#"s=("@method" "@method")"#, "s=:AAEC:"),
            (r#"s=("@signature-params")"#, "s=:AAEC:"),
            (r#"s=("@query-param")"#, "s=:AAEC:"),
            (r#"s=("date";sf)"#, "s=:AAEC:"),
            (r#"s=("@method");created="now""#, "s=:AAEC:"),
            (r#"s=("@method");keyid=5"#, "s=:AAEC:"),
            ("", ""),
        ] {
            assert!(
                matches!(parse(input, sig, None), Err(Error::SignatureMalformed(_))),
                "{input} / {sig}"
            );
        }
    }
}
