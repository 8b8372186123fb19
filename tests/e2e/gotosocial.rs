//! End-to-end: a GoToSocial-style instance (hs2019, keyId `…/main-key` serving a stub of the actor, no
//! sharedInbox, instance actor at `/users/HOST`) through its whole life on the relay; and what a key
//! fetch may cost: forged requests, keys on other hosts, and key documents that cannot be used.

use std::time::SystemTime;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Posts a public marker from `from` and waits until `to` has it (everything queued before it is then
/// delivered, so absence can be asserted without sleeping).
async fn flush(from: &Instance, to: &Instance) {
    let create = from.public_create("marker");
    let (status, body) = from.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "marker refused: {body}");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    eventually("the marker", || to.got_object(&note)).await;
}

fn announces_of(instance: &Instance, object: &str) -> usize {
    instance
        .received_of("Announce")
        .iter()
        .filter(|a| a["object"] == object)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotosocial_subscribes_posts_both_ways_updates_deletes_and_undoes() {
    let relay = Relay::start().await;
    let gts = Instance::start(Flavor::GoToSocial, &relay).await;
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;

    // Subscribe: the Follow is signed hs2019 by `/users/HOST/main-key`, which serves the stub.
    let follow = gts.subscribe(&relay).await;
    mastodon.subscribe(&relay).await;
    let instance_key = Instance::path_of(&gts.instance_key_id());
    let instance_actor = Instance::path_of(&gts.instance_actor());
    assert_eq!(gts.fetches_of(&instance_key), 1, "the stub, once");
    assert_eq!(gts.fetches_of(&instance_actor), 1, "its owner, once");
    let accept = gts
        .received()
        .into_iter()
        .find(|r| r.activity["type"] == "Accept")
        .expect("accept");
    assert_eq!(
        accept.path,
        format!("{instance_actor}/inbox"),
        "no sharedInbox: the Accept goes to the instance actor's inbox"
    );

    // GoToSocial → Mastodon.
    let create = gts.public_create("hello from gts");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = gts.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the gts post at mastodon", || mastodon.got_object(&note)).await;
    let user_key = Instance::path_of(&gts.user_key_id());
    assert_eq!(gts.fetches_of(&user_key), 1);

    // Mastodon → GoToSocial, delivered to its instance actor's inbox.
    let from_mastodon = mastodon.public_create("hello gts");
    let masto_note = from_mastodon["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = mastodon.post_as_user(&from_mastodon).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the mastodon post at gts", || gts.got_object(&masto_note)).await;
    assert!(
        gts.received()
            .iter()
            .all(|r| r.path == format!("{instance_actor}/inbox"))
    );

    // Update and Delete of the note.
    let mut edited = create["object"].clone();
    edited["content"] = json!("<p>edited</p>");
    let update = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{note}/update/1"),
        "type": "Update",
        "actor": gts.user(),
        "to": [PUBLIC],
        "object": edited
    });
    let (status, body) = gts.post_as_user(&update).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the update at mastodon", || {
        announces_of(&mastodon, &note) == 2
    })
    .await;
    let delete = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{note}/delete"),
        "type": "Delete",
        "actor": gts.user(),
        "to": [PUBLIC],
        "object": note
    });
    let (status, body) = gts.post_as_user(&delete).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delete_id = delete["id"].as_str().unwrap().to_string();
    eventually("the delete at mastodon", || {
        announces_of(&mastodon, &delete_id) == 1
    })
    .await;

    // An Update of the account makes the relay forget the actor and its key: fetched anew next time.
    let account_update = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}#updates/1", gts.user()),
        "type": "Update",
        "actor": gts.user(),
        "to": [PUBLIC],
        "object": { "id": gts.user(), "type": "Person", "preferredUsername": "alice" }
    });
    let (status, body) = gts.post_as_user(&account_update).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(gts.fetches_of(&user_key), 1);
    flush(&gts, &mastodon).await;
    assert_eq!(
        gts.fetches_of(&user_key),
        2,
        "the key is fetched again after the account Update"
    );

    // Undo: unsubscribed, nothing more is delivered, what it sends is refused.
    let undo = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/undo", follow["id"].as_str().unwrap()),
        "type": "Undo",
        "actor": gts.instance_actor(),
        "object": follow
    });
    let (status, body) = gts.post_as_instance(&undo).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("unsubscribed"), "{body}");
    let after = mastodon.public_create("after the undo");
    let after_note = after["object"]["id"].as_str().unwrap().to_string();
    mastodon.post_as_user(&after).await;
    let witness = Instance::start(Flavor::Mastodon, &relay).await;
    witness.subscribe(&relay).await;
    flush(&mastodon, &witness).await;
    assert_eq!(gts.count_mentions(&after_note), 0);
    let (status, _) = gts.post_as_user(&gts.public_create("still here?")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(gts.refused().is_empty(), "{:?}", gts.refused());
    assert!(mastodon.refused().is_empty(), "{:?}", mastodon.refused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_cost_at_most_one_fetch() {
    let relay = Relay::start().await;
    let gts = Instance::start(Flavor::GoToSocial, &relay).await;
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;
    let stranger = Instance::start(Flavor::Mastodon, &relay).await;
    gts.subscribe(&relay).await;
    mastodon.subscribe(&relay).await;
    let (status, body) = gts.post_as_user(&gts.public_create("genuine")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let user_key = Instance::path_of(&gts.user_key_id());
    let user_actor = Instance::path_of(&gts.user());
    assert_eq!(gts.fetches_of(&user_key), 1);

    // 50 forged posts naming alice's key (which verified before): at most one refetch.
    let forger = Keys::generate();
    for i in 0..50 {
        let (status, body) = gts
            .post_as(
                &forger,
                &gts.user_key_id(),
                &gts.public_create(&format!("forged {i}")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Fragment variants of her keyId: the same cached document, no fetch.
    for i in 0..20 {
        let variant = format!("{}#v{i}", gts.user_key_id());
        let (status, body) = gts
            .post_as(&forger, &variant, &gts.public_create("variant"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert!(
        gts.fetches_of(&user_key) <= 2,
        "{}",
        gts.fetches_of(&user_key)
    );
    assert!(gts.fetches_of(&user_actor) <= 2);

    // A keyId on another host than the activity's actor: refused before any fetch.
    let (status, body) = gts
        .post_as(
            &mastodon.user_keys,
            &mastodon.user_key_id(),
            &gts.public_create("someone else's key"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(mastodon.fetches_of(&Instance::path_of(&mastodon.user())), 0);

    // A stranger's Undo, Accept or Reject changes nothing and fetches nothing; its posts are refused
    // unfetched too.
    for kind in ["Undo", "Accept", "Reject"] {
        let activity = json!({
            "id": format!("{}/activities/{kind}", stranger.base),
            "type": kind,
            "actor": stranger.instance_actor(),
            "object": format!("{}/activities/follow-relay/1", stranger.base)
        });
        let (status, body) = stranger
            .post_as(&forger, &stranger.instance_key_id(), &activity)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{kind}: {body}");
        assert!(body.contains("not subscribed"), "{body}");
    }
    let (status, _) = stranger.post_as_user(&stranger.public_create("hi")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        stranger.fetches_of(&Instance::path_of(&stranger.instance_actor()))
            + stranger.fetches_of(&Instance::path_of(&stranger.user())),
        0
    );
}

/// A Follow of Public from `actor`, signed with `key_id` the way `flavor` signs, posted to the relay.
async fn follow_signed_with(
    relay: &Relay,
    flavor: Flavor,
    actor: &str,
    key_id: &str,
) -> (StatusCode, String) {
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{actor}/follows/1"),
        "type": "Follow",
        "actor": actor,
        "object": PUBLIC
    });
    let body = serde_json::to_vec(&follow).unwrap();
    let headers = signed_post_headers(
        flavor,
        &Keys::generate(),
        key_id,
        &relay.inbox(),
        &body,
        SystemTime::now(),
    );
    post_raw(&relay.base, headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_key_documents_are_the_senders_problem() {
    let relay = Relay::start_with(&[
        ("PLAZA_MAX_FETCH_BYTES", "65536"),
        ("PLAZA_FETCH_TIMEOUT_SECS", "1"),
    ])
    .await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let actor = m.instance_actor();

    // A keyId that is not a URL: the request is malformed.
    let (status, body) = follow_signed_with(&relay, Flavor::Mastodon, &actor, "main-key").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("keyId"), "{body}");

    // HTML where the key should be.
    m.host_raw(
        "/html-key",
        "text/html",
        b"<!doctype html><html><body>Welcome!</body></html>".to_vec(),
    );
    let key_id = format!("{}/html-key#main-key", m.base);
    let (status, body) = follow_signed_with(&relay, Flavor::Mastodon, &actor, &key_id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("not JSON"), "{body}");

    // A key document larger than the fetch limit.
    let huge = serde_json::to_vec(&json!({ "id": actor, "padding": "x".repeat(100_000) })).unwrap();
    m.host_raw("/huge-key", "application/activity+json", huge);
    let key_id = format!("{}/huge-key#main-key", m.base);
    let (status, body) = follow_signed_with(&relay, Flavor::Mastodon, &actor, &key_id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("larger than"), "{body}");

    // A key host that refuses connections.
    m.down().await;
    let (status, body) =
        follow_signed_with(&relay, Flavor::Mastodon, &actor, &m.instance_key_id()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A key host that accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_base = format!("http://{}", silent.local_addr().unwrap());
    let (status, body) = follow_signed_with(
        &relay,
        Flavor::GoToSocial,
        &format!("{silent_base}/users/quiet"),
        &format!("{silent_base}/users/quiet/main-key"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("signing key"),
        "{body}"
    );
    drop(silent);
}
