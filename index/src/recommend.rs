//! Follow recommendations (the FASP `follow_recommendation` capability): accounts that post on the
//! hashtags and on the instance a given account uses, read from what the index holds.
//!
//! The given account's newest indexed posts tell its hashtags and instance; the newest posts on each of
//! those hashtags (and on that instance) name the candidates. A candidate scores
//! [`TAG_WEIGHT`] per distinct hashtag it shares and [`INSTANCE_WEIGHT`] when it lives on the same
//! instance; only profiles listed in the directory (discoverable, no veto) are recommended, never the
//! account itself. Every step reads a bounded number of posts, so the work is the same whatever the
//! index holds. An account with no indexed post gets no recommendation (an empty list): Plaza does not
//! know what it is interested in, and a list of popular accounts would be a guess.

use std::collections::{BTreeSet, HashMap};

use tantivy::Term;
use tantivy::collector::Count;
use tantivy::query::{BooleanQuery, Occur, TermQuery};
use tantivy::schema::IndexRecordOption;

use crate::compile::{self, Target};
use crate::error::Result;
use crate::index::Index;
use crate::search::{SearchRequest, Sort, TimelineRequest};

/// Recommendations returned when the caller does not say.
pub const DEFAULT_RECOMMENDATIONS: usize = 20;
/// The most recommendations one call returns.
pub const MAX_RECOMMENDATIONS: usize = 40;
/// The given account's newest posts read to learn its hashtags and instance.
const OWN_POSTS: usize = 40;
/// Its most used hashtags looked at.
const TAGS_LOOKED_AT: usize = 8;
/// The newest posts read per hashtag, and on the instance.
const POSTS_PER_SOURCE: usize = 50;
/// Score per distinct shared hashtag.
pub const TAG_WEIGHT: f32 = 2.0;
/// Score for living on the same instance.
pub const INSTANCE_WEIGHT: f32 = 1.0;

/// What a follow recommendation is asked for.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    /// The actor URI of the account that wants recommendations.
    pub account_uri: String,
    /// Only accounts posting in this language (an RFC 4647 basic range: `en`, `en-GB`, `*`).
    pub language: Option<String>,
    /// How many (0: [`DEFAULT_RECOMMENDATIONS`]; at most [`MAX_RECOMMENDATIONS`]).
    pub limit: usize,
}

/// One recommended account with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Its actor URI.
    pub uri: String,
    /// Its score (higher is closer).
    pub score: f32,
    /// The hashtags it shares with the given account, sorted.
    pub shared_tags: Vec<String>,
    /// Whether it lives on the given account's instance.
    pub same_instance: bool,
}

/// What is known of one candidate while scoring.
#[derive(Default)]
struct Candidate {
    tags: BTreeSet<String>,
    same_instance: bool,
    posts: usize,
}

impl Candidate {
    fn score(&self) -> f32 {
        let instance = if self.same_instance {
            INSTANCE_WEIGHT
        } else {
            0.0
        };
        TAG_WEIGHT * self.tags.len() as f32 + instance
    }
}

/// The language filter clause of a query: `language:xx` for a basic range naming a language, nothing
/// for `*` or no range. The index keeps ISO 639-1 codes only, so `en-GB` filters as `en`.
fn language_clause(range: Option<&str>) -> String {
    range
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "*")
        .and_then(crate::language::normalize)
        .map(|lang| format!(" language:{lang}"))
        .unwrap_or_default()
}

