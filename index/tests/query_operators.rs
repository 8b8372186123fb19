//! Every operator of the query language against a small real index, alone and combined.

mod support;

use plaza_index::{Error, Index, SearchRequest};
use serde_json::json;
use support::*;

/// Posts 1–9 by three authors on two instances, in three languages, with media, polls, replies.
fn corpus() -> Index {
    let index = index();
    let alice = actor("bakery.example", "alice");
    let bob = actor("bakery.example", "bob");
    let org = with(
        actor("coop.example", "guild"),
        "type",
        json!("Organization"),
    );
    let posts = [
        (
            &alice,
            1,
            "<p>Fresh sourdough bread at the cooperative bakery</p>",
            "2024-01-10T10:00:00Z",
            json!({"contentMap": {"en": "<p>Fresh sourdough bread at the cooperative bakery</p>"}}),
        ),
        (
            &alice,
            2,
            "<p>Rye bread is back</p>",
            "2024-02-15T10:00:00Z",
            json!({"tag": [{"type": "Hashtag", "name": "#Bread"}]}),
        ),
        (
            &bob,
            3,
            "<p>La boulangerie coopérative ouvre ses portes</p>",
            "2024-02-20T10:00:00Z",
            json!({"contentMap": {"fr": "<p>La boulangerie coopérative ouvre ses portes</p>"}}),
        ),
        (
            &bob,
            4,
            "<p>Which bread do you prefer?</p>",
            "2024-03-01T10:00:00Z",
            json!({"type": "Question", "oneOf": [{"name": "rye"}, {"name": "wheat"}]}),
        ),
        (
            &org,
            5,
            "<p>Our bakery members met today</p>",
            "2024-03-05T10:00:00Z",
            json!({"contentMap": {"en": "<p>Our bakery members met today</p>"}, "attachment": [{"type": "Document", "mediaType": "image/jpeg", "url": "https://coop.example/m/1.jpg", "name": "members around a table"}]}),
        ),
        (
            &org,
            6,
            "<p>Replying about bread prices</p>",
            "2024-03-06T10:00:00Z",
            json!({"inReplyTo": "https://bakery.example/users/alice/statuses/2"}),
        ),
        (
            &alice,
            7,
            "<p>Spoiler inside</p>",
            "2024-03-07T10:00:00Z",
            json!({"sensitive": true, "summary": "bread politics"}),
        ),
        (
            &bob,
            8,
            "<p>Die Genossenschaft backt Brot für alle Nachbarn im Viertel</p>",
            "2024-04-01T10:00:00Z",
            json!({"contentMap": {"de": "<p>Die Genossenschaft backt Brot für alle Nachbarn im Viertel</p>"}}),
        ),
        (
            &alice,
            9,
            "<p>Bread and roses, white bread</p>",
            "2024-04-02T10:00:00Z",
            json!({}),
        ),
    ];
    for (author, n, html, published, extra) in posts {
        let object = note_with(author, n, html, published, extra);
        let host = host(author);
        let verdict = index.add_post(&object, author, host).expect("add");
        assert!(verdict.allowed(), "post {n}: {verdict:?}");
    }
    index.commit().expect("commit");
    index
}

#[test]
fn words_must_all_match() {
    let index = corpus();
    assert_eq!(numbers(&index, "bread"), [1, 2, 4, 6, 7, 9]);
    assert_eq!(numbers(&index, "rye bread"), [2]);
    assert_eq!(numbers(&index, "bread nowhere"), Vec::<u32>::new());
}

#[test]
fn phrases_keep_word_order() {
    let index = corpus();
    assert_eq!(numbers(&index, "\"white bread\""), [9]);
    assert_eq!(numbers(&index, "\"bread white\""), Vec::<u32>::new());
}

#[test]
fn exclusions() {
    let index = corpus();
    assert_eq!(numbers(&index, "bread -rye"), [1, 4, 6, 7, 9]);
    assert_eq!(
        numbers(&index, "bread -\"white bread\" -#bread"),
        [1, 4, 6, 7]
    );
    assert_eq!(numbers(&index, "bread -from:alice@bakery.example"), [4, 6]);
}

