//! End-to-end: who may subscribe and unsubscribe, what ids are accepted, where replies go, and how an
//! admin removal sticks (issue 8, items 3, 5, 6, 8 and ids that are not URLs; issue 14, item 2: no
//! takeover of a Follow waiting for approval).

use crate::relay::flush;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Whether the relay takes posts from `instance` (it does only from subscribers).
async fn subscribed(instance: &Instance) -> bool {
    let (status, body) = instance
        .post_as_user(&instance.public_create("am I subscribed?"))
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::FORBIDDEN,
        "{status}: {body}"
    );
    status == StatusCode::ACCEPTED
}

/// An actor document published on `instance` at `path`, with alice's key as its key.
fn host_actor(instance: &Instance, path: &str, kind: &str, inbox: &str) -> (String, String) {
    let id = format!("{}{path}", instance.base);
    let key_id = format!("{id}#main-key");
    instance.host_object(json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": kind,
        "preferredUsername": "relay",
        "inbox": inbox,
        "publicKey": { "id": key_id, "owner": id, "publicKeyPem": instance.user_keys.public_pem }
    }));
    (id, key_id)
}

fn follow_of_public(instance: &Instance, actor: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/follows/{}", instance.base, instance.next()),
        "type": "Follow",
        "actor": actor,
        "object": PUBLIC
    })
}

/// Asserts (with the admin `token`) that the relay refused `actor`'s Follow from `instance` for `reason` (a fragment of it):
/// an `info` line in its log, and the newest audit entry by the relay, with the actor and reason.
async fn assert_refusal_recorded(
    relay: &Relay,
    token: &str,
    instance: &Instance,
    actor: &str,
    reason: &str,
) {
    assert!(
        relay
            .log()
            .lines()
            .any(|l| l.contains("INFO") && l.contains("Follow refused") && l.contains(reason)),
        "{}",
        relay.log()
    );
    let audit: Value = relay
        .admin(Method::GET, "/audit", Some(token))
        .await
        .json()
        .await
        .expect("the audit log as JSON");
    let entry = &audit["audit"][0];
    assert_eq!(entry["admin"], "relay", "{audit}");
    assert_eq!(entry["action"], "reject", "{audit}");
    assert_eq!(entry["target"], instance.authority(), "{audit}");
    assert_eq!(entry["detail"]["actor"], actor, "{audit}");
    assert!(
        entry["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(reason)),
        "{audit}"
    );
}

async fn log_head(relay: &Relay) -> String {
    let metrics = relay.metrics().await;
    metrics
        .lines()
        .find(|l| l.starts_with("plaza_log_head "))
        .unwrap_or_default()
        .to_string()
}

async fn a_person_cannot_unsubscribe_its_instance() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = m.subscribe(&relay).await;
    let follow_id = follow["id"].as_str().unwrap();
    let undo = |object: Value| {
        json!({
            "id": format!("{}/undo/{}", m.user(), m.next()),
            "type": "Undo",
            "actor": m.user(),
            "object": object
        })
    };
    // Alice undoing "her" Follow of Public, then undoing the instance's Follow by id and embedded.
    for object in [
        json!({"id": format!("{}/follows/x", m.user()), "type": "Follow", "actor": m.user(), "object": PUBLIC}),
        json!(follow_id),
        follow.clone(),
    ] {
        let (status, body) = m.post_as_user(&undo(object)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(body.contains("ignored"), "{body}");
        assert!(subscribed(&m).await, "alice ended the subscription: {body}");
    }
    // The instance actor undoing its Follow by id alone does.
    let (status, body) = m
        .post_as_instance(&json!({
            "id": format!("{}#undo", follow_id),
            "type": "Undo",
            "actor": m.instance_actor(),
            "object": follow_id
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("unsubscribed"), "{body}");
    assert!(!subscribed(&m).await);
}

async fn a_bot_named_relay_is_not_the_instance_unless_the_instance_says_so() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let (bot, key_id) = host_actor(&m, "/users/relay", "Service", &format!("{}/inbox", m.base));
    let (status, body) = m
        .post_as(&m.user_keys, &key_id, &follow_of_public(&m, &bot))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("instance's own actor"), "{body}");
    eventually("the Reject", || !m.received_of("Reject").is_empty()).await;
    assert!(m.received_of("Accept").is_empty());
    assert!(!subscribed(&m).await);

    // Where the instance names that actor as its application actor (NodeInfo, FEP-2677), it may.
    let n = Instance::start(Flavor::Mastodon, &relay).await;
    let (actor, key_id) = host_actor(&n, "/users/relay", "Service", &format!("{}/inbox", n.base));
    n.host_object(json!({
        "id": format!("{}/.well-known/nodeinfo", n.base),
        "links": [{"rel": "https://www.w3.org/ns/activitystreams#Application", "href": actor}]
    }));
    let follow = follow_of_public(&n, &actor);
    let (status, body) = n.post_as(&n.user_keys, &key_id, &follow).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("subscribed"), "{body}");
    eventually("the Accept", || !n.received_of("Accept").is_empty()).await;
}

