//! Micro benchmarks of the per-request costs: signature verification (draft-cavage and RFC 9421), the
//! outgoing signature (the fan-out cost), body digests, activity parsing and the durable log append.
//!
//! Run: `cargo bench --bench micro` (add a filter, e.g. `-- verify`).

use std::hint::black_box;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use plaza::ap::Activity;
use plaza::federation::relay::check_ids;
use plaza::httpsig::{self, PrivateKey, SignedRequest, rfc9421};
use plaza::store::{NewEntry, Store};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../shared/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

struct Owned {
    method: Method,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Owned {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path_and_query: "/inbox",
            authority: "relay.example",
            scheme: "https",
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn cavage_request(key: &PrivateKey, body: &[u8]) -> Owned {
    let url = url::Url::parse("https://relay.example/inbox").expect("url");
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("relay.example"));
    let signed = httpsig::sign_request(
        key,
        "https://a.example/actor#main-key",
        &Method::POST,
        &url,
        Some("application/activity+json"),
        Some(body),
        SystemTime::now(),
    )
    .expect("sign");
    for (name, value) in signed {
        headers.insert(name, value);
    }
    Owned {
        method: Method::POST,
        headers,
        body: body.to_vec(),
    }
}

fn rfc9421_request(key: &PrivateKey, body: &[u8]) -> Owned {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-digest",
        HeaderValue::from_str(&httpsig::content_digest_header(body)).expect("digest"),
    );
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/activity+json"),
    );
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let input = format!(
        r#"sig1=("@method" "@target-uri" "content-digest" "content-type");created={created};keyid="https://a.example/actor#main-key";alg="rsa-v1_5-sha256""#
    );
    headers.insert(
        "signature-input",
        HeaderValue::from_str(&input).expect("input"),
    );
    let mut owned = Owned {
        method: Method::POST,
        headers,
        body: body.to_vec(),
    };
    let parsed = rfc9421::parse(&input, "sig1=:AAEC:", None).expect("parse");
    let base = rfc9421::signature_base(&parsed, &rfc9421::Message::Request(&owned.request()))
        .expect("base");
    let signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign_rsa_sha256(&base).expect("sign"));
    owned.headers.insert(
        HeaderName::from_static("signature"),
        HeaderValue::from_str(&format!("sig1=:{signature}:")).expect("sig"),
    );
    owned
}

fn signatures(c: &mut Criterion) {
    let key = PrivateKey::generate().expect("key");
    let public = key.public_key().expect("public");
    let body = fixture("mastodon-create-note.json");

    let cavage = cavage_request(&key, &body);
    c.bench_function("verify/cavage (parse, digest, RSA-2048 verify)", |b| {
        b.iter(|| {
            let claim =
                httpsig::extract_claim(&cavage.request(), SystemTime::now()).expect("claim");
            claim.verify(&public).expect("verify");
        })
    });
    // What an inbox does before the RSA check (and what a bad signature costs an attacker to make).
    c.bench_function(
        "verify/cavage claim (parse, digest, signing string; no RSA)",
        |b| {
            b.iter(|| {
                httpsig::extract_claim(black_box(&cavage.request()), SystemTime::now())
                    .expect("claim")
            })
        },
    );
    let modern = rfc9421_request(&key, &body);
    c.bench_function(
        "verify/rfc9421 (parse, content-digest, RSA-2048 verify)",
        |b| {
            b.iter(|| {
                let claim =
                    httpsig::extract_claim(&modern.request(), SystemTime::now()).expect("claim");
                claim.verify(&public).expect("verify");
            })
        },
    );
    c.bench_function(
        "verify/public key PEM parse (what the key cache saves)",
        |b| {
            let pem = key.public_key_pem().to_string();
            b.iter(|| httpsig::PublicKey::from_pem(black_box(&pem)).expect("pem"))
        },
    );

    let url = url::Url::parse("https://b.example/inbox").expect("url");
    let digest = httpsig::digest_header(&body);
    for (scheme, name) in [
        (
            httpsig::Scheme::Cavage,
            "sign/outgoing POST (RSA-2048, precomputed digest)",
        ),
        (
            httpsig::Scheme::Rfc9421,
            "sign/outgoing POST, RFC 9421 (RSA-2048, precomputed digest)",
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                httpsig::sign_request_as(
                    scheme,
                    &key,
                    "https://relay.example/actor#main-key",
                    &Method::POST,
                    &url,
                    Some("application/activity+json"),
                    Some(&digest),
                    SystemTime::now(),
                )
                .expect("sign")
            })
        });
    }
    // Everything a delivery's signing does besides the RSA operation, with the template a worker
    // keeps for its inbox (issue 18, item 2).
    let key_id = "https://relay.example/actor#main-key";
    let template = httpsig::CavageTemplate::new(
        key_id,
        &Method::POST,
        &url,
        Some("application/activity+json"),
    )
    .expect("template");
    let rsa_sized = vec![0x5a_u8; 256];
    c.bench_function(
        "sign/cavage glue per delivery (signing string, headers; no RSA)",
        |b| {
            b.iter(|| {
                let date = httpdate::fmt_http_date(SystemTime::now());
                black_box(template.message(&date, Some(&digest)));
                template
                    .headers(date, Some(&digest), black_box(&rsa_sized))
                    .expect("headers")
            })
        },
    );
    // Topic feeds sign with each topic's own key: the same signature, with its key's data less
    // likely in the CPU's caches than the relay's one key.
    let keys: Vec<PrivateKey> = (0..100)
        .map(|_| PrivateKey::generate().expect("key"))
        .collect();
    let mut turn = 0usize;
    c.bench_function(
        "sign/outgoing POST with one of 100 keys in turn (topic actors)",
        |b| {
            b.iter(|| {
                turn = (turn + 1) % keys.len();
                httpsig::sign_request_as(
                    httpsig::Scheme::Cavage,
                    &keys[turn],
                    "https://relay.example/topics/tag/coop#main-key",
                    &Method::POST,
                    &url,
                    Some("application/activity+json"),
                    Some(&digest),
                    SystemTime::now(),
                )
                .expect("sign")
            })
        },
    );
    c.bench_function("digest/SHA-256 of a Mastodon Create", |b| {
        b.iter(|| httpsig::digest_header(black_box(&body)))
    });
}