#[test]
fn hashtags() {
    let index = corpus();
    assert_eq!(numbers(&index, "#bread"), [2]);
    assert_eq!(numbers(&index, "#BREAD"), [2]);
}

#[test]
fn from_in_both_forms() {
    let index = corpus();
    assert_eq!(numbers(&index, "from:bob@bakery.example"), [3, 4, 8]);
    assert_eq!(numbers(&index, "from:@Bob@Bakery.Example"), [3, 4, 8]);
}

#[test]
fn instance_and_type() {
    let index = corpus();
    assert_eq!(numbers(&index, "instance:coop.example"), [5, 6]);
    assert_eq!(numbers(&index, "type:organization bread"), [6]);
}

#[test]
fn language_declared_or_detected() {
    let index = corpus();
    assert_eq!(numbers(&index, "language:fr"), [3]);
    assert_eq!(numbers(&index, "language:de"), [8]);
    assert!(numbers(&index, "language:en").contains(&1));
}

#[test]
fn dates() {
    let index = corpus();
    assert_eq!(numbers(&index, "bread before:2024-02-15"), [1]);
    assert_eq!(numbers(&index, "bread after:2024-03-06"), [7, 9]);
    assert_eq!(numbers(&index, "during:2024-02"), [2, 3]);
    assert_eq!(numbers(&index, "during:2024-03-06"), [6]);
    assert_eq!(
        numbers(&index, "after:2024-02-01 before:2024-03-02 bread"),
        [2, 4]
    );
    // Ranges that do not meet match nothing; alternatives and exclusions keep their meaning.
    assert!(numbers(&index, "during:2024-02 during:2024-03").is_empty());
    assert_eq!(
        numbers(&index, "during:2024-02 OR during:2024-03-06"),
        [2, 3, 6]
    );
    assert_eq!(numbers(&index, "during:2024-02 -during:2024-02-01"), [2, 3]);
}

#[test]
fn has_and_is() {
    let index = corpus();
    assert_eq!(numbers(&index, "has:media"), [5]);
    assert_eq!(numbers(&index, "has:poll"), [4]);
    assert_eq!(numbers(&index, "is:reply"), [6]);
    assert_eq!(numbers(&index, "is:sensitive"), [7]);
}

#[test]
fn or_alternatives() {
    let index = corpus();
    assert_eq!(numbers(&index, "rye OR roses"), [2, 9]);
    assert_eq!(numbers(&index, "bread rye OR roses"), [2, 9]);
    assert_eq!(numbers(&index, "#bread OR has:poll"), [2, 4]);
}

#[test]
fn content_warning_and_alt_text_are_searchable() {
    let index = corpus();
    assert_eq!(numbers(&index, "politics"), [7]);
    assert_eq!(numbers(&index, "table"), [5]);
}

#[test]
fn combinations() {
    let index = corpus();
    assert_eq!(
        numbers(
            &index,
            "bread from:alice@bakery.example -is:sensitive during:2024-04"
        ),
        [9]
    );
    assert_eq!(
        numbers(&index, "instance:bakery.example has:poll OR is:reply"),
        [4]
    );
}

#[test]
fn stemming_by_language() {
    let index = corpus();
    // English "members" is indexed as "member"; French "coopérative" folds and stems.
    assert_eq!(numbers(&index, "member"), [5]);
    assert_eq!(numbers(&index, "cooperatives language:fr"), [3]);
    // German "Genossenschaften" stems to the stem of "Genossenschaft".
    assert_eq!(numbers(&index, "genossenschaften"), [8]);
}

#[test]
fn malformed_queries_are_errors_with_reasons() {
    let index = corpus();
    for q in [
        "\"open",
        "has:nothing",
        "before:2024-99-01",
        "OR",
        "from:nobody",
        "",
    ] {
        match index.search_posts(&SearchRequest::new(q)) {
            Err(Error::Query(reason)) => assert!(!reason.is_empty()),
            other => panic!("{q}: {other:?}"),
        }
    }
    assert!(matches!(
        index.search_profiles(&SearchRequest::new("has:media")),
        Err(Error::Query(_))
    ));
}

