//! Trends over a real index: hashtags and links by distinct accounts against their baseline, posts by
//! shares and replies, nobody trending alone, only indexed posts, language filtering, and removal.

mod support;

use plaza_index::{Index, ShareSignal, TrendRequest};
use serde_json::json;
use support::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn at(hours_ago: i64) -> String {
    (OffsetDateTime::now_utc() - time::Duration::hours(hours_ago))
        .format(&Rfc3339)
        .expect("time")
}

/// Post number `n` by `name@host`, `hours_ago`, in English unless told, with hashtags and content.
fn post(
    index: &Index,
    host: &str,
    name: &str,
    n: u32,
    hours_ago: i64,
    tags: &[&str],
    html: &str,
) -> String {
    post_in(index, host, name, n, hours_ago, tags, html, "en")
}

#[allow(clippy::too_many_arguments)]
fn post_in(
    index: &Index,
    host: &str,
    name: &str,
    n: u32,
    hours_ago: i64,
    tags: &[&str],
    html: &str,
    lang: &str,
) -> String {
    let author = actor(host, name);
    let mut object = note(&author, n, html, &at(hours_ago));
    object["tag"] = tags
        .iter()
        .map(|t| json!({"type": "Hashtag", "name": format!("#{t}"), "href": format!("https://{host}/tags/{t}")}))
        .collect();
    object["contentMap"] = json!({ lang: html });
    let id = object["id"].as_str().expect("id").to_owned();
    assert!(
        index
            .add_post(&object, &author, host)
            .expect("add")
            .allowed()
    );
    id
}

/// Post number `n` by `name@host`, an hour ago, replying to `parent`.
fn reply(index: &Index, host: &str, name: &str, n: u32, parent: &str) {
    let author = actor(host, name);
    let mut reply = note(&author, n, "<p>congratulations</p>", &at(1));
    reply["inReplyTo"] = json!(parent);
    assert!(
        index
            .add_post(&reply, &author, host)
            .expect("reply")
            .allowed()
    );
}

fn request(hours: u32) -> TrendRequest {
    TrendRequest::new(hours, 20, None).expect("request")
}

fn names(trends: &[plaza_index::Trend]) -> Vec<&str> {
    trends.iter().map(|t| t.name.as_str()).collect()
}

#[test]
fn a_tag_many_people_start_using_trends_and_one_account_or_one_instance_cannot() {
    let index = index();
    // #potluck: five people on three instances in the last hours.
    for (i, (host, name)) in [
        ("a.example", "ann"),
        ("a.example", "bob"),
        ("b.example", "cat"),
        ("c.example", "dan"),
        ("c.example", "eve"),
    ]
    .iter()
    .enumerate()
    {
        post(
            &index,
            host,
            name,
            i as u32,
            2,
            &["potluck"],
            "<p>potluck tonight</p>",
        );
    }
    // #spam: one account, twenty posts.
    for n in 0..20 {
        post(
            &index,
            "s.example",
            "spammer",
            100 + n,
            1,
            &["spam"],
            "<p>buy now</p>",
        );
    }
    // #oneinstance: six accounts on one instance, and a friend on another.
    post(
        &index,
        "f.example",
        "friend",
        300,
        1,
        &["oneinstance"],
        "<p>us too</p>",
    );
    for n in 0..6 {
        post(
            &index,
            "o.example",
            &format!("sock{n}"),
            200 + n,
            1,
            &["oneinstance"],
            "<p>us</p>",
        );
    }
    index.commit().expect("commit");
    let trends = index.trending_tags(&request(24)).expect("trends");
    assert_eq!(names(&trends), ["potluck"], "{trends:?}");
    let potluck = &trends[0];
    assert_eq!(
        (potluck.rank, potluck.accounts, potluck.instances),
        (100, 5, 3)
    );
    assert_eq!(potluck.examples.len(), 3, "examples: {potluck:?}");
    assert!(potluck.examples.iter().all(|e| e.contains("/statuses/")));
    // Outside a one-hour window the potluck posts (two hours old) do not count.
    assert!(index.trending_tags(&request(1)).expect("trends").is_empty());
}

#[test]
fn a_tag_everyone_always_uses_does_not_trend_and_a_surge_does() {
    let index = index();
    let mut n = 0;
    // #bread: the same six people on three instances every day for a week, and today.
    for day in 0..8 {
        for person in 0..6 {
            let host = ["a.example", "b.example", "c.example"][person % 3];
            post(
                &index,
                host,
                &format!("baker{person}"),
                n,
                day * 24 + 2,
                &["bread"],
                "<p>bread</p>",
            );
            n += 1;
        }
    }
    // #strike: nobody last week, today seven people on three instances.
    for person in 0..7 {
        let host = ["a.example", "b.example", "c.example"][person % 3];
        post(
            &index,
            host,
            &format!("worker{person}"),
            n,
            3,
            &["strike"],
            "<p>strike</p>",
        );
        n += 1;
    }
    index.commit().expect("commit");
    let trends = index.trending_tags(&request(24)).expect("trends");
    assert_eq!(names(&trends), ["strike"], "{trends:?}");
}

