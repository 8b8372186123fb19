//! Signing FASP messages with Ed25519 (RFC 9421): the signature base is built from the covered
//! components' values, the `@signature-params` line from their names, `created` and `keyid`.
//!
//! Plaza signs every provider response over `@status` and `content-digest` with the key it made for
//! the asking server, `keyid` being the id that server assigned to Plaza (`faspId`), as the FASP
//! specification asks and Mastodon checks.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderName, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::keys::SigningKey;
use crate::{Error, Result};

/// The label of Plaza's signatures in `Signature-Input` and `Signature`.
pub const LABEL: &str = "sig1";

/// `Signature-Input` and `Signature` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// The `Signature-Input` value (`sig1=(…);created=…;keyid="…"`).
    pub input: String,
    /// The `Signature` value (`sig1=:…:`).
    pub signature: String,
}

impl SignatureHeaders {
    /// As header fields.
    pub fn into_headers(self) -> Result<[(HeaderName, HeaderValue); 2]> {
        let value = |v: String| {
            HeaderValue::from_str(&v).map_err(|_| Error::Crypto(format!("bad header value {v:?}")))
        };
        Ok([
            (
                HeaderName::from_static("signature-input"),
                value(self.input)?,
            ),
            (HeaderName::from_static("signature"), value(self.signature)?),
        ])
    }
}

/// Seconds since the epoch.
pub fn unix_secs(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The signature base of `components` (name and value each, in signed order) with `created` and
/// `keyid`, and the parameters line it ends with.
pub fn signature_base(
    components: &[(&str, &str)],
    created: i64,
    key_id: &str,
) -> Result<(Vec<u8>, String)> {
    if key_id.contains(['"', '\\'])
        || !key_id.is_ascii()
        || key_id.chars().any(|c| c.is_ascii_control())
    {
        return Err(Error::Crypto(format!(
            "key id {key_id:?} cannot be an RFC 8941 string"
        )));
    }
    let mut base = String::new();
    let mut names = Vec::with_capacity(components.len());
    for (name, value) in components {
        base.push_str(&format!("\"{name}\": {value}\n"));
        names.push(format!("\"{name}\""));
    }
    let params = format!("({});created={created};keyid=\"{key_id}\"", names.join(" "));
    base.push_str("\"@signature-params\": ");
    base.push_str(&params);
    Ok((base.into_bytes(), params))
}

/// Signs `components` with `key`, naming `key_id`.
pub fn sign(
    key: &SigningKey,
    components: &[(&str, &str)],
    created: i64,
    key_id: &str,
) -> Result<SignatureHeaders> {
    let (base, params) = signature_base(components, created, key_id)?;
    Ok(SignatureHeaders {
        input: format!("{LABEL}={params}"),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(key.sign(&base))),
    })
}

