//! draft-cavage-http-signatures (version 12): the `Signature` header every fediverse server sends today.
//!
//! Parsing is lenient where real servers differ (parameter order, spaces after commas, unknown
//! parameters, unquoted `created`/`expires`) and strict where ambiguity could be abused (duplicate
//! parameters, unterminated quotes), and bounded in size and entries because it runs before any key is
//! known. The signing string is rebuilt in the order of `headers=`, never an
//! assumed order: Mastodon, GoToSocial, Pleroma and Fedify all order differently.

use std::borrow::Cow;

use axum::http::HeaderMap;
use base64::Engine as _;

use super::sfv::B64_LAX;
use super::{MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_BYTES, SignedRequest};
use crate::{Error, Result};

/// A parsed draft-cavage `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CavageSignature {
    /// `keyId`: the URL of the signer's key (for the fediverse).
    pub key_id: String,
    /// `algorithm`, lowercased; `None` when absent (which means `hs2019`).
    pub algorithm: Option<String>,
    /// `headers`, lowercased, in signed order; `["date"]` when the parameter is absent.
    pub headers: Vec<String>,
    /// The decoded `signature`.
    pub signature: Vec<u8>,
    /// `created` (seconds since the epoch), if given.
    pub created: Option<i64>,
    /// `expires` (seconds since the epoch, fraction dropped), if given.
    pub expires: Option<i64>,
}

/// Parses a `Signature` header value (`keyId="…",algorithm="…",headers="…",signature="…"`).
///
/// Missing `keyId` or `signature`, duplicates, bad base64 or bad syntax are
/// [`Error::SignatureMalformed`]. When `headers` is absent the signed list is `date` (what Mastodon and the
/// draft's own test vector C.1 assume; draft 12's prose says `(created)`, which no fediverse server sends
/// without also sending `headers`).
///
/// Bounded: a value longer than [`MAX_SIGNATURE_HEADER_BYTES`], more than [`MAX_SIGNATURE_ENTRIES`]
/// parameters or `headers=` names, or a name listed twice is refused; parsing stops at the first entry
/// past the cap.
pub fn parse_signature_header(value: &str) -> Result<CavageSignature> {
    let malformed = |m: &str| Error::SignatureMalformed(m.to_owned());
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(Error::SignatureMalformed(format!(
            "Signature is {} bytes, over the limit of {MAX_SIGNATURE_HEADER_BYTES}",
            value.len()
        )));
    }
    let params = Params::parse(value).map_err(Error::SignatureMalformed)?;
    let get = |name: &str| params.get(name);

    let key_id = get("keyid")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("keyId missing"))?;
    let sig_b64 = get("signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("signature missing"))?;
    let signature = B64_LAX
        .decode(sig_b64.trim())
        .map_err(|e| Error::SignatureMalformed(format!("signature is not base64: {e}")))?;
    let headers: Vec<String> = match get("headers") {
        Some(list) => signed_names(list).map_err(Error::SignatureMalformed)?,
        None => vec!["date".to_owned()],
    };
    if headers.is_empty() {
        return Err(malformed("headers is empty"));
    }
    let timestamp = |name: &str| -> Result<Option<i64>> {
        get(name)
            .map(|v| {
                let int_part = v.split_once('.').map_or(v, |(i, _)| i);
                int_part.trim().parse::<i64>().map_err(|_| {
                    Error::SignatureMalformed(format!("{name} is not a timestamp: {v:?}"))
                })
            })
            .transpose()
    };
    Ok(CavageSignature {
        key_id: key_id.to_owned(),
        algorithm: get("algorithm").map(str::to_ascii_lowercase),
        headers,
        signature,
        created: timestamp("created")?,
        expires: timestamp("expires")?,
    })
}

/// The lowercased names of `headers=`, in order; at most [`MAX_SIGNATURE_ENTRIES`], none twice (a
/// repeated name would repeat its header's value in the signing string).
fn signed_names(list: &str) -> std::result::Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::with_capacity(4);
    for name in list.split_ascii_whitespace() {
        if names.len() == MAX_SIGNATURE_ENTRIES {
            return Err(format!(
                "headers lists more than {MAX_SIGNATURE_ENTRIES} names"
            ));
        }
        let name = name.to_ascii_lowercase();
        if names.contains(&name) {
            return Err(format!("headers lists {name} twice"));
        }
        names.push(name);
    }
    Ok(names)
}