#[test]
fn links_trend_by_distinct_accounts_and_mentions_and_hashtags_are_not_links() {
    let index = index();
    let html = r#"<p>read <a href="https://news.example/coop-law#top">this</a>
        <a href="https://a.example/@someone" class="u-url mention">@someone</a>
        <a href="https://a.example/tags/law" class="mention hashtag" rel="tag">#law</a></p>"#;
    for (i, (host, name)) in [
        ("a.example", "ann"),
        ("b.example", "bob"),
        ("c.example", "cat"),
    ]
    .iter()
    .enumerate()
    {
        post(&index, host, name, i as u32, 1, &["law"], html);
    }
    index.commit().expect("commit");
    let links = index.trending_links(&request(24)).expect("links");
    assert_eq!(
        names(&links),
        ["https://news.example/coop-law"],
        "{links:?}"
    );
    assert_eq!(links[0].examples.len(), 3);
}

#[test]
fn posts_trend_by_shares_and_replies_only_when_indexed_and_in_the_language_asked() {
    let index = index();
    let original = post(
        &index,
        "a.example",
        "ann",
        1,
        5,
        &[],
        "<p>our co-op turns ten</p>",
    );
    let german = post_in(
        &index,
        "d.example",
        "dora",
        2,
        5,
        &[],
        "<p>Genossenschaft</p>",
        "de",
    );
    // Two replies from two instances.
    reply(&index, "b.example", "bob", 10, &original);
    reply(&index, "c.example", "cat", 11, &original);
    index.commit().expect("commit");
    let share = |uri: &str, account: &str, instance: &str| ShareSignal {
        uri: uri.into(),
        account: account.into(),
        instance: instance.into(),
    };
    let not_indexed = "https://x.example/users/x/statuses/1";
    let shares = vec![
        share(&original, "https://e.example/users/eve", "e.example"),
        share(&german, "https://e.example/users/eve", "e.example"),
        share(&german, "https://f.example/users/fay", "f.example"),
        share(&german, "https://g.example/users/gus", "g.example"),
        share(not_indexed, "https://e.example/users/eve", "e.example"),
        share(not_indexed, "https://f.example/users/fay", "f.example"),
        share(not_indexed, "https://g.example/users/gus", "g.example"),
    ];
    let trends = index.trending_posts(&request(24), &shares).expect("posts");
    let mut got = names(&trends);
    got.sort();
    let mut want = vec![original.as_str(), german.as_str()];
    want.sort();
    assert_eq!(got, want, "{trends:?}");
    let english = TrendRequest::new(24, 20, Some("en-US")).expect("request");
    assert_eq!(
        names(&index.trending_posts(&english, &shares).expect("posts")),
        [original.as_str()]
    );
    // Two sharers are not enough.
    assert!(
        index
            .trending_posts(&request(24), &shares[1..3])
            .expect("posts")
            .is_empty()
    );

    // A post that leaves the index leaves trends.
    index.delete_post(&german).expect("delete");
    index.commit().expect("commit");
    assert_eq!(
        names(&index.trending_posts(&request(24), &shares).expect("posts")),
        [original.as_str()]
    );
}

/// Replies alone make a post trend, counted across segments (each reply committed on its own), and
/// the trend names the post replied to, not a reply; replies to a post the index lacks make nothing.
#[test]
fn a_post_replied_to_by_enough_people_trends_without_shares() {
    let index = index();
    let original = post(
        &index,
        "a.example",
        "ann",
        1,
        3,
        &[],
        "<p>our bakery opens</p>",
    );
    index.commit().expect("commit");
    let missing = "https://z.example/users/zed/statuses/9";
    for (i, (host, name)) in [
        ("b.example", "bob"),
        ("c.example", "cat"),
        ("d.example", "dan"),
    ]
    .into_iter()
    .enumerate()
    {
        reply(&index, host, name, 20 + i as u32, &original);
        reply(&index, host, name, 30 + i as u32, missing);
        index.commit().expect("commit");
    }
    let trends = index.trending_posts(&request(24), &[]).expect("posts");
    assert_eq!(names(&trends), [original.as_str()], "{trends:?}");
    assert_eq!(
        (trends[0].accounts, trends[0].instances, trends[0].uses),
        (3, 3, 3)
    );
}

#[test]
fn a_language_filter_keeps_the_posts_in_that_language() {
    let index = index();
    for (i, (host, name)) in [
        ("a.example", "ann"),
        ("b.example", "bob"),
        ("c.example", "cat"),
    ]
    .iter()
    .enumerate()
    {
        post_in(
            &index,
            host,
            name,
            i as u32,
            1,
            &["huelga"],
            "<p>huelga general</p>",
            "es",
        );
    }
    index.commit().expect("commit");
    let spanish = TrendRequest::new(24, 20, Some("es")).expect("request");
    let english = TrendRequest::new(24, 20, Some("en")).expect("request");
    assert_eq!(
        names(&index.trending_tags(&spanish).expect("es")),
        ["huelga"]
    );
    assert!(index.trending_tags(&english).expect("en").is_empty());
}
