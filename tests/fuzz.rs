//! Property tests (proptest) of every parser that reads unauthenticated input: the draft-cavage
//! `Signature` header, RFC 9421 `Signature-Input`/`Signature` (RFC 8941 structured fields), the `Digest`
//! and `Content-Digest` checks, the whole pre-key policy (`extract_claim`) and activity parsing.
//!
//! Each must never panic, must refuse with a client error (4xx, never 5xx), and must stay bounded: no
//! parsed list longer than the cap, no body hashed more than once per algorithm, anything over the
//! header length cap refused. Inputs are token soups built from each grammar's own pieces (so the
//! generator reaches deep parser states), mutations of valid headers, and plain random bytes. The
//! number of cases is fixed so `cargo test` stays fast.

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use plaza::ap::Activity;
use plaza::httpsig::{
    self, MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_BYTES, SignedRequest, cavage, digest, rfc9421,
};
use proptest::prelude::*;
use serde_json::Value;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A string of up to `max` pieces drawn from `pieces`.
fn soup(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|v| v.concat())
}

const CAVAGE: &[&str] = &[
    "keyId",
    "signature",
    "headers",
    "algorithm",
    "created",
    "expires",
    "=",
    "\"",
    ",",
    " ",
    "\\",
    "\"https://a.example/actor#main-key\"",
    "\"AAEC\"",
    "\"(request-target) host date digest\"",
    "\"rsa-sha256\"",
    "\"hs2019\"",
    "1402170695",
    ".5",
    "KEYID",
    "é",
    "\t",
    "x-y_z",
];

const SFV: &[&str] = &[
    "sig1",
    "sig2",
    "=",
    "(",
    ")",
    " ",
    ";",
    ",",
    "\"@method\"",
    "\"@target-uri\"",
    "\"@authority\"",
    "\"@query-param\"",
    "\"content-digest\"",
    "\"@Method\"",
    "created",
    "keyid",
    "alg",
    "expires",
    "name",
    "req",
    "bs",
    "=1618884473",
    "=\"k\"",
    "=\"x\"",
    ":AAEC:",
    "::",
    ":",
    "?1",
    "?0",
    "-",
    "1.5",
    "1.2345",
    "*",
    "\\",
    "\"",
    "sha-256",
    "sha-512",
    "é",
    "\t",
];

const DIGEST: &[&str] = &[
    "SHA-256",
    "sha-256",
    "SHA-512",
    "MD5",
    "=",
    ",",
    " ",
    "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=",
    "!!!",
    "==",
    "\"",
    "x",
];