/// `name="value", name=value` split into names and values, in order: at most
/// [`MAX_SIGNATURE_ENTRIES`] parameters, no name twice (names compare case-insensitively). Values
/// borrow from the header unless they hold a backslash escape.
struct Params<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// The value of parameter `name` (lowercase), whatever the case it was sent in.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    fn parse(input: &'a str) -> std::result::Result<Params<'a>, String> {
        let mut out: Vec<(&'a str, Cow<'a, str>)> = Vec::with_capacity(4);
        let mut rest = input.trim_start();
        while !rest.is_empty() {
            if out.len() == MAX_SIGNATURE_ENTRIES {
                return Err(format!("more than {MAX_SIGNATURE_ENTRIES} parameters"));
            }
            let eq = rest
                .find('=')
                .ok_or_else(|| format!("parameter without '=' near {:?}", preview(rest)))?;
            let name = rest[..eq].trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("bad parameter name near {:?}", preview(rest)));
            }
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(quoted) = rest.strip_prefix('"') {
                let (v, after) = unquote(quoted).ok_or_else(|| {
                    format!(
                        "unterminated quoted value for {}",
                        name.to_ascii_lowercase()
                    )
                })?;
                value = v;
                rest = after.trim_start();
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = Cow::Borrowed(rest[..end].trim());
                rest = &rest[end..];
            }
            if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(format!("duplicate parameter {}", name.to_ascii_lowercase()));
            }
            out.push((name, value));
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected ',' near {:?}", preview(rest)));
            }
        }
        if out.is_empty() {
            return Err("empty Signature header".into());
        }
        Ok(Params(out))
    }
}

/// The value of a quoted string whose opening quote is just before `quoted`, with each backslash
/// escape replaced by the character it escapes, and what follows the closing quote; `None` when the
/// quote is never closed.
fn unquote(quoted: &str) -> Option<(Cow<'_, str>, &str)> {
    let end = quoted.find(['"', '\\'])?;
    if quoted.as_bytes()[end] == b'"' {
        return Some((Cow::Borrowed(&quoted[..end]), &quoted[end + 1..]));
    }
    let mut value = String::from(&quoted[..end]);
    let mut chars = quoted[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(value), &quoted[end + i + 1..])),
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            c => value.push(c),
        }
    }
    None
}