async fn a_pre_registered_delete_id_cannot_suppress_the_real_delete() {
    let relay = Relay::start().await;
    let [a, b, c] = &subscribed_instances(
        &relay,
        &[Flavor::Mastodon, Flavor::Mastodon, Flavor::GoToSocial],
    )
    .await[..] else {
        unreachable!()
    };
    let note = format!("{}/statuses/123", a.user());
    let delete_id = format!("{note}#delete");
    let squat = json!({
        "id": delete_id,
        "type": "Delete",
        "actor": b.user(),
        "to": [PUBLIC],
        "object": format!("{}/statuses/1", b.user())
    });
    let (status, body) = b.post_as_user(&squat).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not on the actor's host"), "{body}");
    let real = json!({
        "id": delete_id,
        "type": "Delete",
        "actor": a.user(),
        "to": [PUBLIC],
        "object": {"id": note, "type": "Tombstone"}
    });
    let (status, body) = a.post_as_user(&real).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("queued"), "{body}");
    eventually("the real Delete", || c.got_object(&delete_id)).await;
}

async fn ids_that_are_not_urls_are_refused_and_nothing_is_relayed() {
    let relay = Relay::start().await;
    let [a, c] = &subscribed_instances(&relay, &[Flavor::Mastodon, Flavor::Mastodon]).await[..]
    else {
        unreachable!()
    };
    let with_object_id = |object_id: &str| {
        let mut create = a.public_create("bad id");
        create["object"]["id"] = json!(object_id);
        create
    };
    let other_host = format!("{}/users/bob/statuses/1", c.base);
    let bad = [
        with_object_id("not a url"),
        with_object_id("javascript:alert(1)"),
        with_object_id(&other_host),
        json!({"id": format!("{}/announces/1", a.user()), "type": "Announce", "actor": a.user(),
               "to": [PUBLIC], "object": "javascript:alert(1)"}),
    ];
    for activity in &bad {
        let (status, body) = a.post_as_user(activity).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{activity}: {body}");
    }
    flush(a, &[c]).await;
    for needle in ["not a url", "javascript:alert(1)", other_host.as_str()] {
        assert_eq!(c.count_mentions(needle), 0, "{needle} was relayed");
    }
}

async fn replies_and_deliveries_go_only_to_the_actors_own_host() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let victim = Instance::start(Flavor::Mastodon, &relay).await;
    let elsewhere = format!("{}/inbox", victim.base);
    // An instance-level actor (LitePub's /relay path) whose inbox is another server's.
    let (actor, key_id) = host_actor(&m, "/relay", "Application", &elsewhere);
    let (status, body) = m
        .post_as(&m.user_keys, &key_id, &follow_of_public(&m, &actor))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("own host"), "{body}");
    assert!(!subscribed(&m).await);
    // A person whose Follow is rejected, with an inbox elsewhere: no Reject is sent there.
    let (person, key_id) = host_actor(&m, "/users/mallory", "Person", &elsewhere);
    let (status, body) = m
        .post_as(&m.user_keys, &key_id, &follow_of_public(&m, &person))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(victim.received().is_empty());
}

