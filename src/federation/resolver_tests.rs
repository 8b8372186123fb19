//! Tests of the resolver through a fake fetcher: every real-world key and actor shape from the shared
//! fixtures, GoToSocial's key stub, and what forged requests may cost (fetches, cache weight, refetches).

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

use serde_json::json;

use super::*;
use crate::httpsig::{PrivateKey, SigAlgorithm};
use crate::test_fixtures as fixtures;

/// Serves documents from a map and counts every fetch by URL.
#[derive(Default)]
struct FakeFetcher {
    docs: Mutex<HashMap<String, std::result::Result<Value, String>>>,
    fetches: Mutex<Vec<String>>,
    total: AtomicUsize,
    /// How long every answer takes (none by default), so that requests can overlap.
    delay: Mutex<Duration>,
}

impl FakeFetcher {
    fn serve(&self, url: &str, doc: Value) {
        self.docs.lock().unwrap().insert(url.to_string(), Ok(doc));
    }

    /// `url` fails the way [`Http::get_json`] does for an unusable response.
    fn fail(&self, url: &str, reason: &str) {
        self.docs
            .lock()
            .unwrap()
            .insert(url.to_string(), Err(reason.to_string()));
    }

    fn count(&self, url: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == url)
            .count()
    }

    fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Fetch for FakeFetcher {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>> {
        self.fetches.lock().unwrap().push(url.to_string());
        self.total.fetch_add(1, Ordering::Relaxed);
        let found = self.docs.lock().unwrap().get(url).cloned();
        let delay = *self.delay.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            match found {
                Some(Ok(doc)) => Ok(doc),
                Some(Err(reason)) => Err(Error::fetch(url, reason)),
                None => Err(Error::fetch(url, "HTTP 404 Not Found")),
            }
        })
    }
}

fn unlimited() -> Settings {
    Settings {
        fetches_per_minute: 0,
        ..Settings::default()
    }
}

fn resolver(settings: Settings) -> (Resolver, Arc<FakeFetcher>) {
    let fake = Arc::new(FakeFetcher::default());
    (Resolver::new(fake.clone(), settings), fake)
}

fn host_of(url: &str) -> String {
    authority_of(url).unwrap()
}

/// A check that accepts any key (the shape tests are about resolution, not signatures).
fn any_key(_: &PublicKey) -> Result<()> {
    Ok(())
}

fn refuse(_: &PublicKey) -> Result<()> {
    Err(Error::SignatureInvalid)
}

/// An actor document with one key `key_id` holding `pem`.
fn actor_doc(id: &str, key_id: &str, pem: &str, extra: Value) -> Value {
    let mut doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": "Person",
        "preferredUsername": "someone",
        "inbox": format!("{id}/inbox"),
        "publicKey": { "id": key_id, "owner": id, "publicKeyPem": pem }
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    doc
}

/// One case of the table below: a fixture as stored, with the kind it must resolve to.
fn fixture(name: &'static str, kind: &'static str) -> (&'static str, Value, &'static str) {
    (name, fixtures::json(name), kind)
}

/// Serves a fixture actor at its id; returns the id.
fn serve_fixture(fake: &FakeFetcher, name: &str) -> String {
    let doc = fixtures::json(name);
    let id = doc["id"].as_str().unwrap().to_string();
    fake.serve(&id, doc);
    id
}

/// `count` requests whose signature does not verify under `key_id`'s key; each must be refused.
async fn send_forged(resolver: &Resolver, key_id: &str, count: usize) {
    for _ in 0..count {
        resolver
            .signer(key_id, &host_of(key_id), refuse)
            .await
            .expect_err("forged");
    }
}

