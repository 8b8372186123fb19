//! Trends end to end: consenting people on several instances post a hashtag and a link and boost a
//! post through the relay; Mastodon's Explore API (`/api/v1/trends/*`), a FASP server's signed
//! `trends` calls and the web pages show them, while a hashtag one person posts never trends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fasp::{Server, verified};
use crate::support::*;

const TOKEN: &str = "trends-admin-token";
const LINK: &str = "https://news.example/worker-coops-law";

/// A consenting Mastodon instance, subscribed.
async fn member(relay: &Relay) -> Arc<Instance> {
    let instance = Instance::start(Flavor::Mastodon, relay).await;
    instance.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    instance.subscribe(relay).await;
    instance
}

/// Posts alice's public note with `text`, hashtags `tags` and `link` in its content; its id.
async fn post(instance: &Instance, text: &str, tags: &[&str], link: Option<&str>) -> String {
    let mut create = instance.public_create(text);
    let mut html = format!("<p>{text}");
    for t in tags {
        html.push_str(&format!(
            r#" <a href="{}/tags/{t}" class="mention hashtag" rel="tag">#{t}</a>"#,
            instance.base
        ));
    }
    if let Some(link) = link {
        html.push_str(&format!(r#" <a href="{link}">read</a>"#));
    }
    html.push_str("</p>");
    create["object"]["content"] = json!(html);
    create["object"]["tag"] = tags
        .iter()
        .map(|t| json!({"type": "Hashtag", "name": format!("#{t}"), "href": format!("{}/tags/{t}", instance.base)}))
        .collect();
    instance.host_object(create["object"].clone());
    let (status, body) = instance.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    create["object"]["id"].as_str().expect("id").to_string()
}

/// Polls `path` until its JSON answer satisfies `check`.
async fn until(relay: &Relay, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get_status_json(format!("{}{path}", relay.base)).await;
        if status == StatusCode::OK && check(&body) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{path} never showed it; last {status}: {body}; log: {}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_people_on_several_instances_take_up_trends_everywhere_and_one_person_cannot() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let members = [
        member(&relay).await,
        member(&relay).await,
        member(&relay).await,
        member(&relay).await,
    ];
    for m in &members[..3] {
        post(m, "potluck at the co-op tonight", &["potluck"], Some(LINK)).await;
    }
    // One person, many posts: never a trend.
    for n in 0..5 {
        post(&members[3], &format!("my own tag {n}"), &["mytag"], None).await;
    }
    // A post three people on three other instances boost.
    let boosted = post(&members[0], "our bakery co-op turns ten", &[], None).await;
    for (n, m) in members[1..].iter().enumerate() {
        let boost = json!({ "id": format!("{}/statuses/boost-{n}/activity", m.user()),
            "type": "Announce", "actor": m.user(), "object": boosted,
            "to": [PUBLIC], "cc": [format!("{}/followers", m.user())] });
        let (status, body) = m.post_as_user(&boost).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    relay.until_caught_up("plaza_indexer_lag_entries").await;

    // Mastodon's Explore API.
    let tags = until(&relay, "/api/v1/trends/tags", |b| {
        b.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(tags.as_array().map(Vec::len), Some(1), "{tags}");
    let tag = &tags[0];
    assert_eq!(tag["name"], "potluck");
    assert_eq!(tag["url"], format!("{}/tags/potluck", relay.base));
    let history = tag["history"].as_array().expect("history");
    assert_eq!(history.len(), 7);
    assert_eq!(history[0]["uses"], "3");
    assert_eq!(history[0]["accounts"], "3");
    assert!(
        history[0]["day"]
            .as_str()
            .is_some_and(|d| d.parse::<i64>().is_ok())
    );
    let (_, old_path) = get_status_json(format!("{}/api/v1/trends?limit=5", relay.base)).await;
    assert_eq!(old_path, tags, "the old path answers the same");

    let statuses = until(&relay, "/api/v1/trends/statuses", |b| {
        b.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(statuses.as_array().map(Vec::len), Some(1), "{statuses}");
    assert_eq!(statuses[0]["uri"], boosted.as_str());
    assert!(statuses[0]["id"].is_string() && statuses[0]["account"]["acct"].is_string());
    assert!(
        statuses[0]["content"]
            .as_str()
            .is_some_and(|c| c.contains("turns ten"))
    );

    let (status, links) = get_status_json(format!("{}/api/v1/trends/links", relay.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(links.as_array().map(Vec::len), Some(1), "{links}");
    assert_eq!(links[0]["url"], LINK);
    assert_eq!(links[0]["type"], "link");
    assert_eq!(links[0]["provider_name"], "news.example");
    for field in ["title", "description", "author_name", "html", "embed_url"] {
        assert!(links[0][field].is_string(), "{field}: {links}");
    }
    let (status, body) =
        get_status_json(format!("{}/api/v1/trends/tags?limit=0", relay.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("limit")));
    let (_, none) = get_status_json(format!("{}/api/v1/trends/tags?offset=1", relay.base)).await;
    assert_eq!(none, json!([]));

    // The web pages.
    let home = get_text(format!("{}/", relay.base)).await;
    assert!(home.contains("Trending today"), "{home}");
    assert!(home.contains("href=\"/tags/potluck\""), "{home}");
    assert!(home.contains(LINK) && home.contains("turns ten"), "{home}");
    assert!(
        home.contains("#potluck</a> <small>(3 people on 3 instances)"),
        "{home}"
    );
    assert!(
        !home.contains("#mytag</a> <small>"),
        "one person's tag is not trending"
    );
    let tag_page = get_text(format!("{}/tags/potluck", relay.base)).await;
    assert!(
        tag_page.contains("Trending with #potluck today"),
        "{tag_page}"
    );

    // A FASP server asks through signed requests once it activated the capability.
    let server = Server::start().await;
    let plaza_key = server.register_with(&relay, TOKEN).await;
    let hashtags = "/trends/v0/hashtags?withinLastHours=4&maxCount=20&language=en";
    let (status, _, _) = verified(
        server.signed(&relay, reqwest::Method::GET, hashtags).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not activated yet");
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::POST,
                "/capabilities/trends/0/activation",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let ask = |path: &'static str| {
        let (server, relay, key) = (&server, &relay, &plaza_key);
        async move {
            let (status, _, body) =
                verified(server.signed(relay, reqwest::Method::GET, path).await, key).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            serde_json::from_slice::<Value>(&body).expect("JSON")
        }
    };
    // The simulated posts carry no language: detection decides, so ask without one.
    let body = ask("/trends/v0/hashtags?withinLastHours=4&maxCount=20").await;
    assert_eq!(body["hashtags"][0]["name"], "potluck", "{body}");
    assert_eq!(body["hashtags"][0]["rank"], 100);
    assert_eq!(
        body["hashtags"][0]["examples"].as_array().map(Vec::len),
        Some(3)
    );
    let body = ask("/trends/v0/links").await;
    assert_eq!(
        body,
        json!({"links": [{"url": LINK, "rank": 100, "examples": body["links"][0]["examples"]}]})
    );
    let body = ask("/trends/v0/content?withinLastHours=168").await;
    assert_eq!(body, json!({"content": [{"uri": boosted, "rank": 100}]}));
    let (status, _, body) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::GET,
                "/trends/v0/content?withinLastHours=500",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&body)
    );
}