fn preview(s: &str) -> &str {
    match s.char_indices().nth(20) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Builds the signing string for `sig` over `req`: one `name: value` line per entry of `headers=`, in
/// that order, joined by `\n`.
///
/// `(request-target)` is `<lowercase method> <path?query>`; `host` falls back to `req.authority` when the
/// request has no Host header (HTTP/2); several values of one header are joined with `, `. A header that
/// is listed but absent is [`Error::SignatureIncomplete`]. `(created)`/`(expires)` with an `rsa-*`,
/// `hmac-*` or `ecdsa-*` algorithm are refused as the draft requires ([`Error::SignatureMalformed`]).
pub fn signing_string(sig: &CavageSignature, req: &SignedRequest<'_>) -> Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(256);
    for (i, name) in sig.headers.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match name.as_str() {
            "(request-target)" => {
                out.extend_from_slice(b"(request-target): ");
                out.extend_from_slice(req.method.as_str().to_ascii_lowercase().as_bytes());
                out.push(b' ');
                out.extend_from_slice(req.path_and_query.as_bytes());
            }
            "(created)" | "(expires)" => {
                if let Some(alg) = &sig.algorithm
                    && ["rsa", "hmac", "ecdsa"].iter().any(|p| alg.starts_with(p))
                {
                    return Err(Error::SignatureMalformed(format!(
                        "{name} may not be signed with {alg}"
                    )));
                }
                let value = if name == "(created)" {
                    sig.created
                } else {
                    sig.expires
                };
                let value = value.ok_or_else(|| {
                    Error::SignatureIncomplete(format!("{name} (the parameter is missing)"))
                })?;
                out.extend_from_slice(format!("{name}: {value}").as_bytes());
            }
            "host" if !req.headers.contains_key("host") => {
                out.extend_from_slice(b"host: ");
                out.extend_from_slice(req.authority.as_bytes());
            }
            _ => {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                if !append_header_values(req.headers, name, &mut out) {
                    return Err(Error::SignatureIncomplete(format!(
                        "the {name} header (absent)"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Appends every value of `name`, trimmed and joined by `, `; false when the header is absent.
pub(crate) fn append_header_values(headers: &HeaderMap, name: &str, out: &mut Vec<u8>) -> bool {
    let mut any = false;
    for v in headers.get_all(name) {
        if any {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v.as_bytes().trim_ascii());
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpsig::keys::{PrivateKey, PublicKey, SigAlgorithm};
    use crate::test_fixtures::{headers_from, json, text as fixture};
    use axum::http::{HeaderValue, Method};

    #[test]
    fn cavage12_appendix_c() {
        let v = json("httpsig-cavage12-vectors.json");
        let key = PublicKey::from_pem(&fixture("httpsig-cavage12-test-public.pem")).expect("key");
        let r = &v["request"];
        let method =
            Method::from_bytes(r["method"].as_str().expect("m").as_bytes()).expect("method");
        let headers = headers_from(&r["headers"]);
        let req = SignedRequest {
            method: &method,
            path_and_query: r["target"].as_str().expect("target"),
            authority: "example.com",
            scheme: "https",
            headers: &headers,
            body: r["body"].as_str().expect("body").as_bytes(),
        };
        let cases = v["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 3);
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let expected = case["signing_string"].as_str().expect("signing string");
            let sig = parse_signature_header(case["signature_header"].as_str().expect("header"))
                .expect(name);
            assert_eq!(sig.key_id, "Test");
            assert_eq!(sig.algorithm.as_deref(), Some("rsa-sha256"));
            let built = if name.starts_with("C.3") {
                // The header lists (created) and (expires), which the draft itself forbids with rsa-sha256;
                // the signature was made over the six ordinary headers only.
                assert_eq!(sig.created, Some(1402170695));
                assert_eq!(sig.expires, Some(1402170699));
                assert!(matches!(
                    signing_string(&sig, &req),
                    Err(Error::SignatureMalformed(_))
                ));
                let mut without = sig.clone();
                without
                    .headers
                    .retain(|h| !h.starts_with("(c") && !h.starts_with("(e"));
                signing_string(&without, &req).expect(name)
            } else {
                signing_string(&sig, &req).expect(name)
            };
            assert_eq!(
                String::from_utf8(built.clone()).expect("utf8"),
                expected,
                "{name}"
            );
            key.verify(SigAlgorithm::RsaPkcs1Sha256, &built, &sig.signature)
                .expect(name);
            if name.starts_with("C.3") {
                // With the pseudo-headers the claimed list gives, the signature does not verify.
                let mut full = sig.clone();
                full.algorithm = Some("hs2019".into());
                let with_pseudo = signing_string(&full, &req).expect("hs2019 allows (created)");
                assert!(
                    String::from_utf8_lossy(&with_pseudo)
                        .contains("(created): 1402170695\n(expires): 1402170699")
                );
                assert!(matches!(
                    key.verify(SigAlgorithm::RsaPkcs1Sha256, &with_pseudo, &sig.signature),
                    Err(Error::SignatureInvalid)
                ));
            }
        }
    }

    #[test]
    fn cavage12_private_key_is_too_small_to_sign_with() {
        // The draft calls it a 2048-bit key but it is 1024-bit: aws-lc-rs verifies with it (legacy
        // algorithm) but refuses it as a signing key. Deterministic signing is checked with RFC 9421's
        // 2048-bit key instead (rfc9421.rs, proxy_sig).
        let err = PrivateKey::from_pem(&fixture("httpsig-cavage12-test-private.pem"))
            .expect_err("1024-bit");
        assert!(matches!(err, Error::Crypto(_)), "{err}");
    }

    #[test]
    fn parser_tolerance() {
        let sig = parse_signature_header(
            r#"signature="AAEC", headers="(request-target) Host  Date", unknown="x\"y", keyId="https://a.example/actor#main-key", created=1402170695"#,
        )
        .expect("parses");
        assert_eq!(sig.key_id, "https://a.example/actor#main-key");
        assert_eq!(sig.headers, ["(request-target)", "host", "date"]);
        assert_eq!(sig.signature, [0, 1, 2]);
        assert_eq!(sig.algorithm, None);
        assert_eq!(sig.created, Some(1402170695));
        let default = parse_signature_header(r#"keyId="k",signature="AAEC""#).expect("parses");
        assert_eq!(default.headers, ["date"]);
        // Escapes inside quotes, names in any case, unquoted values.
        let escaped = parse_signature_header(
            r#"KEYID="https://a.example/\"q\"\\x",Signature=AAEC , ALGORITHM="RSA-SHA256""#,
        )
        .expect("parses");
        assert_eq!(escaped.key_id, r#"https://a.example/"q"\x"#);
        assert_eq!(escaped.signature, [0, 1, 2]);
        assert_eq!(escaped.algorithm.as_deref(), Some("rsa-sha256"));
    }

    #[test]
    fn parser_rejects_garbage() {
        for bad in [
            "",
            "garbage",
            "keyId=\"k\"",
            "signature=\"AAEC\"",
            "keyId=\"k\",signature=\"%%%\"",
            "keyId=\"k\",signature=\"AAEC\",keyId=\"other\"",
            "keyId=\"k,signature=\"AAEC\"",
            "keyId=\"k\" signature=\"AAEC\"",
            "keyId=\"k\",signature=\"AAEC\",headers=\"\"",
            "keyId=\"k\",signature=\"AAEC\",created=yesterday",
            "=\"k\"",
            "ключ=\"k\",signature=\"AAEC\"",
            "keyId=\"é\u{0}\",signature=\"AAEC\",,",
            "keyId=\"k\",signature=\"AAEC\",KEYID=\"other\"",
            "signature=\"AAEC\",keyId=\"k\\\"",
            "signature=\"AAEC\",keyId=\"k\\",
        ] {
            assert!(
                matches!(
                    parse_signature_header(bad),
                    Err(Error::SignatureMalformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_header_is_incomplete_and_host_falls_back() {
        let method = Method::POST;
        let mut headers = HeaderMap::new();
        headers.append("x-multi", HeaderValue::from_static(" a "));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let req = SignedRequest {
            method: &method,
            path_and_query: "/inbox",
            authority: "relay.example:8443",
            scheme: "https",
            headers: &headers,
            body: b"",
        };
        let sig = parse_signature_header(r#"keyId="k",signature="AAEC",headers="host x-multi""#)
            .expect("p");
        assert_eq!(
            signing_string(&sig, &req).expect("built"),
            b"host: relay.example:8443\nx-multi: a, b"
        );
        let sig =
            parse_signature_header(r#"keyId="k",signature="AAEC",headers="date""#).expect("p");
        assert!(matches!(
            signing_string(&sig, &req),
            Err(Error::SignatureIncomplete(_))
        ));
        let sig =
            parse_signature_header(r#"keyId="k",signature="AAEC",headers="(created)""#).expect("p");
        assert!(matches!(
            signing_string(&sig, &req),
            Err(Error::SignatureIncomplete(_))
        ));
    }

    #[test]
    fn parser_is_bounded() {
        let huge = format!(
            r#"keyId="k",signature="AAEC",x="{}""#,
            "a".repeat(430 * 1024)
        );
        let err = parse_signature_header(&huge).expect_err("430 KB");
        assert!(err.to_string().contains("over the limit of 8192"), "{err}");

        // Thousands of parameters in under 8 KB: parsing stops at the cap.
        let params: Vec<String> = (0..1000).map(|i| format!("p{i}=1")).collect();
        let many = format!(r#"keyId="k",signature="AAEC",{}"#, params.join(","));
        assert!(many.len() < MAX_SIGNATURE_HEADER_BYTES);
        let err = parse_signature_header(&many).expect_err("thousands of parameters");
        assert!(err.to_string().contains("more than 32 parameters"), "{err}");

        // Thousands of the same parameter: refused at the second.
        let same = format!(r#"keyId="k",signature="AAEC"{}"#, ",x=1".repeat(1500));
        let err = parse_signature_header(&same).expect_err("duplicates");
        assert!(err.to_string().contains("duplicate parameter x"), "{err}");

        let names: Vec<String> = (0..40).map(|i| format!("x-h{i}")).collect();
        let long_list = format!(
            r#"keyId="k",signature="AAEC",headers="{}""#,
            names.join(" ")
        );
        let err = parse_signature_header(&long_list).expect_err("40 names");
        assert!(err.to_string().contains("more than 32 names"), "{err}");
        let err = parse_signature_header(r#"keyId="k",signature="AAEC",headers="date Date""#)
            .expect_err("twice");
        assert!(err.to_string().contains("date twice"), "{err}");
        // 32 of each is fine.
        let params: Vec<String> = (0..30).map(|i| format!("p{i}=1")).collect();
        let names: Vec<String> = (0..32).map(|i| format!("x-h{i}")).collect();
        let full = format!(
            r#"keyId="k",signature="AAEC",{},headers="{}""#,
            params[..29].join(","),
            names.join(" ")
        );
        assert_eq!(
            parse_signature_header(&full)
                .expect("at the caps")
                .headers
                .len(),
            32
        );
    }
}
