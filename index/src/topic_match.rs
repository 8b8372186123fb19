//! Topic matching on ingest: which of the relay's topics (a hashtag, a language, an instance, a curated
//! search in the query language) a post just indexed belongs to.
//!
//! Every topic is compiled once into a [`Matcher`]; each post is then matched against all of them in one
//! pass, never by a search per topic, so the cost grows with the number of distinct topics and not with
//! their followers. Hashtags, languages and instances are hash lookups of the post's values; curated
//! searches are checked against the post's own fields and its analysed text, computed at most once per
//! post and only when a search gets as far as asking for a word.
//!
//! A curated search matches a post exactly when searching the index with that query would find the post
//! (`compile` over the fields `ingest` writes): the same words in the same forms
//! ([`analysis::query_forms`] against [`analysis::tokens`] of the post's searchable text), phrases at
//! consecutive positions, and the operators read from the same values the index stores.
//!
//! ```
//! use plaza_index::document::Post;
//! use plaza_index::query::{QueryLimits, parse};
//! use plaza_index::topic_match::{Matcher, Rule};
//! use serde_json::json;
//!
//! let curated = parse("type:organization #coop OR #cooperative", &QueryLimits::default())?;
//! let matcher = Matcher::new([
//!     (1, Rule::Tag("coop".into())),
//!     (2, Rule::Language("es".into())),
//!     (3, Rule::Query(curated)),
//! ]);
//! let author = json!({"id": "https://coop.example/users/guild", "type": "Organization",
//!                     "preferredUsername": "guild"});
//! let note = json!({"id": "https://coop.example/users/guild/statuses/1", "type": "Note",
//!                   "attributedTo": "https://coop.example/users/guild",
//!                   "content": "<p>Our #Coop bakery opens</p>"});
//! let post = Post::from_json(&note, &author, "coop.example")?;
//! assert_eq!(matcher.matches(&post), [1, 3]);
//! # Ok::<(), plaza_index::Error>(())
//! ```

use std::cell::OnceCell;
use std::collections::HashMap;

use crate::analysis;
use crate::document::{Post, normalize_tag};
use crate::language;
use crate::query::{Has, Is, Query, Term, TimeRange};

/// What one topic matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Posts with this hashtag (normalised like [`normalize_tag`]; a `#` and capitals are accepted).
    Tag(String),
    /// Posts in this language (an ISO 639-1 code; BCP 47 tags such as `pt-BR` are reduced to it).
    Language(String),
    /// Posts that arrived from this instance (`host[:port]`, compared lowercase).
    Instance(String),
    /// Posts a search with this query would find.
    Query(Query),
}

/// One alternative of a clause, ready to be checked against a post.
#[derive(Debug, Clone)]
enum Check {
    /// Words or a phrase: the forms they may take in the index, each a sequence of terms that must
    /// stand at consecutive positions.
    Text(Vec<Vec<String>>),
    /// Any other term: a filter on one of the post's fields.
    Field(Term),
}

impl Check {
    /// The check of a term, `None` when the term has nothing to search (only punctuation), which
    /// [`crate::compile`] leaves out too.
    fn of(term: &Term, lang: Option<&str>) -> Option<Check> {
        match term {
            Term::Word(words) | Term::Phrase(words) => {
                let forms = analysis::query_forms(words, lang);
                (!forms.is_empty()).then_some(Check::Text(forms))
            }
            other => Some(Check::Field(other.clone())),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Check::Text(_))
    }

    fn holds(&self, post: &Analysed<'_>) -> bool {
        match self {
            Check::Text(forms) => forms.iter().any(|form| post.has_sequence(form)),
            Check::Field(term) => field_holds(term, post.post),
        }
    }
}

/// Whether a post's indexed field satisfies a filter term (what `compile::term` asks of the index).
fn field_holds(term: &Term, post: &Post) -> bool {
    match term {
        Term::Tag(tag) => post.tags.iter().any(|t| t == tag),
        Term::From(handle) => post.author_handle.to_lowercase() == *handle,
        Term::Instance(host) => post.instance == *host,
        Term::Language(lang) => post.language.as_deref() == Some(lang.as_str()),
        Term::Type(kind) => post.author_type == *kind,
        Term::Time(range) => in_range(post.published, range),
        Term::Has(Has::Media) => !post.media.is_empty(),
        Term::Has(Has::Poll) => post.has_poll,
        Term::Is(Is::Reply) => post.in_reply_to.is_some(),
        Term::Is(Is::Sensitive) => post.sensitive,
        Term::Is(Is::Quote) => post.is_quote,
        // Text is checked against the analysed text, never as a field.
        Term::Word(_) | Term::Phrase(_) => false,
    }
}

