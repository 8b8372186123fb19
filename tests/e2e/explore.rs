//! The Mastodon Explore and profile reads end to end: `/api/v1/directory`, `/api/v1/accounts/lookup`,
//! `/api/v1/accounts/{id}`, `/api/v1/accounts/{id}/statuses`, `/api/v1/tags/{name}` and the
//! `ancestors` of `/api/v1/statuses/{id}/context`, against a relay fed by simulated instances whose
//! authors consent to search and to the directory, to search only, or to neither.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::search_api::{assert_iso_time, get, len, post_with, until, urlencode};
use crate::support::*;

/// `hours` ago, as an RFC 3339 publication time (the tag history counts the last seven days).
fn hours_ago(hours: i64) -> String {
    (OffsetDateTime::now_utc() - time::Duration::hours(hours))
        .format(&Rfc3339)
        .expect("format")
}

/// Every field Mastodon's `Account` entity requires, with its JSON type.
fn assert_account_shape(a: &Value) {
    for text in [
        "id",
        "username",
        "acct",
        "url",
        "uri",
        "display_name",
        "note",
        "avatar",
        "avatar_static",
        "header",
        "header_static",
    ] {
        assert!(a[text].is_string(), "{text}: {a}");
    }
    assert!(a["id"].as_str().is_some_and(|id| id.parse::<u64>().is_ok()));
    for flag in ["locked", "bot", "group"] {
        assert!(a[flag].is_boolean(), "{flag}: {a}");
    }
    assert!(a["discoverable"].is_boolean() || a["discoverable"].is_null());
    assert!(a["fields"].is_array() && a["emojis"].is_array(), "{a}");
    assert_iso_time(&a["created_at"], "created_at");
    assert!(a.get("last_status_at").is_some(), "{a}");
    for count in ["statuses_count", "followers_count", "following_count"] {
        assert!(a[count].is_u64(), "{count}: {a}");
    }
}

/// Every field Mastodon's `Status` entity requires, with its JSON type.
fn assert_status_shape(s: &Value) {
    for text in ["id", "uri", "content", "visibility", "spoiler_text"] {
        assert!(s[text].is_string(), "{text}: {s}");
    }
    assert_iso_time(&s["created_at"], "created_at");
    assert!(s["sensitive"].is_boolean());
    for list in ["media_attachments", "mentions", "tags", "emojis"] {
        assert!(s[list].is_array(), "{list}: {s}");
    }
    for count in ["reblogs_count", "favourites_count", "replies_count"] {
        assert!(s[count].is_u64(), "{count}: {s}");
    }
    for nullable in [
        "url",
        "in_reply_to_id",
        "in_reply_to_account_id",
        "reblog",
        "poll",
        "card",
        "language",
        "edited_at",
    ] {
        assert!(s.get(nullable).is_some(), "{nullable}: {s}");
    }
    assert_account_shape(&s["account"]);
}

fn uris(statuses: &Value) -> Vec<String> {
    statuses
        .as_array()
        .unwrap_or_else(|| panic!("a list: {statuses}"))
        .iter()
        .filter_map(|s| s["uri"].as_str().map(str::to_owned))
        .collect()
}

/// The relay and its authors: `bakery` (search and directory), `mill` (both, created later), `quiet`
/// (search only), `shy` (directory only: its posts are never indexed, its profile is listed).
struct World {
    relay: Relay,
    bakery: Arc<Instance>,
    mill: Arc<Instance>,
    quiet: Arc<Instance>,
    shy: Arc<Instance>,
    /// bakery's posts, oldest first: a #rye root, a #rye reply with media, a plain post.
    posts: Vec<String>,
}

