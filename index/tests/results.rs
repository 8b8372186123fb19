//! What searches return: pagination, facets, snippets, text analysis, the directory, tags, instances,
//! and the real payloads of the fixtures.

mod support;

use std::collections::HashSet;

use plaza_index::{
    ActorType, DirectoryRequest, Error, Index, IndexConfig, InstanceRecord, QueryLimits,
    SearchRequest, Sort, TimelineRequest,
};
use serde_json::json;
use support::*;

/// 30 posts "loaf N" by three authors, one hour apart, newest last.
fn thirty() -> Index {
    thirty_in(index())
}

/// [`thirty`], in `index`.
fn thirty_in(index: Index) -> Index {
    let authors = [
        actor("a.example", "ann"),
        actor("b.example", "ben"),
        actor("b.example", "bea"),
    ];
    for n in 0..30u32 {
        let author = &authors[n as usize % 3];
        let published = format!("2024-05-{:02}T{:02}:00:00Z", 1 + n / 24, n % 24);
        let mut post = note(
            author,
            n,
            &format!("<p>loaf number {n} #bread</p>"),
            &published,
        );
        post["tag"] = json!([{"type": "Hashtag", "name": "#bread"}]);
        post["contentMap"] = json!({"en": post["content"].clone()});
        let host = if n % 3 == 0 { "a.example" } else { "b.example" };
        index.add_post(&post, author, host).expect("add");
    }
    index.commit().expect("commit");
    index
}

#[test]
fn offset_pages_cover_everything_once() {
    let index = thirty();
    let mut seen = HashSet::new();
    for offset in [0, 10, 20] {
        let page = index
            .search_posts(&SearchRequest {
                limit: 10,
                offset,
                sort: Sort::Newest,
                ..SearchRequest::new("loaf")
            })
            .expect("page");
        assert_eq!(page.total, 30);
        assert_eq!(page.hits.len(), 10);
        seen.extend(page.hits.into_iter().map(|h| h.post.uri));
    }
    assert_eq!(seen.len(), 30);
}

fn walk(index: &Index, sort: Sort) -> Vec<u64> {
    walk_query(index, "loaf", sort)
}

fn walk_query(index: &Index, query: &str, sort: Sort) -> Vec<u64> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .search_posts(&SearchRequest {
                limit: 7,
                sort,
                cursor: cursor.take(),
                ..SearchRequest::new(query)
            })
            .expect("page");
        keys.extend(page.hits.iter().map(|h| h.post.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    keys
}

#[test]
fn cursors_walk_every_order_without_repeats() {
    let index = thirty();
    for sort in [Sort::Newest, Sort::Oldest, Sort::Relevance] {
        let keys = walk(&index, sort);
        assert_eq!(keys.len(), 30, "{sort:?}");
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 30, "{sort:?}");
    }
    let newest = walk(&index, Sort::Newest);
    assert!(newest.windows(2).all(|w| w[0] > w[1]));
    let oldest = walk(&index, Sort::Oldest);
    assert!(oldest.windows(2).all(|w| w[0] < w[1]));
}

/// A query of filters alone (a hashtag, an author, a date range) has nothing to rank by: by relevance
/// it comes newest first, as with words of equal weight, and its cursors walk it the same way.
#[test]
fn relevance_without_words_is_newest_first_and_pages_by_cursor() {
    let index = thirty();
    let newest = walk(&index, Sort::Newest);
    for query in ["#bread", "#bread after:2024-05-01", "from:ann@a.example"] {
        let by_relevance = walk_query(&index, query, Sort::Relevance);
        let expected: Vec<u64> = walk_query(&index, query, Sort::Newest);
        assert_eq!(by_relevance, expected, "{query}");
        assert!(!expected.is_empty(), "{query}");
    }
    assert_eq!(walk_query(&index, "#bread", Sort::Relevance), newest);
    let first = index
        .search_posts(&SearchRequest::new("#bread"))
        .expect("page");
    assert_eq!(first.total, 30);
    assert!(
        first.hits.iter().all(|h| h.score == 0.0),
        "nothing ranks them"
    );
    // With a word next to the filter, the words rank again (and a cursor of one kind is not taken
    // for the other).
    let ranked = walk_query(&index, "loaf #bread", Sort::Relevance);
    assert_eq!(ranked.len(), 30);
}