/// A valid cavage header with `edits` applied (byte replaced, inserted or removed at a position).
fn mutated(valid: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(&b"\"=,;:() \\@*-.az09\x80\t"[..]),
        ),
        1..8,
    )
    .prop_map(move |edits| {
        let mut bytes = valid.as_bytes().to_vec();
        for (at, op, b) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = b,
                1 => bytes.insert(i.min(bytes.len()), b),
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

const VALID_CAVAGE: &str = r#"keyId="https://a.example/users/alice#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="AAECAwQFBgc=""#;
/// SHA-256 of the empty body, base64.
const EMPTY_SHA256: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const VALID_INPUT: &str = r#"sig1=("@method" "@target-uri" "@query-param";name="a" "content-digest");created=1618884473;keyid="k";alg="rsa-v1_5-sha256""#;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cavage_header_never_panics_and_stays_bounded(
        value in prop_oneof![soup(CAVAGE, 80), mutated(VALID_CAVAGE), ".{0,300}"]
    ) {
        if let Ok(sig) = cavage::parse_signature_header(&value) {
            prop_assert!(sig.headers.len() <= MAX_SIGNATURE_ENTRIES);
            prop_assert!(!sig.key_id.is_empty());
        }
    }

    #[test]
    fn rfc9421_headers_never_panic_and_stay_bounded(
        input in prop_oneof![soup(SFV, 120), mutated(VALID_INPUT)],
        signature in prop_oneof![soup(SFV, 20), Just("sig1=:AAEC:".to_string())],
    ) {
        if let Ok(sig) = rfc9421::parse(&input, &signature, None) {
            prop_assert!(sig.components.len() <= MAX_SIGNATURE_ENTRIES);
            prop_assert!(!sig.signature.is_empty());
        }
    }

    #[test]
    fn digests_never_panic_and_hash_once_per_algorithm(
        value in prop_oneof![soup(DIGEST, 60), soup(SFV, 60)],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let hashes = digest::BodyHashes::new(&body);
        let _ = digest::check_digest_with(&value, &hashes);
        prop_assert!(hashes.computed() <= 1);
        let hashes = digest::BodyHashes::new(&body);
        let _ = digest::check_content_digest_with(&value, &hashes);
        prop_assert!(hashes.computed() <= 2);
    }

    #[test]
    fn valid_headers_over_the_length_cap_are_refused_unparsed(pad in "[A-Za-z0-9]{1,64}") {
        // Valid headers with one parameter or entry their parsers ignore: with a short value they are
        // accepted, so a refusal of the long one can only be its length.
        let cavage_value = |p: &str| format!(r#"{VALID_CAVAGE},x-pad="{p}""#);
        let input = |p: &str| format!(r#"{VALID_INPUT};nonce="{p}""#);
        let digest_value = |p: &str| format!("SHA-256={EMPTY_SHA256},X-Pad={p}");
        let content_digest = |p: &str| format!(r#"sha-256=:{EMPTY_SHA256}:, pad="{p}""#);
        prop_assert!(cavage::parse_signature_header(&cavage_value(&pad)).is_ok());
        prop_assert!(rfc9421::parse(&input(&pad), "sig1=:AAEC:", None).is_ok());
        prop_assert!(httpsig::check_digest(&digest_value(&pad), b"").is_ok());
        prop_assert!(httpsig::check_content_digest(&content_digest(&pad), b"").is_ok());

        let long = pad.repeat(MAX_SIGNATURE_HEADER_BYTES / pad.len() + 1);
        let refused = |result: plaza::Result<()>| {
            result.is_err_and(|e| e.to_string().contains("over the limit"))
        };
        prop_assert!(refused(cavage::parse_signature_header(&cavage_value(&long)).map(drop)));
        prop_assert!(refused(rfc9421::parse(&input(&long), "sig1=:AAEC:", None).map(drop)));
        prop_assert!(refused(httpsig::check_digest(&digest_value(&long), b"")));
        prop_assert!(refused(httpsig::check_content_digest(&content_digest(&long), b"")));
    }

    #[test]
    fn extract_claim_answers_client_errors_only(
        signature in prop_oneof![soup(CAVAGE, 80), mutated(VALID_CAVAGE)],
        input in prop::option::of(prop_oneof![soup(SFV, 80), mutated(VALID_INPUT)]),
        digest_value in prop::option::of(soup(DIGEST, 20)),
        host in prop::sample::select(&["relay.example", "other.example", "RELAY.example:443"][..]),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(HeaderName::from_static(name), v);
            }
        };
        put("host", host);
        put("date", &httpdate::fmt_http_date(SystemTime::now()));
        put("signature", &signature);
        if let Some(input) = &input {
            put("signature-input", input);
        }
        if let Some(d) = &digest_value {
            put("digest", d);
            put("content-digest", d);
        }
        let request = SignedRequest {
            method: &Method::POST,
            path_and_query: "/inbox",
            authority: "relay.example",
            scheme: "https",
            headers: &headers,
            body: &body,
        };
        if let Err(e) = httpsig::extract_claim(&request, SystemTime::now()) {
            prop_assert!(e.status().is_client_error(), "{e}");
        }
    }

    #[test]
    fn activity_parsing_never_panics(value in json_value()) {
        let bytes = serde_json::to_vec(&value).expect("serializable");
        match Activity::parse(&bytes) {
            Ok(activity) => {
                // Every accessor the inbox and the relay rules use.
                let _ = (
                    activity.is_activity_type(),
                    activity.object_id(),
                    activity.embedded_object(),
                    activity.object_kind(),
                    activity.object_audience(),
                    activity.ld_signature(),
                    activity.is_public(),
                    activity.is_listed_public(),
                    activity.actor_authority(),
                    activity.id_authority(),
                    activity.embedded_object_same_origin(),
                );
            }
            Err(e) => prop_assert!(e.status().is_client_error(), "{e}"),
        }
    }

    #[test]
    fn activity_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            (1usize..20_000, prop::sample::select(&["[", "{\"a\":", "[{\"object\":"][..]))
                .prop_map(|(n, open)| open.repeat(n).into_bytes()),
        ]
    ) {
        if let Err(e) = Activity::parse(&bytes) {
            prop_assert!(e.status().is_client_error(), "{e}");
        }
    }
}

/// JSON shaped like activities: the keys the relay reads, values of every kind, nested.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(
            &[
                "https://a.example/users/alice",
                "https://a.example/users/alice#main-key",
                "https://b.example/notes/1",
                "https://www.w3.org/ns/activitystreams#Public",
                "as:Public",
                "Create",
                "Announce",
                "Follow",
                "Undo",
                "Note",
                "RsaSignature2017",
                "",
                "not a url",
                "javascript:alert(1)",
                "https://",
                "https://[::1",
                "http://a.example:99999/x",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(
                        &[
                            "id",
                            "type",
                            "actor",
                            "object",
                            "to",
                            "cc",
                            "bto",
                            "audience",
                            "signature",
                            "creator",
                            "attributedTo",
                            "@context",
                            "content",
                        ][..]
                    ),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}