async fn world() -> World {
    let relay = Relay::start().await;
    let bakery = Instance::start(Flavor::Mastodon, &relay).await;
    bakery.set_user_fields(json!({
        "type": "Organization", "name": "Rye Bakery", "summary": "<p>Rye, every day</p>",
        "indexable": true, "discoverable": true, "published": "2024-03-01T12:00:00Z" }));
    let mill = Instance::start(Flavor::Mastodon, &relay).await;
    mill.set_user_fields(
        json!({ "name": "The Mill", "indexable": true, "discoverable": true,
        "published": "2025-06-01T12:00:00Z" }),
    );
    let quiet = Instance::start(Flavor::Mastodon, &relay).await;
    quiet.set_user_fields(
        json!({ "name": "Quiet Baker", "indexable": true, "discoverable": false,
        "published": "2025-01-01T12:00:00Z" }),
    );
    let shy = Instance::start(Flavor::Mastodon, &relay).await;
    shy.set_user_fields(json!({ "name": "Shy", "discoverable": true }));
    for instance in [&bakery, &mill, &quiet, &shy] {
        instance.subscribe(&relay).await;
    }
    let root = post_with(&bakery, "rye loaf", &["rye"], &hours_ago(3), json!({})).await;
    let reply = post_with(
        &bakery,
        "rye crumb, close up",
        &["rye"],
        &hours_ago(2),
        json!({ "inReplyTo": root, "attachment": [{ "type": "Document",
            "mediaType": "image/png", "url": format!("{}/media/crumb.png", bakery.base),
            "name": "the crumb" }] }),
    )
    .await;
    let plain = post_with(&bakery, "rye again tomorrow", &[], &hours_ago(1), json!({})).await;
    post_with(&mill, "milling rye", &[], &hours_ago(4), json!({})).await;
    post_with(&quiet, "quiet rye", &["rye"], &hours_ago(5), json!({})).await;
    post_with(&shy, "shy rye", &["rye"], &hours_ago(0), json!({})).await;
    until(
        &relay,
        "/api/v1/timelines/public",
        "five indexed posts",
        |b| len(b) == 5,
    )
    .await;
    relay.until_caught_up("plaza_indexer_lag_entries").await;
    relay
        .until_metric_at_least("plaza_index_posts_refused_total", 1)
        .await;
    // The shy author's profile goes over on its own, after its refused post.
    until(&relay, "/api/v1/directory", "three listed profiles", |b| {
        len(b) == 3
    })
    .await;
    World {
        relay,
        bakery,
        mill,
        quiet,
        shy,
        posts: vec![root, reply, plain],
    }
}

fn acct(instance: &Instance) -> String {
    format!("alice@{}", instance.authority())
}