#[test]
fn relevance_prefers_recent_posts_among_equals() {
    let index = thirty();
    let page = index
        .search_posts(&SearchRequest::new("loaf"))
        .expect("page");
    let keys: Vec<u64> = page.hits.iter().map(|h| h.post.key).collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "equal text: newest first"
    );
}

#[test]
fn key_bounds_work_like_max_id_and_min_id() {
    let index = thirty();
    let all = walk(&index, Sort::Newest);
    let below = index
        .search_posts(&SearchRequest {
            sort: Sort::Newest,
            max_key: Some(all[4]),
            limit: 3,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    assert_eq!(
        below.hits.iter().map(|h| h.post.key).collect::<Vec<_>>(),
        all[5..8]
    );
    let above = index
        .search_posts(&SearchRequest {
            sort: Sort::Oldest,
            min_key: Some(all[10]),
            limit: 3,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    assert_eq!(
        above.hits.iter().map(|h| h.post.key).collect::<Vec<_>>(),
        [all[9], all[8], all[7]]
    );
}

#[test]
fn result_window_and_bad_cursors_are_refused() {
    let index = thirty();
    let too_far = SearchRequest {
        offset: 995,
        limit: 10,
        ..SearchRequest::new("loaf")
    };
    assert!(matches!(index.search_posts(&too_far), Err(Error::Query(r)) if r.contains("offset")));
    let bad = SearchRequest {
        cursor: Some("garbage!".into()),
        ..SearchRequest::new("loaf")
    };
    assert!(matches!(index.search_posts(&bad), Err(Error::Query(_))));
    let page = index
        .search_posts(&SearchRequest {
            limit: 5,
            sort: Sort::Newest,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    let wrong_sort = SearchRequest {
        cursor: page.next_cursor,
        sort: Sort::Relevance,
        ..SearchRequest::new("loaf")
    };
    assert!(matches!(index.search_posts(&wrong_sort), Err(Error::Query(r)) if r.contains("sort")));
}

#[test]
fn facets_count_all_matches() {
    let index = thirty();
    let page = index
        .search_posts(&SearchRequest {
            facets: true,
            limit: 1,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    let facets = page.facets.expect("facets");
    let count = |list: &[plaza_index::FacetCount], v: &str| {
        list.iter().find(|f| f.value == v).map(|f| f.count)
    };
    assert_eq!(count(&facets.instance, "b.example"), Some(20));
    assert_eq!(count(&facets.instance, "a.example"), Some(10));
    assert_eq!(count(&facets.language, "en"), Some(30));
    assert_eq!(count(&facets.tag, "bread"), Some(30));
    assert_eq!(count(&facets.actor_type, "person"), Some(30));
    assert_eq!(count(&facets.month, "2024-05"), Some(30));
    let none = index
        .search_posts(&SearchRequest::new("loaf"))
        .expect("page");
    assert!(none.facets.is_none());
}

#[test]
fn facets_past_the_exact_count_are_sampled_estimates_and_say_so() {
    let index = thirty_in(
        Index::in_memory(IndexConfig {
            writer_memory_bytes: 15_000_000,
            limits: QueryLimits {
                facets_exact: 4,
                ..QueryLimits::default()
            },
            ..IndexConfig::default()
        })
        .expect("index"),
    );
    let page = index
        .search_posts(&SearchRequest {
            facets: true,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    assert_eq!(page.total, 30, "the total stays exact");
    let facets = page.facets.expect("facets");
    assert!(facets.sampled);
    let count = |list: &[plaza_index::FacetCount], v: &str| {
        list.iter().find(|f| f.value == v).map_or(0, |f| f.count)
    };
    // A value every match has is estimated at the number of matches.
    assert_eq!(count(&facets.language, "en"), 30);
    assert_eq!(count(&facets.tag, "bread"), 30);
    // The others are near their true counts (20 and 10), in the right order.
    let (b, a) = (
        count(&facets.instance, "b.example"),
        count(&facets.instance, "a.example"),
    );
    assert!((15..=25).contains(&b) && (5..=15).contains(&a), "{b} {a}");
    assert_eq!(facets.instance[0].value, "b.example");
    // Below the threshold nothing is sampled.
    let few = index
        .search_posts(&SearchRequest {
            facets: true,
            ..SearchRequest::new("loaf from:ann@a.example")
        })
        .expect("page");
    let facets = few.facets.expect("facets");
    assert_eq!(few.total, 10);
    assert!(facets.sampled, "10 matches are past 4");
    let exact = thirty()
        .search_posts(&SearchRequest {
            facets: true,
            ..SearchRequest::new("loaf")
        })
        .expect("page");
    assert!(!exact.facets.expect("facets").sampled);
}

#[test]
fn snippets_highlight_matches_and_escape_html() {
    let index = index();
    let alice = actor("a.example", "alice");
    let post = note(
        &alice,
        1,
        "<p>Runners &lt;3 the running club</p>",
        "2024-01-01T00:00:00Z",
    );
    let post = with(
        post,
        "contentMap",
        json!({"en": "<p>Runners &lt;3 the running club</p>"}),
    );
    index.add_post(&post, &alice, "a.example").expect("add");
    index.commit().expect("commit");
    let page = index
        .search_posts(&SearchRequest::new("run"))
        .expect("page");
    let snippet = &page.hits[0].snippet_html;
    assert!(snippet.contains("<b>running</b>"), "{snippet}");
    assert!(snippet.contains("&lt;3"), "{snippet}");
}

#[test]
fn accents_fold_both_ways() {
    let index = index();
    let alice = actor("a.example", "alice");
    add_note(&index, &alice, 1, "un café crème");
    add_note(&index, &alice, 2, "naive cafe");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "cafe"), [1, 2]);
    assert_eq!(numbers(&index, "CAFÉ"), [1, 2]);
    assert_eq!(numbers(&index, "creme"), [1]);
    assert_eq!(numbers(&index, "naïve"), [2]);
}

#[test]
fn unknown_and_unsupported_languages_are_folded_too() {
    let index = index();
    let alice = actor("a.example", "alice");
    let tagged = |n: u32, html: &str, language: &str| {
        with(
            note(&alice, n, html, "2024-01-01T00:00:00Z"),
            "contentMap",
            json!({ language: html }),
        )
    };
    // Klingon (no ISO 639-1 code), Esperanto (no stemmer), a made-up tag, and no language at all on a
    // text too short to detect.
    for post in [
        tagged(1, "Kafé QAPLA’", "tlh"),
        tagged(2, "la Kafejo ĈE la STACIDOMO", "eo"),
        tagged(3, "Café ÜBER alles", "zz"),
        note(&alice, 4, "Café", "2024-01-01T00:00:00Z"),
    ] {
        index.add_post(&post, &alice, "a.example").expect("add");
    }
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "kafe"), [1]);
    assert_eq!(numbers(&index, "qapla"), [1]);
    assert_eq!(numbers(&index, "ce stacidomo"), [2]);
    assert_eq!(numbers(&index, "cafe"), [3, 4]);
    assert_eq!(numbers(&index, "uber"), [3]);
    assert_eq!(numbers(&index, "CAFÉ"), [3, 4]);
}

#[test]
fn chinese_japanese_korean_are_findable() {
    let index = index();
    let alice = actor("a.example", "alice");
    let posts = [
        (1, "東京都の協同組合が新しいパン屋を開きました"),
        (2, "今日は京都で会議です"),
        (3, "서울의 협동조합 빵집"),
    ];
    for (n, text) in posts {
        index
            .add_post(
                &note(&alice, n, text, "2024-01-01T00:00:00Z"),
                &alice,
                "a.example",
            )
            .expect("add");
    }
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "協同組合"), [1]);
    assert_eq!(numbers(&index, "パン屋"), [1]);
    assert_eq!(numbers(&index, "京都"), [1, 2]);
    assert_eq!(numbers(&index, "\"東京都\""), [1]);
    assert_eq!(numbers(&index, "협동조합"), [3]);
    let misskey = fixture("misskey-note.json");
    let author = with(
        actor("misskey.io", "aimu"),
        "id",
        json!("https://misskey.io/users/83ssedkv53"),
    );
    index
        .add_post(&misskey, &author, "misskey.io")
        .expect("misskey");
    index.commit().expect("commit");
    assert_eq!(
        ids(&index, "従量課金"),
        ["https://misskey.io/notes/8vs6wxufd0"]
    );
    assert_eq!(
        ids(&index, "language:ja 課金"),
        ["https://misskey.io/notes/8vs6wxufd0"]
    );
}

#[test]
fn fixtures_of_every_server_are_ingested_and_rendered() {
    let index = index();
    let indexable = |mut actor: serde_json::Value| {
        actor["indexable"] = json!(true);
        actor
    };
    let gts_author = indexable(fixture("gotosocial-actor.json"));
    let gts = fixture("gotosocial-note.json");
    assert!(
        index
            .add_post(&gts, &gts_author, "localhost:8080")
            .expect("gts")
            .allowed()
    );
    let masto_author = indexable(with(
        actor("mastodon.example.org", "admin"),
        "id",
        json!("http://mastodon.example.org/users/admin"),
    ));
    let masto = fixture("mastodon-create-note.json");
    assert!(
        index
            .add_post(&masto, &masto_author, "mastodon.example.org")
            .expect("masto")
            .allowed()
    );
    let pleroma_author = indexable(with(
        actor("greenish.red", "nutomic"),
        "id",
        json!("https://greenish.red/users/nutomic"),
    ));
    let pleroma = fixture("pleroma-create-note.json");
    assert!(
        index
            .add_post(&pleroma, &pleroma_author, "greenish.red")
            .expect("pleroma")
            .allowed()
    );
    // Lemmy sends no `discoverable`; this community opted in.
    let lemmy = with(
        indexable(fixture("lemmy-group.json")),
        "discoverable",
        json!(true),
    );
    assert!(index.upsert_actor(&lemmy).expect("lemmy").posts.allowed());
    index.commit().expect("commit");

    let hit = index
        .search_posts(&SearchRequest::new("hello everyone"))
        .expect("search")
        .hits
        .remove(0);
    assert_eq!(hit.post.uri, gts["id"].as_str().expect("id"));
    assert_eq!(hit.post.language.as_deref(), Some("en"));
    assert_eq!(hit.post.spoiler_text, "introduction post");
    assert!(hit.post.sensitive);
    assert_eq!(hit.post.created_at, "2021-10-20T10:40:37Z");
    assert_eq!(hit.post.content_html, "<p>hello everyone!</p>");
    assert_eq!(hit.account.acct, "the_mighty_zork@localhost:8080");
    assert_eq!(hit.account.display_name, "original zork (he/they)");
    assert!(hit.account.avatar.is_some());
    assert_eq!(
        hit.post.key.to_string().parse::<u64>().ok(),
        Some(hit.post.key)
    );

    let masto_hit = index
        .post(masto["object"]["id"].as_str().expect("id"))
        .expect("lookup")
        .expect("found");
    assert_eq!(
        masto_hit.post.mentions[0].acct,
        "lain@localtesting.pleroma.lol"
    );
    assert_eq!(
        index
            .post_by_key(masto_hit.post.key)
            .expect("by key")
            .map(|h| h.post.uri),
        Some(masto_hit.post.uri)
    );
    assert_eq!(
        ids(&index, "is:reply test"),
        ["https://greenish.red/objects/1a522f2e-d5ab-454b-93d7-e58bc0650c2a"]
    );

    let groups = index
        .directory(&DirectoryRequest {
            actor_type: Some(ActorType::Group),
            ..DirectoryRequest::default()
        })
        .expect("directory");
    assert_eq!(groups.hits.len(), 1);
    let group = &groups.hits[0].account;
    assert!(group.group && !group.bot);
    assert_eq!(group.acct, "tenforward@enterprise.lemmy.ml");
}

#[test]
fn directory_filters_by_type_tag_instance_and_text() {
    let index = index();
    let coop = json!({
        "id": "https://coop.example/users/bakers", "type": "Organization", "preferredUsername": "bakers",
        "name": "Bakers' Co-op", "discoverable": true, "indexable": true,
        "summary": "<p>A worker <a href=\"https://coop.example/tags/coop\">#<span>coop</span></a> baking bread</p>",
        "attachment": [{"type": "PropertyValue", "name": "Sector", "value": "Food"}],
        "published": "2019-03-01T00:00:00Z",
    });
    let person = with(
        actor("coop.example", "carol"),
        "summary",
        json!("<p>I love my #coop</p>"),
    );
    let shop = with(
        with(actor("shop.example", "shop"), "type", json!("Organization")),
        "summary",
        json!("<p>A bakery shop</p>"),
    );
    let hidden = with(
        with(
            actor("coop.example", "hidden"),
            "type",
            json!("Organization"),
        ),
        "discoverable",
        json!(false),
    );
    for a in [&coop, &person, &shop, &hidden] {
        index.upsert_actor(a).expect("actor");
    }
    index.commit().expect("commit");
    let accts = |req: DirectoryRequest| {
        let mut v: Vec<String> = index
            .directory(&req)
            .expect("directory")
            .hits
            .into_iter()
            .map(|h| h.account.acct)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        accts(DirectoryRequest {
            actor_type: Some(ActorType::Organization),
            tag: Some("#Coop".into()),
            ..Default::default()
        }),
        ["bakers@coop.example"]
    );
    assert_eq!(
        accts(DirectoryRequest {
            tag: Some("coop".into()),
            ..Default::default()
        }),
        ["bakers@coop.example", "carol@coop.example"]
    );
    assert_eq!(
        accts(DirectoryRequest {
            instance: Some("shop.example".into()),
            ..Default::default()
        }),
        ["shop@shop.example"]
    );
    assert_eq!(
        accts(DirectoryRequest {
            text: Some("food".into()),
            ..Default::default()
        }),
        ["bakers@coop.example"]
    );
    assert_eq!(
        accts(DirectoryRequest {
            text: Some("bakery OR baking".into()),
            actor_type: Some(ActorType::Organization),
            ..Default::default()
        }),
        ["bakers@coop.example", "shop@shop.example"]
    );
    let page = index
        .search_profiles(&SearchRequest {
            facets: true,
            ..SearchRequest::new("type:organization #coop")
        })
        .expect("profiles");
    assert_eq!(page.hits.len(), 1);
    let facets = page.facets.expect("facets");
    assert_eq!(facets.actor_type[0].value, "organization");
    let hit = &page.hits[0].account;
    assert_eq!(hit.fields[0].name, "Sector");
    assert_eq!(hit.fields[0].value_text, "Food");
    assert_eq!(hit.created_at.as_deref(), Some("2019-03-01T00:00:00Z"));
    assert!(hit.discoverable);
    let fielded = index
        .search_profiles(&SearchRequest::new("food"))
        .expect("profiles");
    assert!(
        fielded.hits[0].snippet_html.contains("<b>Food</b>"),
        "{}",
        fielded.hits[0].snippet_html
    );
}

#[test]
fn hashtags_with_counts_and_history() {
    let index = index();
    let alice = actor("a.example", "alice");
    let bob = actor("a.example", "bob");
    let now = time::OffsetDateTime::now_utc();
    let stamp = |days: i64| {
        (now - time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let tagged = |author: &serde_json::Value, n: u32, tag: &str, days: i64| {
        let mut post = note(author, n, &format!("post #{tag}"), &stamp(days));
        post["tag"] = json!([{"type": "Hashtag", "name": format!("#{tag}")}]);
        index.add_post(&post, author, "a.example").expect("add");
    };
    tagged(&alice, 1, "coop", 0);
    tagged(&bob, 2, "coop", 0);
    tagged(&alice, 3, "coop", 2);
    tagged(&alice, 4, "cooking", 1);
    tagged(&alice, 5, "coop", 30);
    index.commit().expect("commit");
    let found = index.search_tags("#coo", 10).expect("tags");
    assert!(!found.partial);
    let tags = found.tags;
    assert_eq!(
        tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["coop", "cooking"]
    );
    let coop = &tags[0];
    assert_eq!(coop.uses, 4);
    assert_eq!(coop.history.len(), 7);
    assert_eq!((coop.history[0].uses, coop.history[0].accounts), (2, 2));
    assert_eq!((coop.history[2].uses, coop.history[2].accounts), (1, 1));
    assert_eq!(coop.history.iter().map(|d| d.uses).sum::<u64>(), 3);
    assert!(coop.history[0].day > coop.history[1].day);
    assert_eq!(index.tag("Cooking").expect("tag").uses, 1);
    assert!(index.search_tags("zzz", 10).expect("none").tags.is_empty());
    let timeline = index
        .timeline(&TimelineRequest {
            tag: Some("coop".into()),
            ..TimelineRequest::default()
        })
        .expect("timeline");
    let n: Vec<&str> = timeline
        .hits
        .iter()
        .filter_map(|h| h.post.uri.rsplit('/').next())
        .collect();
    // Posts 1 and 2 share their publication instant; 3 and 5 are older.
    assert_eq!(n.len(), 4);
    assert_eq!(
        n[..2].iter().collect::<HashSet<_>>(),
        ["1", "2"].iter().collect::<HashSet<_>>()
    );
    assert_eq!(n[2..], ["3", "5"]);
}

#[test]
fn public_timeline_is_newest_first() {
    let index = thirty();
    let page = index
        .timeline(&TimelineRequest {
            limit: 5,
            ..TimelineRequest::default()
        })
        .expect("timeline");
    let keys: Vec<u64> = page.hits.iter().map(|h| h.post.key).collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]));
    let next = index
        .timeline(&TimelineRequest {
            limit: 5,
            cursor: page.next_cursor,
            ..TimelineRequest::default()
        })
        .expect("next");
    assert!(next.hits[0].post.key < keys[4]);
}

#[test]
fn instances_and_counts() {
    let index = thirty();
    index
        .upsert_instance(&InstanceRecord::new(
            "b.example",
            Some(fixture("nodeinfo-2.0-example.json")),
            None,
            None,
        ))
        .expect("instance");
    index
        .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
        .expect("instance");
    index
        .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
        .expect("again");
    index.commit().expect("commit");
    let list = index.instances().expect("instances");
    assert_eq!(
        list.iter()
            .map(|i| (i.host.as_str(), i.posts))
            .collect::<Vec<_>>(),
        [("a.example", 10), ("b.example", 20)]
    );
    assert!(list[1].software.is_some());
    let counts = index.counts().expect("counts");
    assert_eq!(
        (
            counts.posts,
            counts.actors,
            counts.profiles,
            counts.instances
        ),
        (30, 3, 3, 2)
    );
}

#[test]
fn an_exhausted_time_budget_marks_results_partial() {
    let index = Index::in_memory(IndexConfig {
        writer_memory_bytes: 15_000_000,
        limits: QueryLimits {
            time_budget: std::time::Duration::ZERO,
            ..QueryLimits::default()
        },
        ..IndexConfig::default()
    })
    .expect("index");
    let alice = actor("a.example", "alice");
    add_note(&index, &alice, 1, "jam #preserves");
    index
        .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
        .expect("instance");
    index.commit().expect("commit");
    let page = index
        .search_posts(&SearchRequest::new("jam"))
        .expect("search");
    assert!(page.partial);
    assert!(page.hits.is_empty());
    // Tags, counts and instances run under the same budget.
    let tag = index.tag("preserves").expect("tag");
    assert!(tag.partial);
    assert_eq!(tag.history.iter().map(|d| d.uses).sum::<u64>(), 0);
    let counts = index.counts().expect("counts");
    assert!(counts.partial);
    assert_eq!(counts.posts, 0);
    let instances = index.instances().expect("instances");
    assert!(instances.iter().all(|i| i.partial && i.posts == 0));
    assert_eq!(instances.len(), 1);
    // No segment's terms were read: no tag found, and the answer says why.
    let tags = index.search_tags("pres", 10).expect("tags");
    assert!(tags.tags.is_empty() && tags.partial);
}

#[test]
fn account_lookup_answers_only_for_actor_documents() {
    let index = index();
    let ann = actor("a.example", "ann");
    let post = note(&ann, 1, "<p>bread</p>", "2024-05-01T00:00:00Z");
    index.add_post(&post, &ann, "a.example").expect("add");
    index.commit().expect("commit");
    let post_id = post["id"].as_str().expect("id");
    assert!(index.post(post_id).expect("post").is_some());
    // A post's id is not an account: no error, no account.
    assert!(index.account(post_id).expect("no error").is_none());
    let account = index
        .account(ann["id"].as_str().expect("id"))
        .expect("lookup")
        .expect("the author is an account");
    assert_eq!(account.acct, "ann@a.example");
}

#[test]
fn replies_name_the_indexed_post_they_answer() {
    let index = index();
    let ann = actor("a.example", "ann");
    let bob = actor("b.example", "bob");
    let parent = note(&ann, 1, "<p>who bakes rye</p>", "2024-05-01T00:00:00Z");
    let reply = with(
        note(&bob, 2, "<p>we bake rye</p>", "2024-05-02T00:00:00Z"),
        "inReplyTo",
        parent["id"].clone(),
    );
    let orphan = with(
        note(&bob, 3, "<p>rye again</p>", "2024-05-03T00:00:00Z"),
        "inReplyTo",
        json!("https://c.example/notes/unknown"),
    );
    index.add_post(&parent, &ann, "a.example").expect("add");
    index.add_post(&reply, &bob, "b.example").expect("add");
    index.add_post(&orphan, &bob, "b.example").expect("add");
    index.commit().expect("commit");
    let page = index
        .search_posts(&SearchRequest::new("rye"))
        .expect("search");
    let hit = |n: &str| {
        page.hits
            .iter()
            .find(|h| h.post.uri.ends_with(n))
            .unwrap_or_else(|| panic!("{n} found"))
    };
    let parent_hit = hit("/statuses/1");
    assert_eq!(parent_hit.reply_to, None, "not a reply");
    assert_eq!(
        hit("/statuses/2").reply_to,
        Some(plaza_index::ReplyTo {
            key: parent_hit.post.key,
            account_id: plaza_index::account_id("https://a.example/users/ann"),
        })
    );
    let orphan_hit = hit("/statuses/3");
    assert_eq!(orphan_hit.reply_to, None, "the parent is not indexed");
    assert_eq!(
        orphan_hit.post.in_reply_to.as_deref(),
        Some("https://c.example/notes/unknown")
    );
}

#[test]
fn accounts_are_found_by_id_and_handle_and_only_if_held() {
    let index = thirty();
    let ann = plaza_index::account_id("https://a.example/users/ann");
    let found = index.account_by_id(ann).expect("by id").expect("ann");
    assert_eq!(found.acct, "ann@a.example");
    assert_eq!(found.uri, "https://a.example/users/ann");
    let by_handle = index
        .account_by_handle("@Ann@A.example")
        .expect("by handle")
        .expect("ann");
    assert_eq!(by_handle.uri, found.uri);
    assert!(
        index
            .account_by_id(plaza_index::account_id("https://a.example/users/nobody"))
            .expect("by id")
            .is_none()
    );
    assert!(
        index
            .account_by_handle("nobody@a.example")
            .expect("by handle")
            .is_none()
    );
    // An id of a post is no account id.
    let post_key = index
        .timeline(&TimelineRequest::default())
        .expect("timeline")
        .hits[0]
        .post
        .key;
    assert!(index.account_by_id(post_key).expect("by id").is_none());
}

#[test]
fn an_account_timeline_has_only_its_posts_with_its_filters() {
    let index = index();
    let ann = actor("a.example", "ann");
    let ben = actor("b.example", "ben");
    let ann_id = ann["id"].as_str().expect("id").to_owned();
    for n in 0..6u32 {
        let mut post = note(
            &ann,
            n,
            &format!("<p>ann {n}</p>"),
            &format!("2024-05-01T0{n}:00:00Z"),
        );
        if n % 2 == 1 {
            post["inReplyTo"] = json!(format!("{ann_id}/statuses/{}", n - 1));
        }
        if n == 4 {
            post["attachment"] = json!([{"type": "Document", "mediaType": "image/png",
                "url": "https://a.example/m/4.png"}]);
            post["tag"] = json!([{"type": "Hashtag", "name": "#Crumb"}]);
        }
        index.add_post(&post, &ann, "a.example").expect("add");
        let other = note(&ben, n, "<p>ben</p>", &format!("2024-05-01T0{n}:30:00Z"));
        index.add_post(&other, &ben, "b.example").expect("add");
    }
    index.commit().expect("commit");
    let of = |request: TimelineRequest| -> Vec<String> {
        index
            .timeline(&TimelineRequest {
                account: Some(plaza_index::account_id(&ann_id)),
                ..request
            })
            .expect("timeline")
            .hits
            .iter()
            .map(|h| h.post.uri.rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        of(TimelineRequest::default()),
        ["5", "4", "3", "2", "1", "0"]
    );
    let no_replies = of(TimelineRequest {
        exclude_replies: true,
        ..TimelineRequest::default()
    });
    assert_eq!(no_replies, ["4", "2", "0"]);
    let media = of(TimelineRequest {
        only_media: true,
        ..TimelineRequest::default()
    });
    assert_eq!(media, ["4"]);
    let tagged = of(TimelineRequest {
        tag: Some("crumb".into()),
        ..TimelineRequest::default()
    });
    assert_eq!(tagged, ["4"]);
    let paged = of(TimelineRequest {
        limit: 2,
        ..TimelineRequest::default()
    });
    assert_eq!(paged, ["5", "4"]);
    // Ancestors: 5 replies to 4, which replies to nothing.
    let five = index
        .post(&format!("{ann_id}/statuses/5"))
        .expect("post")
        .expect("five");
    let up: Vec<String> = index
        .ancestors(&five, 40)
        .expect("ancestors")
        .iter()
        .map(|h| h.post.uri.clone())
        .collect();
    assert_eq!(up, [format!("{ann_id}/statuses/4")]);
}

#[test]
fn active_profiles_come_by_latest_post_then_those_without_posts() {
    let index = index();
    let ann = actor("a.example", "ann");
    let ben = with(
        actor("b.example", "ben"),
        "published",
        json!("2021-01-01T00:00:00Z"),
    );
    let cat = with(
        with(
            actor("c.example", "cat"),
            "published",
            json!("2022-01-01T00:00:00Z"),
        ),
        "indexable",
        json!(false),
    );
    let dan = with(actor("d.example", "dan"), "discoverable", json!(false));
    index.upsert_actor(&cat).expect("cat");
    for (author, host, n, at) in [
        (&ann, "a.example", 1, "2024-05-01T09:00:00Z"),
        (&ann, "a.example", 2, "2024-05-01T10:00:00Z"),
        (&ben, "b.example", 1, "2024-05-01T12:00:00Z"),
        (&dan, "d.example", 1, "2024-05-01T13:00:00Z"),
    ] {
        let post = note(author, n, "<p>bread</p>", at);
        index.add_post(&post, author, host).expect("add");
    }
    index.commit().expect("commit");
    let accts = |limit, offset| -> Vec<String> {
        index
            .active_profiles(limit, offset)
            .expect("active")
            .hits
            .into_iter()
            .map(|h| h.account.acct)
            .collect()
    };
    assert_eq!(
        accts(40, 0),
        ["ben@b.example", "ann@a.example", "cat@c.example"]
    );
    assert_eq!(accts(1, 1), ["ann@a.example"]);
    assert_eq!(accts(5, 2), ["cat@c.example"]);
    assert!(accts(5, 3).is_empty());
    assert!(index.active_profiles(10, 995).is_err(), "past the window");
}