/// Whether `at` lies in `[from, to)`, at the whole seconds the index stores dates with.
fn in_range(at: time::OffsetDateTime, range: &TimeRange) -> bool {
    let seconds = at.unix_timestamp();
    range
        .from
        .is_none_or(|from| seconds >= from.unix_timestamp())
        && range.to.is_none_or(|to| seconds < to.unix_timestamp())
}

/// A clause of a compiled query: one of `any_of` must hold (or, negated, none).
#[derive(Debug, Clone)]
struct CompiledClause {
    negated: bool,
    any_of: Vec<Check>,
}

impl CompiledClause {
    fn holds(&self, post: &Analysed<'_>) -> bool {
        self.any_of.iter().any(|c| c.holds(post)) != self.negated
    }
}

/// A query compiled for matching single posts; `None` clauses when it can match nothing.
#[derive(Debug, Clone)]
struct Compiled {
    /// Every clause must hold; `None` for a query that matches nothing (a positive term with nothing
    /// to search, as [`crate::compile`] decides).
    clauses: Option<Vec<CompiledClause>>,
}

impl Compiled {
    fn new(query: &Query) -> Compiled {
        let lang = query.language();
        let mut clauses = Vec::with_capacity(query.clauses.len());
        for clause in &query.clauses {
            let mut any_of: Vec<Check> = clause
                .any_of
                .iter()
                .filter_map(|t| Check::of(t, lang))
                .collect();
            if any_of.is_empty() {
                if clause.negated {
                    // Excludes nothing.
                    continue;
                }
                return Compiled { clauses: None };
            }
            // Fields first: they are cheap and often decide, so the text is analysed only when needed.
            any_of.sort_by_key(Check::is_text);
            clauses.push(CompiledClause {
                negated: clause.negated,
                any_of,
            });
        }
        clauses.sort_by_key(|c| c.any_of.iter().any(Check::is_text));
        Compiled {
            clauses: Some(clauses),
        }
    }

    fn holds(&self, post: &Analysed<'_>) -> bool {
        self.clauses
            .as_ref()
            .is_some_and(|clauses| clauses.iter().all(|c| c.holds(post)))
    }
}

/// A post with its analysed text, computed on first use: each term's positions, in order.
struct Analysed<'a> {
    post: &'a Post,
    positions: OnceCell<HashMap<String, Vec<usize>>>,
}

impl<'a> Analysed<'a> {
    fn new(post: &'a Post) -> Self {
        Analysed {
            post,
            positions: OnceCell::new(),
        }
    }

    /// The terms of the post's text as the index holds them ([`crate::ingest`]'s `post_document`).
    fn positions(&self) -> &HashMap<String, Vec<usize>> {
        self.positions.get_or_init(|| {
            let mut map: HashMap<String, Vec<usize>> = HashMap::new();
            let text = self.post.searchable_text();
            for token in analysis::tokens(&text, self.post.language.as_deref()) {
                map.entry(token.text).or_default().push(token.position);
            }
            map
        })
    }

    /// Whether the terms stand at consecutive positions (one term: anywhere), as a phrase query finds.
    fn has_sequence(&self, terms: &[String]) -> bool {
        let map = self.positions();
        let Some((first, rest)) = terms.split_first() else {
            return false;
        };
        let Some(starts) = map.get(first.as_str()) else {
            return false;
        };
        let Some(rest) = rest
            .iter()
            .map(|t| map.get(t.as_str()))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        starts.iter().any(|&start| {
            rest.iter()
                .enumerate()
                .all(|(i, at)| at.binary_search(&(start + 1 + i)).is_ok())
        })
    }
}

/// Whether `post` matches `query` exactly as a search with this query would find it in the index.
pub fn post_matches(query: &Query, post: &Post) -> bool {
    Compiled::new(query).holds(&Analysed::new(post))
}

/// All topics, compiled once; rebuilt by the caller when topics change.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    tags: HashMap<String, Vec<u32>>,
    languages: HashMap<String, Vec<u32>>,
    instances: HashMap<String, Vec<u32>>,
    queries: Vec<(u32, Compiled)>,
    topics: usize,
}