async fn not_found(relay: &Relay, path: &str) {
    let (status, _, body) = get(relay, path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    assert_eq!(body, json!({ "error": "Record not found" }), "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_and_lookups_show_consenting_accounts_in_mastodon_shapes() {
    let w = world().await;
    let relay = &w.relay;

    // The directory: discoverable profiles only, by latest post (the bakery posted last, the shy
    // author's post was never indexed), paged by offset.
    let (status, _, listed) = get(relay, "/api/v1/directory").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let accts: Vec<&str> = listed
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["acct"].as_str())
        .collect();
    assert_eq!(
        accts,
        [acct(&w.bakery), acct(&w.mill), acct(&w.shy)],
        "{listed}"
    );
    for a in listed.as_array().into_iter().flatten() {
        assert_account_shape(a);
        assert_eq!(a["discoverable"], true);
    }
    // Newest profile first; the shy author gave no creation date and comes last.
    let (_, _, new) = get(relay, "/api/v1/directory?order=new").await;
    let new_accts: Vec<&str> = new
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["acct"].as_str())
        .collect();
    assert_eq!(
        new_accts,
        [acct(&w.mill), acct(&w.bakery), acct(&w.shy)],
        "{new}"
    );
    let (_, _, first) = get(relay, "/api/v1/directory?order=new&limit=1").await;
    assert_eq!(first[0]["acct"], acct(&w.mill).as_str(), "{first}");
    assert_eq!(len(&first), 1);
    let (_, _, second) = get(relay, "/api/v1/directory?order=active&limit=1&offset=1").await;
    assert_eq!(second[0]["acct"], acct(&w.mill).as_str(), "{second}");
    assert_eq!(len(&second), 1);
    let (_, _, past) = get(relay, "/api/v1/directory?offset=3").await;
    assert_eq!(past, json!([]));
    let (status, _, local) = get(relay, "/api/v1/directory?local=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(local, json!([]), "the relay has no accounts of its own");
    let (status, _, bad) = get(relay, "/api/v1/directory?limit=none").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("limit")));

    // Lookup by handle, in both spellings; the account is the directory's.
    let bakery_listed = &listed[0];
    let (status, _, found) = get(
        relay,
        &format!(
            "/api/v1/accounts/lookup?acct={}",
            urlencode(&acct(&w.bakery))
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(&found, bakery_listed);
    assert_eq!(found["username"], "alice");
    assert_eq!(found["display_name"], "Rye Bakery");
    assert_eq!(found["uri"], w.bakery.user().as_str());
    assert_eq!(found["created_at"], "2024-03-01T00:00:00.000Z");
    let (_, _, at) = get(
        relay,
        &format!(
            "/api/v1/accounts/lookup?acct={}",
            urlencode(&format!("@{}", acct(&w.bakery)))
        ),
    )
    .await;
    assert_eq!(at["id"], found["id"]);
    // The id is the hash of the actor id: the same after any restart.
    let id = found["id"].as_str().expect("id").to_owned();
    assert_eq!(id, plaza_index::account_id(&w.bakery.user()).to_string());
    let (status, _, by_id) = get(relay, &format!("/api/v1/accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, found);

    // An author who consented to search but not to the directory: found by handle, not listed.
    let (status, _, quiet) = get(
        relay,
        &format!(
            "/api/v1/accounts/lookup?acct={}",
            urlencode(&acct(&w.quiet))
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quiet}");
    assert_account_shape(&quiet);
    assert_eq!(quiet["discoverable"], false);
    assert!(!accts.contains(&acct(&w.quiet).as_str()));

    // A listed author who did not opt in to search: found, and listed.
    let (status, _, shy) = get(
        relay,
        &format!("/api/v1/accounts/lookup?acct={}", urlencode(&acct(&w.shy))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shy}");
    assert_eq!(&shy, &listed[2]);

    // Unknown: a bare username (no local accounts), an author the index does not hold, junk ids.
    not_found(relay, "/api/v1/accounts/lookup?acct=alice").await;
    not_found(relay, "/api/v1/accounts/lookup").await;
    not_found(
        relay,
        &format!(
            "/api/v1/accounts/lookup?acct=nobody@{}",
            w.bakery.authority()
        ),
    )
    .await;
    not_found(relay, "/api/v1/accounts/12345").await;
    not_found(relay, "/api/v1/accounts/alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_statuses_page_filter_and_hold_only_indexed_posts() {
    let w = world().await;
    let relay = &w.relay;
    let id = plaza_index::account_id(&w.bakery.user());
    let path = format!("/api/v1/accounts/{id}/statuses");
    let (root, reply, plain) = (
        w.posts[0].as_str(),
        w.posts[1].as_str(),
        w.posts[2].as_str(),
    );

    let (status, _, all) = get(relay, &path).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(uris(&all), [plain, reply, root]);
    for s in all.as_array().into_iter().flatten() {
        assert_status_shape(s);
        assert_eq!(s["account"]["id"], id.to_string());
    }
    assert_eq!(all[1]["in_reply_to_id"], all[2]["id"]);
    assert_eq!(all[1]["in_reply_to_account_id"], id.to_string());
    assert_eq!(all[1]["media_attachments"][0]["type"], "image");

    // Paging by the Link header, newest first.
    let (_, headers, page) = get(relay, &format!("{path}?limit=2")).await;
    assert_eq!(uris(&page), [plain, reply]);
    let link = headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("Link header")
        .to_owned();
    let next = link
        .split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .and_then(|l| l.strip_prefix('<'))
        .and_then(|l| l.split_once('>'))
        .map(|(url, _)| url.to_owned())
        .expect("next link");
    assert!(
        next.starts_with(&format!("{}{path}?", relay.base)),
        "{next}"
    );
    let (_, _, older) = get(relay, next.trim_start_matches(relay.base.as_str())).await;
    assert_eq!(uris(&older), [root]);
    let newest_id = page[0]["id"].as_str().expect("id");
    let (_, _, newer) = get(relay, &format!("{path}?since_id={newest_id}")).await;
    assert_eq!(newer, json!([]));

    // Filters.
    let (_, _, no_replies) = get(relay, &format!("{path}?exclude_replies=true")).await;
    assert_eq!(uris(&no_replies), [plain, root]);
    let (_, _, media) = get(relay, &format!("{path}?only_media=true")).await;
    assert_eq!(uris(&media), [reply]);
    let (_, _, tagged) = get(relay, &format!("{path}?tagged=Rye")).await;
    assert_eq!(uris(&tagged), [reply, root]);
    let (status, _, pinned) = get(relay, &format!("{path}?pinned=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pinned, json!([]));
    let (status, _, bad) = get(relay, &format!("{path}?max_id=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // Another account's statuses are its own; unknown accounts are 404, not an empty list; the
    // listed author who never consented to search has no statuses to show.
    let quiet = plaza_index::account_id(&w.quiet.user());
    let (_, _, theirs) = get(relay, &format!("/api/v1/accounts/{quiet}/statuses")).await;
    assert_eq!(len(&theirs), 1, "{theirs}");
    assert!(uris(&theirs)[0].starts_with(&w.quiet.base));
    not_found(relay, "/api/v1/accounts/12345/statuses").await;
    let shy = plaza_index::account_id(&w.shy.user());
    let (status, _, shy_posts) = get(relay, &format!("/api/v1/accounts/{shy}/statuses")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shy_posts, json!([]), "its post was sent but never indexed");
    let (_, _, public) = get(relay, "/api/v1/timelines/public?limit=40").await;
    assert!(
        !uris(&public).iter().any(|u| u.starts_with(&w.shy.base)),
        "{public}"
    );

    // /api/v2/search within this account, by the same id; an unknown id finds nothing (Mastodon
    // filters by it), where the account's own statuses are a 404.
    let (status, _, mine) = get(
        relay,
        &format!("/api/v2/search?q=rye&type=statuses&account_id={id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut found = uris(&mine["statuses"]);
    found.sort();
    let mut expected = vec![root.to_owned(), reply.to_owned(), plain.to_owned()];
    expected.sort();
    assert_eq!(found, expected);
    let (status, _, none) = get(relay, "/api/v2/search?q=rye&account_id=12345").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        none,
        json!({ "accounts": [], "statuses": [], "hashtags": [] })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_have_a_week_of_history_and_threads_their_ancestors() {
    let w = world().await;
    let relay = &w.relay;

    let (status, _, tag) = get(relay, "/api/v1/tags/rye").await;
    assert_eq!(status, StatusCode::OK, "{tag}");
    assert_eq!(tag["name"], "rye");
    assert_eq!(tag["following"], false);
    assert!(
        tag["url"]
            .as_str()
            .is_some_and(|u| u == format!("{}/tags/rye", relay.base)),
        "{tag}"
    );
    let history = tag["history"].as_array().expect("history");
    assert_eq!(history.len(), 7);
    let number = |day: &Value, field: &str| -> u64 {
        day[field]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} is a number in a string: {day}"))
    };
    let today = OffsetDateTime::now_utc().date().midnight().assume_utc();
    assert_eq!(number(&history[0], "day"), today.unix_timestamp() as u64);
    for pair in history.windows(2) {
        assert_eq!(number(&pair[0], "day") - number(&pair[1], "day"), 86_400);
    }
    // Two #rye posts by the bakery, one by the quiet baker; the shy author's is not indexed.
    let uses: u64 = history.iter().map(|d| number(d, "uses")).sum();
    assert_eq!(uses, 3, "{tag}");
    let accounts: u64 = history.iter().map(|d| number(d, "accounts")).sum();
    assert!((2..=3).contains(&accounts), "{tag}");
    for day in history {
        assert!(number(day, "accounts") <= number(day, "uses"), "{day}");
    }
    let (_, _, hashed) = get(relay, "/api/v1/tags/%23Rye").await;
    assert_eq!(hashed["name"], "rye");
    not_found(relay, "/api/v1/tags/neverseen").await;
    not_found(relay, "/api/v1/tags/%23").await;

    // The reply's context holds the post it answers; the root's holds nothing.
    let id = plaza_index::account_id(&w.bakery.user());
    let (_, _, all) = get(relay, &format!("/api/v1/accounts/{id}/statuses")).await;
    let status_id = |uri: &str| -> String {
        all.as_array()
            .into_iter()
            .flatten()
            .find(|s| s["uri"] == uri)
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("{uri} in {all}"))
            .to_owned()
    };
    let reply = status_id(&w.posts[1]);
    let (status, _, context) = get(relay, &format!("/api/v1/statuses/{reply}/context")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(uris(&context["ancestors"]), [w.posts[0].clone()]);
    assert_status_shape(&context["ancestors"][0]);
    assert_eq!(context["descendants"], json!([]));
    let root = status_id(&w.posts[0]);
    let (_, _, context) = get(relay, &format!("/api/v1/statuses/{root}/context")).await;
    assert_eq!(context, json!({ "ancestors": [], "descendants": [] }));
    let (status, _, _) = get(relay, "/api/v1/statuses/12345/context").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
