//! Topic matching agrees with search: for a varied corpus and queries using every operator, the posts
//! `topic_match::post_matches` accepts are exactly the posts a search of the index finds.

mod support;

use plaza_index::document::Post;
use plaza_index::query::{self, QueryLimits};
use plaza_index::topic_match::{Matcher, Rule, post_matches};
use plaza_index::{SearchRequest, Sort};
use serde_json::{Value, json};
use support::*;

/// The corpus: (author, object) of ~30 posts in five languages by people, an organisation and a group
/// on three instances, with tags, media, polls, replies, quotes, content warnings and CJK text.
fn corpus() -> Vec<(Value, Value)> {
    let alice = actor("bakery.example", "alice");
    let bob = actor("bakery.example", "bob");
    let guild = with(
        actor("coop.example", "guild"),
        "type",
        json!("Organization"),
    );
    let club = with(actor("club.example", "club"), "type", json!("Group"));
    let tag = |name: &str| json!({"type": "Hashtag", "name": format!("#{name}")});
    let lang = |code: &str, html: &str| json!({"contentMap": {code: html}});
    let rows: Vec<(&Value, &str, &str, Value)> = vec![
        (
            &alice,
            "<p>Fresh sourdough bread at the cooperative bakery</p>",
            "2024-01-10T10:00:00Z",
            lang(
                "en",
                "<p>Fresh sourdough bread at the cooperative bakery</p>",
            ),
        ),
        (
            &alice,
            "<p>Rye bread is back #Bread</p>",
            "2024-02-15T10:00:00Z",
            json!({"tag": [tag("Bread")]}),
        ),
        (
            &bob,
            "<p>La boulangerie coopérative ouvre ses portes</p>",
            "2024-02-20T10:00:00Z",
            lang("fr", "<p>La boulangerie coopérative ouvre ses portes</p>"),
        ),
        (
            &bob,
            "<p>Which bread do you prefer?</p>",
            "2024-03-01T00:00:00Z",
            json!({"type": "Question", "oneOf": [{"name": "rye"}, {"name": "wheat"}]}),
        ),
        (
            &guild,
            "<p>Our bakery members met today #coop</p>",
            "2024-03-05T10:00:00Z",
            json!({"contentMap": {"en": "<p>Our bakery members met today #coop</p>"}, "tag": [tag("coop")], "attachment": [{"type": "Document", "mediaType": "image/jpeg", "url": "https://coop.example/m/1.jpg", "name": "members around a loaf"}]}),
        ),
        (
            &guild,
            "<p>Replying: bread prices are up again</p>",
            "2024-03-06T10:00:00Z",
            json!({"inReplyTo": "https://bakery.example/users/alice/statuses/2"}),
        ),
        (
            &alice,
            "<p>The spoiler is here</p>",
            "2024-03-07T10:00:00Z",
            json!({"sensitive": true, "summary": "bread and politics"}),
        ),
        (
            &bob,
            "<p>Die Genossenschaft backt Brot für das ganze Dorf</p>",
            "2024-04-01T10:00:00Z",
            lang(
                "de",
                "<p>Die Genossenschaft backt Brot für das ganze Dorf</p>",
            ),
        ),
        (
            &alice,
            "<p>Bread and roses, white bread</p>",
            "2024-04-02T10:00:00Z",
            json!({}),
        ),
        (
            &club,
            "<p>Las cooperativas de trabajo crecen en la ciudad #cooperativa</p>",
            "2024-04-10T10:00:00Z",
            json!({"contentMap": {"es": "<p>Las cooperativas de trabajo crecen en la ciudad #cooperativa</p>"}, "tag": [tag("cooperativa")]}),
        ),
        (
            &club,
            "<p>Una cooperativa nueva abre hoy</p>",
            "2024-04-11T10:00:00Z",
            lang("es", "<p>Una cooperativa nueva abre hoy</p>"),
        ),
        (
            &guild,
            "<p>Worker cooperatives are running well #cooperative</p>",
            "2024-05-01T10:00:00Z",
            json!({"contentMap": {"en": "<p>Worker cooperatives are running well #cooperative</p>"}, "tag": [tag("cooperative")]}),
        ),
        (
            &alice,
            "<p>Buy cheap bread now #spam #coop</p>",
            "2024-05-02T10:00:00Z",
            json!({"tag": [tag("spam"), tag("coop")]}),
        ),
        (
            &bob,
            "<p>東京都の協同組合がパンを焼きます</p>",
            "2024-05-03T10:00:00Z",
            lang("ja", "<p>東京都の協同組合がパンを焼きます</p>"),
        ),
        (
            &bob,
            "<p>京都の協同組合</p>",
            "2024-05-04T10:00:00Z",
            lang("ja", "<p>京都の協同組合</p>"),
        ),
        (
            &club,
            "<p>The brewery joined the co-op!!! Cheers</p>",
            "2024-06-01T10:00:00Z",
            lang("en", "<p>The brewery joined the co-op!!! Cheers</p>"),
        ),
        (
            &alice,
            "<p>Look at this bakery</p>",
            "2024-06-15T10:00:00Z",
            json!({"quoteUrl": "https://coop.example/users/guild/statuses/5"}),
        ),
        (
            &guild,
            "<p>I run to the bakery every morning</p>",
            "2024-07-01T10:00:00Z",
            lang("en", "<p>I run to the bakery every morning</p>"),
        ),
        (
            &bob,
            "<p>white flour, bread white</p>",
            "2024-07-02T10:00:00Z",
            lang("en", "<p>white flour, bread white</p>"),
        ),
        (
            &club,
            "<p>Photos of the brewery</p>",
            "2024-07-03T10:00:00Z",
            json!({"attachment": [{"type": "Document", "mediaType": "image/png", "url": "https://club.example/m/2.png"}], "sensitive": true}),
        ),
        (
            &alice,
            "<p>Café crème at the coopérative</p>",
            "2024-08-01T10:00:00Z",
            json!({}),
        ),
        (
            &bob,
            "<p>Nous aimons les coopératives de boulangers</p>",
            "2024-08-02T10:00:00Z",
            lang("fr", "<p>Nous aimons les coopératives de boulangers</p>"),
        ),
        (
            &guild,
            "<p>Annual meeting of members, bring bread</p>",
            "2024-08-03T10:00:00Z",
            json!({"contentMap": {"en": "<p>Annual meeting of members, bring bread</p>"}, "inReplyTo": "https://coop.example/users/guild/statuses/5"}),
        ),
        (
            &club,
            "<p>Genossenschaften und Brauereien</p>",
            "2024-09-01T10:00:00Z",
            lang("de", "<p>Genossenschaften und Brauereien</p>"),
        ),
        (
            &alice,
            "<p>Roses are red, bread is brown</p>",
            "2024-09-02T10:00:00Z",
            json!({"tag": [tag("Roses")]}),
        ),
        (
            &bob,
            "<p>Poll: coop or cooperative?</p>",
            "2024-10-01T10:00:00Z",
            json!({"type": "Question", "anyOf": [{"name": "coop"}, {"name": "cooperative"}], "tag": [tag("coop")]}),
        ),
        (
            &guild,
            "<p>Sourdough starter for sale</p>",
            "2024-10-02T10:00:00Z",
            json!({"tag": [tag("spam")]}),
        ),
        (
            &club,
            "<p>한국어 협동조합 소식</p>",
            "2024-11-01T10:00:00Z",
            lang("ko", "<p>한국어 협동조합 소식</p>"),
        ),
        (
            &alice,
            "<p>Last bread of the year</p>",
            "2024-12-31T23:59:59Z",
            lang("en", "<p>Last bread of the year</p>"),
        ),
        (
            &bob,
            "<p>New year, new bread</p>",
            "2025-01-01T00:00:00Z",
            lang("en", "<p>New year, new bread</p>"),
        ),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (author, html, published, extra))| {
            let object = note_with(author, i as u32 + 1, html, published, extra);
            (author.clone(), object)
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "bread",
    "breads",
    "running",
    "language:en run",
    "cooperativa",
    "language:es cooperativa",
    "language:fr coopérative",
    "cooperative",
    "\"white bread\"",
    "bread -\"white bread\"",
    "\"bread white\"",
    "#coop",
    "type:organization #coop OR #cooperative",
    "#coop -#spam",
    "from:alice@bakery.example bread",
    "instance:coop.example",
    "has:media",
    "has:poll",
    "is:reply",
    "is:sensitive bread",
    "is:quote",
    "before:2024-03-01",
    "after:2024-06-30 -is:reply",
    "during:2024-04",
    "during:2024-12-31 OR during:2025-01-01",
    "協同組合",
    "京都",
    "협동조합",
    "co-op",
    "bread -!!!",
    "\"!!!\"",
    "bakery OR brewery -is:reply",
    "members -has:media",
    "Genossenschaft",
    "\"ouvre ses portes\"",
    "loaf",
    "politics",
    "cafe creme",
    "type:group -language:es",
    "lang:de OR lang:ja",
];

#[test]
fn post_matches_agrees_with_search() {
    let index = index();
    let corpus = corpus();
    let mut posts = Vec::new();
    for (author, object) in &corpus {
        let verdict = index.add_post(object, author, host(author)).expect("add");
        assert!(verdict.allowed(), "{}: {verdict:?}", object["id"]);
        posts.push(Post::from_json(object, author, host(author)).expect("post"));
    }
    index.commit().expect("commit");
    let mut matched_somewhere = 0;
    for text in QUERIES {
        let request = SearchRequest {
            sort: Sort::Newest,
            limit: 100,
            ..SearchRequest::new(*text)
        };
        let page = index
            .search_posts(&request)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut found: Vec<String> = page.hits.into_iter().map(|h| h.post.uri).collect();
        found.sort();
        let query = query::parse(text, &QueryLimits::default()).expect("parses");
        let mut matched: Vec<String> = posts
            .iter()
            .filter(|p| post_matches(&query, p))
            .map(|p| p.id.clone())
            .collect();
        matched.sort();
        assert_eq!(matched, found, "query {text:?}");
        if !found.is_empty() {
            matched_somewhere += 1;
        }
        // The matcher gives the same answer for a topic of this query.
        let matcher = Matcher::new([(7, Rule::Query(query))]);
        for p in &posts {
            let expected: &[u32] = if found.contains(&p.id) { &[7] } else { &[] };
            assert_eq!(matcher.matches(p), expected, "{text:?} on {}", p.id);
        }
    }
    // Only `"!!!"` finds nothing: every other query tells matching posts from the rest.
    assert_eq!(matched_somewhere, QUERIES.len() - 1);
}
