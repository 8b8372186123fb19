//! End-to-end: topic feeds (issue 16). Topic actors as a remote server and a browser see them
//! (WebFinger handle to actor, the actor's own durable key, the cap on how many topics may exist); the
//! three ways to follow and what topics carry; and the pages, links and API that show the topics.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const AS_PROFILE: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

async fn fetch_actor(client: &reqwest::Client, url: &str) -> (StatusCode, Option<Value>) {
    let response = client
        .get(url)
        .header("accept", AS_PROFILE)
        .send()
        .await
        .expect("actor fetch");
    let status = response.status();
    (status, response.json().await.ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_topic_resolves_by_handle_keeps_its_key_and_is_capped() {
    let mut relay = Relay::start_with(&[("PLAZA_MAX_TOPICS", "2")]).await;
    let client = reqwest::Client::new();
    let host = format!("127.0.0.1:{}", relay.port);

    // A person's server resolves the handle, case and all, to the topic actor.
    let finger: Value = client
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:tag.CoOp@{host}",
            relay.base
        ))
        .send()
        .await
        .expect("webfinger")
        .json()
        .await
        .expect("jrd");
    assert_eq!(finger["subject"], format!("acct:tag.coop@{host}"));
    let actor_url = finger["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "self")
        .and_then(|l| l["href"].as_str())
        .expect("self link")
        .to_owned();
    assert_eq!(actor_url, format!("{}/topics/tag/coop", relay.base));

    let (status, actor) = fetch_actor(&client, &actor_url).await;
    assert_eq!(status, StatusCode::OK);
    let actor = actor.expect("actor json");
    assert_eq!(actor["type"], "Service");
    assert_eq!(actor["id"], actor_url);
    assert_eq!(actor["inbox"], format!("{actor_url}/inbox"));
    assert_eq!(actor["preferredUsername"], "tag.coop");
    let pem = actor["publicKey"]["publicKeyPem"]
        .as_str()
        .expect("pem")
        .to_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let relay_actor: Value = client
        .get(relay.actor_id())
        .header("accept", AS_PROFILE)
        .send()
        .await
        .expect("relay actor")
        .json()
        .await
        .expect("json");
    assert_ne!(
        relay_actor["publicKey"]["publicKeyPem"], pem,
        "the topic has its own key"
    );

    // Its followers collection tells only how many; a topic never asked for has none.
    let (status, followers) = fetch_actor(&client, &format!("{actor_url}/followers")).await;
    assert_eq!(status, StatusCode::OK);
    let followers = followers.expect("json");
    assert_eq!(followers["totalItems"], 0);
    assert!(followers.get("orderedItems").is_none());
    let (status, _) = fetch_actor(
        &client,
        &format!("{}/topics/tag/unasked/followers", relay.base),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A browser gets the page with the three ways to follow.
    let page = client
        .get(&actor_url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("html");
    assert!(page.contains(&format!("@tag.coop@{host}")), "{page}");
    assert!(page.contains(&format!("{actor_url}/inbox")), "{page}");

    // The key survives kill -9.
    relay.kill_and_restart().await;
    let (_, again) = fetch_actor(&client, &actor_url).await;
    assert_eq!(again.expect("json")["publicKey"]["publicKeyPem"], pem);

    // A second topic fits, a third does not; existing ones still answer.
    let es = format!("{}/topics/language/es-MX", relay.base);
    let (status, es_actor) = fetch_actor(&client, &es).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        es_actor.expect("json")["id"],
        format!("{}/topics/language/es", relay.base)
    );
    let (status, _) = fetch_actor(&client, &format!("{}/topics/tag/other", relay.base)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = fetch_actor(&client, &actor_url).await;
    assert_eq!(status, StatusCode::OK);

    // Unknown kinds and names that are no tag are not topics.
    for path in [
        "/topics/search/coop",
        "/topics/tag/co%20op",
        "/topics/language/english",
    ] {
        let (status, _) = fetch_actor(&client, &format!("{}{path}", relay.base)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let missing = client
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:search.coop@{host}",
            relay.base
        ))
        .send()
        .await
        .expect("webfinger");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------------------------------------
// Following topics and what they carry
// ------------------------------------------------------------------------------------------------

const AS: &str = "https://www.w3.org/ns/activitystreams";

/// A public Create by alice of `instance` with `tags` and, when given, a declared language; the note
/// is hosted on the instance, as its server would.
pub(crate) fn tagged(instance: &Instance, text: &str, tags: &[&str], lang: Option<&str>) -> Value {
    let mut create = instance.public_create(text);
    create["object"]["tag"] = Value::Array(
        tags.iter()
            .map(|t| serde_json::json!({ "type": "Hashtag", "name": format!("#{t}") }))
            .collect(),
    );
    if let Some(lang) = lang {
        create["object"]["contentMap"] =
            serde_json::json!({ lang: create["object"]["content"].clone() });
    }
    instance.host_object(create["object"].clone());
    create
}

pub(crate) fn object_id(create: &Value) -> String {
    create["object"]["id"].as_str().expect("note id").to_owned()
}

async fn a_tag_is_followed_three_ways_and_carries_only_what_its_authors_agreed_to() {
    let relay = Relay::start().await;
    let origin = Instance::start(Flavor::Mastodon, &relay).await;
    origin.set_user_fields(serde_json::json!({ "indexable": true, "discoverable": true }));
    origin.subscribe(&relay).await;
    // Its author never agreed to be found: relayed to subscribers, never carried by a topic.
    let shy = Instance::start(Flavor::Mastodon, &relay).await;
    shy.subscribe(&relay).await;
    let topic_path = "/topics/tag/coop";
    let topic = format!("{}{topic_path}", relay.base);

    // A Mastodon admin adds the topic's inbox as a relay; a Pleroma admin follows the topic actor;
    // a person on a GoToSocial server follows it from their own account. None is subscribed.
    let mastodon = Instance::start(Flavor::Mastodon, &relay).await;
    let mastodon_follow = follow_topic(&mastodon, &relay, topic_path, PUBLIC, false).await;
    let pleroma = Instance::start(Flavor::Pleroma, &relay).await;
    follow_topic(&pleroma, &relay, topic_path, &topic, false).await;
    let person = Instance::start(Flavor::GoToSocial, &relay).await;
    follow_topic(&person, &relay, topic_path, &topic, true).await;
    let followers = get_json(format!("{topic}/followers")).await;
    assert_eq!(followers["totalItems"], 3);

    // The person following the relay actor itself is still turned away.
    let follow_relay = serde_json::json!({
        "@context": AS, "id": format!("{}/follows/relay", person.base), "type": "Follow",
        "actor": person.user(), "object": relay.actor_id(),
    });
    let (status, _) = person.post_as_user(&follow_relay).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the relay's Reject of a person", || {
        person
            .received_of("Reject")
            .iter()
            .any(|r| r["object"]["id"] == follow_relay["id"])
    })
    .await;

    let first = tagged(&origin, "a #coop meeting", &["coop"], None);
    let vetoed = tagged(&shy, "my own #coop thoughts", &["coop"], None);
    let other = tagged(&origin, "nothing to see", &["bread"], None);
    let last = tagged(&origin, "the #coop report", &["Coop"], None);
    for (instance, create) in [
        (&origin, &first),
        (&shy, &vetoed),
        (&origin, &other),
        (&origin, &last),
    ] {
        let (status, body) = instance.post_as_user(create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    for follower in [&mastodon, &pleroma, &person] {
        eventually("both consenting #coop posts carried", || {
            !announces_of(follower, &object_id(&first)).is_empty()
                && !announces_of(follower, &object_id(&last)).is_empty()
        })
        .await;
        for create in [&first, &last] {
            let announces = announces_of(follower, &object_id(create));
            assert_eq!(announces.len(), 1, "once per inbox");
            assert_eq!(announces[0].activity["actor"], topic.as_str());
            assert_eq!(announces[0].key_id, format!("{topic}#main-key"));
            assert!(
                announces[0].activity["id"]
                    .as_str()
                    .expect("id")
                    .starts_with(&format!("{topic}/carried/"))
            );
        }
        assert!(!follower.got_object(&object_id(&vetoed)), "consent");
        assert!(!follower.got_object(&object_id(&other)), "not the topic");
    }
    // The full subscribers got the vetoed post all the same: consent governs finding, not relaying.
    eventually("the vetoed post relayed to subscribers", || {
        origin.got_object(&object_id(&vetoed))
    })
    .await;

    // The outbox pages what the topic carried, newest first.
    let outbox = get_json(format!("{topic}/outbox?page=true")).await;
    let items = outbox["orderedItems"].as_array().expect("items");
    let carried: Vec<&str> = items.iter().filter_map(|i| i["object"].as_str()).collect();
    assert_eq!(carried, [object_id(&last), object_id(&first)]);

    // The Mastodon admin removes the relay: its Undo ends the follow; the others go on.
    let undo = serde_json::json!({
        "@context": AS, "id": format!("{}/undo/1", mastodon.base), "type": "Undo",
        "actor": mastodon.instance_actor(), "object": mastodon_follow,
    });
    let (status, body) = mastodon
        .post_to(
            &format!("{topic_path}/inbox"),
            &mastodon.instance_keys,
            &mastodon.instance_key_id(),
            &undo,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("unsubscribed"), "{body}");
    let after = tagged(&origin, "#coop after the undo", &["coop"], None);
    let (status, _) = origin.post_as_user(&after).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the post carried to the remaining followers", || {
        !announces_of(&pleroma, &object_id(&after)).is_empty()
            && !announces_of(&person, &object_id(&after)).is_empty()
    })
    .await;
    assert!(announces_of(&mastodon, &object_id(&after)).is_empty());
}

async fn overlapping_topics_of_every_kind_reach_an_inbox_once() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", "secret-admin-token")]).await;
    let origin = Instance::start(Flavor::Mastodon, &relay).await;
    origin.set_user_fields(serde_json::json!({ "indexable": true }));
    origin.subscribe(&relay).await;
    // A curated search with operators.
    let curated = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/topics", relay.base))
        .bearer_auth("secret-admin-token")
        .json(&serde_json::json!({
            "slug": "co-ops-es", "name": "Co-ops in Spanish",
            "query": "#coop OR #cooperativa language:es -#spam",
        }))
        .send()
        .await
        .expect("add curated");
    assert_eq!(curated.status(), StatusCode::CREATED);

    let follower = Instance::start(Flavor::Mastodon, &relay).await;
    let instance_topic = format!("/topics/instance/{}", origin.authority());
    for path in [
        "/topics/tag/coop",
        "/topics/language/es",
        "/topics/search/co-ops-es",
        instance_topic.as_str(),
    ] {
        follow_topic(&follower, &relay, path, PUBLIC, false).await;
    }
    // Another inbox follows only the curated search.
    let curious = Instance::start(Flavor::Pleroma, &relay).await;
    let curated_actor = format!("{}/topics/search/co-ops-es", relay.base);
    follow_topic(
        &curious,
        &relay,
        "/topics/search/co-ops-es",
        &curated_actor,
        false,
    )
    .await;
    // An instance topic exists only for subscribed instances; a search only once curated.
    let stranger = Instance::start(Flavor::Mastodon, &relay).await;
    for path in [
        format!("/topics/instance/{}", stranger.authority()),
        "/topics/search/nothing-here".to_owned(),
    ] {
        let (status, _, _) = ask_to_follow(&stranger, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Matches all four topics; matches the curated search and the instance; matches only the
    // instance; excluded from the curated search by `-#spam`.
    let all = tagged(&origin, "Asamblea de la #coop", &["coop"], Some("es"));
    let curated_only = tagged(&origin, "Nueva #cooperativa", &["cooperativa"], Some("es"));
    let plain = tagged(&origin, "hello there", &[], Some("en"));
    let spam = tagged(&origin, "Oferta #coop #spam", &["coop", "spam"], Some("es"));
    for create in [&all, &curated_only, &plain, &spam] {
        let (status, body) = origin.post_as_user(create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    eventually("every post carried to the follower", || {
        [&all, &curated_only, &plain, &spam]
            .iter()
            .all(|c| !announces_of(&follower, &object_id(c)).is_empty())
    })
    .await;
    eventually("the curated posts carried to the curious", || {
        !announces_of(&curious, &object_id(&all)).is_empty()
            && !announces_of(&curious, &object_id(&curated_only)).is_empty()
    })
    .await;
    for create in [&all, &curated_only, &plain, &spam] {
        assert_eq!(
            announces_of(&follower, &object_id(create)).len(),
            1,
            "one delivery per inbox for {}",
            object_id(create)
        );
    }
    // The most specific topic speaks: the hashtag for the first post, the search for the second.
    let actor_of =
        |create: &Value| announces_of(&follower, &object_id(create))[0].activity["actor"].clone();
    assert_eq!(actor_of(&all), format!("{}/topics/tag/coop", relay.base));
    assert_eq!(actor_of(&curated_only), curated_actor);
    assert_eq!(actor_of(&plain), format!("{}{instance_topic}", relay.base));
    // The curious inbox never gets what its search leaves out.
    assert!(!curious.got_object(&object_id(&plain)));
    assert!(!curious.got_object(&object_id(&spam)));
    for c in [&all, &curated_only] {
        assert_eq!(announces_of(&curious, &object_id(c)).len(), 1);
    }
}

async fn nothing_carried_is_lost_over_kill_9_and_order_holds() {
    let mut relay = Relay::start().await;
    let origin = Instance::start(Flavor::Mastodon, &relay).await;
    origin.set_user_fields(serde_json::json!({ "indexable": true }));
    origin.subscribe(&relay).await;
    let follower = Instance::start(Flavor::Mastodon, &relay).await;
    follow_topic(&follower, &relay, "/topics/tag/coop", PUBLIC, false).await;
    let healthy = Instance::start(Flavor::Pleroma, &relay).await;
    let topic = format!("{}/topics/tag/coop", relay.base);
    follow_topic(&healthy, &relay, "/topics/tag/coop", &topic, false).await;
    // The follower goes down; posts keep coming and are carried to the healthy inbox meanwhile.
    follower.down().await;
    let posts: Vec<Value> = (0..6)
        .map(|n| tagged(&origin, &format!("#coop note {n}"), &["coop"], None))
        .collect();
    for create in &posts {
        let (status, body) = origin.post_as_user(create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    eventually("all carried to the healthy follower", || {
        posts
            .iter()
            .all(|c| !announces_of(&healthy, &object_id(c)).is_empty())
    })
    .await;
    // Killed while the follower's worker is retrying; it comes back, then the follower does.
    relay.kill_and_restart().await;
    follower.up().await;
    eventually(
        "everything carried reaching the follower after the restart",
        || {
            posts
                .iter()
                .all(|c| !announces_of(&follower, &object_id(c)).is_empty())
        },
    )
    .await;
    let order: Vec<String> = follower
        .received_of("Announce")
        .iter()
        .filter_map(|a| a["object"].as_str().map(str::to_owned))
        .collect();
    let mut firsts: Vec<String> = Vec::new();
    for id in order {
        if !firsts.contains(&id) {
            firsts.push(id);
        }
    }
    let expected: Vec<String> = posts.iter().map(object_id).collect();
    assert_eq!(firsts, expected, "order per inbox");
}

/// Sends a Follow of Public by `follower`'s instance actor to the inbox at `topic_path`; the answer.
async fn ask_to_follow(follower: &Instance, topic_path: &str) -> (StatusCode, String, Value) {
    let follow = serde_json::json!({
        "@context": AS, "id": format!("{}/f/{}", follower.base, follower.next()),
        "type": "Follow", "actor": follower.instance_actor(), "object": PUBLIC,
    });
    let (status, body) = follower
        .post_to(
            &format!("{topic_path}/inbox"),
            &follower.instance_keys,
            &follower.instance_key_id(),
            &follow,
        )
        .await;
    (status, body, follow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_follows_obey_settings_caps_the_policy_and_blocks() {
    const TOKEN: &str = "secret-admin-token";
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_MAX_FOLLOWERS_PER_TOPIC", "1"),
        ("PLAZA_TOPIC_BLOCKED_TAGS", "Spam"),
        ("PLAZA_TOPIC_KINDS", "tag,search"),
    ])
    .await;
    let client = reqwest::Client::new();
    // A kind turned off and a blocked hashtag are no topics at all.
    for path in ["/topics/language/es", "/topics/tag/spam"] {
        let (status, _) = fetch_actor(&client, &format!("{}{path}", relay.base)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let first = Instance::start(Flavor::Mastodon, &relay).await;
    let (status, _, _) = ask_to_follow(&first, "/topics/language/es").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    follow_topic(&first, &relay, "/topics/tag/coop", PUBLIC, false).await;

    // The topic is full: the next follower is rejected, by the topic itself.
    let second = Instance::start(Flavor::Mastodon, &relay).await;
    let (status, body, follow) = ask_to_follow(&second, "/topics/tag/coop").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("as many followers"), "{body}");
    let topic = format!("{}/topics/tag/coop", relay.base);
    eventually("the topic's Reject", || {
        second
            .received()
            .iter()
            .any(|r| r.activity["type"] == "Reject" && r.activity["object"]["id"] == follow["id"])
    })
    .await;
    let reject = second.received_of("Reject").remove(0);
    assert_eq!(reject["actor"], topic.as_str());

    // Under the approval policy an instance the admins have not admitted waits for them (see
    // `topic_follows_wait_for_an_admin_under_the_approval_policy`).
    let policy = client
        .put(format!("{}/api/v1/admin/policy", relay.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "policy": "approval" }))
        .send()
        .await
        .expect("policy");
    assert!(policy.status().is_success());
    let (status, body, _) = ask_to_follow(&second, "/topics/tag/other").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("awaiting approval"), "{body}");

    // A block ends the blocked instance's topic follows.
    let host = first.addr.ip().to_string();
    let blocked = client
        .post(format!("{}/api/v1/admin/blocks", relay.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "domain": host, "reason": "test" }))
        .send()
        .await
        .expect("block");
    assert!(blocked.status().is_success());
    let followers = get_json(format!("{topic}/followers")).await;
    assert_eq!(followers["totalItems"], 0);
    let (status, _, _) = ask_to_follow(&first, "/topics/tag/coop").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A software block covers an instance the relay never saw: its NodeInfo is asked first.
    let software = client
        .post(format!("{}/api/v1/admin/blocks", relay.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "kind": "software", "domain": "pleroma", "reason": "test" }))
        .send()
        .await
        .expect("software block");
    assert!(software.status().is_success());
    let pleroma = Instance::start(Flavor::Pleroma, &relay).await;
    let (status, body, _) = ask_to_follow(&pleroma, "/topics/tag/coop").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_follows_wait_for_an_admin_under_the_approval_policy() {
    const TOKEN: &str = "secret-admin-token";
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}/api/v1/admin{path}", relay.base))
            .bearer_auth(TOKEN)
    };
    let policy = admin(reqwest::Method::PUT, "/policy")
        .json(&serde_json::json!({ "policy": "approval" }))
        .send()
        .await
        .expect("policy");
    assert!(policy.status().is_success());
    let pending = || async {
        admin(reqwest::Method::GET, "/topics/pending")
            .send()
            .await
            .expect("pending")
            .json::<Value>()
            .await
            .expect("json")["pending"]
            .clone()
    };
    let decide = |verb: &'static str, actor: String| {
        admin(reqwest::Method::POST, &format!("/topics/pending/{verb}"))
            .json(&serde_json::json!({ "topic": "tag/coop", "actor": actor }))
            .send()
    };
    let topic = format!("{}/topics/tag/coop", relay.base);
    // Whether `instance` got the topic's Accept of `follow`.
    let accepted = |instance: &Instance, follow: &Value| {
        instance
            .received_of("Accept")
            .iter()
            .any(|a| a["object"]["id"] == follow["id"] && a["actor"] == topic.as_str())
    };

    // A Follow from an instance the admins have not admitted waits, answered by nothing yet.
    let approved = Instance::start(Flavor::Mastodon, &relay).await;
    let (status, body, follow) = ask_to_follow(&approved, "/topics/tag/coop").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.contains("awaiting approval"), "{body}");
    let waiting = pending().await;
    assert_eq!(waiting.as_array().map(Vec::len), Some(1), "{waiting}");
    assert_eq!(relay.metric("plaza_topic_follows_pending").await, Some(1));
    assert_eq!(waiting[0]["topic"], "tag/coop");
    assert_eq!(waiting[0]["actor"], approved.instance_actor().as_str());
    let out = relay.command(&["admin", "topics", "pending", "--token", TOKEN]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("tag/coop") && listed.contains(&approved.instance_actor()),
        "{listed}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(approved.received_of("Accept").is_empty());
    assert!(approved.received_of("Reject").is_empty());

    // Approved: the topic accepts it (embedding the Follow) and counts the follower.
    let answer = decide("approve", approved.instance_actor())
        .await
        .expect("approve");
    assert_eq!(answer.status(), StatusCode::OK);
    eventually("the topic's Accept", || accepted(&approved, &follow)).await;
    assert_eq!(
        get_json(format!("{topic}/followers")).await["totalItems"],
        1
    );
    assert_eq!(pending().await.as_array().map(Vec::len), Some(0));

    // Rejected (through the CLI): the topic says so, and nobody is added.
    let rejected = Instance::start(Flavor::Mastodon, &relay).await;
    let (_, _, follow) = ask_to_follow(&rejected, "/topics/tag/coop").await;
    let actor = rejected.instance_actor();
    let out = relay.command(&[
        "admin", "topics", "reject", "tag/coop", &actor, "--token", TOKEN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the topic's Reject", || {
        rejected
            .received_of("Reject")
            .iter()
            .any(|r| r["object"]["id"] == follow["id"])
    })
    .await;
    assert_eq!(
        get_json(format!("{topic}/followers")).await["totalItems"],
        1
    );

    // Withdrawn: an Undo of a waiting Follow takes it out of the queue.
    let withdrawn = Instance::start(Flavor::Mastodon, &relay).await;
    let (_, _, follow) = ask_to_follow(&withdrawn, "/topics/tag/coop").await;
    assert_eq!(pending().await.as_array().map(Vec::len), Some(1));
    let undo = serde_json::json!({
        "@context": AS, "id": format!("{}/undo/{}", withdrawn.base, withdrawn.next()),
        "type": "Undo", "actor": withdrawn.instance_actor(), "object": follow,
    });
    let (status, body) = withdrawn
        .post_to(
            "/topics/tag/coop/inbox",
            &withdrawn.instance_keys,
            &withdrawn.instance_key_id(),
            &undo,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(pending().await.as_array().map(Vec::len), Some(0));
    // Nothing waits for that actor any more: an approval is a 404, a malformed one a 400.
    let answer = decide("approve", withdrawn.instance_actor())
        .await
        .expect("approve");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let bad = admin(reqwest::Method::POST, "/topics/pending/approve")
        .json(&serde_json::json!({ "topic": "coop", "actor": "x" }))
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // An instance the admins approve as a subscriber is admitted: its waiting topic follows are
    // accepted with it.
    let subscribing = Instance::start(Flavor::Mastodon, &relay).await;
    let (_, _, follow) = ask_to_follow(&subscribing, "/topics/tag/coop").await;
    let (status, _) = subscribing
        .post_as_instance(&subscribing.follow_activity(&relay))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let approval = admin(
        reqwest::Method::POST,
        &format!("/pending/{}/approve", subscribing.authority()),
    )
    .send()
    .await
    .expect("approve the subscription");
    let approval: Value = approval.json().await.expect("json");
    assert_eq!(approval["topic_follows_accepted"], 1, "{approval}");
    eventually("the topic's Accept after the instance's approval", || {
        accepted(&subscribing, &follow)
    })
    .await;
    assert_eq!(
        get_json(format!("{topic}/followers")).await["totalItems"],
        2
    );
    assert_eq!(pending().await.as_array().map(Vec::len), Some(0));

    // Without the token, nothing.
    let anonymous = client
        .get(format!("{}/api/v1/admin/topics/pending", relay.base))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// A relay, a subscribed origin whose author agreed to be found, and a follower of `#coop` (a Mastodon
/// one through Follow of Public, otherwise following the topic actor) that received a carried post.
struct Carried {
    relay: Relay,
    origin: Arc<Instance>,
    follower: Arc<Instance>,
    topic: String,
    note: String,
}

async fn a_carried_post(follower_flavor: Flavor) -> Carried {
    let relay = Relay::start().await;
    let origin = Instance::start(Flavor::Mastodon, &relay).await;
    origin.set_user_fields(serde_json::json!({ "indexable": true }));
    origin.subscribe(&relay).await;
    let follower = Instance::start(follower_flavor, &relay).await;
    let topic = format!("{}/topics/tag/coop", relay.base);
    let object = match follower_flavor {
        Flavor::Mastodon => PUBLIC,
        _ => topic.as_str(),
    };
    follow_topic(&follower, &relay, "/topics/tag/coop", object, false).await;
    let create = tagged(&origin, "a #coop post", &["coop"], None);
    let (status, _) = origin.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let note = object_id(&create);
    eventually("the post carried", || {
        !announces_of(&follower, &note).is_empty()
    })
    .await;
    Carried {
        relay,
        origin,
        follower,
        topic,
        note,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carried_post_deleted_by_its_author_is_withdrawn_from_the_topic() {
    // The relay runs as long as it is held.
    let Carried {
        relay: _relay,
        origin,
        follower,
        topic,
        note,
    } = a_carried_post(Flavor::Pleroma).await;
    let delete_id = format!("{note}#delete");
    let delete = serde_json::json!({
        "@context": AS, "id": delete_id, "type": "Delete", "actor": origin.user(),
        "to": [PUBLIC], "object": { "id": note, "type": "Tombstone" },
    });
    let (status, body) = origin.post_as_user(&delete).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the topic announcing the Delete", || {
        !announces_of(&follower, &delete_id).is_empty()
    })
    .await;
    let announce = announces_of(&follower, &delete_id).remove(0);
    assert_eq!(announce.activity["actor"], topic.as_str());
    assert_eq!(announce.key_id, format!("{topic}#main-key"));
    let outbox = get_json(format!("{topic}/outbox")).await;
    assert_eq!(outbox["totalItems"], 0, "no longer in the topic's outbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_who_withdraws_consent_has_their_carried_posts_undone() {
    let Carried {
        relay,
        origin,
        follower,
        topic,
        note,
    } = a_carried_post(Flavor::Mastodon).await;
    let announce_id = announces_of(&follower, &note)[0].activity["id"].clone();
    // Alice turns `indexable` off: her profile Update reaches the relay.
    origin.set_user_fields(serde_json::json!({ "indexable": false }));
    let update = serde_json::json!({
        "@context": AS, "id": format!("{}#updates/1", origin.user()), "type": "Update",
        "actor": origin.user(), "to": [PUBLIC],
        "object": { "id": origin.user(), "type": "Person", "preferredUsername": "alice",
                    "inbox": format!("{}/inbox", origin.user()), "indexable": false },
    });
    let (status, body) = origin.post_as_user(&update).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the topic's Undo of its Announce", || {
        follower
            .received_of("Undo")
            .iter()
            .any(|u| u["object"]["id"] == announce_id)
    })
    .await;
    let undo = follower
        .received_of("Undo")
        .into_iter()
        .find(|u| u["object"]["id"] == announce_id)
        .expect("undo");
    assert_eq!(undo["actor"], topic.as_str());
    assert_eq!(undo["object"]["object"], note.as_str());
    // Her next #coop post is relayed to subscribers but no longer carried.
    let later = tagged(&origin, "another #coop post", &["coop"], None);
    let (status, _) = origin.post_as_user(&later).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let marker_origin = Instance::start(Flavor::Mastodon, &relay).await;
    marker_origin.set_user_fields(serde_json::json!({ "indexable": true }));
    marker_origin.subscribe(&relay).await;
    let marker = tagged(&marker_origin, "a later #coop post", &["coop"], None);
    let (status, _) = marker_origin.post_as_user(&marker).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the marker carried", || {
        !announces_of(&follower, &object_id(&marker)).is_empty()
    })
    .await;
    assert!(announces_of(&follower, &object_id(&later)).is_empty());
}

// ------------------------------------------------------------------------------------------------
// The pages, links and API that show the topics
// ------------------------------------------------------------------------------------------------

async fn text(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.expect("GET");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// The page at `url` once it contains `needle`.
async fn page_with(client: &reqwest::Client, url: &str, needle: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = text(client, url).await;
        if status == StatusCode::OK && body.contains(needle) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{url} never showed {needle}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn topics_api(client: &reqwest::Client, base: &str, query: &str) -> (StatusCode, Value) {
    let response = client
        .get(format!("{base}/api/plaza/v1/topics{query}"))
        .send()
        .await
        .expect("topics API");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

fn listed<'a>(answer: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    answer["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["kind"] == kind && t["name"] == name)
}

/// `/topics`, a topic's page, the "follow this topic" links of hashtag and search pages, and the
/// topics API, over topics followed through their inboxes and a curated search, with a post carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_listed_shown_linked_and_served_by_the_api() {
    const TOKEN: &str = "topic-pages-admin";
    let relay =
        Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN), ("PLAZA_CLIENT_IP_RATE", "0")]).await;
    let base = relay.base.clone();
    let host = format!("127.0.0.1:{}", relay.port);
    let client = reqwest::Client::new();

    // Before anything is followed the page says so, and the API lists nothing.
    let (status, empty) = text(&client, &format!("{base}/topics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("Nobody follows a topic here yet"), "{empty}");
    let (_, none) = topics_api(&client, &base, "").await;
    assert_eq!(none, json!({ "topics": [] }));

    // The admins curate a search; two instances add topics as relays; an author opts in and posts.
    let created = client
        .post(format!("{base}/api/v1/admin/topics"))
        .bearer_auth(TOKEN)
        .json(
            &json!({ "slug": "co-ops", "name": "Worker co-ops", "query": "#coop OR #cooperative" }),
        )
        .send()
        .await
        .expect("curate");
    assert_eq!(created.status(), StatusCode::CREATED);
    let home = Instance::start(Flavor::Mastodon, &relay).await;
    home.subscribe(&relay).await;
    home.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    let first = Instance::start(Flavor::Mastodon, &relay).await;
    let second = Instance::start(Flavor::Mastodon, &relay).await;
    follow_topic(&first, &relay, "/topics/tag/coop", PUBLIC, false).await;
    follow_topic(&second, &relay, "/topics/tag/coop", PUBLIC, false).await;
    follow_topic(&first, &relay, "/topics/language/en", PUBLIC, false).await;
    let create = tagged(
        &home,
        "Our bakery became a worker cooperative today #coop",
        &["coop"],
        Some("en"),
    );
    let note_id = object_id(&create);
    let (status, body) = home.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually("the post carried to the #coop topic's followers", || {
        first.got_object(&note_id) && second.got_object(&note_id)
    })
    .await;

    // The API: most followed first, the three ways to follow, counts, a curated search's definition.
    let (status, all) = topics_api(&client, &base, "").await;
    assert_eq!(status, StatusCode::OK);
    let coop = listed(&all, "tag", "coop").expect("#coop listed");
    assert_eq!(all["topics"][0], *coop, "the most followed first: {all}");
    assert_eq!(coop["label"], "#coop");
    assert_eq!(coop["actor"], format!("{base}/topics/tag/coop"));
    assert_eq!(coop["inbox"], format!("{base}/topics/tag/coop/inbox"));
    assert_eq!(coop["handle"], format!("tag.coop@{host}"));
    assert_eq!(coop["followers"], 2);
    assert!(coop["carried"].as_u64().is_some_and(|n| n >= 1), "{coop}");
    assert!(coop.get("title").is_none() && coop.get("query").is_none());
    let en = listed(&all, "language", "en").expect("language listed");
    assert_eq!(en["followers"], 1);
    assert_eq!(en["handle"], format!("language.en@{host}"));
    let search = listed(&all, "search", "co-ops").expect("curated search listed");
    assert_eq!(search["title"], "Worker co-ops");
    assert_eq!(search["query"], "#coop OR #cooperative");
    assert_eq!(search["followers"], 0);
    assert_eq!(all["topics"].as_array().map(Vec::len), Some(3), "{all}");
    // Filtered by kind; the limit clamped to 1..=200; a kind that is none is a 400.
    let (_, tags) = topics_api(&client, &base, "?kind=tag").await;
    assert_eq!(tags["topics"].as_array().map(Vec::len), Some(1), "{tags}");
    assert_eq!(tags["topics"][0]["name"], "coop");
    let (_, searches) = topics_api(&client, &base, "?kind=search").await;
    assert_eq!(searches["topics"][0]["name"], "co-ops", "{searches}");
    assert_eq!(searches["topics"].as_array().map(Vec::len), Some(1));
    for (query, expected) in [("?limit=1", 1), ("?limit=0", 1), ("?limit=100000", 3)] {
        let (status, limited) = topics_api(&client, &base, query).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(
            limited["topics"].as_array().map(Vec::len),
            Some(expected),
            "{query}: {limited}"
        );
    }
    let (status, refused) = topics_api(&client, &base, "?kind=person").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("person")),
        "{refused}"
    );
    let document: Value = client
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(document["paths"]["/api/plaza/v1/topics"]["get"].is_object());

    // `/topics`: grouped by kind, follower counts, links, the newest carried post (once the index
    // has committed it: pages show carried posts as the index holds them).
    let topics = page_with(&client, &format!("{base}/topics"), "Our bakery became").await;
    for needle in [
        "<h2 id=\"tag\">Hashtags</h2>",
        "<h2 id=\"language\">Languages</h2>",
        "<h2 id=\"search\">Curated searches</h2>",
        "<a href=\"/topics/tag/coop\">#coop</a>",
        "<a href=\"/topics/search/co-ops\">Worker co-ops</a>",
        "<span class=\"followers\">2 followers</span>",
        "<span class=\"followers\">1 follower</span>",
        "<code>#coop OR #cooperative</code>",
        "Our bakery became a worker cooperative today",
    ] {
        assert!(topics.contains(needle), "{needle} in {topics}");
    }
    assert!(!topics.contains("<script"), "{topics}");

    // A topic's page: the three ways to follow as selectable fields, the count, the carried post.
    let (status, page) = text(&client, &format!("{base}/topics/tag/coop")).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        format!("<input id=\"handle\" type=\"text\" readonly value=\"@tag.coop@{host}\">"),
        format!(
            "<input id=\"relay-inbox\" type=\"text\" readonly value=\"{base}/topics/tag/coop/inbox\">"
        ),
        format!("<input id=\"actor\" type=\"text\" readonly value=\"{base}/topics/tag/coop\">"),
        "<dd class=\"followers\">2</dd>".to_owned(),
        "Our bakery became a worker cooperative today".to_owned(),
    ] {
        assert!(page.contains(&needle), "{needle} in {page}");
    }
    let (_, curated) = text(&client, &format!("{base}/topics/search/co-ops")).await;
    assert!(curated.contains("<h1>Worker co-ops</h1>"), "{curated}");
    assert!(
        curated.contains("<code>#coop OR #cooperative</code>"),
        "{curated}"
    );
    let (_, language) = text(&client, &format!("{base}/topics/language/en")).await;
    assert!(
        language.contains("written in the language en"),
        "{language}"
    );
    assert!(
        language.contains("<dd class=\"followers\">1</dd>"),
        "{language}"
    );

    // "Follow this topic" from the hashtag's page and from searches that amount to a topic.
    let (_, tag) = text(&client, &format!("{base}/tags/coop")).await;
    assert!(
        tag.contains("<a class=\"follow-topic\" href=\"/topics/tag/coop\">Follow this topic</a>"),
        "{tag}"
    );
    for (q, topic) in [
        ("%23CoOp", "/topics/tag/coop"),
        ("language%3Aen", "/topics/language/en"),
        ("%23coop+OR+%23cooperative", "/topics/search/co-ops"),
    ] {
        let (status, found) = text(&client, &format!("{base}/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert!(
            found.contains(&format!("<a href=\"{topic}\">Follow this topic</a>")),
            "{q}: {found}"
        );
    }
    for q in ["cooperative", "%23coop+bakery"] {
        let (_, found) = text(&client, &format!("{base}/search?q={q}")).await;
        assert!(!found.contains("Follow this topic"), "{q}: {found}");
    }
}

// The topic feeds on both stores: on PostgreSQL a follower inbox's deliveries are a lease its node
// claims (src/cluster), not started by the follow itself.
crate::on_both_backends!(
    a_tag_is_followed_three_ways_and_carries_only_what_its_authors_agreed_to,
    overlapping_topics_of_every_kind_reach_an_inbox_once,
    nothing_carried_is_lost_over_kill_9_and_order_holds,
);
