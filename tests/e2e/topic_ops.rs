//! End-to-end: running topic feeds (issue 16) as an operator does — curated search topics added,
//! listed and removed with `plaza admin topics`, and the topic series of `/metrics` after a real
//! follow: a simulated Mastodon instance adds a hashtag topic's inbox as a relay, a consenting author
//! on a subscribed instance posts with that hashtag, and the topic carries it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;
use crate::topics::{object_id, tagged};

const TOKEN: &str = "topic-ops-token";

/// Runs `plaza admin ARGS` against `relay`; whether it succeeded, and what it printed.
fn plaza_admin(relay: &Relay, args: &[&str]) -> (bool, String) {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--token", TOKEN]);
    let out = tokio::task::block_in_place(|| relay.command(&all));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `plaza admin ARGS --json`, parsed; panics on failure.
fn plaza_admin_json(relay: &Relay, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out) = plaza_admin(relay, &all);
    assert!(ok, "plaza admin {args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `plaza admin topics add SLUG --query QUERY --name NAME`, which must succeed; what it printed.
fn add_curated(relay: &Relay, slug: &str, query: &str, name: &str) -> String {
    let (ok, out) = plaza_admin(
        relay,
        &["topics", "add", slug, "--query", query, "--name", name],
    );
    assert!(ok, "{out}");
    out
}

/// The row of `plaza admin topics list --json` for `kind`/`name`.
fn listed(relay: &Relay, kind: &str, name: &str) -> Option<Value> {
    plaza_admin_json(relay, &["topics", "list"])["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["kind"] == kind && t["name"] == name)
        .cloned()
}

async fn status_of(url: &str) -> StatusCode {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get");
    StatusCode::from_u16(response.status().as_u16()).expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curated_topics_are_added_listed_and_removed_from_the_command_line() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let actor = format!("{}/topics/search/co-ops", relay.base);
    assert_eq!(status_of(&actor).await, StatusCode::NOT_FOUND);

    let out = add_curated(&relay, "co-ops", "#coop OR #cooperative", "Worker co-ops");
    assert!(out.contains("curated topic co-ops: Worker co-ops"), "{out}");
    assert!(out.contains(&format!("actor: {actor}")), "{out}");
    assert_eq!(status_of(&actor).await, StatusCode::OK);

    // The table: a header, then the topic with its title and query.
    let (ok, table) = plaza_admin(&relay, &["topics", "list"]);
    assert!(ok, "{table}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["KIND", "NAME", "FOLLOWERS", "CARRIED", "TITLE", "QUERY"]
    );
    let row = lines.next().expect("a row");
    assert!(row.starts_with("search"), "{table}");
    for cell in ["co-ops", "Worker co-ops", "#coop OR #cooperative"] {
        assert!(row.contains(cell), "{cell}: {table}");
    }

    // Redefining keeps one topic, with the new query.
    add_curated(&relay, "co-ops", "#coop language:es", "Co-ops in Spanish");
    let all = plaza_admin_json(&relay, &["topics", "list"]);
    assert_eq!(all["topics"].as_array().expect("topics").len(), 1, "{all}");
    let topic = listed(&relay, "search", "co-ops").expect("listed");
    assert_eq!(topic["query"], "#coop language:es");
    assert_eq!(topic["title"], "Co-ops in Spanish");
    assert_eq!(topic["followers"], 0);

    // Bad definitions are refused with the relay's reason; nothing changes.
    let refused: [(&[&str], &str); 3] = [
        (
            &[
                "topics",
                "add",
                "co-ops",
                "--query",
                "\"unclosed",
                "--name",
                "x",
            ],
            "query",
        ),
        (
            &["topics", "add", "Co Ops", "--query", "#coop", "--name", "x"],
            "slug",
        ),
        (
            &[
                "topics",
                "add",
                "spam-only",
                "--query",
                "-#spam",
                "--name",
                "x",
            ],
            "only exclude",
        ),
    ];
    for (args, reason) in refused {
        let (ok, out) = plaza_admin(&relay, args);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            out.contains("400") && out.contains(reason),
            "{args:?}: {out}"
        );
    }
    assert_eq!(
        plaza_admin_json(&relay, &["topics", "list"])["topics"],
        all["topics"]
    );

    // Removed: the actor is gone, the list empty, a second removal says so.
    let (ok, out) = plaza_admin(&relay, &["topics", "remove", "co-ops"]);
    assert!(ok, "{out}");
    assert!(out.contains("removed curated topic co-ops"), "{out}");
    assert_eq!(status_of(&actor).await, StatusCode::NOT_FOUND);
    let (ok, table) = plaza_admin(&relay, &["topics", "list"]);
    assert!(ok && table.contains("(none)"), "{table}");
    let (ok, out) = plaza_admin(&relay, &["topics", "remove", "co-ops"]);
    assert!(!ok && out.contains("404"), "{out}");

    // Each change is in the audit log.
    let audit = plaza_admin_json(&relay, &["audit"]);
    let actions: Vec<(&str, &str)> = audit["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("topic-remove", "co-ops"),
            ("topic-add", "co-ops"),
            ("topic-add", "co-ops")
        ]
    );
}

/// The value of a series of `/metrics` whose value may be fractional.
async fn fractional_metric(relay: &Relay, name: &str) -> Option<f64> {
    relay.metrics().await.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A `#coop` post by alice on `author`, accepted by the relay; the note's id.
async fn post_coop(author: &Instance, text: &str) -> String {
    let create = tagged(author, text, &["coop"], None);
    let (status, body) = author.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    object_id(&create)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_metrics_follow_a_real_follow_delivery_and_match() {
    // A short delivery timeout: a request on a connection the downed follower left open fails fast.
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_DELIVERY_TIMEOUT_SECS", "2"),
    ])
    .await;
    let tag = |name: &str| format!("{name}{{kind=\"tag\"}}");
    let search = |name: &str| format!("{name}{{kind=\"search\"}}");
    // Every series is there from the start, at zero.
    for series in [
        tag("plaza_topics"),
        tag("plaza_topic_followers"),
        tag("plaza_topic_deliveries_total"),
        "plaza_topic_delivery_retries_total".into(),
        "plaza_topic_delivery_refused_total".into(),
        "plaza_topic_inboxes".into(),
        "plaza_topic_matched_posts_total".into(),
        "plaza_topic_carried_total".into(),
    ] {
        assert_eq!(relay.metric(&series).await, Some(0), "{series}");
    }
    let text = relay.metrics().await;
    for family in [
        "plaza_topics",
        "plaza_topic_match_seconds_total",
        "plaza_topic_match_cpu_seconds_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}: {text}"
        );
    }

    // A curated search, which matches the same posts.
    add_curated(&relay, "co-ops", "#coop", "Co-ops");

    // A Mastodon admin adds the #coop topic's inbox as a relay: a Follow of Public sent there.
    let follower = Instance::start(Flavor::Mastodon, &relay).await;
    let follow = follow_topic(&follower, &relay, "/topics/tag/coop", PUBLIC, false).await;
    relay.until_metric_at_least("plaza_topic_inboxes", 1).await;
    assert_eq!(relay.metric(&tag("plaza_topics")).await, Some(1));
    assert_eq!(relay.metric(&search("plaza_topics")).await, Some(1));
    assert_eq!(relay.metric(&tag("plaza_topic_followers")).await, Some(1));
    assert_eq!(
        relay.metric(&search("plaza_topic_followers")).await,
        Some(0)
    );

    // A consenting author on a subscribed instance posts #coop: matched, carried, delivered once to
    // the follower's inbox, by the tag topic (the only one it follows).
    let author = Instance::start(Flavor::Mastodon, &relay).await;
    author.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    author.subscribe(&relay).await;
    let first = post_coop(&author, "a bakery co-op opens").await;
    eventually("the topic's Announce", || follower.got_object(&first)).await;
    relay
        .until_metric_at_least(&tag("plaza_topic_deliveries_total"), 1)
        .await;
    assert_eq!(
        relay.metric(&search("plaza_topic_deliveries_total")).await,
        Some(0)
    );
    let announce = follower
        .received()
        .into_iter()
        .find(|r| mentions(&r.activity, &first))
        .expect("announce");
    assert!(
        announce
            .key_id
            .starts_with(&format!("{}/topics/tag/coop", relay.base)),
        "{}",
        announce.key_id
    );
    assert!(
        relay
            .metric("plaza_topic_matched_posts_total")
            .await
            .is_some_and(|n| n >= 1)
    );
    assert!(
        relay
            .metric("plaza_topic_carried_total")
            .await
            .is_some_and(|n| n >= 1)
    );
    let seconds = fractional_metric(&relay, "plaza_topic_match_seconds_total")
        .await
        .expect("match seconds");
    assert!(seconds > 0.0 && seconds < 1.0, "{seconds}");
    // The matching thread's CPU time: counted, and read inside the wall-clock readings, so not more
    // than the wall time (within the two clocks' microsecond of disagreement).
    let cpu = fractional_metric(&relay, "plaza_topic_match_cpu_seconds_total")
        .await
        .expect("match CPU seconds");
    assert!(cpu > 0.0 && cpu <= seconds + 1e-6, "{cpu} of {seconds}");
    // The operator's list shows the follow and what each topic carried.
    let coop = listed(&relay, "tag", "coop").expect("tag listed");
    assert_eq!(coop["followers"], 1, "{coop}");
    assert_eq!(coop["carried"], 1, "{coop}");
    let curated = listed(&relay, "search", "co-ops").expect("search listed");
    assert_eq!(curated["carried"], 1, "{curated}");

    // A follower that is down: the attempts are counted as retries, then it gets the post.
    follower.down().await;
    let second = post_coop(&author, "a second co-op").await;
    relay
        .until_metric_at_least("plaza_topic_delivery_retries_total", 1)
        .await;
    follower.up().await;
    eventually("the Announce after the outage", || {
        follower.got_object(&second)
    })
    .await;
    relay
        .until_metric_at_least(&tag("plaza_topic_deliveries_total"), 2)
        .await;
    assert_eq!(
        relay.metric("plaza_topic_delivery_refused_total").await,
        Some(0)
    );

    // Undo ends the follow: no follower, no worker.
    let undo = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/undo/{}", follower.base, follower.next()),
        "type": "Undo",
        "actor": follower.instance_actor(),
        "object": follow,
    });
    let (status, body) = follower
        .post_to(
            "/topics/tag/coop/inbox",
            &follower.instance_keys,
            &follower.instance_key_id(),
            &undo,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let start = std::time::Instant::now();
    while relay.metric("plaza_topic_inboxes").await != Some(0) {
        assert!(start.elapsed() < PATIENCE, "{}", relay.metrics().await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(relay.metric(&tag("plaza_topic_followers")).await, Some(0));
}
