//! Body digests: RFC 3230 `Digest` (sent with draft-cavage signatures) and RFC 9530 `Content-Digest`
//! (sent with RFC 9421 signatures).
//!
//! A signature covers the digest header, not the body; these functions tie the body to the signed header.
//! Outgoing requests get `SHA-256=<base64>` (what Mastodon checks); incoming `Digest` is matched with a
//! case-insensitive algorithm name among comma-separated entries, and `Content-Digest` is parsed as an
//! RFC 8941 dictionary (`sha-256` or `sha-512`). Checking runs before the signature is verified, so it
//! is bounded: the header length and entry count are capped, and [`BodyHashes`] hashes the body at most
//! once per algorithm however many entries name it.

use std::cell::{Cell, OnceCell};
use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256, Sha512};

use super::sfv::{self, B64_LAX, BareItem, MemberValue};
use super::{MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_BYTES};
use crate::{Error, Result};

/// The `Digest` header value for `body`: `SHA-256=<base64>`.
pub fn digest_header(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// The `Content-Digest` header value for `body`: `sha-256=:<base64>:`.
pub fn content_digest_header(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The body's hashes, each computed at most once however many digest entries name its algorithm.
pub struct BodyHashes<'a> {
    body: &'a [u8],
    sha256: OnceCell<Vec<u8>>,
    sha512: OnceCell<Vec<u8>>,
    computed: Cell<usize>,
}

impl<'a> BodyHashes<'a> {
    /// Nothing is hashed until an entry asks for it.
    pub fn new(body: &'a [u8]) -> Self {
        BodyHashes {
            body,
            sha256: OnceCell::new(),
            sha512: OnceCell::new(),
            computed: Cell::new(0),
        }
    }

    fn sha256(&self) -> &[u8] {
        self.sha256.get_or_init(|| {
            self.computed.set(self.computed.get() + 1);
            Sha256::digest(self.body).to_vec()
        })
    }

    fn sha512(&self) -> &[u8] {
        self.sha512.get_or_init(|| {
            self.computed.set(self.computed.get() + 1);
            Sha512::digest(self.body).to_vec()
        })
    }

    /// How many times the body was hashed (at most one per algorithm).
    pub fn computed(&self) -> usize {
        self.computed.get()
    }
}

/// Checks an RFC 3230 `Digest` value against `body` ([`check_digest_with`]).
pub fn check_digest(value: &str, body: &[u8]) -> Result<()> {
    check_digest_with(value, &BodyHashes::new(body))
}

/// Checks an RFC 3230 `Digest` value against a body.
///
/// Entries are `algorithm=base64` separated by commas; the algorithm name is case-insensitive. A `SHA-256`
/// entry is required and must match; other algorithms are ignored. An algorithm named twice, more than
/// [`MAX_SIGNATURE_ENTRIES`] entries or a value longer than [`MAX_SIGNATURE_HEADER_BYTES`] is refused
/// before the body is hashed.
pub fn check_digest_with(value: &str, hashes: &BodyHashes<'_>) -> Result<()> {
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(Error::Digest(format!(
            "Digest is {} bytes, over the limit of {MAX_SIGNATURE_HEADER_BYTES}",
            value.len()
        )));
    }
    let mut sha256: Option<&str> = None;
    let mut seen: HashSet<String> = HashSet::new();
    for (n, entry) in value.split(',').enumerate() {
        if n >= MAX_SIGNATURE_ENTRIES {
            return Err(Error::Digest(format!(
                "Digest has more than {MAX_SIGNATURE_ENTRIES} entries"
            )));
        }
        let entry = entry.trim();
        let Some((alg, b64)) = entry.split_once('=') else {
            if entry.is_empty() {
                continue;
            }
            return Err(Error::Digest(format!(
                "malformed Digest entry {:?}",
                preview(entry)
            )));
        };
        let alg = alg.trim().to_ascii_lowercase();
        if alg == "sha-256" {
            sha256 = Some(b64.trim());
        }
        if !seen.insert(alg) {
            return Err(Error::Digest(format!(
                "Digest names an algorithm twice near {:?}",
                preview(entry)
            )));
        }
    }
    let Some(b64) = sha256 else {
        return Err(Error::Digest(format!(
            "no SHA-256 entry in Digest {:?}",
            preview(value)
        )));
    };
    let claimed = B64_LAX
        .decode(b64)
        .map_err(|e| Error::Digest(format!("SHA-256 value is not base64: {e}")))?;
    if claimed.as_slice() != hashes.sha256() {
        return Err(Error::Digest(
            "SHA-256 digest does not match the body".into(),
        ));
    }
    Ok(())
}

