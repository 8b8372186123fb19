//! The search APIs end to end: the real relay, simulated instances whose authors consent to search (or do
//! not), public notes posted through the inbox and found through `/api/v2/search`, the timelines, the
//! instance entities, the native API and its OpenAPI document, `/metrics`, and `plaza reindex` on a
//! stopped relay's data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// GETs `path` of the relay: status, headers, body as JSON (`Null` when not JSON).
pub(crate) async fn get(
    relay: &Relay,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", relay.base))
        .header("Origin", "https://phanpy.example")
        .send()
        .await
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Polls `path` until `check` holds for its JSON body.
pub(crate) async fn until(
    relay: &Relay,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(relay, path).await;
        if status == StatusCode::OK && check(&body) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "timed out waiting for {what}; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Index jobs the relay has run (`plaza_search_duration_seconds_count`).
async fn searches_run(relay: &Relay) -> u64 {
    let metrics = relay.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("plaza_search_duration_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no search count in {metrics}"))
}

pub(crate) fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

/// Posts a public note by alice of `instance` with hashtags and a publication time, returning its id.
async fn post(instance: &Instance, text: &str, tags: &[&str], published: &str) -> String {
    post_with(instance, text, tags, published, json!({})).await
}

/// [`post`] with more fields of the note (`inReplyTo`, `attachment`…).
pub(crate) async fn post_with(
    instance: &Instance,
    text: &str,
    tags: &[&str],
    published: &str,
    more: Value,
) -> String {
    let mut create = instance.public_create(text);
    create["object"]["published"] = json!(published);
    create["object"]["tag"] = tags
        .iter()
        .map(|t| {
            json!({ "type": "Hashtag", "name": format!("#{t}"),
            "href": format!("{}/tags/{t}", instance.base) })
        })
        .collect();
    if let Value::Object(fields) = more {
        for (k, v) in fields {
            create["object"][k] = v;
        }
    }
    let (status, body) = instance.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    create["object"]["id"].as_str().expect("id").to_string()
}

/// A relay with a consenting Organization on one instance (three posts about sourdough, two tagged
/// #coop) and an author who did not opt in on another (one post about sourdough).
async fn world() -> (Relay, Arc<Instance>, Arc<Instance>, Vec<String>) {
    let relay = Relay::start().await;
    let bakery = Instance::start(Flavor::Mastodon, &relay).await;
    bakery.set_user_fields(json!({
        "type": "Organization",
        "name": "Alice's Bakery Co-op",
        "summary": "<p>Worker-owned bakery <a href=\"#\">#coop</a></p>",
        "indexable": true,
        "discoverable": true,
        "published": "2024-03-01T12:00:00Z",
        "tag": [{ "type": "Hashtag", "name": "#coop", "href": "https://x.example/tags/coop" }]
    }));
    let shy = Instance::start(Flavor::Mastodon, &relay).await;
    shy.set_user_fields(json!({ "discoverable": true }));
    bakery.subscribe(&relay).await;
    shy.subscribe(&relay).await;
    let mut ids = Vec::new();
    for (n, tags) in [&["coop", "bread"][..], &["coop"][..], &[][..]]
        .iter()
        .enumerate()
    {
        ids.push(
            post(
                &bakery,
                &format!("sourdough loaf number {n} from our ovens"),
                tags,
                &format!("2026-11-2{}T10:00:00Z", n + 1),
            )
            .await,
        );
    }
    post(
        &shy,
        "my secret sourdough recipe",
        &[],
        "2026-11-25T10:00:00Z",
    )
    .await;
    until(
        &relay,
        "/api/v2/search?q=sourdough&type=statuses",
        "three indexed posts",
        |b| len(&b["statuses"]) == 3,
    )
    .await;
    // The indexer has read every entry (the shy author's post, last in the log, included) and the
    // index judged that post and refused it: absence checks of it are made after the fact.
    relay.until_caught_up("plaza_indexer_lag_entries").await;
    relay
        .until_metric_at_least("plaza_index_posts_refused_total", 1)
        .await;
    (relay, bakery, shy, ids)
}

pub(crate) fn assert_iso_time(v: &Value, what: &str) {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is a string: {v}"));
    // 2026-11-23T10:00:00.000Z
    assert_eq!(t.len(), 24, "{what}: {t}");
    assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{what}: {t}");
}

fn assert_account(a: &Value, bakery: &Instance) {
    assert!(
        a["id"].as_str().is_some_and(|id| id.parse::<u64>().is_ok()),
        "{a}"
    );
    assert_eq!(a["username"], "alice");
    assert_eq!(a["acct"], format!("alice@{}", bakery.authority()));
    assert_eq!(a["display_name"], "Alice's Bakery Co-op");
    assert!(
        a["note"]
            .as_str()
            .is_some_and(|n| n.contains("Worker-owned")),
        "{a}"
    );
    assert!(a["url"].is_string() && a["avatar"].is_string() && a["header"].is_string());
    assert!(a["avatar_static"].is_string() && a["header_static"].is_string());
    assert!(a["fields"].is_array() && a["emojis"].is_array());
    assert_eq!(a["bot"], false);
    assert_eq!(a["group"], false);
    assert_eq!(a["locked"], false);
    assert_eq!(a["discoverable"], true);
    assert_iso_time(&a["created_at"], "account created_at");
    for count in ["followers_count", "following_count", "statuses_count"] {
        assert!(a[count].is_u64(), "{count}: {a}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_search_finds_consenting_posts_in_mastodon_shapes() {
    let (relay, bakery, shy, ids) = world().await;

    let (status, headers, body) = get(&relay, "/api/v2/search?q=sourdough&type=statuses").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("*"),
        "browser clients may read the API"
    );
    assert_eq!(body["accounts"], json!([]));
    assert_eq!(body["hashtags"], json!([]));
    let statuses = body["statuses"].as_array().expect("statuses");
    let uris: Vec<&str> = statuses.iter().filter_map(|s| s["uri"].as_str()).collect();
    for id in &ids {
        assert!(uris.contains(&id.as_str()), "{id} found among {uris:?}");
    }
    assert!(
        !uris.iter().any(|u| u.contains(&shy.authority())),
        "the author who did not opt in is not searchable"
    );
    let tagged = statuses
        .iter()
        .find(|s| s["uri"] == ids[0].as_str())
        .expect("first post");
    assert!(
        tagged["id"]
            .as_str()
            .is_some_and(|id| id.parse::<u64>().is_ok())
    );
    assert_iso_time(&tagged["created_at"], "created_at");
    assert_eq!(tagged["created_at"], "2026-11-21T10:00:00.000Z");
    assert!(
        tagged["content"]
            .as_str()
            .is_some_and(|c| c.contains("sourdough loaf number 0"))
    );
    assert!(tagged["url"].is_string());
    assert_eq!(tagged["visibility"], "public");
    assert_eq!(tagged["sensitive"], false);
    assert_eq!(tagged["spoiler_text"], "");
    for count in ["replies_count", "reblogs_count", "favourites_count"] {
        assert_eq!(tagged[count], 0, "{count}");
    }
    for null in [
        "in_reply_to_id",
        "in_reply_to_account_id",
        "reblog",
        "poll",
        "card",
    ] {
        assert!(tagged.get(null).is_some_and(Value::is_null), "{null}");
    }
    assert!(tagged["media_attachments"].is_array() && tagged["mentions"].is_array());
    assert!(tagged["emojis"].is_array());
    let tags: Vec<&str> = tagged["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        tags.contains(&"coop") && tags.contains(&"bread"),
        "{tags:?}"
    );
    assert!(
        tagged["tags"][0]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&relay.base))
    );
    assert_account(&tagged["account"], &bakery);

    // Accounts: the discoverable Organization; hashtags with their history as strings.
    let body = until(
        &relay,
        "/api/v2/search?q=bakery&type=accounts",
        "the profile",
        |b| len(&b["accounts"]) == 1,
    )
    .await;
    assert_account(&body["accounts"][0], &bakery);
    assert_eq!(body["statuses"], json!([]));
    let (_, _, body) = get(&relay, "/api/v2/search?q=%23coop&type=hashtags").await;
    let tag = &body["hashtags"][0];
    assert_eq!(tag["name"], "coop", "{body}");
    assert!(tag["url"].is_string());
    let day = &tag["history"][0];
    for field in ["day", "uses", "accounts"] {
        assert!(
            day[field]
                .as_str()
                .is_some_and(|v| v.parse::<u64>().is_ok()),
            "history {field} is a number in a string: {tag}"
        );
    }

    // A pasted link finds the post, or the listed profile, it names.
    let (_, _, linked) = get(&relay, &format!("/api/v2/search?q={}", urlencode(&ids[1]))).await;
    assert_eq!(len(&linked["statuses"]), 1, "{linked}");
    assert_eq!(linked["statuses"][0]["uri"], ids[1].as_str());
    let searches_before = searches_run(&relay).await;
    let (_, _, profile) = get(
        &relay,
        &format!("/api/v2/search?q={}", urlencode(&bakery.user())),
    )
    .await;
    assert_eq!(
        profile["accounts"][0]["uri"],
        bakery.user().as_str(),
        "{profile}"
    );
    assert!(
        profile["statuses"].as_array().is_some_and(Vec::is_empty),
        "{profile}"
    );
    assert_eq!(
        searches_run(&relay).await - searches_before,
        2,
        "a profile's link is looked up as a post once, then as an account"
    );

    // A browser's preflight is answered for any origin.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v2/search?q=x", relay.base),
        )
        .header("Origin", "https://elk.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );

    // Everything at once, and a search within one account (the id handed out above).
    let (_, _, all) = get(&relay, "/api/v2/search?q=sourdough").await;
    assert_eq!(len(&all["statuses"]), 3);
    let account_id = tagged["account"]["id"].as_str().expect("account id");
    let (status, _, mine) = get(
        &relay,
        &format!("/api/v2/search?q=sourdough&type=statuses&account_id={account_id}&resolve=true"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(len(&mine["statuses"]), 3);

    // Pagination: limit and offset; max_id pages by id (newest first).
    let (_, _, first) = get(&relay, "/api/v2/search?q=sourdough&type=statuses&limit=2").await;
    assert_eq!(len(&first["statuses"]), 2);
    let (_, _, rest) = get(
        &relay,
        "/api/v2/search?q=sourdough&type=statuses&limit=2&offset=2",
    )
    .await;
    assert_eq!(len(&rest["statuses"]), 1);
    let mut seen: Vec<&str> = first["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(rest["statuses"].as_array().into_iter().flatten())
        .filter_map(|s| s["uri"].as_str())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "offset pages do not overlap");
    let newest_id = statuses
        .iter()
        .find(|s| s["uri"] == ids[2].as_str())
        .and_then(|s| s["id"].as_str())
        .expect("newest id");
    let (_, _, older) = get(
        &relay,
        &format!("/api/v2/search?q=sourdough&type=statuses&max_id={newest_id}"),
    )
    .await;
    let older: Vec<&str> = older["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["uri"].as_str())
        .collect();
    assert_eq!(
        older,
        vec![ids[1].as_str(), ids[0].as_str()],
        "older than max_id, newest first"
    );

    // Malformed queries and parameters: 400 with the reason, as JSON.
    for (path, reason) in [
        ("/api/v2/search?q=%22unclosed", "quote"),
        ("/api/v2/search?q=has:nothing", "has"),
        ("/api/v2/search?q=sourdough&limit=lots", "limit"),
        ("/api/v2/search?q=sourdough&type=people", "type"),
        ("/api/v2/search", "q"),
        (
            "/api/v2/search?q=sourdough&type=statuses&offset=18446744073709551615",
            "offset",
        ),
    ] {
        let (status, _, body) = get(&relay, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.to_lowercase().contains(reason), "{path}: {error}");
    }

    // Hashtags past the end are none, however far the offset.
    let (status, _, far) = get(
        &relay,
        "/api/v2/search?q=coop&type=hashtags&offset=18446744073709551615",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{far}");
    assert_eq!(far["hashtags"], json!([]));

    // The search outcomes and latency in /metrics.
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("# TYPE plaza_search_duration_seconds histogram"),
        "{metrics}"
    );
    assert!(metrics.contains("plaza_search_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(metrics.contains("plaza_search_duration_seconds_sum "));
    let bad = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plaza_searches_total{outcome=\"bad_query\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("bad_query counter");
    assert!(bad >= 2, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_ids_find_an_accounts_posts_after_a_restart() {
    let (mut relay, bakery, _shy, ids) = world().await;
    let (_, _, found) = get(&relay, "/api/v2/search?q=sourdough&type=statuses").await;
    let account_id = found["statuses"][0]["account"]["id"]
        .as_str()
        .expect("account id")
        .to_owned();
    relay.kill_and_restart().await;
    // Nothing was searched since the restart: the id is understood without having been handed out by
    // this process.
    let (status, _, mine) = get(
        &relay,
        &format!("/api/v2/search?q=sourdough&type=statuses&account_id={account_id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let mut uris: Vec<&str> = mine["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["uri"].as_str())
        .collect();
    uris.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(uris, expected);
    assert!(
        mine["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|s| s["account"]["id"] == account_id.as_str())
    );
    // The actor id works as well, and names the same account.
    let (_, _, by_uri) = get(
        &relay,
        &format!(
            "/api/v2/search?q=sourdough&type=statuses&account_id={}",
            urlencode(&bakery.user())
        ),
    )
    .await;
    assert_eq!(len(&by_uri["statuses"]), 3, "{by_uri}");
    // An id nobody has: no statuses.
    let (status, _, none) = get(
        &relay,
        "/api/v2/search?q=sourdough&type=statuses&account_id=12345",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(len(&none["statuses"]), 0, "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelines_page_with_link_headers_and_instances_describe_the_relay() {
    let (relay, bakery, shy, ids) = world().await;

    let (status, headers, page) = get(&relay, "/api/v1/timelines/public?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let uris = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("statuses")
            .iter()
            .filter_map(|s| s["uri"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        uris(&page),
        vec![ids[2].clone(), ids[1].clone()],
        "newest first"
    );
    let link = headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("Link header")
        .to_string();
    let target = |rel: &str| -> String {
        link.split(", ")
            .find(|part| part.ends_with(&format!("rel=\"{rel}\"")))
            .and_then(|part| part.split(['<', '>']).nth(1))
            .expect("link target")
            .strip_prefix(&relay.base)
            .expect("on the relay")
            .to_string()
    };
    let next = target("next");
    assert!(
        next.contains("max_id=") && next.contains("limit=2"),
        "{link}"
    );
    let (_, _, older) = get(&relay, &next).await;
    assert_eq!(uris(&older), vec![ids[0].clone()]);
    let prev = target("prev");
    let (_, _, newer) = get(&relay, &prev).await;
    assert_eq!(
        uris(&newer),
        Vec::<String>::new(),
        "nothing newer than the newest"
    );
    let oldest_id = older[0]["id"].as_str().expect("id").to_string();
    let (_, _, after) = get(
        &relay,
        &format!("/api/v1/timelines/public?min_id={oldest_id}&limit=1"),
    )
    .await;
    assert_eq!(
        uris(&after),
        vec![ids[1].clone()],
        "min_id: the page just after"
    );

    let (status, headers, tagged) = get(&relay, "/api/v1/timelines/tag/Coop").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(uris(&tagged), vec![ids[1].clone(), ids[0].clone()]);
    assert!(headers.get("link").is_some());
    let (_, _, bread) = get(&relay, "/api/v1/timelines/tag/bread").await;
    assert_eq!(uris(&bread), vec![ids[0].clone()]);

    // A status by id, as a client opening it does.
    let id = tagged[0]["id"].as_str().expect("id");
    let (status, _, one) = get(&relay, &format!("/api/v1/statuses/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["uri"], ids[1].as_str());
    let (status, _, _) = get(&relay, "/api/v1/statuses/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, v2) = get(&relay, "/api/v2/instance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v2["title"], "Plaza relay");
    assert!(
        v2["domain"]
            .as_str()
            .is_some_and(|d| relay.base.ends_with(d))
    );
    assert!(
        v2["version"]
            .as_str()
            .is_some_and(|v| v.contains("compatible; Plaza"))
    );
    assert!(v2["configuration"]["statuses"]["max_characters"].is_u64());
    assert!(
        v2["usage"]["users"]["active_month"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let (_, _, v1) = get(&relay, "/api/v1/instance").await;
    assert_eq!(v1["stats"]["status_count"], 3);
    assert!(v1["uri"].is_string() && v1["urls"]["streaming_api"].is_string());

    let peers = until(&relay, "/api/v1/instance/peers", "both peers", |b| {
        len(b) == 2
    })
    .await;
    for instance in [&bakery, &shy] {
        let host = instance.base.trim_start_matches("http://");
        assert!(
            peers
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p == host)),
            "{host} in {peers}"
        );
    }
    let (status, _, emojis) = get(&relay, "/api/v1/custom_emojis").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emojis, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_api_gives_snippets_facets_cursors_directory_and_its_openapi_document() {
    let (relay, bakery, _shy, _ids) = world().await;

    let (status, _, page) = get(
        &relay,
        "/api/plaza/v1/search?q=sourdough&limit=2&facets=true&sort=newest",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 3);
    assert_eq!(len(&page["posts"]), 2);
    assert!(
        page["posts"][0]["snippet_html"]
            .as_str()
            .is_some_and(|s| s.contains("<b>sourdough</b>")),
        "{page}"
    );
    let instances = &page["facets"]["instance"];
    assert_eq!(instances[0]["value"], bakery.authority().as_str(), "{page}");
    assert_eq!(instances[0]["count"], 3);
    assert_eq!(
        page["facets"]["sampled"], false,
        "three matches are all counted"
    );
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, _, rest) = get(
        &relay,
        &format!("/api/plaza/v1/search?q=sourdough&limit=2&sort=newest&cursor={cursor}"),
    )
    .await;
    assert_eq!(len(&rest["posts"]), 1);
    assert!(rest["next_cursor"].is_null());

    let (status, _, dir) = get(&relay, "/api/plaza/v1/directory?type=organization&tag=coop").await;
    assert_eq!(status, StatusCode::OK, "{dir}");
    assert_eq!(
        dir["profiles"][0]["acct"],
        format!("alice@{}", bakery.authority())
    );
    assert_eq!(dir["profiles"][0]["actor_type"], "organization");
    let (_, _, none) = get(&relay, "/api/plaza/v1/directory?type=person&tag=coop").await;
    assert_eq!(len(&none["profiles"]), 0);
    let (status, _, bad) = get(&relay, "/api/plaza/v1/directory?type=robot").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("robot")));
    let (status, _, bad) = get(&relay, "/api/plaza/v1/search?q=before:someday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let (_, _, counts) = get(&relay, "/api/plaza/v1/counts").await;
    assert_eq!(counts["posts"], 3);
    let list = until(&relay, "/api/plaza/v1/instances", "instances", |b| {
        b["instances"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["posts"] == 3))
    })
    .await;
    assert!(len(&list["instances"]) >= 1);

    let (status, headers, doc) = get(&relay, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/plaza/v1/search",
        "/api/plaza/v1/directory",
        "/api/plaza/v1/tags",
        "/api/plaza/v1/instances",
        "/api/plaza/v1/counts",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} in the document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_on_a_stopped_relay_keeps_results() {
    let (mut relay, _bakery, _shy, ids) = world().await;

    let running = relay.command(&["reindex"]);
    assert!(!running.status.success(), "refused while the relay runs");
    let stderr = String::from_utf8_lossy(&running.stderr);
    assert!(stderr.contains("stop the relay"), "{stderr}");

    relay.kill();
    let done = relay.command(&["reindex"]);
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("reindexed 3 posts"), "{stdout}");
    assert!(stderr.contains("reindexing: "), "progress shown: {stderr}");

    relay.start_again().await;
    let (_, _, body) = get(&relay, "/api/v2/search?q=sourdough&type=statuses").await;
    let mut found: Vec<&str> = body["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["uri"].as_str())
        .collect();
    found.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_index_off_searches_say_so_and_the_instance_still_describes_the_relay() {
    let relay = Relay::start_with(&[("PLAZA_INDEX_ENABLED", "false")]).await;
    for path in [
        "/api/v2/search?q=sourdough",
        "/api/v1/timelines/public",
        "/api/plaza/v1/search?q=sourdough",
        "/api/plaza/v1/directory",
    ] {
        let (status, _, body) = get(&relay, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("turned off")),
            "{path}: {body}"
        );
    }
    let (status, _, v1) = get(&relay, "/api/v1/instance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v1["stats"]["status_count"], 0);
    assert!(
        !relay.data_dir.join("index").exists(),
        "no index is created"
    );
}
