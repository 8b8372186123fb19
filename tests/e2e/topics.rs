//! End-to-end: topic actors (issue 16) as a remote server and a browser see them — WebFinger handle
//! to actor, the actor's own durable key, the page, and the cap on how many topics may exist.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

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