/// The signature of a response: `@status` and `content-digest` (the `Content-Digest` value sent).
pub fn sign_response(
    key: &SigningKey,
    key_id: &str,
    status: u16,
    content_digest: &str,
    now: SystemTime,
) -> Result<SignatureHeaders> {
    let status = status.to_string();
    sign(
        key,
        &[("@status", &status), ("content-digest", content_digest)],
        unix_secs(now),
        key_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fasp::keys::VerifyingKey;
    use crate::httpsig::SignedRequest;
    use crate::httpsig::rfc9421::{self, Message};
    use crate::test_fixtures::{headers_from, text as fixture};
    use axum::http::{HeaderMap, Method};

    /// The 32 raw bytes of an Ed25519 SPKI or PKCS#8 v1 PEM block: its DER ends with them.
    fn last_32_of_pem(pem: &str, label: &str) -> Vec<u8> {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let body: String = pem
            .split(&begin)
            .nth(1)
            .and_then(|rest| rest.split(&end).next())
            .expect(label)
            .split_whitespace()
            .collect();
        let der = STANDARD.decode(body).expect("base64");
        der[der.len() - 32..].to_vec()
    }

    /// RFC 9421 Appendix B.2.6: Plaza's Ed25519 signer reproduces the RFC's signature byte for byte
    /// (Ed25519 is deterministic) and its verifier accepts it; the request parser rebuilds the same base.
    #[test]
    fn rfc9421_b26_ed25519_vector() {
        let v: serde_json::Value =
            serde_json::from_str(&fixture("rfc9421-vectors.json")).expect("json");
        let case = v["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["label"] == "sig-b26")
            .expect("sig-b26");
        let pem = fixture("rfc9421-test-key-ed25519.pem");
        let seed = last_32_of_pem(&pem, "PRIVATE KEY");
        let public = last_32_of_pem(&pem, "PUBLIC KEY");
        let pkcs8 = STANDARD
            .decode("MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF")
            .expect("b64");
        assert_eq!(&pkcs8[pkcs8.len() - 32..], seed.as_slice());
        let key = SigningKey::from_pkcs8(&pkcs8).expect("key");
        assert_eq!(key.public_key_base64(), STANDARD.encode(&public));

        let signed = sign(
            &key,
            &[
                ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
                ("@method", "POST"),
                ("@path", "/foo"),
                ("@authority", "example.com"),
                ("content-type", "application/json"),
                ("content-length", "18"),
            ],
            1618884473,
            "test-key-ed25519",
        )
        .expect("sign");
        assert_eq!(
            signed.input,
            case["Signature-Input"]
                .as_str()
                .unwrap()
                .replace("sig-b26", LABEL)
        );
        assert_eq!(
            signed.signature,
            case["Signature"]
                .as_str()
                .unwrap()
                .replace("sig-b26", LABEL)
        );

        // The parser and base builder of src/httpsig agree, and the verifier accepts the RFC's bytes.
        let treq = &v["test-request"];
        let headers = headers_from(&treq["headers"]);
        let method = Method::POST;
        let request = SignedRequest {
            method: &method,
            path_and_query: "/foo?param=Value&Pet=dog",
            authority: "example.com",
            scheme: "https",
            headers: &headers,
            body: b"{\"hello\": \"world\"}",
        };
        let parsed = rfc9421::parse(
            case["Signature-Input"].as_str().unwrap(),
            case["Signature"].as_str().unwrap(),
            None,
        )
        .expect("parse");
        let base = rfc9421::signature_base(&parsed, &Message::Request(&request)).expect("base");
        assert_eq!(
            String::from_utf8(base.clone()).unwrap(),
            case["signature_base"].as_str().unwrap()
        );
        let verifying = VerifyingKey::from_base64(&STANDARD.encode(&public)).expect("public");
        verifying
            .verify(&base, &parsed.signature)
            .expect("verifies");
        let mut tampered = base;
        tampered[0] ^= 1;
        assert!(verifying.verify(&tampered, &parsed.signature).is_err());
    }

    #[test]
    fn responses_are_signed_over_status_and_digest() {
        let key = SigningKey::generate().unwrap();
        let digest = crate::httpsig::content_digest_header(b"{}");
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let signed = sign_response(&key, "fasp-7", 200, &digest, now).unwrap();
        assert_eq!(
            signed.input,
            "sig1=(\"@status\" \"content-digest\");created=1700000000;keyid=\"fasp-7\""
        );
        let mut headers = HeaderMap::new();
        headers.insert("content-digest", digest.parse().unwrap());
        let parsed = rfc9421::parse(&signed.input, &signed.signature, None).unwrap();
        let base = rfc9421::signature_base(
            &parsed,
            &Message::Response {
                status: 200,
                headers: &headers,
                request: None,
            },
        )
        .unwrap();
        VerifyingKey::from_base64(&key.public_key_base64())
            .unwrap()
            .verify(&base, &parsed.signature)
            .unwrap();
        assert!(sign(&key, &[], 1, "bad\"id").is_err());
    }
}