fn parsing(c: &mut Criterion) {
    let create = fixture("mastodon-create-note.json");
    c.bench_function("parse/Mastodon Create", |b| {
        b.iter(|| Activity::parse(black_box(&create)).expect("parse"))
    });
    let announce = fixture("pleroma-relay-announce-litepub.json");
    c.bench_function("parse/LitePub Announce", |b| {
        b.iter(|| Activity::parse(black_box(&announce)).expect("parse"))
    });
    // The inbox's checks of an activity's ids: actor, id and object are web IRIs, on one host (the
    // fixture's are http: URLs, allowed as when private networks are).
    let parsed = Activity::parse(&create).expect("parse");
    c.bench_function("ids/check a Mastodon Create's ids", |b| {
        b.iter(|| check_ids(black_box(&parsed), true).expect("valid ids"))
    });
}

fn log_append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("bench.db")).expect("store");
    let body = Bytes::from(fixture("mastodon-create-note.json"));
    let entry = |n: u64| NewEntry {
        origin: "a.example".into(),
        target: None,
        kind: "Create".into(),
        mastodon_body: body.clone(),
        // The relay's own Announce, with an id made as the relay makes them: the append records it
        // among the published.
        litepub_body: Bytes::from(format!(
            "{{\"type\":\"Announce\",\"id\":\"{}\",\"n\":{n}}}",
            plaza::ap::outgoing::new_activity_id("https://relay.example")
        )),
        signer: Some("https://a.example/users/alice".into()),
        original: None,
    };
    // The two ids the inbox claims for a Create (see `relay::plan`): the activity's and its object's.
    let ids = |n: u64| {
        let note = format!("https://a.example/users/alice/statuses/{}", 100_000_000 + n);
        vec![
            format!("a.example {note}/activity"),
            format!("a.example object:{note}"),
        ]
    };
    // A log that already holds a day's worth of a small relay's posts, so the indexes the append
    // writes into are not empty.
    let mut n = 0u64;
    rt.block_on(async {
        for _ in 0..200 {
            let batch: Vec<_> = (0..100)
                .map(|_| {
                    n += 1;
                    let store = store.clone();
                    let (e, id) = (entry(n), ids(n));
                    tokio::spawn(async move { store.append_unless_seen(e, id).await })
                })
                .collect();
            for task in batch {
                task.await.expect("task").expect("append");
            }
        }
    });
    c.bench_function("log/append one (durable commit)", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let store = store.clone();
            let e = entry(n);
            async move { store.append_unless_seen(e, ids(n)).await.expect("append") }
        })
    });
    c.bench_function("log/append 64 concurrent (group commit), per batch", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            let batch: Vec<_> = (0..64)
                .map(|_| {
                    n += 1;
                    let store = store.clone();
                    let e = entry(n);
                    let id = ids(n);
                    tokio::spawn(
                        async move { store.append_unless_seen(e, id).await.expect("append") },
                    )
                })
                .collect();
            async move {
                for task in batch {
                    task.await.expect("task");
                }
            }
        })
    });
}

criterion_group!(benches, signatures, parsing, log_append);
criterion_main!(benches);