fn pem_of(doc: &Value) -> String {
    doc["publicKey"]["publicKeyPem"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Each fixture served where its id says, resolved through a keyId of its own.
#[tokio::test]
async fn every_real_world_actor_shape_resolves() {
    let template = fixtures::text("mastodon-application-actor-template.json")
        .replace("{{DOMAIN}}", "mastodon.example");
    let application: Value = serde_json::from_str(&template).unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        fixture("mastodon-actor.json", "Person"),
        fixture("mastodon-person-actor.json", "Person"),
        (
            "mastodon-application-actor-template.json",
            application,
            "Application",
        ),
        fixture("mastodon-instance-actor-application.json", "Application"),
        fixture("mastodon-service-actor.json", "Service"),
        fixture("mastodon-person-lemmy-asset.json", "Person"),
        (
            "mastodon-update-actor.json",
            fixtures::json("mastodon-update-actor.json")["object"].clone(), // an Update's actor
            "Person",
        ),
        fixture("misskey-actor.json", "Person"),
        fixture("pleroma-actor.json", "Person"),
        fixture("lemmy-person.json", "Person"),
        fixture("lemmy-group.json", "Group"),
        fixture("lemmy-instance-actor.json", "Application"),
        fixture("relay-actor-activityrelay.json", "Application"),
        fixture(
            "relay-actor-application-mastodon-example.json",
            "Application",
        ),
    ];
    // Two fixtures carry PEMs damaged upstream (`…AA0CA08A…` for `…AAOCAQ8A…`; lines of 63
    // characters): refused as unusable (401), not a crash; their shape is then tried with a sound key.
    let damaged = [
        "mastodon-application-actor-template.json",
        "mastodon-update-actor.json",
    ];
    for (name, mut doc, kind) in cases {
        let id = doc["id"].as_str().unwrap().to_string();
        let key_id = doc["publicKey"]["id"].as_str().unwrap().to_string();
        if damaged.contains(&name) {
            let (resolver, fake) = resolver(unlimited());
            fake.serve(strip_fragment(&key_id), doc.clone());
            let refused = resolver
                .signer(&key_id, &host_of(&id), any_key)
                .await
                .expect_err(name);
            assert!(
                matches!(refused, Error::KeyUnusable(_)),
                "{name}: {refused}"
            );
            doc["publicKey"]["publicKeyPem"] =
                json!(pem_of(&fixtures::json("mastodon-actor.json")));
        }
        let (resolver, fake) = resolver(unlimited());
        fake.serve(strip_fragment(&key_id), doc.clone());
        let resolved = resolver
            .signer(&key_id, &host_of(&id), any_key)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(resolved.owner.id, id, "{name}");
        assert_eq!(resolved.owner.kind, kind, "{name}");
        assert_eq!(resolved.owner.raw, Value::Null, "{name}: no JSON kept");
        assert!(resolved.owner.delivery_inbox().is_some(), "{name}: inbox");
        assert_eq!(fake.total(), 1, "{name}: one fetch");
        // The actor itself is now cached too: the inbox asks for it by id without fetching.
        resolver.actor(&id).await.unwrap();
        assert_eq!(fake.total(), 1, "{name}: actor cached with its key");
    }
}

/// GoToSocial's own actor: keyId `…/main-key` serves the stub, the actor lists the key.
#[tokio::test]
async fn gotosocial_actor_resolves_through_its_stub() {
    let (resolver, fake) = resolver(unlimited());
    let actor = fixtures::json("gotosocial-actor.json");
    let id = actor["id"].as_str().unwrap();
    let key_id = actor["publicKey"]["id"].as_str().unwrap();
    let stub = json!({
        "@context": ["https://w3id.org/security/v1", "https://www.w3.org/ns/activitystreams"],
        "id": id,
        "preferredUsername": actor["preferredUsername"],
        "publicKey": actor["publicKey"],
        "type": "Person"
    });
    fake.serve(key_id, stub);
    fake.serve(id, actor.clone());
    let resolved = resolver
        .signer(key_id, &host_of(id), any_key)
        .await
        .unwrap();
    assert_eq!(resolved.owner.id, id);
    assert_eq!(
        resolved.owner.inbox.as_deref(),
        Some("http://localhost:8080/users/the_mighty_zork/inbox")
    );
    assert_eq!((fake.count(key_id), fake.count(id)), (1, 1));
    resolver
        .signer(key_id, &host_of(id), any_key)
        .await
        .unwrap();
    assert_eq!(fake.total(), 2, "cached as usual");
}

const STUB_KEY: &str = "https://example.org/users/example_user/main-key";
const STUB_OWNER: &str = "https://example.org/users/example_user";

/// The stub fixture and an owner actor listing `owner_key_id` with `owner_pem`.
fn serve_stub(fake: &FakeFetcher, owner_key_id: &str, owner_pem: &str) -> Value {
    let stub = fixtures::json("gotosocial-publickey-stub.json");
    fake.serve(STUB_KEY, stub.clone());
    fake.serve(
        STUB_OWNER,
        actor_doc(STUB_OWNER, owner_key_id, owner_pem, json!({})),
    );
    stub
}

#[tokio::test]
async fn the_gotosocial_stub_is_a_key_document() {
    let (resolver, fake) = resolver(unlimited());
    let pem = pem_of(&fixtures::json("gotosocial-publickey-stub.json"));
    serve_stub(&fake, STUB_KEY, &pem);
    let resolved = resolver
        .signer(STUB_KEY, "example.org", any_key)
        .await
        .unwrap();
    assert_eq!(resolved.owner.id, STUB_OWNER);
    assert_eq!(
        resolved.owner.inbox.as_deref(),
        Some("https://example.org/users/example_user/inbox"),
        "the owner's document, not the stub (which has no inbox), is what is cached"
    );
    // Exact keyId rules stay: a fragment variant of the stub's key is not that key.
    let variant = format!("{STUB_KEY}#main-key");
    assert!(matches!(
        resolver.signer(&variant, "example.org", any_key).await,
        Err(Error::KeyUnusable(_))
    ));
}

#[tokio::test]
async fn a_stub_is_accepted_when_the_owner_lists_the_same_pem_under_another_id() {
    let (resolver, fake) = resolver(unlimited());
    let pem = pem_of(&fixtures::json("gotosocial-publickey-stub.json"));
    serve_stub(&fake, &format!("{STUB_OWNER}#main-key"), &pem);
    resolver
        .signer(STUB_KEY, "example.org", any_key)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stub_whose_publickey_is_an_array_is_accepted() {
    let (resolver, fake) = resolver(unlimited());
    let mut stub = fixtures::json("gotosocial-publickey-stub.json");
    let key = stub["publicKey"].clone();
    let other = pem_of(&fixtures::json("mastodon-actor.json"));
    stub["publicKey"] = json!([
        { "id": format!("{STUB_OWNER}/other-key"), "owner": STUB_OWNER, "publicKeyPem": other },
        key
    ]);
    fake.serve(STUB_KEY, stub);
    fake.serve(
        STUB_OWNER,
        actor_doc(
            STUB_OWNER,
            STUB_KEY,
            key["publicKeyPem"].as_str().unwrap(),
            json!({}),
        ),
    );
    resolver
        .signer(STUB_KEY, "example.org", any_key)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stub_whose_owner_lists_another_key_is_refused() {
    let (resolver, fake) = resolver(unlimited());
    let other = pem_of(&fixtures::json("mastodon-actor.json"));
    serve_stub(&fake, &format!("{STUB_OWNER}#main-key"), &other);
    let refused = resolver.signer(STUB_KEY, "example.org", any_key).await;
    assert!(
        matches!(&refused, Err(Error::KeyUnusable(why)) if why.contains("does not list")),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn a_stub_owned_on_another_host_is_refused_without_fetching_the_owner() {
    let (resolver, fake) = resolver(unlimited());
    let mut stub = fixtures::json("gotosocial-publickey-stub.json");
    stub["id"] = json!("https://evil.example/users/example_user");
    stub["publicKey"]["owner"] = json!("https://evil.example/users/example_user");
    fake.serve(STUB_KEY, stub);
    let refused = resolver.signer(STUB_KEY, "example.org", any_key).await;
    assert!(
        matches!(&refused, Err(Error::KeyUnusable(why)) if why.contains("another host")),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        fake.total(),
        1,
        "the owner on the other host is not fetched"
    );
}

#[tokio::test]
async fn a_document_with_another_id_and_no_such_key_is_refused() {
    let (resolver, fake) = resolver(unlimited());
    let mut stub = fixtures::json("gotosocial-publickey-stub.json");
    stub["publicKey"]["id"] = json!(format!("{STUB_OWNER}#main-key"));
    fake.serve(STUB_KEY, stub);
    let refused = resolver.signer(STUB_KEY, "example.org", any_key).await;
    assert!(
        matches!(&refused, Err(Error::KeyUnusable(why)) if why.contains("lists no key")),
        "{:?}",
        refused.err()
    );
    assert_eq!(refused.err().map(|e| e.status().as_u16()), Some(401));
}

#[tokio::test]
async fn fedify_key_document_and_two_key_person() {
    let (resolver, fake) = resolver(unlimited());
    let person = fixtures::json("httpsig-fedify-example-person.json");
    fake.serve(
        "https://example.com/key",
        fixtures::json("httpsig-fedify-example-key.json"),
    );
    fake.serve("https://example.com/person", person);
    let resolved = resolver
        .signer("https://example.com/key", "example.com", any_key)
        .await
        .unwrap();
    assert_eq!(resolved.owner.id, "https://example.com/person");
    // The second key named by a keyId on the person document itself.
    let (resolver, fake) = self::resolver(unlimited());
    fake.serve(
        "https://example.com/person",
        fixtures::json("httpsig-fedify-example-person.json"),
    );
    resolver
        .signer("https://example.com/person#key2", "example.com", any_key)
        .await
        .expect_err("the person lists `…/key2`, not `…/person#key2`");
}

#[tokio::test]
async fn pkcs1_and_spki_pems_both_verify() {
    let pkcs1 = fixtures::text("rfc9421-test-key-rsa.pem");
    let end = "-----END RSA PUBLIC KEY-----";
    let pkcs1 = &pkcs1[..pkcs1.find(end).unwrap() + end.len()];
    let signing = PrivateKey::generate().unwrap();
    let message = b"(request-target): post /inbox";
    let signature = signing.sign_rsa_sha256(message).unwrap();
    for (pem, check_signature) in [
        (pkcs1.to_string(), false),
        (signing.public_key_pem().to_string(), true),
    ] {
        let (resolver, fake) = resolver(unlimited());
        let id = "https://pem.example/users/a";
        fake.serve(
            id,
            actor_doc(id, &format!("{id}#main-key"), &pem, json!({})),
        );
        let resolved = resolver
            .signer(&format!("{id}#main-key"), "pem.example", |key| {
                if check_signature {
                    key.verify(SigAlgorithm::RsaPkcs1Sha256, message, &signature)
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{pem}: {e}"));
        assert!(matches!(
            resolved.key.key_type(),
            crate::httpsig::KeyType::Rsa { bits: 2048 }
        ));
    }
}

// ------------------------------------------------------------------------------------------------
// As an attacker
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_on_another_host_than_the_actor_costs_no_fetch() {
    let (resolver, fake) = resolver(unlimited());
    let refused = resolver
        .signer(
            "https://victim.example/users/a#main-key",
            "attacker.example",
            any_key,
        )
        .await;
    assert_eq!(refused.err().map(|e| e.status().as_u16()), Some(401));
    assert_eq!(fake.total(), 0);
}

#[tokio::test]
async fn a_key_id_that_is_not_a_url_is_a_bad_request() {
    let (resolver, fake) = resolver(unlimited());
    for key_id in ["not a url", "mailto:a@b.example", "/users/a#main-key"] {
        let refused = resolver.signer(key_id, "b.example", any_key).await;
        assert_eq!(
            refused.err().map(|e| e.status().as_u16()),
            Some(400),
            "{key_id}"
        );
    }
    assert_eq!(fake.total(), 0);
}

#[tokio::test]
async fn big_actor_documents_leave_the_cache_bounded() {
    let budget = 64 * 1024;
    let (resolver, fake) = resolver(Settings {
        cache_bytes: budget,
        ..unlimited()
    });
    let pem = pem_of(&fixtures::json("mastodon-actor.json"));
    let padding = "x".repeat(1024 * 1024);
    for i in 0..40 {
        let id = format!("https://h{i}.example/users/a");
        let key_id = format!("{id}#main-key");
        fake.serve(
            &id,
            actor_doc(
                &id,
                &key_id,
                &pem,
                json!({ "summary": padding, "name": padding }),
            ),
        );
        // A forged request: the key resolves, the signature does not verify.
        let refused = resolver.signer(&key_id, &host_of(&id), refuse).await;
        assert!(matches!(refused, Err(Error::SignatureInvalid)));
        if i == 0 {
            let one = resolver.cached_bytes().await;
            assert!(
                one < 8 * 1024,
                "one actor with 2 MB of text weighs {one} bytes"
            );
        }
    }
    let total = resolver.cached_bytes().await;
    assert!(
        total <= budget,
        "cache weighs {total} bytes, budget {budget}"
    );
    assert!(total > 0);
}

#[tokio::test]
async fn fragment_variants_of_a_key_id_share_one_entry_and_one_fetch() {
    let (resolver, fake) = resolver(unlimited());
    let id = serve_fixture(&fake, "mastodon-actor.json");
    resolver
        .signer(&format!("{id}#main-key"), &host_of(&id), any_key)
        .await
        .unwrap();
    let weight = resolver.cached_bytes().await;
    for i in 0..200 {
        // The only key of an actor is found by any keyId naming the actor (the usual rule)…
        let variant = format!("{id}#variant-{i}");
        resolver
            .signer(&variant, &host_of(&id), refuse)
            .await
            .expect_err("forged");
    }
    // Other spellings of the same document URL find the same entry too.
    let spelled = id.replace("https://ap.example.com/", "HTTPS://AP.Example.com:443/");
    for key_id in [format!("{spelled}#main-key"), format!("{id}#")] {
        resolver
            .signer(&key_id, &host_of(&id), refuse)
            .await
            .expect_err("forged");
    }
    assert_eq!(fake.total(), 1, "no fetch per variant");
    assert_eq!(
        resolver.cached_bytes().await,
        weight,
        "no entry per variant"
    );
}

#[tokio::test]
async fn a_variant_naming_no_listed_key_is_refused_without_refetching() {
    let (resolver, fake) = resolver(unlimited());
    let person = fixtures::json("httpsig-fedify-example-person.json");
    fake.serve("https://example.com/person", person);
    resolver
        .signer("https://example.com/person#a", "example.com", any_key)
        .await
        .expect_err("two keys, neither is `#a`");
    for i in 0..50 {
        resolver
            .signer(
                &format!("https://example.com/person#v{i}"),
                "example.com",
                any_key,
            )
            .await
            .expect_err("not listed");
    }
    assert_eq!(fake.total(), 1);
    resolver.cached_bytes().await;
    assert_eq!(resolver.keys.entry_count(), 1);
}

#[tokio::test]
async fn a_failed_verification_refetches_a_key_that_verified_before_at_most_once_per_interval() {
    let interval = Duration::from_millis(800);
    let (resolver, fake) = resolver(Settings {
        refetch_interval: interval,
        ..unlimited()
    });
    let id = serve_fixture(&fake, "mastodon-actor.json");
    let key_id = format!("{id}#main-key");
    resolver
        .signer(&key_id, &host_of(&id), any_key)
        .await
        .unwrap();
    send_forged(&resolver, &key_id, 50).await;
    assert_eq!(
        fake.total(),
        1,
        "fetched less than an interval ago: no refetch"
    );
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    send_forged(&resolver, &key_id, 50).await;
    assert_eq!(fake.total(), 2, "50 forged requests: one refetch");
}

#[tokio::test]
async fn a_key_that_never_verified_is_never_refetched() {
    let interval = Duration::from_millis(100);
    let (resolver, fake) = resolver(Settings {
        refetch_interval: interval,
        ..unlimited()
    });
    let id = serve_fixture(&fake, "misskey-actor.json");
    let key_id = format!("{id}#main-key");
    resolver
        .signer(&key_id, &host_of(&id), refuse)
        .await
        .expect_err("forged");
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    send_forged(&resolver, &key_id, 50).await;
    assert_eq!(fake.total(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_the_refetch() {
    let interval = Duration::from_millis(100);
    let (resolver, fake) = resolver(Settings {
        refetch_interval: interval,
        ..unlimited()
    });
    let (old, new) = (
        PrivateKey::generate().unwrap(),
        PrivateKey::generate().unwrap(),
    );
    let id = "https://rotate.example/users/a";
    let key_id = format!("{id}#main-key");
    let message = b"date: now";
    let verifies_with = |signer: &PrivateKey| {
        let signature = signer.sign_rsa_sha256(message).unwrap();
        move |key: &PublicKey| key.verify(SigAlgorithm::RsaPkcs1Sha256, message, &signature)
    };
    fake.serve(id, actor_doc(id, &key_id, old.public_key_pem(), json!({})));
    resolver
        .signer(&key_id, "rotate.example", verifies_with(&old))
        .await
        .unwrap();
    fake.serve(id, actor_doc(id, &key_id, new.public_key_pem(), json!({})));
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    resolver
        .signer(&key_id, "rotate.example", verifies_with(&new))
        .await
        .unwrap();
    assert_eq!(fake.total(), 2);
}

#[tokio::test]
async fn unusable_key_documents_are_the_senders_problem_and_remembered_briefly() {
    let negative = Duration::from_millis(800);
    let (resolver, fake) = resolver(Settings {
        negative_ttl: negative,
        ..unlimited()
    });
    let cases = [
        (
            "https://html.example/users/a",
            "not JSON: expected value at line 1 column 1",
        ),
        (
            "https://big.example/users/a",
            "document larger than 1048576 bytes",
        ),
        ("https://silent.example/users/a", "operation timed out"),
        ("https://down.example/users/a", "connection refused"),
    ];
    for (id, reason) in cases {
        fake.fail(id, reason);
        let key_id = format!("{id}#main-key");
        let refused = resolver
            .signer(&key_id, &host_of(id), any_key)
            .await
            .expect_err(id);
        assert_eq!(refused.status().as_u16(), 401, "{id}: {refused}");
        assert!(refused.to_string().contains(reason), "{refused}");
        let again = resolver
            .signer(&key_id, &host_of(id), any_key)
            .await
            .expect_err(id);
        assert_eq!(again.status().as_u16(), 401);
        assert_eq!(fake.count(id), 1, "{id}: the failure is remembered");
    }
    // A JSON document that is neither actor nor key is the sender's problem too.
    fake.serve("https://odd.example/k", json!(["not", "an", "object"]));
    let odd = resolver
        .signer("https://odd.example/k", "odd.example", any_key)
        .await
        .expect_err("odd");
    assert_eq!(odd.status().as_u16(), 401);
    tokio::time::sleep(negative + Duration::from_millis(50)).await;
    let id = cases[0].0;
    fake.serve(id, fixtures::json("mastodon-actor.json"));
    let _ = resolver
        .signer(&format!("{id}#main-key"), &host_of(id), any_key)
        .await;
    assert_eq!(fake.count(id), 2, "tried again once the failure expired");
}

#[tokio::test]
async fn fetches_are_rate_limited_per_host() {
    let (resolver, fake) = resolver(Settings {
        fetches_per_minute: 3,
        ..Settings::default()
    });
    for i in 0..3 {
        let refused = resolver
            .signer(
                &format!("https://busy.example/u/{i}#k"),
                "busy.example",
                any_key,
            )
            .await
            .expect_err("404");
        assert_eq!(refused.status().as_u16(), 401);
    }
    let limited = resolver
        .signer("https://busy.example/u/9#k", "busy.example", any_key)
        .await
        .expect_err("limited");
    assert_eq!(limited.status().as_u16(), 429, "{limited}");
    assert_eq!(fake.total(), 3);
    resolver
        .signer("https://calm.example/u/1#k", "calm.example", any_key)
        .await
        .expect_err("404");
    assert_eq!(fake.total(), 4, "other hosts have their own allowance");
}

#[tokio::test]
async fn an_actor_update_or_delete_forgets_the_actor_and_its_keys() {
    let (resolver, fake) = resolver(unlimited());
    let id = serve_fixture(&fake, "pleroma-actor.json");
    let key_id = format!("{id}#main-key");
    let pem = pem_of(&fixtures::json("gotosocial-publickey-stub.json"));
    serve_stub(&fake, STUB_KEY, &pem);
    resolver
        .signer(&key_id, &host_of(&id), any_key)
        .await
        .unwrap();
    resolver
        .signer(STUB_KEY, "example.org", any_key)
        .await
        .unwrap();
    assert_eq!(fake.total(), 3);
    resolver.forget_actor(&id).await;
    resolver.forget_actor(STUB_OWNER).await;
    resolver
        .signer(&key_id, &host_of(&id), any_key)
        .await
        .unwrap();
    assert_eq!(fake.count(&id), 2, "the actor document is fetched again");
    resolver
        .signer(STUB_KEY, "example.org", any_key)
        .await
        .unwrap();
    assert_eq!(fake.count(STUB_KEY), 2, "the stub key is fetched again");
    resolver.actor(STUB_OWNER).await.unwrap();
    assert_eq!(fake.count(STUB_OWNER), 2);
}

#[tokio::test]
async fn actor_lookups_keep_only_what_is_used() {
    let (resolver, fake) = resolver(unlimited());
    let id = serve_fixture(&fake, "mastodon-service-actor.json");
    let actor = resolver.actor(&id).await.unwrap();
    assert_eq!(actor.kind, "Service");
    assert_eq!(actor.discoverable, Some(true));
    assert_eq!(actor.indexable, Some(false));
    assert_eq!(
        (actor.raw.clone(), actor.summary.clone()),
        (Value::Null, None)
    );
    assert!(actor.public_keys.is_empty());
    resolver.actor(&id).await.unwrap();
    assert_eq!(fake.total(), 1);
    // An actor whose retained fields are absurdly long is not kept.
    let long = format!("https://long.example/{}", "a".repeat(20_000));
    fake.serve(
        &long,
        json!({ "id": long, "type": "Person", "inbox": long }),
    );
    let refused = resolver.actor(&long).await.expect_err("too long");
    assert_eq!(refused.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_of_a_new_key_share_one_fetch() {
    let signing = PrivateKey::generate().unwrap();
    let message = b"(request-target): post /inbox";
    let signature = signing.sign_rsa_sha256(message).unwrap();
    let (resolver, fake) = resolver(unlimited());
    *fake.delay.lock().unwrap() = Duration::from_millis(100);
    let id = "https://new.example/users/a";
    let key_id = format!("{id}#main-key");
    fake.serve(
        id,
        actor_doc(id, &key_id, signing.public_key_pem(), json!({})),
    );
    let verifications: Vec<_> = (0..16)
        .map(|_| {
            let (resolver, key_id, signature) =
                (resolver.clone(), key_id.clone(), signature.clone());
            tokio::spawn(async move {
                resolver
                    .signer(&key_id, "new.example", |key| {
                        key.verify(SigAlgorithm::RsaPkcs1Sha256, message, &signature)
                    })
                    .await
                    .map(|resolved| resolved.owner.id.clone())
            })
        })
        .collect();
    for verified in verifications {
        assert_eq!(verified.await.unwrap().unwrap(), id);
    }
    assert_eq!(fake.count(id), 1, "one fetch for every waiting request");

    // A failure is shared the same way, and each waiter gets the sender's error (401).
    let missing = "https://new.example/users/gone";
    let failures: Vec<_> = (0..8)
        .map(|_| {
            let resolver = resolver.clone();
            let key_id = format!("{missing}#main-key");
            tokio::spawn(async move { resolver.signer(&key_id, "new.example", any_key).await })
        })
        .collect();
    for failed in failures {
        let error = failed.await.unwrap().unwrap_err();
        assert_eq!(error.status().as_u16(), 401, "{error}");
    }
    assert_eq!(fake.count(missing), 1);

    // Actors looked up by id (a Follow's sender signed by another key) too.
    let actor = "https://new.example/users/b";
    fake.serve(
        actor,
        actor_doc(
            actor,
            &format!("{actor}#main-key"),
            signing.public_key_pem(),
            json!({}),
        ),
    );
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let resolver = resolver.clone();
            tokio::spawn(async move { resolver.actor(actor).await.map(|a| a.id.clone()) })
        })
        .collect();
    for found in lookups {
        assert_eq!(found.await.unwrap().unwrap(), actor);
    }
    assert_eq!(fake.count(actor), 1);
}
