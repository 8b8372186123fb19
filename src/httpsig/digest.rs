//! Body digests: RFC 3230 `Digest` (sent with draft-cavage signatures) and RFC 9530 `Content-Digest`
//! (sent with RFC 9421 signatures).
//!
//! A signature covers the digest header, not the body; these functions tie the body to the signed header.
//! Outgoing requests get `SHA-256=<base64>` (what Mastodon checks); incoming `Digest` is matched with a
//! case-insensitive algorithm name among comma-separated entries, and `Content-Digest` is parsed as an
//! RFC 8941 dictionary (`sha-256` or `sha-512`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256, Sha512};

use super::sfv::{self, B64_LAX, BareItem, MemberValue};
use crate::{Error, Result};

/// The `Digest` header value for `body`: `SHA-256=<base64>`.
pub fn digest_header(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// The `Content-Digest` header value for `body`: `sha-256=:<base64>:`.
pub fn content_digest_header(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// Checks an RFC 3230 `Digest` value against `body`.
///
/// Entries are `algorithm=base64` separated by commas; the algorithm name is case-insensitive. A `SHA-256`
/// entry is required and must match; other algorithms are ignored.
pub fn check_digest(value: &str, body: &[u8]) -> Result<()> {
    let mut found = false;
    for entry in value.split(',') {
        let entry = entry.trim();
        let Some((alg, b64)) = entry.split_once('=') else {
            if entry.is_empty() {
                continue;
            }
            return Err(Error::Digest(format!("malformed Digest entry {entry:?}")));
        };
        if !alg.trim().eq_ignore_ascii_case("sha-256") {
            continue;
        }
        found = true;
        let claimed = B64_LAX
            .decode(b64.trim())
            .map_err(|e| Error::Digest(format!("SHA-256 value is not base64: {e}")))?;
        if claimed.as_slice() != Sha256::digest(body).as_slice() {
            return Err(Error::Digest(
                "SHA-256 digest does not match the body".into(),
            ));
        }
    }
    if found {
        Ok(())
    } else {
        Err(Error::Digest(format!(
            "no SHA-256 entry in Digest {value:?}"
        )))
    }
}

/// Checks an RFC 9530 `Content-Digest` value against `body`.
///
/// The value must be an RFC 8941 dictionary; every `sha-256` / `sha-512` member must be a byte sequence
/// matching the body, and at least one of them must be present. Other algorithms are ignored.
pub fn check_content_digest(value: &str, body: &[u8]) -> Result<()> {
    let members = sfv::parse_dictionary(value).map_err(|e| {
        Error::Digest(format!(
            "Content-Digest is not a structured dictionary: {e}"
        ))
    })?;
    let mut checked = false;
    for m in &members {
        let computed: Vec<u8> = match m.key.as_str() {
            "sha-256" => Sha256::digest(body).to_vec(),
            "sha-512" => Sha512::digest(body).to_vec(),
            _ => continue,
        };
        let MemberValue::Item(sfv::Item {
            bare: BareItem::Bytes(claimed),
            ..
        }) = &m.value
        else {
            return Err(Error::Digest(format!(
                "Content-Digest {} is not a byte sequence",
                m.key
            )));
        };
        if *claimed != computed {
            return Err(Error::Digest(format!(
                "Content-Digest {} does not match the body",
                m.key
            )));
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(Error::Digest(format!(
            "no sha-256 or sha-512 member in Content-Digest {value:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> serde_json::Value {
        crate::test_fixtures::json("digest-examples.json")
    }

    fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
        v[k].as_str().expect(k)
    }

    #[test]
    fn fixture_values() {
        let ex = examples();
        let body = s(&ex, "body").as_bytes();
        let digest = s(&ex, "Digest (RFC 3230, used with draft-cavage)");
        let cd256 = s(
            &ex,
            "Content-Digest sha-256 (RFC 9530, RFC 8941 dictionary, byte sequence in colons)",
        );
        let cd512 = s(&ex, "Content-Digest sha-512");
        assert_eq!(digest_header(body), digest);
        assert_eq!(content_digest_header(body), cd256);
        check_digest(digest, body).expect("digest");
        check_content_digest(cd256, body).expect("sha-256");
        check_content_digest(cd512, body).expect("sha-512");
        check_content_digest(&format!("{cd256}, {cd512}"), body).expect("both");

        let hello = s(&ex, "hello_world_body").as_bytes();
        assert_eq!(digest_header(hello), s(&ex, "Digest for 'Hello world'"));
        assert_eq!(
            content_digest_header(hello),
            s(&ex, "Content-Digest for 'Hello world'")
        );
        check_digest(s(&ex, "Digest for 'Hello world'"), hello).expect("hello digest");
        check_content_digest(s(&ex, "Content-Digest for 'Hello world'"), hello).expect("hello cd");
    }

    #[test]
    fn digest_is_tolerant_of_case_and_lists() {
        let ex = examples();
        let body = s(&ex, "body").as_bytes();
        let b64 =
            s(&ex, "Digest (RFC 3230, used with draft-cavage)").trim_start_matches("SHA-256=");
        check_digest(&format!("sha-256={b64}"), body).expect("lowercase");
        check_digest(&format!("MD5=abc, SHA-256={b64}"), body).expect("list");
        check_digest(&format!("SHA-256={}", b64.trim_end_matches('=')), body).expect("unpadded");
    }

    #[test]
    fn digest_failures() {
        let ex = examples();
        let body = s(&ex, "body").as_bytes();
        let digest = s(&ex, "Digest (RFC 3230, used with draft-cavage)");
        let cd256 = s(
            &ex,
            "Content-Digest sha-256 (RFC 9530, RFC 8941 dictionary, byte sequence in colons)",
        );
        let cd512 = s(&ex, "Content-Digest sha-512");
        for (value, body) in [
            (digest, &b"tampered"[..]),
            ("SHA-512=abc", body),
            ("SHA-256=!!!", body),
            ("garbage", body),
            ("", body),
        ] {
            assert!(
                matches!(check_digest(value, body), Err(Error::Digest(_))),
                "{value:?}"
            );
        }
        for (value, body) in [
            (cd256, &b"tampered"[..]),
            (cd512, &b"tampered"[..]),
            // Mastodon answers 400 to an uppercase key: it is not an sf-key.
            (&*cd256.to_uppercase(), body),
            ("sha-256=abc", body),
            ("md5=:AAAA:", body),
            (":::", body),
        ] {
            assert!(
                matches!(check_content_digest(value, body), Err(Error::Digest(_))),
                "{value:?}"
            );
        }
    }
}