/// Checks an RFC 9530 `Content-Digest` value against `body` ([`check_content_digest_with`]).
pub fn check_content_digest(value: &str, body: &[u8]) -> Result<()> {
    check_content_digest_with(value, &BodyHashes::new(body))
}

/// Checks an RFC 9530 `Content-Digest` value against a body.
///
/// The value must be an RFC 8941 dictionary (bounded as every signature header is); every `sha-256` /
/// `sha-512` member must be a byte sequence matching the body, and at least one of them must be present.
/// Other algorithms are ignored.
pub fn check_content_digest_with(value: &str, hashes: &BodyHashes<'_>) -> Result<()> {
    let members = sfv::parse_dictionary(value).map_err(|e| {
        Error::Digest(format!(
            "Content-Digest is not a structured dictionary: {e}"
        ))
    })?;
    let mut checked = false;
    for m in &members {
        let sha512 = match m.key.as_str() {
            "sha-256" => false,
            "sha-512" => true,
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
        let computed = if sha512 {
            hashes.sha512()
        } else {
            hashes.sha256()
        };
        if claimed.as_slice() != computed {
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
            "no sha-256 or sha-512 member in Content-Digest {:?}",
            preview(value)
        )))
    }
}

/// The first 40 characters of `s`, for error messages about hostile input.
fn preview(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
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

    /// 1 MB of body, as the inbox accepts at most.
    fn big_body() -> Vec<u8> {
        vec![b'x'; 1024 * 1024]
    }

    #[test]
    fn hostile_digest_headers_are_refused_before_hashing() {
        let body = big_body();
        let good = digest_header(&body);
        // Thousands of SHA-256 entries (each used to hash the whole body): over the length cap.
        let thousands = vec![good.as_str(); 7000].join(",");
        // 40 short entries fit in 8 KB but exceed the entry cap.
        let others = |n: usize| (0..n).map(|i| format!("x-{i}=a,")).collect::<String>();
        let many = format!("{}{good}", others(40));
        // The same algorithm twice, in different case.
        let twice = format!("{good}, {}", good.replace("SHA-256", "sha-256"));
        for (value, reason) in [
            (thousands.as_str(), "over the limit of 8192"),
            (many.as_str(), "more than 32 entries"),
            (twice.as_str(), "algorithm twice"),
        ] {
            let hashes = BodyHashes::new(&body);
            let err = check_digest_with(value, &hashes).expect_err(reason);
            assert!(matches!(err, Error::Digest(_)), "{err}");
            assert_eq!(err.status(), axum::http::StatusCode::UNAUTHORIZED);
            assert!(err.to_string().contains(reason), "{err}");
            assert_eq!(hashes.computed(), 0, "{reason}: refused before hashing");
        }
        // Up to the cap, other algorithms cost nothing and SHA-256 is hashed once.
        let hashes = BodyHashes::new(&body);
        let fine = format!("{}{good}", others(31));
        check_digest_with(&fine, &hashes).expect("31 others and SHA-256");
        assert_eq!(hashes.computed(), 1);
    }

    #[test]
    fn content_digest_hashes_once_per_algorithm() {
        let body = big_body();
        let sha256 = content_digest_header(&body);
        let sha512 = format!("sha-512=:{}:", STANDARD.encode(Sha512::digest(&body)));
        // A repeated key replaces the earlier one (RFC 8941): still one hash per algorithm.
        let value = [
            sha256.as_str(),
            sha512.as_str(),
            sha256.as_str(),
            sha512.as_str(),
        ]
        .join(", ");
        let hashes = BodyHashes::new(&body);
        check_content_digest_with(&value, &hashes).expect("both");
        assert_eq!(hashes.computed(), 2);
        // Past the member cap the parser stops before any hash.
        let many = vec![sha256.as_str(); 33].join(", ");
        let hashes = BodyHashes::new(&body);
        let err = check_content_digest_with(&many, &hashes).expect_err("33 members");
        assert!(err.to_string().contains("more than 32 members"), "{err}");
        assert_eq!(hashes.computed(), 0);
    }
}