#[test]
fn no_engine_syntax_reaches_the_engine() {
    let index = corpus();
    // tantivy's own syntax is plain text here: no field access, no ranges, no wildcards.
    assert_eq!(numbers(&index, "text:bread"), Vec::<u32>::new());
    assert_eq!(numbers(&index, "bread*"), [1, 2, 4, 6, 7, 9]);
    assert_eq!(
        numbers(&index, "published:[2024 TO 2025]"),
        Vec::<u32>::new()
    );
}

/// Phrases of common words are read from their pairs' terms ("common grams"), not from positions:
/// the results must be exactly those of word order, for every pair and a longer phrase, in posts that
/// hold the words side by side, apart, or in the other order.
#[test]
fn phrases_of_common_words_match_exactly_as_word_order_says() {
    let index = index();
    let author = actor("grams.example", "writer");
    let vocabulary = ["of", "the", "and", "to", "is", "in", "bread", "coop"];
    // A deterministic mix: each post 2–7 words of the vocabulary.
    let mut state: u64 = 7;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let posts: Vec<Vec<&str>> = (0..40)
        .map(|_| {
            (0..2 + next(6))
                .map(|_| vocabulary[next(vocabulary.len())])
                .collect()
        })
        .collect();
    for (n, words) in posts.iter().enumerate() {
        let html = format!("<p>{}</p>", words.join(" "));
        let object = note_with(
            &author,
            n as u32,
            &html,
            "2024-01-01T00:00:00Z",
            json!({"contentMap": {"en": html}}),
        );
        index
            .add_post(&object, &author, host(&author))
            .expect("add");
    }
    index.commit().expect("commit");
    let holding = |phrase: &[&str]| -> Vec<u32> {
        let mut n: Vec<u32> = posts
            .iter()
            .enumerate()
            .filter(|(_, words)| words.windows(phrase.len()).any(|w| w == phrase))
            .map(|(n, _)| n as u32)
            .collect();
        n.sort_unstable();
        n
    };
    let found = |q: &str| -> Vec<u32> {
        let request = SearchRequest {
            limit: 40,
            ..SearchRequest::new(q)
        };
        let page = index.search_posts(&request).expect("search");
        let mut n: Vec<u32> = page
            .hits
            .iter()
            .filter_map(|h| h.post.uri.rsplit('/').next()?.parse().ok())
            .collect();
        n.sort_unstable();
        n
    };
    let mut nonempty = 0;
    for first in vocabulary {
        for second in vocabulary {
            let expected = holding(&[first, second]);
            nonempty += usize::from(!expected.is_empty());
            assert_eq!(
                found(&format!("\"{first} {second}\"")),
                expected,
                "\"{first} {second}\""
            );
        }
    }
    assert!(
        nonempty > 40,
        "the corpus holds most pairs ({nonempty} of 64)"
    );
    for phrase in [
        ["of", "the", "bread"],
        ["the", "and", "to"],
        ["bread", "of", "the"],
    ] {
        let q = format!("\"{}\"", phrase.join(" "));
        assert_eq!(found(&q), holding(&phrase), "{q}");
    }
    // Excluded, and combined with a word.
    let with_bread = holding(&["bread"]);
    let of_the = holding(&["of", "the"]);
    let expected: Vec<u32> = with_bread
        .iter()
        .copied()
        .filter(|n| !of_the.contains(n))
        .collect();
    assert_eq!(found("bread -\"of the\""), expected);
    let expected: Vec<u32> = with_bread
        .iter()
        .copied()
        .filter(|n| of_the.contains(n))
        .collect();
    assert_eq!(found("bread \"of the\""), expected);
    // The snippet marks the phrase's words, as for any phrase.
    let page = index
        .search_posts(&SearchRequest::new("\"of the\""))
        .expect("search");
    let hit = page.hits.first().expect("a hit");
    assert!(
        hit.snippet_html.contains("<b>of</b> <b>the</b>"),
        "{}",
        hit.snippet_html
    );
}