impl Index {
    /// Accounts to follow for `request.account_uri`, best first (see the module documentation).
    pub fn recommend_follows(&self, request: &RecommendRequest) -> Result<Vec<Recommendation>> {
        let limit = match request.limit {
            0 => DEFAULT_RECOMMENDATIONS,
            n => n.min(MAX_RECOMMENDATIONS),
        };
        let own = self.timeline(&TimelineRequest {
            author: Some(request.account_uri.clone()),
            limit: OWN_POSTS,
            ..TimelineRequest::default()
        })?;
        let mut tag_uses: HashMap<String, usize> = HashMap::new();
        let mut instance_uses: HashMap<String, usize> = HashMap::new();
        for hit in &own.hits {
            for tag in hit.post.tags.iter().collect::<BTreeSet<_>>() {
                *tag_uses.entry(tag.clone()).or_default() += 1;
            }
            *instance_uses.entry(hit.post.instance.clone()).or_default() += 1;
        }
        let mut tags: Vec<(String, usize)> = tag_uses.into_iter().collect();
        tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        tags.truncate(TAGS_LOOKED_AT);
        let instance = instance_uses
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(host, _)| host);
        let language = language_clause(request.language.as_deref());

        let mut candidates: HashMap<String, Candidate> = HashMap::new();
        for (tag, _) in &tags {
            for hit in self.newest(&format!("#{tag}{language}"))? {
                let candidate = candidates.entry(hit.account.uri).or_default();
                candidate.tags.insert(tag.clone());
                candidate.posts += 1;
            }
        }
        if let Some(host) = &instance {
            for hit in self.newest(&format!("instance:{host}{language}"))? {
                let candidate = candidates.entry(hit.account.uri).or_default();
                candidate.same_instance = true;
                candidate.posts += 1;
            }
        }
        candidates.remove(&request.account_uri);