async fn an_admin_removal_sticks_until_the_block_is_lifted() {
    let token = "bl0ck-token";
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", token)]).await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    m.subscribe(&relay).await;
    let status = async |method: Method, path: &str| -> u16 {
        relay
            .admin(method, path, Some(token))
            .await
            .status()
            .as_u16()
    };
    let instance = m.authority();
    assert_eq!(
        status(Method::DELETE, &format!("/subscribers/{instance}")).await,
        200
    );
    // The removal blocked the instance: its next Follow is refused (403) and nothing is sent to it.
    let (code, body) = m.post_as_instance(&m.follow_activity(&relay)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("blocked"), "{body}");
    assert!(m.received_of("Reject").is_empty());
    assert!(!subscribed(&m).await);
    let blocks: Value = relay
        .admin(Method::GET, "/blocks", Some(token))
        .await
        .json()
        .await
        .unwrap();
    // A domain block of the instance's host (ports aside, as every domain block).
    assert_eq!(
        blocks["blocks"][0]["domain"],
        m.addr.ip().to_string().as_str()
    );
    assert!(
        blocks["blocks"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    assert!(blocks["blocks"][0]["created_at"].as_i64().unwrap() > 0);
    // It survives a restart.
    let mut relay = relay;
    relay.kill_and_restart().await;
    let (_, body) = m.post_as_instance(&m.follow_activity(&relay)).await;
    assert!(body.contains("blocked"), "{body}");
    // Lifting the block lets it subscribe again.
    let lift = format!("/blocks/{instance}");
    for (token, expected) in [(None, 401), (Some(token), 200), (Some(token), 404)] {
        let status = relay.admin(Method::DELETE, &lift, token).await.status();
        assert_eq!(status.as_u16(), expected, "token {token:?}");
    }
    m.subscribe(&relay).await;
    assert!(subscribed(&m).await);
}

async fn follows_are_small_and_a_refollow_only_gets_a_fresh_accept() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let mut padded = m.follow_activity(&relay);
    padded["padding"] = json!("x".repeat(9 * 1024));
    let (status, body) = m.post_as_instance(&padded).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(!subscribed(&m).await);

    m.subscribe(&relay).await;
    let head = log_head(&relay).await;
    let again = m.subscribe(&relay).await;
    assert_eq!(log_head(&relay).await, head, "a re-Follow stores nothing");
    let accepts = m.received_of("Accept");
    assert_eq!(accepts.len(), 2);
    assert_eq!(accepts[1]["object"]["id"], again["id"]);
    assert_eq!(
        accepts[1]["object"].as_object().map(|o| o.len()),
        Some(4),
        "id, type, actor and object: {}",
        accepts[1]
    );
    // The newest Follow is the one that ends the subscription.
    let (status, body) = m
        .post_as_instance(&json!({
            "id": format!("{}#undo", again["id"].as_str().unwrap()),
            "type": "Undo",
            "actor": m.instance_actor(),
            "object": again["id"]
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("unsubscribed"), "{body}");
}

async fn a_fedify_instance_subscribes_with_its_application_actor_and_keeps_it() {
    const TOKEN: &str = "fedify-token-4b7e";
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let f = Instance::start(Flavor::Fedify, &relay).await;
    let follow = f.subscribe(&relay).await;
    assert!(subscribed(&f).await);
    let follow_id = follow["id"].as_str().unwrap();

    // A second Application on the same host can neither take the subscription over nor end it.
    let (other, key_id) = host_actor(
        &f,
        "/users/instance",
        "Application",
        &format!("{}/inbox", f.base),
    );
    let (status, body) = f
        .post_as(&f.user_keys, &key_id, &follow_of_public(&f, &other))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("holds its subscription"), "{body}");
    eventually("the Reject", || !f.received_of("Reject").is_empty()).await;
    let subscribers = relay.admin_subscribers(TOKEN).await;
    assert_eq!(subscribers.len(), 1);
    assert_eq!(
        subscribers[0]["actor"],
        f.instance_actor(),
        "{subscribers:?}"
    );
    let (status, body) = f
        .post_as(
            &f.user_keys,
            &key_id,
            &json!({"id": format!("{other}#undo"), "type": "Undo", "actor": other, "object": follow_id}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("ignored"), "{body}");
    assert!(subscribed(&f).await);

    // The refusal is in the log at info, and in the audit log with the Reject's reason.
    assert_refusal_recorded(&relay, TOKEN, &f, &other, "holds its subscription").await;

    // The instance actor ends the subscription.
    let (status, body) = f
        .post_as_instance(&json!({
            "id": format!("{follow_id}#undo"),
            "type": "Undo",
            "actor": f.instance_actor(),
            "object": follow_id
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("unsubscribed"), "{body}");
    assert!(!subscribed(&f).await);
}

async fn another_application_cannot_take_over_a_follow_waiting_for_approval() {
    const TOKEN: &str = "pending-takeover-token-3c9d";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "approval"),
    ])
    .await;
    let f = Instance::start(Flavor::Fedify, &relay).await;
    let pending = || async {
        let list: Value = relay
            .admin(Method::GET, "/pending", Some(TOKEN))
            .await
            .json()
            .await
            .unwrap();
        list["pending"].as_array().unwrap().clone()
    };
    let first = f.follow_activity(&relay);
    let (status, body) = f.post_as_instance(&first).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("awaiting approval"), "{body}");

    // A second Application on the same host, which the instance does not name, asks too: refused.
    let (other, key_id) = host_actor(
        &f,
        "/users/instance",
        "Application",
        &format!("{}/inbox", f.base),
    );
    let (status, body) = f
        .post_as(&f.user_keys, &key_id, &follow_of_public(&f, &other))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("waiting for approval"), "{body}");
    eventually("the Reject", || !f.received_of("Reject").is_empty()).await;
    let waiting = pending().await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["actor_id"], f.instance_actor(), "{waiting:?}");
    assert_eq!(waiting[0]["follow"]["id"], first["id"], "{waiting:?}");

    // The refusal is in the log at info, and in the audit log with its reason.
    assert_refusal_recorded(&relay, TOKEN, &f, &other, "waiting for approval").await;

    // The actor that asked first sends its Follow again: that refreshes its entry.
    let again = f.follow_activity(&relay);
    let (status, body) = f.post_as_instance(&again).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("awaiting approval"), "{body}");
    let waiting = pending().await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["actor_id"], f.instance_actor(), "{waiting:?}");
    assert_eq!(waiting[0]["follow"]["id"], again["id"], "{waiting:?}");

    // What the admin approves is the actor that asked.
    let status = relay
        .admin(
            Method::POST,
            &format!("/pending/{}/approve", f.authority()),
            Some(TOKEN),
        )
        .await
        .status();
    assert_eq!(status, StatusCode::OK);
    let subscribers = relay.admin_subscribers(TOKEN).await;
    assert_eq!(subscribers.len(), 1, "{subscribers:?}");
    assert_eq!(
        subscribers[0]["actor"],
        f.instance_actor(),
        "{subscribers:?}"
    );
    assert!(subscribed(&f).await);
}

crate::on_both_backends!(
    a_person_cannot_unsubscribe_its_instance,
    a_bot_named_relay_is_not_the_instance_unless_the_instance_says_so,
    a_pre_registered_delete_id_cannot_suppress_the_real_delete,
    ids_that_are_not_urls_are_refused_and_nothing_is_relayed,
    replies_and_deliveries_go_only_to_the_actors_own_host,
    an_admin_removal_sticks_until_the_block_is_lifted,
    follows_are_small_and_a_refollow_only_gets_a_fresh_accept,
    a_fedify_instance_subscribes_with_its_application_actor_and_keeps_it,
    another_application_cannot_take_over_a_follow_waiting_for_approval,
);
