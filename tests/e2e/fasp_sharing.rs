//! FASP `data_sharing` end to end: two simulated FASP-enabled Mastodon servers (see [`crate::fasp`])
//! register the real relay and activate `data_sharing`; Plaza subscribes and asks for backfill with
//! signed requests (checked there with the key Plaza registered, keyid = faspId), the servers announce
//! URIs of posts and accounts living on origin instances the relay has no subscription from, and the
//! consent matrix decides what becomes searchable: public + indexable only, never a followers-only
//! post, a non-indexable author, a blocked domain or a non-discoverable account. Updates re-fetch,
//! deletes remove, the same URI from two servers is fetched once, backfills are continued while more
//! is available, deactivation cancels the subscriptions; a full queue answers 429 and what was queued
//! survives a restart.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fasp::{Server, verified};
use crate::support::*;

const TOKEN: &str = "fasp-sharing-token";

/// Activates (`POST`) or deactivates (`DELETE`) `data_sharing` for `server`: 204, signed.
async fn activation(
    relay: &Relay,
    server: &Server,
    key: &ed25519_dalek::VerifyingKey,
    method: Method,
) {
    let path = "/capabilities/data_sharing/0/activation";
    let (status, _, _) = verified(server.signed(relay, method, path).await, key).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// Registers Plaza with `server` and activates `data_sharing` there; Plaza's key for it.
async fn connect(relay: &Relay, server: &Server) -> ed25519_dalek::VerifyingKey {
    let key = server.register_with(relay, TOKEN).await;
    activation(relay, server, &key, Method::POST).await;
    eventually("three subscriptions and two backfill requests", || {
        let s = server.sharing.lock().unwrap();
        s.subscriptions.len() == 3 && s.backfills.len() == 2
    })
    .await;
    key
}

/// Announces with a signed POST; the status of Plaza's signed answer.
async fn announce(
    relay: &Relay,
    server: &Server,
    key: &ed25519_dalek::VerifyingKey,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap) {
    let (status, headers, _) = verified(
        server
            .signed_with(
                relay,
                Method::POST,
                "/data_sharing/v0/announcements",
                body.to_string().into_bytes(),
            )
            .await,
        key,
    )
    .await;
    (status, headers)
}

fn event(subscription: &str, category: &str, event: &str, uris: &[&str]) -> Value {
    json!({
        "source": { "subscription": { "id": subscription } },
        "category": category,
        "eventType": event,
        "objectUris": uris,
    })
}

/// Hosts a Note by alice of `instance` addressed to `to`; its id.
fn note(instance: &Instance, text: &str, to: Value) -> String {
    let id = format!("{}/statuses/{}", instance.user(), instance.next());
    instance.host_object(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "Note",
        "attributedTo": instance.user(),
        "content": format!("<p>{text}</p>"),
        "published": "2026-12-01T10:00:00Z",
        "to": to,
        "cc": [],
    }));
    id
}

async fn search(relay: &Relay, query: &str) -> String {
    get_text(format!("{}/api/v2/search?q={query}", relay.base)).await
}