impl Matcher {
    /// Compiles the topics, each given with the caller's id for it.
    pub fn new(rules: impl IntoIterator<Item = (u32, Rule)>) -> Matcher {
        let mut matcher = Matcher::default();
        for (id, rule) in rules {
            matcher.topics += 1;
            let (map, key) = match rule {
                Rule::Tag(tag) => {
                    let key = normalize_tag(&tag).unwrap_or_else(|| tag.to_lowercase());
                    (&mut matcher.tags, key)
                }
                Rule::Language(lang) => {
                    let key = language::normalize(&lang).unwrap_or_else(|| lang.to_lowercase());
                    (&mut matcher.languages, key)
                }
                Rule::Instance(host) => (&mut matcher.instances, host.trim().to_lowercase()),
                Rule::Query(query) => {
                    let compiled = Compiled::new(&query);
                    // A query that can match nothing costs nothing per post.
                    if compiled.clauses.is_some() {
                        matcher.queries.push((id, compiled));
                    }
                    continue;
                }
            };
            map.entry(key).or_default().push(id);
        }
        matcher
    }

    /// The ids of the topics `post` belongs to, sorted, each once.
    pub fn matches(&self, post: &Post) -> Vec<u32> {
        let mut ids = Vec::new();
        for tag in &post.tags {
            ids.extend(self.tags.get(tag).into_iter().flatten());
        }
        if let Some(lang) = &post.language {
            ids.extend(self.languages.get(lang).into_iter().flatten());
        }
        ids.extend(self.instances.get(&post.instance).into_iter().flatten());
        let analysed = Analysed::new(post);
        ids.extend(
            self.queries
                .iter()
                .filter(|(_, q)| q.holds(&analysed))
                .map(|(id, _)| *id),
        );
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// How many topics were compiled.
    pub fn len(&self) -> usize {
        self.topics
    }

    /// Whether there are no topics.
    pub fn is_empty(&self) -> bool {
        self.topics == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryLimits, parse};
    use serde_json::{Value, json};

    const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

    /// A post by `alice@coop.example` (an `Organization` when `org`), arrived from `coop.example`:
    /// an English note published 2024-03-05 with `html`, and `extra` fields set on the object.
    fn post_with(html: &str, extra: Value, org: bool) -> Post {
        let author = json!({
            "id": "https://coop.example/users/alice",
            "type": if org { "Organization" } else { "Person" },
            "preferredUsername": "Alice",
        });
        let mut note = json!({
            "id": "https://coop.example/users/alice/statuses/1",
            "type": "Note",
            "attributedTo": "https://coop.example/users/alice",
            "content": html,
            "contentMap": {"en": html},
            "to": [PUBLIC],
            "published": "2024-03-05T10:00:00Z",
        });
        if let Value::Object(more) = extra {
            for (k, v) in more {
                note[k] = v;
            }
        }
        Post::from_json(&note, &author, "Coop.Example").expect("post")
    }

    fn post(html: &str) -> Post {
        post_with(html, json!({}), false)
    }

    fn q(text: &str) -> Query {
        parse(text, &QueryLimits::default()).expect("query parses")
    }

    fn hit(query: &str, post: &Post) -> bool {
        post_matches(&q(query), post)
    }

    #[test]
    fn each_rule_kind_and_ids_once_sorted() {
        let matcher = Matcher::new([
            (9, Rule::Tag("#Coop".into())),
            (3, Rule::Language("en-GB".into())),
            (5, Rule::Instance("COOP.example".into())),
            (1, Rule::Query(q("bakery -rye"))),
            // The same id under two rules, both matching: reported once.
            (3, Rule::Tag("bread".into())),
            (4, Rule::Tag("knitting".into())),
            (6, Rule::Language("fr".into())),
            (7, Rule::Instance("other.example".into())),
            (8, Rule::Query(q("rye"))),
            (2, Rule::Query(q("\"!!!\""))),
        ]);
        assert_eq!(matcher.len(), 10);
        assert!(!matcher.is_empty());
        let p = post("<p>Our #coop bakery has fresh #Bread</p>");
        assert_eq!(matcher.matches(&p), [1, 3, 5, 9]);
        let rye = post("<p>Rye at the bakery</p>");
        assert_eq!(matcher.matches(&rye), [3, 5, 8]);
        assert!(Matcher::new([]).is_empty());
        assert_eq!(Matcher::new([]).matches(&p), Vec::<u32>::new());
    }

    #[test]
    fn operators() {
        let org = post_with("<p>Members of our #Cooperative met</p>", json!({}), true);
        let person = post("<p>I like #coop things</p>");
        let query = "type:organization #coop OR #cooperative";
        assert!(hit(query, &org));
        assert!(!hit(query, &person));
        assert!(hit("#coop OR #cooperative", &person));

        let spam = post("<p>Buy now #spam #coop</p>");
        assert!(!hit("#coop -#spam", &spam));
        assert!(hit("#coop -#spam", &person));

        assert!(hit("from:alice@coop.example", &person));
        assert!(hit("from:@Alice@Coop.Example", &person));
        assert!(!hit("from:bob@coop.example", &person));
        assert!(hit("instance:coop.example", &person));
        assert!(!hit("instance:other.example", &person));
        assert!(hit("language:en", &person));
        assert!(!hit("lang:fr", &person));

        let media = post_with(
            "<p>Photo</p>",
            json!({"attachment": [{"type": "Document", "mediaType": "image/png",
                                   "url": "https://coop.example/m/1.png", "name": "a loaf"}]}),
            false,
        );
        assert!(hit("has:media", &media));
        assert!(!hit("has:media", &person));
        // Media descriptions are searchable text.
        assert!(hit("loaf", &media));
        let poll = post_with(
            "<p>Which?</p>",
            json!({"type": "Question", "oneOf": [{"name": "a"}]}),
            false,
        );
        assert!(hit("has:poll", &poll) && !hit("has:poll", &person));
        let reply = post_with(
            "<p>Agreed</p>",
            json!({"inReplyTo": "https://x.example/1"}),
            false,
        );
        assert!(hit("is:reply", &reply) && !hit("is:reply", &person));
        assert!(hit("-is:reply", &person) && !hit("-is:reply", &reply));
        let sensitive = post_with(
            "<p>Hidden</p>",
            json!({"sensitive": true, "summary": "politics"}),
            false,
        );
        assert!(hit("is:sensitive politics", &sensitive));
        let quote = post_with(
            "<p>Look</p>",
            json!({"quoteUrl": "https://x.example/2"}),
            false,
        );
        assert!(hit("is:quote", &quote) && !hit("is:quote", &person));

        // Published 2024-03-05T10:00:00Z.
        assert!(hit("after:2024-03-04 before:2024-03-06", &person));
        assert!(hit("during:2024-03-05", &person) && hit("during:2024-03", &person));
        assert!(!hit("after:2024-03-05", &person));
        assert!(!hit("before:2024-03-05", &person));
    }

    #[test]
    fn words_phrases_and_stemming() {
        let p = post("<p>Sourdough and white bread with roses</p>");
        assert!(hit("bread roses", &p));
        assert!(!hit("bread rye", &p));
        assert!(hit("\"white bread\"", &p));
        assert!(!hit("\"bread white\"", &p));
        assert!(!hit("bread -\"white bread\"", &p));
        assert!(hit("bread -\"bread white\"", &p));
        assert!(hit("rye OR roses", &p));
        // English stemming: `breads` is indexed as `bread`.
        assert!(hit("breads", &p));

        let es = post_with(
            "<p>Las cooperativas de trabajo crecen</p>",
            json!({"contentMap": {"es": "<p>Las cooperativas de trabajo crecen</p>"}}),
            false,
        );
        assert!(hit("language:es cooperativa", &es));
        assert!(!hit("language:en cooperativa", &es));
        assert!(!hit("cooperativa", &p));
    }

    #[test]
    fn cjk_bigrams() {
        let ja = post_with(
            "<p>東京都の協同組合</p>",
            json!({"contentMap": {"ja": "<p>東京都の協同組合</p>"}}),
            false,
        );
        assert!(hit("協同組合", &ja));
        assert!(hit("京都", &ja));
        assert!(hit("都の協同", &ja));
        assert!(!hit("東京協同", &ja));
        assert!(!hit("組合東京", &ja));
    }

    #[test]
    fn punctuation_only_terms() {
        let p = post("<p>bread</p>");
        // Nothing to search: a positive one matches nothing, a negated one excludes nothing.
        assert!(!hit("\"!!!\"", &p));
        assert!(!hit("bread !!!", &p));
        assert!(hit("bread -!!!", &p));
        assert!(hit("bread -\"?!\"", &p));
        // An alternative with nothing to search leaves the other.
        assert!(hit("!!! OR bread", &p));
        let matcher = Matcher::new([(1, Rule::Query(q("!!!"))), (2, Rule::Query(q("-!!!")))]);
        assert_eq!(matcher.len(), 2);
        assert_eq!(matcher.matches(&p), [2]);
    }
}
