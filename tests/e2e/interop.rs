//! End-to-end: interop with what real servers expect of a relay (issue 7): unlisted posts stay home,
//! RFC 9421 outbound with a remembered double knock, every id the relay publishes resolves, and a
//! subscriber cannot point the relay's deliveries at another host.

use crate::relay::flush;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get_activity_json(url: &str) -> (StatusCode, String, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_posts_from_a_mastodon_instance_never_reach_others() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::Mastodon, &relay).await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&a, &b, &p] {
        i.subscribe(&relay).await;
    }
    // Mastodon "unlisted" / Misskey "home": followers in `to`, Public only in `cc`.
    let followers = json!([format!("{}/followers", a.user())]);
    let unlisted = a.create_with("quiet", followers.clone(), json!([PUBLIC]));
    let quiet = unlisted["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = a.post_as_user(&unlisted).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("not public"), "{body}");
    // An unlisted boost, and an Update that makes nothing public either.
    let boost = json!({
        "id": format!("{}/statuses/boost-1/activity", a.user()),
        "type": "Announce", "actor": a.user(),
        "to": followers, "cc": [PUBLIC], "object": format!("{}/objects/9", b.base)
    });
    let (status, body) = a.post_as_user(&boost).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut edited = unlisted["object"].clone();
    edited["content"] = json!("<p>still quiet</p>");
    let update = json!({"id": format!("{quiet}#updates/1"), "type": "Update", "actor": a.user(),
        "to": followers, "cc": [PUBLIC], "object": edited});
    let (status, body) = a.post_as_user(&update).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // A LitePub Announce of an unlisted object, fetched and checked.
    let object = format!("{}/objects/unlisted-1", p.base);
    p.host_object(
        json!({"id": object, "type": "Note", "attributedTo": p.user(), "content": "quiet",
        "to": [format!("{}/followers", p.user())], "cc": [PUBLIC]}),
    );
    let litepub = json!({"id": format!("{}/activities/announce-unlisted", p.base), "type": "Announce",
        "actor": p.instance_actor(), "object": object,
        "to": [format!("{}/followers", p.instance_actor()), relay.actor_id()]});
    let (status, body) = p.post_as_instance(&litepub).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("object is not public"), "{body}");

    flush(&a, &[&b, &p]).await;
    flush(&p, &[&a, &b]).await;
    for receiver in [&a, &b, &p] {
        assert_eq!(receiver.count_mentions(&quiet), 0, "unlisted post leaked");
        assert_eq!(
            receiver.count_mentions(&object),
            0,
            "unlisted object leaked"
        );
        assert_eq!(
            receiver.count_mentions(boost["object"].as_str().unwrap()),
            0,
            "unlisted boost leaked"
        );
    }
    let text = relay.metrics().await;
    assert!(
        text.contains("plaza_inbox_ignored_total{reason=\"not public\"} 3"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rfc9421_only_subscriber_gets_posts_and_no_second_knock_after_a_restart() {
    let mut relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let strict = Instance::start(Flavor::Mastodon, &relay).await;
    strict.accept_only_rfc9421();
    a.subscribe(&relay).await;
    // The Accept itself gets through: cavage, 401, then RFC 9421.
    strict.subscribe(&relay).await;
    assert_eq!(&strict.attempts()[..2], ["cavage", "rfc9421"]);
    let note = flush(&a, &[&strict]).await;
    assert!(strict.got_object(&note));
    assert!(strict.refused().is_empty(), "{:?}", strict.refused());
    let knocks = strict.attempts().iter().filter(|s| **s == "cavage").count();
    assert_eq!(knocks, 1, "the scheme is remembered after one knock");
    // The draft-cavage instance keeps getting draft-cavage.
    assert!(a.attempts().iter().all(|s| *s == "cavage"));

    relay.kill_and_restart().await;
    let after = strict.attempts().len();
    flush(&a, &[&strict]).await;
    let since: Vec<&str> = strict.attempts()[after..].to_vec();
    assert!(!since.is_empty());
    assert!(
        since.iter().all(|s| *s == "rfc9421"),
        "after a restart the relay signs RFC 9421 first: {since:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_an_instance_signing_rfc9421_gets_rfc9421_without_a_knock() {
    let relay = Relay::start_with(&[("PLAZA_OUTBOUND_SIGNATURE", "auto")]).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let modern = Instance::start(Flavor::Mastodon, &relay).await;
    modern.accept_only_rfc9421();
    a.subscribe(&relay).await;
    // It subscribes with an RFC 9421 signed Follow: the relay verifies it and answers in kind.
    let follow = modern.follow_activity(&relay);
    let (status, body) = modern.post_rfc9421_as_instance(&follow).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the Accept", || !modern.received_of("Accept").is_empty()).await;
    // Its RFC 9421 signed post reaches the draft-cavage instance.
    let create = modern.public_create("signed with RFC 9421");
    let (status, body) = modern.post_rfc9421_as_instance(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let note = create["object"]["id"].as_str().unwrap();
    eventually("the RFC 9421 signed post", || a.got_object(note)).await;
    flush(&a, &[&modern]).await;
    assert!(
        modern.attempts().iter().all(|s| *s == "rfc9421"),
        "{:?}",
        modern.attempts()
    );
    assert!(a.attempts().iter().all(|s| *s == "cavage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9421_first_knock_is_configurable() {
    let relay = Relay::start_with(&[("PLAZA_OUTBOUND_SIGNATURE", "rfc9421")]).await;
    let a = Instance::start(Flavor::Pleroma, &relay).await;
    let b = Instance::start(Flavor::Mastodon, &relay).await;
    a.subscribe(&relay).await;
    b.subscribe(&relay).await;
    flush(&a, &[&b]).await;
    for i in [&a, &b] {
        assert!(i.refused().is_empty(), "{:?}", i.refused());
        assert!(i.attempts().iter().all(|s| *s == "rfc9421"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_id_the_relay_sends_resolves_and_its_collections_answer() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    a.subscribe(&relay).await;
    p.subscribe(&relay).await;
    flush(&a, &[&p]).await;
    flush(&p, &[&a]).await;
    // A person following the relay actor gets a Reject.
    let person_follow = json!({"id": format!("{}/follows/1", a.user()), "type": "Follow",
        "actor": a.user(), "object": relay.actor_id()});
    let (status, body) = a.post_as_user(&person_follow).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the Reject", || !a.received_of("Reject").is_empty()).await;

    let mut sent: Vec<Value> = Vec::new();
    for kind in ["Accept", "Announce", "Reject"] {
        let got = a.received_of(kind);
        assert!(!got.is_empty(), "no {kind} at {}", a.base);
        sent.extend(got);
    }
    for kind in ["Accept", "Follow", "Announce"] {
        let got = p.received_of(kind);
        assert!(!got.is_empty(), "no {kind} at {}", p.base);
        sent.extend(got);
    }
    for activity in &sent {
        let id = activity["id"].as_str().expect("id");
        assert!(
            id.starts_with(&format!("{}/activities/", relay.base)),
            "{id}"
        );
        let (status, content_type, fetched) = get_activity_json(id).await;
        assert_eq!(status, StatusCode::OK, "GET {id}");
        assert!(
            content_type.starts_with("application/activity+json"),
            "{content_type}"
        );
        assert_eq!(&fetched, activity, "GET {id} returns what was sent");
    }
    let (status, _, _) = get_activity_json(&format!(
        "{}/activities/00000000-0000-0000-0000-000000000000",
        relay.base
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, _, actor) = get_activity_json(&relay.actor_id()).await;
    let (status, _, followers) = get_activity_json(actor["followers"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(followers["type"], "OrderedCollection");
    assert_eq!(followers["totalItems"], 2);
    let members = followers["orderedItems"].as_array().unwrap();
    assert!(
        members.contains(&json!(a.instance_actor()))
            && members.contains(&json!(p.instance_actor()))
    );
    let (_, _, following) = get_activity_json(actor["following"].as_str().unwrap()).await;
    assert_eq!(following["type"], "OrderedCollection");
    assert_eq!(following["orderedItems"], json!([p.instance_actor()]));

    let (status, _, outbox) = get_activity_json(actor["outbox"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outbox["type"], "OrderedCollection");
    let total = outbox["totalItems"].as_u64().unwrap();
    assert!(total as usize >= 5, "{outbox}");
    // Walk the pages: every item once, newest first, and the Reject among them.
    let mut next = outbox["first"].as_str().map(str::to_string);
    let mut items: Vec<Value> = Vec::new();
    while let Some(url) = next {
        let (status, _, page) = get_activity_json(&url).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["type"], "OrderedCollectionPage");
        assert_eq!(page["partOf"], actor["outbox"]);
        items.extend(page["orderedItems"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_string);
    }
    assert_eq!(items.len() as u64, total);
    assert_eq!(items[0]["type"], "Reject");
    for activity in &sent {
        assert!(
            items.iter().any(|i| i["id"] == activity["id"]),
            "{} not in the outbox",
            activity["id"]
        );
    }
}

/// GETs each activity's id from the relay: 200 with the very activity that was sent.
async fn assert_each_resolves(activities: &[Value]) {
    for activity in activities {
        let id = activity["id"].as_str().expect("id");
        let (status, _, fetched) = get_activity_json(id).await;
        assert_eq!(status, StatusCode::OK, "GET {id} of {activity}");
        assert_eq!(&fetched, activity, "GET {id} returns what was sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_and_the_answers_to_a_refollow_resolve_at_their_ids() {
    const TOKEN: &str = "published-token-31c8";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "approval"),
    ])
    .await;
    let admin = |method: reqwest::Method, path: String| {
        let relay = &relay;
        async move {
            let status = relay.admin(method, &path, Some(TOKEN)).await.status();
            assert_eq!(status, StatusCode::OK, "{path}");
        }
    };
    // Held, then approved; then followed again: a fresh Accept and Follow back, sent outside the log.
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    let first = p.follow_activity(&relay);
    assert_eq!(p.post_as_instance(&first).await.0, StatusCode::ACCEPTED);
    admin(
        reqwest::Method::POST,
        format!("/pending/{}/approve", p.authority()),
    )
    .await;
    eventually("the first follow back", || {
        !p.received_of("Follow").is_empty()
    })
    .await;
    p.subscribe(&relay).await;
    eventually("the fresh follow back", || {
        p.received_of("Follow").len() == 2
    })
    .await;
    let accepts = p.received_of("Accept");
    assert_eq!(accepts.len(), 2);
    assert_each_resolves(&accepts).await;
    assert_each_resolves(&p.received_of("Follow")).await;

    // Held, then rejected by an admin.
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    assert_eq!(
        m.post_as_instance(&m.follow_activity(&relay)).await.0,
        StatusCode::ACCEPTED
    );
    admin(
        reqwest::Method::POST,
        format!("/pending/{}/reject", m.authority()),
    )
    .await;
    eventually("the admin's Reject", || !m.received_of("Reject").is_empty()).await;
    assert_each_resolves(&m.received_of("Reject")).await;

    // Refused by the policy.
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/admin/policy", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({"policy": "allowlist", "allowlist": ["coop.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let g = Instance::start(Flavor::GoToSocial, &relay).await;
    assert_eq!(
        g.post_as_instance(&g.follow_activity(&relay)).await.0,
        StatusCode::ACCEPTED
    );
    eventually("the policy's Reject", || {
        !g.received_of("Reject").is_empty()
    })
    .await;
    assert_each_resolves(&g.received_of("Reject")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_naming_an_inbox_on_another_host_is_refused() {
    let relay = Relay::start().await;
    let victim = Instance::start(Flavor::Mastodon, &relay).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    victim.subscribe(&relay).await;
    a.name_shared_inbox(&format!("{}/inbox", victim.base));
    let (status, body) = a.post_as_instance(&a.follow_activity(&relay)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("another host"), "{body}");
    // Nothing is subscribed for it, and nothing went to the named inbox on its behalf.
    let (_, _, followers) = get_activity_json(&format!("{}/followers", relay.base)).await;
    assert_eq!(followers["orderedItems"], json!([victim.instance_actor()]));
    assert_eq!(victim.received_of("Accept").len(), 1);
    // An Undo from it changes nothing either: it was never subscribed.
    let undo = json!({"id": format!("{}/undo/1", a.base), "type": "Undo",
        "actor": a.instance_actor(), "object": a.follow_activity(&relay)});
    let (status, body) = a.post_as_instance(&undo).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("not subscribed"), "{body}");
    assert_eq!(victim.received_of("Accept").len(), 1);
}