async fn until_searchable(relay: &Relay, query: &str, id: &str) {
    let started = std::time::Instant::now();
    loop {
        if search(relay, query).await.contains(id) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{id} never found by {query}; log: {}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_gone(relay: &Relay, query: &str, id: &str) {
    let started = std::time::Instant::now();
    while search(relay, query).await.contains(id) {
        assert!(started.elapsed() < PATIENCE, "{id} still found by {query}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the share worker has handled at least `n` URIs (any outcome) and its queue is empty.
async fn until_handled(relay: &Relay, n: u64) {
    let started = std::time::Instant::now();
    loop {
        let metrics = relay.metrics().await;
        let handled: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("plaza_fasp_shared_uris_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if handled >= n && metrics.contains("plaza_fasp_share_queue_depth 0") {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "only {handled} of {n} shared URIs handled; metrics: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Blocks `instance`'s domain through the admin API (`purge`: its documents leave the index).
async fn block(relay: &Relay, instance: &Instance, purge: bool) {
    let host = url::Url::parse(&instance.base)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/blocks", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({"domain": host, "reason": "test", "purge": purge}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// An origin instance in secure mode: it serves its objects only to signed fetches, so what gets
/// indexed proves the relay fetched it signed.
async fn origin(relay: &Relay, fields: Value) -> Arc<Instance> {
    let instance = Instance::start(Flavor::Mastodon, relay).await;
    instance.set_user_fields(fields);
    instance.require_signed_fetches();
    instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_content_is_fetched_from_its_origin_and_indexed_only_with_consent() {
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_FASP_CONTINUATION_INTERVAL_MS", "100"),
        ("PLAZA_INDEX_COMMIT_MS", "100"),
    ])
    .await;
    // Origins the relay has no subscription from: shared content is indexed wherever it lives.
    let open = origin(
        &relay,
        json!({"name": "Open Bakery", "indexable": true, "discoverable": true}),
    )
    .await;
    let shy = origin(
        &relay,
        json!({"name": "Shy Bakery", "indexable": false, "discoverable": false}),
    )
    .await;
    let blocked = origin(
        &relay,
        json!({"name": "Blocked Bakery", "indexable": true, "discoverable": true}),
    )
    .await;
    let listed = origin(
        &relay,
        json!({"name": "Quince Orchard", "summary": "<p>quince growers</p>", "indexable": true, "discoverable": true}),
    )
    .await;
    block(&relay, &blocked, false).await;

    let a = Server::start().await;
    let b = Server::start().await;
    let key_a = connect(&relay, &a).await;
    let key_b = connect(&relay, &b).await;
    {
        let s = a.sharing.lock().unwrap();
        assert!(s.refused.is_empty(), "{:?}", s.refused);
        let mut kinds: Vec<String> = s
            .subscriptions
            .iter()
            .map(|(_, b)| {
                format!(
                    "{}/{}",
                    b["category"].as_str().unwrap(),
                    b["subscriptionType"].as_str().unwrap()
                )
            })
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            ["account/lifecycle", "content/lifecycle", "content/trends"]
        );
        let mut backfills: Vec<&str> = s
            .backfills
            .iter()
            .map(|(_, b)| {
                assert!(b["maxCount"].as_u64().is_some_and(|n| n > 0), "{b}");
                b["category"].as_str().unwrap()
            })
            .collect();
        backfills.sort();
        assert_eq!(backfills, ["account", "content"]);
    }
    let (sub_a, sub_b) = {
        let (sa, sb) = (a.sharing.lock().unwrap(), b.sharing.lock().unwrap());
        (
            sa.subscription("content", "lifecycle"),
            sb.subscription("content", "lifecycle"),
        )
    };

    // A curated topic follows the word: shared content reaches topic followers under the same rules.
    let curated = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/topics", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "slug": "sourdough", "name": "Sourdough", "query": "sourdough" }))
        .send()
        .await
        .expect("curated topic");
    assert_eq!(curated.status(), StatusCode::CREATED);
    let topic_follower = Instance::start(Flavor::Pleroma, &relay).await;
    let topic = format!("{}/topics/search/sourdough", relay.base);
    follow_topic(
        &topic_follower,
        &relay,
        "/topics/search/sourdough",
        &topic,
        false,
    )
    .await;

    // The consent matrix, announced by server A; the public post also by server B.
    let public = note(&open, "sourdough loaf shared", json!([PUBLIC]));
    let followers = note(
        &open,
        "sourdough for followers",
        json!([format!("{}/followers", open.user())]),
    );
    let not_indexable = note(&shy, "sourdough from a shy baker", json!([PUBLIC]));
    let from_blocked = note(&blocked, "sourdough from a blocked host", json!([PUBLIC]));
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        event(
            &sub_a,
            "content",
            "new",
            &[&public, &followers, &not_indexable, &from_blocked],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = announce(
        &relay,
        &b,
        &key_b,
        event(&sub_b, "content", "new", &[&public]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_searchable(&relay, "sourdough", &public).await;
    until_handled(&relay, 5).await;
    let found = search(&relay, "sourdough").await;
    for refused in [&followers, &not_indexable, &from_blocked] {
        assert!(
            !found.contains(refused.as_str()),
            "{refused} indexed: {found}"
        );
    }
    assert_eq!(
        open.fetches_of(&Instance::path_of(&public)),
        1,
        "announced by two servers, fetched once"
    );
    eventually("the shared post carried by the topic", || {
        announces_of(&topic_follower, &public).len() == 1
    })
    .await;
    for refused in [&followers, &not_indexable, &from_blocked] {
        assert!(!topic_follower.got_object(refused), "{refused} carried");
    }
    assert_eq!(
        blocked.fetches_of(&Instance::path_of(&from_blocked)),
        0,
        "a blocked domain is never fetched"
    );

    // Accounts: a discoverable one is listed, a non-discoverable one never.
    let accounts = a
        .sharing
        .lock()
        .unwrap()
        .subscription("account", "lifecycle");
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        event(&accounts, "account", "new", &[&listed.user(), &shy.user()]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_handled(&relay, 7).await;
    let started = std::time::Instant::now();
    loop {
        let dir = get_text(format!("{}/api/plaza/v1/directory?q=quince", relay.base)).await;
        if dir.contains(&listed.user()) {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "directory: {dir}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = get_text(format!("{}/api/plaza/v1/directory?q=bakery", relay.base)).await;
    assert!(!dir.contains(&shy.user()), "non-discoverable listed: {dir}");

    // An update re-fetches (inside the dedup window: a change is never deduplicated).
    open.host_object(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": public, "type": "Note", "attributedTo": open.user(),
        "content": "<p>rye loaf shared</p>", "published": "2026-12-01T10:00:00Z",
        "to": [PUBLIC], "cc": [],
    }));
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        event(&sub_a, "content", "update", &[&public]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_searchable(&relay, "rye", &public).await;
    assert_eq!(open.fetches_of(&Instance::path_of(&public)), 2);
    // The origin serves objects to signed fetches only: the relay's fetches were signed.
    let unsigned = reqwest::get(&public).await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert!(
        open.refused().iter().all(|r| r.contains("unsigned")),
        "only the unsigned probe was refused: {:?}",
        open.refused()
    );

    // A delete re-fetches and removes on 410.
    open.answer_status(&Instance::path_of(&public), 410);
    let (status, _) = announce(
        &relay,
        &b,
        &key_b,
        event(&sub_b, "content", "delete", &[&public]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_gone(&relay, "rye", &public).await;

    // A backfill delivery with more available is continued at Plaza's pace, until it says no more.
    let backfill = a.sharing.lock().unwrap().backfill("content");
    let old = note(&open, "baguette from the archive", json!([PUBLIC]));
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        json!({"source": {"backfillRequest": {"id": backfill.parse::<u64>().unwrap()}},
            "category": "content", "objectUris": [old], "moreObjectsAvailable": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("a continuation asked", || {
        a.sharing.lock().unwrap().continuations == [backfill.clone()]
    })
    .await;
    let older = note(&open, "baguette from the older archive", json!([PUBLIC]));
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        json!({"source": {"backfillRequest": {"id": backfill}},
            "category": "content", "objectUris": [older], "moreObjectsAvailable": false}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_searchable(&relay, "baguette", &old).await;
    until_searchable(&relay, "baguette", &older).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        a.sharing.lock().unwrap().continuations.len(),
        1,
        "no continuation once the server said no more"
    );

    // Malformed, or from a source this server does not hold: 422, signed.
    for body in [
        json!({"category": "content"}),
        event(&sub_a, "content", "created", &[&old]),
        event(&sub_a, "content", "new", &["javascript:alert(1)"]),
        event("no-such-subscription", "content", "new", &[&old]),
    ] {
        let (status, _) = announce(&relay, &a, &key_a, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // Server B's subscription id is unknown to server A's registration (unless equal by chance).
    if sub_b != sub_a {
        let (status, _) =
            announce(&relay, &a, &key_a, event(&sub_b, "content", "new", &[&old])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("plaza_fasp_announcements_total{outcome=\"accepted\"} 7"),
        "{metrics}"
    );
    assert!(metrics.contains("plaza_fasp_share_latency_seconds_count"));

    // A block with purge reaches an instance known only through shared content.
    let baguettes = Instance::path_of(&old);
    block(&relay, &open, true).await;
    until_gone(&relay, "baguette", &old).await;
    until_gone(&relay, "baguette", &older).await;
    // …and what it shares afterwards is never fetched.
    let (status, _) = announce(
        &relay,
        &a,
        &key_a,
        event(&sub_a, "content", "update", &[&old]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_handled(&relay, 12).await;
    assert_eq!(
        open.fetches_of(&baguettes),
        1,
        "a blocked domain is not fetched"
    );

    // Deactivation cancels B's subscriptions at B; its announcements are refused from then on.
    activation(&relay, &b, &key_b, Method::DELETE).await;
    eventually("B's three subscriptions cancelled", || {
        b.sharing.lock().unwrap().unsubscribed.len() == 3
    })
    .await;
    let (status, _) = announce(&relay, &b, &key_b, event(&sub_b, "content", "new", &[&old])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(b.sharing.lock().unwrap().refused.is_empty());

    // Removing A's registration cancels its subscriptions at A too.
    let server_id = a.registration()["serverId"].as_str().unwrap().to_string();
    let removed = relay
        .admin(
            Method::DELETE,
            &format!("/fasp/registrations/{server_id}"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    eventually("A's three subscriptions cancelled", || {
        a.sharing.lock().unwrap().unsubscribed.len() == 3
    })
    .await;
    assert!(a.sharing.lock().unwrap().refused.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_queued_uris_survive_a_restart() {
    // Without an index nothing drains the queue: what is queued waits for the next start.
    let mut relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_INDEX_ENABLED", "false"),
        ("PLAZA_FASP_SHARE_QUEUE_PER_SERVER", "2"),
        ("PLAZA_FASP_SHARE_RETRY_MS", "300"),
        ("PLAZA_INDEX_COMMIT_MS", "100"),
    ])
    .await;
    let open = origin(&relay, json!({"indexable": true, "discoverable": true})).await;
    let first = note(&open, "pumpernickel one", json!([PUBLIC]));
    let second = note(&open, "pumpernickel two", json!([PUBLIC]));
    let third = note(&open, "pumpernickel three", json!([PUBLIC]));
    let server = Server::start().await;
    let key = connect(&relay, &server).await;
    let sub = server
        .sharing
        .lock()
        .unwrap()
        .subscription("content", "lifecycle");
    let (status, _) = announce(
        &relay,
        &server,
        &key,
        event(&sub, "content", "new", &[&first, &second]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, headers) = announce(
        &relay,
        &server,
        &key,
        event(&sub, "content", "new", &[&third]),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert!(
        relay
            .metrics()
            .await
            .contains("plaza_fasp_announcements_total{outcome=\"queue_full\"} 1")
    );

    relay.set_env("PLAZA_INDEX_ENABLED", "true");
    relay.kill_and_restart().await;
    until_searchable(&relay, "pumpernickel", &first).await;
    until_searchable(&relay, "pumpernickel", &second).await;
    assert!(
        !search(&relay, "pumpernickel").await.contains(&third),
        "refused with 429"
    );
    // Room again: the server's retry is accepted. Its origin fails at first: the fetch is tried again.
    open.answer_status(&Instance::path_of(&third), 503);
    let (status, _) = announce(
        &relay,
        &server,
        &key,
        event(&sub, "content", "new", &[&third]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    relay
        .until_metric_at_least("plaza_fasp_shared_uris_total{outcome=\"failed\"}", 1)
        .await;
    open.clear_status(&Instance::path_of(&third));
    until_searchable(&relay, "pumpernickel", &third).await;
    assert_eq!(open.fetches_of(&Instance::path_of(&third)), 2);
}