        let mut ranked: Vec<(String, Candidate)> = candidates.into_iter().collect();
        ranked.sort_by(|a, b| {
            b.1.score()
                .total_cmp(&a.1.score())
                .then_with(|| b.1.posts.cmp(&a.1.posts))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut out = Vec::with_capacity(limit);
        for (uri, candidate) in ranked {
            if out.len() == limit {
                break;
            }
            if !self.listed(&uri)? {
                continue;
            }
            out.push(Recommendation {
                score: candidate.score(),
                shared_tags: candidate.tags.into_iter().collect(),
                same_instance: candidate.same_instance,
                uri,
            });
        }
        Ok(out)
    }

    /// The newest [`POSTS_PER_SOURCE`] posts matching `q`.
    fn newest(&self, q: &str) -> Result<Vec<crate::PostHit>> {
        Ok(self
            .search_posts(&SearchRequest {
                q: q.to_owned(),
                sort: Sort::Newest,
                limit: POSTS_PER_SOURCE,
                ..SearchRequest::default()
            })?
            .hits)
    }

    /// Whether the actor `uri` is listed in the directory (discoverable, no veto).
    fn listed(&self, uri: &str) -> Result<bool> {
        let shared = &*self.shared;
        let mut clauses = compile::scope(&shared.fields, Target::Profiles);
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(shared.fields.id, uri),
                IndexRecordOption::Basic,
            )),
        ));
        let count = shared
            .reader
            .searcher()
            .search(&BooleanQuery::new(clauses), &Count)?;
        Ok(count > 0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::IndexConfig;

    fn actor(host: &str, name: &str, discoverable: bool) -> Value {
        json!({"id": format!("https://{host}/users/{name}"), "type": "Person",
            "preferredUsername": name, "indexable": true, "discoverable": discoverable})
    }

    fn post(index: &Index, author: &Value, host: &str, n: u32, tags: &[&str], lang: &str) {
        let uri = author["id"].as_str().expect("id");
        let tag_objects: Vec<Value> = tags
            .iter()
            .map(|t| json!({"type": "Hashtag", "name": format!("#{t}")}))
            .collect();
        let note = json!({"id": format!("{uri}/statuses/{n}"), "type": "Note",
            "attributedTo": uri, "content": format!("<p>post {n} about things</p>"),
            "contentMap": {lang: format!("<p>post {n} about things</p>")},
            "published": format!("2026-11-{:02}T10:00:00Z", 1 + n % 28),
            "tag": tag_objects, "to": ["https://www.w3.org/ns/activitystreams#Public"]});
        index.add_post(&note, author, host).expect("add");
    }

    fn uris(recs: &[Recommendation]) -> Vec<&str> {
        recs.iter().map(|r| r.uri.as_str()).collect()
    }

    /// Ann posts on #bread and #coop from bakers.example; the others overlap her in different ways.
    fn world() -> (Index, Value) {
        let index = Index::in_memory(IndexConfig::default()).expect("index");
        let ann = actor("bakers.example", "ann", true);
        post(&index, &ann, "bakers.example", 1, &["bread", "coop"], "en");
        post(&index, &ann, "bakers.example", 2, &["bread"], "en");
        // Both tags, elsewhere.
        let bea = actor("far.example", "bea", true);
        post(&index, &bea, "far.example", 3, &["bread"], "en");
        post(&index, &bea, "far.example", 4, &["coop"], "en");
        // One tag, same instance.
        let cat = actor("bakers.example", "cat", true);
        post(&index, &cat, "bakers.example", 5, &["coop"], "en");
        // One tag, elsewhere, in French.
        let dan = actor("other.example", "dan", true);
        post(&index, &dan, "other.example", 6, &["bread"], "fr");
        // Same instance, no tag.
        let eve = actor("bakers.example", "eve", true);
        post(&index, &eve, "bakers.example", 7, &[], "en");
        // Both tags but not discoverable.
        let fay = actor("far.example", "fay", false);
        post(&index, &fay, "far.example", 8, &["bread", "coop"], "en");
        // Unrelated.
        let gus = actor("else.example", "gus", true);
        post(&index, &gus, "else.example", 9, &["knitting"], "en");
        index.commit().expect("commit");
        (index, ann)
    }

    #[test]
    fn shared_tags_weigh_more_than_the_instance_and_only_listed_others_are_recommended() {
        let (index, ann) = world();
        let request = RecommendRequest {
            account_uri: ann["id"].as_str().expect("id").to_owned(),
            ..RecommendRequest::default()
        };
        let recs = index.recommend_follows(&request).expect("recommend");
        assert_eq!(
            uris(&recs),
            [
                "https://far.example/users/bea",
                "https://bakers.example/users/cat",
                "https://other.example/users/dan",
                "https://bakers.example/users/eve",
            ]
        );
        assert_eq!(recs[0].shared_tags, ["bread", "coop"]);
        assert_eq!(recs[0].score, 2.0 * TAG_WEIGHT);
        assert!(recs[1].same_instance);
        assert_eq!(recs[1].score, TAG_WEIGHT + INSTANCE_WEIGHT);
        assert_eq!(recs[3].score, INSTANCE_WEIGHT);

        let one = index
            .recommend_follows(&RecommendRequest {
                limit: 1,
                ..request.clone()
            })
            .expect("recommend");
        assert_eq!(uris(&one), ["https://far.example/users/bea"]);
    }

    #[test]
    fn the_language_range_filters_candidates_and_unknown_accounts_get_nothing() {
        let (index, ann) = world();
        let uri = ann["id"].as_str().expect("id").to_owned();
        let french = index
            .recommend_follows(&RecommendRequest {
                account_uri: uri.clone(),
                language: Some("fr-CA".into()),
                limit: 0,
            })
            .expect("recommend");
        assert_eq!(uris(&french), ["https://other.example/users/dan"]);
        let any = index
            .recommend_follows(&RecommendRequest {
                account_uri: uri,
                language: Some("*".into()),
                limit: 0,
            })
            .expect("recommend");
        assert_eq!(any.len(), 4);
        let unknown = index
            .recommend_follows(&RecommendRequest {
                account_uri: "https://nowhere.example/users/zed".into(),
                ..RecommendRequest::default()
            })
            .expect("recommend");
        assert!(unknown.is_empty());
    }

    #[test]
    fn language_clauses_follow_basic_ranges() {
        assert_eq!(language_clause(None), "");
        assert_eq!(language_clause(Some("*")), "");
        assert_eq!(language_clause(Some("en-GB")), " language:en");
        assert_eq!(language_clause(Some("12-x")), "");
    }
}
