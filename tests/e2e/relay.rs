//! End-to-end: the real relay against simulated Mastodon, GoToSocial and Pleroma instances on loopback.

use std::time::{Duration, SystemTime};

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Posts a public marker from `from` and waits until every instance in `to` has it: everything the relay
/// queued before the marker has then been delivered, so absence can be asserted without sleeping.
pub(crate) async fn flush(from: &Instance, to: &[&Instance]) -> String {
    let create = from.public_create("marker");
    let (status, body) = from.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "marker refused: {body}");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    for instance in to {
        eventually("the marker", || instance.got_object(&note)).await;
    }
    note
}

async fn relay_documents_are_served() {
    let relay = Relay::start().await;
    let client = reqwest::Client::new();
    let actor = client
        .get(relay.actor_id())
        .header(
            "accept",
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        )
        .send()
        .await
        .unwrap();
    assert!(
        actor.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/activity+json")
    );
    let actor: Value = actor.json().await.unwrap();
    assert_eq!(actor["type"], "Application");
    assert_eq!(actor["preferredUsername"], "relay");
    assert_eq!(actor["inbox"], relay.inbox());
    assert_eq!(
        actor["publicKey"]["id"],
        format!("{}#main-key", relay.actor_id())
    );
    assert_eq!(actor["publicKey"]["owner"], relay.actor_id());
    assert!(
        actor["publicKey"]["publicKeyPem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    let host = format!("127.0.0.1:{}", relay.port);
    let wf: Value = client
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:relay@{host}",
            relay.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wf["subject"], format!("acct:relay@{host}"));
    assert!(
        wf["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["rel"] == "self" && l["href"] == relay.actor_id())
    );
    let missing = client
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:nobody@{host}",
            relay.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    let links: Value = client
        .get(format!("{}/.well-known/nodeinfo", relay.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let links = links["links"].as_array().unwrap();
    let ni_href = links
        .iter()
        .find(|l| l["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1")
        .and_then(|l| l["href"].as_str())
        .expect("2.1 link")
        .to_string();
    assert!(links.iter().any(
        |l| l["rel"] == "https://www.w3.org/ns/activitystreams#Application"
            && l["href"] == relay.actor_id()
    ));
    let ni: Value = client
        .get(ni_href)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ni["version"], "2.1");
    assert_eq!(ni["software"]["name"], "plaza");
    assert_eq!(ni["protocols"], json!(["activitypub"]));
}

async fn mastodon_subscribe_gets_accept_with_embedded_follow() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = m.subscribe(&relay).await;
    let accept = m.received_of("Accept").pop().unwrap();
    assert_eq!(accept["actor"], relay.actor_id());
    let mut normalised = follow.clone();
    normalised.as_object_mut().unwrap().remove("@context");
    assert_eq!(
        accept["object"], normalised,
        "the Follow is embedded as id, type, actor and object"
    );
    assert!(accept["id"].as_str().unwrap().starts_with(&relay.base));
    // Delivered to the shared inbox.
    assert!(m.received().iter().all(|r| r.path == "/inbox"));
    // A second Follow is idempotent: accepted again, still one subscription.
    m.subscribe(&relay).await;
    let metrics = relay.metrics().await;
    assert!(metrics.contains("plaza_subscribers 1\n"), "{metrics}");
    assert!(m.refused().is_empty(), "{:?}", m.refused());
}

async fn litepub_subscribe_gets_accept_and_follow_back() {
    let relay = Relay::start().await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    let follow = p.subscribe(&relay).await;
    eventually("the relay's Follow back", || {
        !p.received_of("Follow").is_empty()
    })
    .await;
    let back = p.received_of("Follow").pop().unwrap();
    assert_eq!(back["actor"], relay.actor_id());
    assert_eq!(back["object"], p.instance_actor());
    let accept = p.received_of("Accept").pop().unwrap();
    assert_eq!(accept["object"]["id"], follow["id"]);
    // Pleroma accepts the follow back; the relay takes note.
    let accept_back = json!({
        "id": format!("{}/activities/accept-1", p.base),
        "type": "Accept",
        "actor": p.instance_actor(),
        "object": back,
        "to": [relay.actor_id()]
    });
    let (status, _) = p.post_as_instance(&accept_back).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

async fn a_person_following_the_relay_actor_is_rejected() {
    let relay = Relay::start().await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = json!({
        "id": format!("{}/follows/1", m.base),
        "type": "Follow",
        "actor": m.user(),
        "object": relay.actor_id()
    });
    let (status, _) = m.post_as_user(&follow).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the Reject", || !m.received_of("Reject").is_empty()).await;
    assert_eq!(m.received_of("Reject")[0]["object"]["id"], follow["id"]);
    // Not a subscriber: its posts are refused.
    let (status, _) = m.post_as_user(&m.public_create("hello")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn public_posts_reach_every_other_subscriber_once() {
    let relay = Relay::start().await;
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;
    let gts = Instance::start(Flavor::GoToSocial, &relay).await;
    let pleroma = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&mastodon, &gts, &pleroma] {
        i.subscribe(&relay).await;
    }

    // From Mastodon (no LD signature): everyone else gets an Announce of the note by the relay actor.
    let create = mastodon.public_create("hello fediverse");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = mastodon.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for other in [&gts, &pleroma] {
        eventually("the announce", || other.got_object(&note)).await;
        let announce = other
            .received_of("Announce")
            .into_iter()
            .find(|a| a["object"] == note.as_str())
            .unwrap();
        assert_eq!(announce["actor"], relay.actor_id());
        assert!(announce["id"].as_str().unwrap().starts_with(&relay.base));
    }
    // GoToSocial has no shared inbox: delivered to the actor inbox.
    assert!(
        gts.received()
            .iter()
            .all(|r| r.path.ends_with("/inbox") && r.path.starts_with("/users/"))
    );

    // The same Create again, and the same note by another activity id: duplicates.
    let (status, body) = mastodon.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("duplicate"), "{body}");

    // From GoToSocial (hs2019, stub key document): Mastodon and Pleroma get it.
    let from_gts = gts.public_create("from gts");
    let gts_note = from_gts["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = gts.post_as_user(&from_gts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // From Pleroma (content-length signed).
    let from_pleroma = pleroma.public_create("from pleroma");
    let pl_note = from_pleroma["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = pleroma.post_as_user(&from_pleroma).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    flush(&mastodon, &[&gts, &pleroma]).await;
    flush(&gts, &[&mastodon]).await;
    for (instance, own, others) in [
        (&mastodon, &note, vec![&gts_note, &pl_note]),
        (&gts, &gts_note, vec![&note, &pl_note]),
        (&pleroma, &pl_note, vec![&note, &gts_note]),
    ] {
        assert_eq!(
            instance.count_mentions(own),
            0,
            "{} got its own post back",
            instance.base
        );
        for other in others {
            assert_eq!(
                instance.count_mentions(other),
                1,
                "{} should get {other} exactly once",
                instance.base
            );
        }
        assert!(instance.refused().is_empty(), "{:?}", instance.refused());
    }
}

async fn ld_signed_creates_go_verbatim_to_mastodon_and_as_announce_to_litepub() {
    let relay = Relay::start().await;
    let origin = Instance::start(Flavor::Mastodon, &relay).await;
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;
    let pleroma = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&origin, &mastodon, &pleroma] {
        i.subscribe(&relay).await;
    }
    let mut create = origin.public_create("signed");
    create["signature"] = json!({
        "type": "RsaSignature2017",
        "creator": origin.user_key_id(),
        "created": "2026-11-26T10:00:00Z",
        "signatureValue": "c2lnbmF0dXJl"
    });
    let note = create["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = origin.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("verbatim create", || mastodon.got_object(&note)).await;
    eventually("announce to pleroma", || pleroma.got_object(&note)).await;
    assert_eq!(
        mastodon.received_of("Create").pop().unwrap(),
        create,
        "sent byte for byte"
    );
    assert_eq!(
        pleroma.received_of("Announce").pop().unwrap()["object"],
        note.as_str()
    );
}

async fn update_and_delete_are_forwarded_and_private_posts_are_not() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::Mastodon, &relay).await;
    let c = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&a, &b, &c] {
        i.subscribe(&relay).await;
    }
    let create = a.public_create("original");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    a.post_as_user(&create).await;

    let mut edited = create["object"].clone();
    edited["content"] = json!("<p>edited</p>");
    let update = json!({
        "id": format!("{note}#updates/1"),
        "type": "Update",
        "actor": a.user(),
        "to": [PUBLIC],
        "object": edited
    });
    let (status, body) = a.post_as_user(&update).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delete = json!({
        "id": format!("{note}#delete"),
        "type": "Delete",
        "actor": a.user(),
        "to": [PUBLIC],
        "object": { "id": note, "type": "Tombstone" }
    });
    let (status, body) = a.post_as_user(&delete).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let followers_only = a.create_with(
        "secret",
        json!([format!("{}/followers", a.user())]),
        json!([]),
    );
    let secret = followers_only["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = a.post_as_user(&followers_only).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let unlisted_dm = a.create_with("dm", json!([b.user()]), json!([]));
    let dm = unlisted_dm["object"]["id"].as_str().unwrap().to_string();
    a.post_as_user(&unlisted_dm).await;

    flush(&a, &[&b, &c]).await;
    for receiver in [&b, &c] {
        let announces = receiver.received_of("Announce");
        let update_seen = announces
            .iter()
            .any(|x| x["object"] == note.as_str() && x["id"] != json!(null));
        assert!(update_seen, "update reached {}", receiver.base);
        assert!(
            announces.iter().any(|x| x["object"] == delete["id"]),
            "delete reached {}: {announces:?}",
            receiver.base
        );
        assert_eq!(
            receiver.count_mentions(&secret),
            0,
            "followers-only post leaked"
        );
        assert_eq!(receiver.count_mentions(&dm), 0, "direct message leaked");
    }
    // Create then Update of the same note: two announces of it (the post, then the edit).
    assert_eq!(
        b.received_of("Announce")
            .iter()
            .filter(|x| x["object"] == note.as_str())
            .count(),
        2
    );
}

async fn litepub_announce_is_checked_by_fetching_the_object() {
    let relay = Relay::start().await;
    let pleroma = Instance::start(Flavor::Pleroma, &relay).await;
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;
    pleroma.subscribe(&relay).await;
    mastodon.subscribe(&relay).await;

    let announce_of = |object_id: &str, n: usize| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}/activities/announce-{n}", pleroma.base),
            "type": "Announce",
            "actor": pleroma.instance_actor(),
            "object": object_id,
            "to": [format!("{}/followers", pleroma.instance_actor()), relay.actor_id()],
            "cc": []
        })
    };
    let public_note = format!("{}/objects/public-1", pleroma.base);
    pleroma.host_object(json!({
        "id": public_note, "type": "Note", "attributedTo": pleroma.user(),
        "content": "public", "to": [PUBLIC], "cc": []
    }));
    let private_note = format!("{}/objects/private-1", pleroma.base);
    pleroma.host_object(json!({
        "id": private_note, "type": "Note", "attributedTo": pleroma.user(),
        "content": "private", "to": [format!("{}/followers", pleroma.user())], "cc": []
    }));
    let (status, body) = pleroma
        .post_as_instance(&announce_of(&public_note, 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = pleroma
        .post_as_instance(&announce_of(&private_note, 2))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("ignored"), "{body}");
    eventually("the public note", || mastodon.got_object(&public_note)).await;
    flush(&pleroma, &[&mastodon]).await;
    assert_eq!(mastodon.count_mentions(&private_note), 0);
    // The sender's own server failing to serve the object is the sender's problem: 4xx, never 502.
    let broken_note = format!("{}/objects/broken-1", pleroma.base);
    pleroma.answer_status(&Instance::path_of(&broken_note), 500);
    let missing_note = format!("{}/objects/missing-1", pleroma.base);
    for (n, note) in [(3, &broken_note), (4, &missing_note)] {
        let (status, body) = pleroma.post_as_instance(&announce_of(note, n)).await;
        assert!(status.is_client_error(), "{note}: {status} {body}");
        assert!(body.contains("could not be fetched"), "{body}");
    }
}

async fn unsubscribe_stops_delivery() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::Mastodon, &relay).await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    let follow_b = b.subscribe(&relay).await;
    a.subscribe(&relay).await;
    let follow_p = p.subscribe(&relay).await;
    for (instance, follow) in [(&b, &follow_b), (&p, &follow_p)] {
        let undo = json!({
            "id": format!("{}#undo", follow["id"].as_str().unwrap()),
            "type": "Undo",
            "actor": instance.instance_actor(),
            "object": follow
        });
        let (status, body) = instance.post_as_instance(&undo).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(body.contains("unsubscribed"), "{body}");
    }
    let create = a.public_create("after the undo");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    a.post_as_user(&create).await;
    // A fresh subscriber receives the marker; the ones that left do not.
    let c = Instance::start(Flavor::Mastodon, &relay).await;
    c.subscribe(&relay).await;
    flush(&a, &[&c]).await;
    assert_eq!(b.count_mentions(&note), 0);
    assert_eq!(p.count_mentions(&note), 0);
    // And what they send is refused now.
    let (status, _) = b.post_as_user(&b.public_create("still here?")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn bad_signatures_and_strangers_are_refused_and_nothing_is_delivered() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::GoToSocial, &relay).await;
    let stranger = Instance::start(Flavor::Mastodon, &relay).await;
    a.subscribe(&relay).await;
    b.subscribe(&relay).await;
    let before = b.received().len();
    let inbox = relay.inbox();
    let mut refused_ids = Vec::new();

    let mut expect_refused = async |what: &str,
                                    headers: Vec<(String, String)>,
                                    body: Vec<u8>,
                                    status: StatusCode,
                                    id: String| {
        let (got, text) = post_raw(&relay.base, headers, body).await;
        assert_eq!(got, status, "{what}: {text}");
        assert!(
            text.contains("error"),
            "{what}: the refusal says why: {text}"
        );
        refused_ids.push(id);
    };

    // 1. Forged: signed with a key that is not alice's.
    let forged = a.public_create("forged");
    let body = serde_json::to_vec(&forged).unwrap();
    let other_keys = Keys::generate();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &other_keys,
        &a.user_key_id(),
        &inbox,
        &body,
        SystemTime::now(),
    );
    expect_refused(
        "forged signature",
        headers,
        body,
        StatusCode::UNAUTHORIZED,
        forged["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 2. Wrong digest: the body changed after signing.
    let tampered = a.public_create("tampered");
    let body = serde_json::to_vec(&tampered).unwrap();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &inbox,
        &body,
        SystemTime::now(),
    );
    let mut changed = tampered.clone();
    changed["object"]["content"] = json!("<p>changed in transit</p>");
    expect_refused(
        "wrong digest",
        headers,
        serde_json::to_vec(&changed).unwrap(),
        StatusCode::UNAUTHORIZED,
        tampered["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 3. A Date two hours old.
    let stale = a.public_create("stale");
    let body = serde_json::to_vec(&stale).unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &inbox,
        &body,
        two_hours_ago,
    );
    expect_refused(
        "stale date",
        headers,
        body,
        StatusCode::UNAUTHORIZED,
        stale["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 4. A keyId of another actor: alice's key speaking for bob.
    let mut impostor = a.public_create("impostor");
    let bob = format!("{}/users/bob", a.base);
    impostor["actor"] = json!(bob);
    impostor["object"]["attributedTo"] = json!(bob);
    let body = serde_json::to_vec(&impostor).unwrap();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &inbox,
        &body,
        SystemTime::now(),
    );
    expect_refused(
        "keyId of another actor",
        headers,
        body,
        StatusCode::UNAUTHORIZED,
        impostor["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 5. Unsigned.
    let unsigned = a.public_create("unsigned");
    let body = serde_json::to_vec(&unsigned).unwrap();
    let headers = vec![(
        "Content-Type".to_string(),
        "application/activity+json".to_string(),
    )];
    expect_refused(
        "unsigned",
        headers,
        body,
        StatusCode::UNAUTHORIZED,
        unsigned["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 6. A correctly signed post from an instance that is not subscribed.
    let strange = stranger.public_create("stranger");
    let body = serde_json::to_vec(&strange).unwrap();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &stranger.user_keys,
        &stranger.user_key_id(),
        &inbox,
        &body,
        SystemTime::now(),
    );
    expect_refused(
        "non-subscriber",
        headers,
        body,
        StatusCode::FORBIDDEN,
        strange["object"]["id"].as_str().unwrap().into(),
    )
    .await;

    // 7. Malformed JSON with a valid signature.
    let body = b"{not json".to_vec();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &inbox,
        &body,
        SystemTime::now(),
    );
    expect_refused(
        "malformed",
        headers,
        body,
        StatusCode::BAD_REQUEST,
        "none".into(),
    )
    .await;

    flush(&a, &[&b]).await;
    let after: Vec<Received> = b.received()[before..].to_vec();
    assert_eq!(after.len(), 1, "only the marker was delivered: {after:?}");
    for id in refused_ids {
        assert_eq!(b.count_mentions(&id), 0, "{id} leaked");
    }
}

async fn a_subscriber_that_was_down_gets_everything_in_order_even_across_a_relay_kill() {
    let mut relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let b = Instance::start(Flavor::GoToSocial, &relay).await;
    let healthy = Instance::start(Flavor::Pleroma, &relay).await;
    for i in [&a, &b, &healthy] {
        i.subscribe(&relay).await;
    }
    b.down().await;
    let mut notes = Vec::new();
    for n in 0..5 {
        let create = a.public_create(&format!("while down {n}"));
        notes.push(create["object"]["id"].as_str().unwrap().to_string());
        let (status, body) = a.post_as_user(&create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // The dead subscriber does not hold up the healthy one.
    for note in &notes {
        eventually("healthy subscriber served while another is down", || {
            healthy.got_object(note)
        })
        .await;
    }
    // Kill the relay (no graceful shutdown) while b is still down, post more after the restart.
    relay.kill_and_restart().await;
    for n in 5..8 {
        let create = a.public_create(&format!("after restart {n}"));
        notes.push(create["object"]["id"].as_str().unwrap().to_string());
        let (status, body) = a.post_as_user(&create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    b.up().await;
    for note in &notes {
        eventually("the backlog after the subscriber returns", || {
            b.got_object(note)
        })
        .await;
    }
    let order: Vec<String> = b
        .received_of("Announce")
        .iter()
        .filter_map(|x| x["object"].as_str().map(str::to_string))
        .filter(|o| notes.contains(o))
        .collect();
    let mut first_seen = Vec::new();
    for o in order {
        if !first_seen.contains(&o) {
            first_seen.push(o);
        }
    }
    assert_eq!(first_seen, notes, "delivered in order");
    assert!(b.refused().is_empty(), "{:?}", b.refused());
}

async fn oversized_bodies_are_refused() {
    let relay = Relay::start_with(&[("PLAZA_MAX_BODY_BYTES", "4096")]).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    a.subscribe(&relay).await;
    let big = a.public_create(&"x".repeat(10_000));
    let (status, _) = a.post_as_user(&big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn a_bad_configuration_value_exits_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plaza"))
        .env("PLAZA_LISTEN", "not-an-address")
        .env(
            "PLAZA_DATA_DIR",
            std::env::temp_dir().join("plaza-never-created"),
        )
        .output()
        .expect("run plaza");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen") && stderr.contains("not-an-address"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plaza"))
        .env("PLAZA_ALLOW_PRIVATE_NETWORKS", "perhaps")
        .output()
        .expect("run plaza");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PLAZA_ALLOW_PRIVATE_NETWORKS"));
}

async fn an_instance_over_its_rate_limit_gets_429_and_others_are_unaffected() {
    let relay = Relay::start_with(&[
        ("PLAZA_INBOUND_RATE_PER_INSTANCE", "1"),
        ("PLAZA_INBOUND_BURST_PER_INSTANCE", "4"),
    ])
    .await;
    let noisy = Instance::start(Flavor::Mastodon, &relay).await;
    let quiet = Instance::start(Flavor::Mastodon, &relay).await;
    noisy.subscribe(&relay).await;
    quiet.subscribe(&relay).await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        let (status, _) = noisy
            .post_as_user(&noisy.public_create(&format!("flood {n}")))
            .await;
        statuses.push(status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::ACCEPTED), "{statuses:?}");
    let (status, body) = quiet.post_as_user(&quiet.public_create("calm")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn admins_list_and_remove_subscribers_with_their_token() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", "s3cret-token")]).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let p = Instance::start(Flavor::Pleroma, &relay).await;
    a.subscribe(&relay).await;
    p.subscribe(&relay).await;
    let status = async |method: Method, path: &str, token: Option<&str>| -> u16 {
        relay.admin(method, path, token).await.status().as_u16()
    };
    assert_eq!(status(Method::GET, "/subscribers", None).await, 401);
    assert_eq!(
        status(Method::GET, "/subscribers", Some("wrong")).await,
        401
    );
    let subs = relay.admin_subscribers("s3cret-token").await;
    assert_eq!(subs.len(), 2);
    let pleroma = subs
        .iter()
        .find(|s| s["instance"] == p.authority())
        .expect("pleroma listed");
    assert_eq!(pleroma["protocol"], "litepub");
    assert_eq!(pleroma["actor"], p.instance_actor());

    let remove = format!("/subscribers/{}", p.authority());
    assert_eq!(status(Method::DELETE, &remove, None).await, 401);
    assert_eq!(
        status(Method::DELETE, &remove, Some("s3cret-token")).await,
        200
    );
    assert_eq!(
        status(Method::DELETE, &remove, Some("s3cret-token")).await,
        404,
        "already removed"
    );
    let (status, _) = p.post_as_user(&p.public_create("after removal")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Without a token configured the admin API does not exist.
    let plain = Relay::start().await;
    let status = plain
        .admin(Method::GET, "/subscribers", Some(""))
        .await
        .status();
    assert_eq!(status.as_u16(), 404);
}

async fn an_unreachable_subscriber_is_visible_to_admins_and_recovers() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", "t0ken")]).await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let dead = Instance::start(Flavor::GoToSocial, &relay).await;
    a.subscribe(&relay).await;
    dead.subscribe(&relay).await;
    dead.down().await;
    let create = a.public_create("into the void");
    let note = create["object"]["id"].as_str().unwrap().to_string();
    a.post_as_user(&create).await;

    let view = async || -> Value {
        relay
            .admin_subscribers("t0ken")
            .await
            .into_iter()
            .find(|s| s["instance"] == dead.authority())
            .unwrap()
    };
    let start = std::time::Instant::now();
    loop {
        let v = view().await;
        if v["unreachable"] == true {
            assert!(v["delivery"]["failing_since"].is_u64(), "{v}");
            assert!(v["delivery"]["last_error"].is_string(), "{v}");
            assert_eq!(v["behind"], 1, "{v}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never marked unreachable: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("plaza_subscribers_unreachable 1\n"),
        "{metrics}"
    );

    dead.up().await;
    eventually("delivery after recovery", || dead.got_object(&note)).await;
    let start = std::time::Instant::now();
    while view().await["unreachable"] != false {
        assert!(
            start.elapsed() < PATIENCE,
            "still unreachable after recovery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(view().await["delivery"]["last_delivered"].is_u64());
}

/// The last inbound and last delivery times the relay's store holds for `authority`, read from its
/// database (PostgreSQL's or the SQLite file).
async fn stored_times(relay: &Relay, authority: &str) -> (Option<i64>, Option<i64>) {
    const SQL: &str =
        "SELECT last_inbound, last_delivered FROM subscriber_activity WHERE authority = $1";
    if let Some(url) = relay.database_url() {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the relay's database");
        tokio::spawn(connection);
        return match client.query_opt(SQL, &[&authority]).await {
            Ok(Some(row)) => (row.get(0), row.get(1)),
            _ => (None, None),
        };
    }
    let db = rusqlite::Connection::open_with_flags(
        relay.data_dir.join(plaza::state::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the relay's database");
    db.query_row(SQL, [authority], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap_or((None, None))
}

async fn last_inbound_and_last_delivery_survive_a_restart() {
    const TOKEN: &str = "times-token-6d2f";
    let mut relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let [a, b] = &subscribed_instances(&relay, &[Flavor::Mastodon, Flavor::GoToSocial]).await[..]
    else {
        unreachable!()
    };
    flush(a, &[b]).await;
    // Written in the background (the delivery time with b's cursor): wait until both are stored.
    let start = std::time::Instant::now();
    while stored_times(&relay, &a.authority()).await.0.is_none()
        || stored_times(&relay, &b.authority()).await.1.is_none()
    {
        assert!(
            start.elapsed() < PATIENCE,
            "a's inbound and b's delivery time were not stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = relay.admin_subscribers(TOKEN).await;
    relay.kill_and_restart().await;
    let after = relay.admin_subscribers(TOKEN).await;
    let field = |list: &[Value], instance: &Instance, name: &str| {
        list.iter()
            .find(|s| s["instance"] == instance.authority())
            .map(|s| s[name].clone())
            .unwrap_or_default()
    };
    let inbound = field(&after, a, "last_inbound");
    assert!(inbound.is_i64(), "{after:?}");
    // Kept to the minute.
    assert!(
        field(&before, a, "last_inbound").as_i64().unwrap() - inbound.as_i64().unwrap() < 60,
        "{before:?} {after:?}"
    );
    // Kept: the same time, or a later one when the restart delivered the unsaved end of b's
    // backlog again (deliveries are at least once; the time moves only forward).
    let (kept, now) = (
        field(&before, b, "last_delivered").as_u64(),
        field(&after, b, "last_delivered").as_u64(),
    );
    assert!(
        kept.zip(now)
            .is_some_and(|(kept, now)| kept <= now && now - kept < 60),
        "before {before:?} after {after:?}"
    );
}

crate::on_both_backends!(
    relay_documents_are_served,
    mastodon_subscribe_gets_accept_with_embedded_follow,
    litepub_subscribe_gets_accept_and_follow_back,
    a_person_following_the_relay_actor_is_rejected,
    public_posts_reach_every_other_subscriber_once,
    ld_signed_creates_go_verbatim_to_mastodon_and_as_announce_to_litepub,
    update_and_delete_are_forwarded_and_private_posts_are_not,
    litepub_announce_is_checked_by_fetching_the_object,
    unsubscribe_stops_delivery,
    bad_signatures_and_strangers_are_refused_and_nothing_is_delivered,
    a_subscriber_that_was_down_gets_everything_in_order_even_across_a_relay_kill,
    oversized_bodies_are_refused,
    an_instance_over_its_rate_limit_gets_429_and_others_are_unaffected,
    admins_list_and_remove_subscribers_with_their_token,
    an_unreachable_subscriber_is_visible_to_admins_and_recovers,
    last_inbound_and_last_delivery_survive_a_restart,
);
