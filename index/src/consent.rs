//! What may be indexed: the consent rules of DESIGN.md section 5, as pure functions over the author's
//! actor document and the object. The most restrictive rule wins.
//!
//! 1. Only objects addressed `to` Public (not unlisted: Public only in `cc`; not followers-only or direct).
//! 2. The author's actor says `indexable: true` (FEP-5feb); missing means no.
//! 3. FEP-268d `searchableBy` on the object, else inherited from the actor, takes precedence when set:
//!    searchable only if it contains Public. An empty list means unset. A post's own `searchableBy`
//!    with Public is consent given for that post: it wins over the author's opting out (`indexable`
//!    false, `searchableBy` without Public, a bio veto), so such a post is indexed and stays indexed.
//! 4. Profiles appear in the directory only with `discoverable: true`.
//! 5. A bio containing `#nobot`, `#noindex`, `#nosearch`, `noindex` or `nosearch` vetoes the directory
//!    listing and every post that does not carry its own `searchableBy` (rule 3).

use serde_json::Value;

use crate::html;
use crate::json::{flag, iris, items};

/// The IRIs that mean "everyone".
const PUBLIC_FORMS: &[&str] = &[
    "https://www.w3.org/ns/activitystreams#Public",
    "http://www.w3.org/ns/activitystreams#Public",
    "as:Public",
    "Public",
];

/// Words in a bio that veto indexing and listing.
const VETO_WORDS: &[&str] = &["#nobot", "#noindex", "#nosearch", "noindex", "nosearch"];

/// Why something may not be indexed (or `Allowed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Indexing is allowed.
    Allowed,
    /// The object is not addressed `to` Public.
    NotPublic,
    /// The author has not opted in with `indexable: true`.
    NotIndexable,
    /// `searchableBy` is set and does not include Public.
    SearchableByExcludesPublic,
    /// The author has not opted in to the directory with `discoverable: true`.
    NotDiscoverable,
    /// The author's bio asks not to be indexed.
    BioVeto,
}

impl Verdict {
    /// Whether the verdict allows indexing.
    pub fn allowed(self) -> bool {
        self == Verdict::Allowed
    }
}

fn has_public(value: Option<&Value>) -> bool {
    iris(value).iter().any(|i| PUBLIC_FORMS.contains(i))
}

/// `searchableBy` of a document, `None` when unset (absent or empty).
fn searchable_by(doc: &Value) -> Option<bool> {
    let field = [
        "searchableBy",
        "fedibird:searchableBy",
        "http://fedibird.com/ns#searchableBy",
    ]
    .iter()
    .find_map(|k| doc.get(*k))?;
    if iris(Some(field)).is_empty() {
        return None;
    }
    Some(has_public(Some(field)))
}

/// Whether the actor's bio carries one of the veto words. The bio is read as text (Mastodon renders
/// `#nobot` as `#<span>nobot</span>`, which a search in the raw HTML would miss), and the actor's
/// `Hashtag` tags count as part of it.
pub fn bio_vetoes(actor: &Value) -> bool {
    let bio = html::render(
        actor
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .text
    .to_lowercase();
    let tags = items(actor.get("tag"))
        .into_iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(|name| format!("#{}", name.trim_start_matches('#').to_lowercase()));
    VETO_WORDS.iter().any(|w| bio.contains(w))
        || tags.into_iter().any(|t| VETO_WORDS.contains(&t.as_str()))
}

/// May `object` (a Note, Article, Page…) by `author` be put in the search index?
pub fn may_index_post(object: &Value, author: &Value) -> Verdict {
    may_index_post_given(object, || may_index_posts_of(author))
}

/// [`may_index_post`] with the author's own verdict ([`may_index_posts_of`]) asked only when the
/// object leaves it to the author, so a caller can keep that verdict per author (it parses the bio).
pub fn may_index_post_given(object: &Value, author_verdict: impl FnOnce() -> Verdict) -> Verdict {
    if !has_public(object.get("to")) {
        return Verdict::NotPublic;
    }
    match searchable_by(object) {
        Some(true) => Verdict::Allowed,
        Some(false) => Verdict::SearchableByExcludesPublic,
        None => author_verdict(),
    }
}

/// Whether the object's own `searchableBy` decided its verdict (then an actor `Update` alone cannot
/// change it).
pub fn object_decides(object: &Value) -> bool {
    searchable_by(object).is_some()
}

/// May the posts of `author` whose objects say nothing of their own be indexed? This is the question
/// an actor `Update` re-asks: when the answer turns to no, those posts leave the index.
pub fn may_index_posts_of(author: &Value) -> Verdict {
    if bio_vetoes(author) {
        return Verdict::BioVeto;
    }
    match searchable_by(author) {
        Some(true) => Verdict::Allowed,
        Some(false) => Verdict::SearchableByExcludesPublic,
        None if flag(author, &["indexable", "toot:indexable"]) => Verdict::Allowed,
        None => Verdict::NotIndexable,
    }
}

/// May `actor` be listed in the directory?
pub fn may_list_profile(actor: &Value) -> Verdict {
    if bio_vetoes(actor) {
        return Verdict::BioVeto;
    }
    if flag(actor, &["discoverable", "toot:discoverable"]) {
        Verdict::Allowed
    } else {
        Verdict::NotDiscoverable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixture;
    use serde_json::json;

    const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

    fn author(indexable: Option<bool>, summary: &str) -> Value {
        let mut a =
            json!({ "id": "https://a.example/users/x", "type": "Person", "summary": summary });
        if let Some(i) = indexable {
            a["indexable"] = json!(i);
        }
        a
    }

    #[test]
    fn only_public_posts_of_indexable_authors() {
        let public = json!({ "to": [PUBLIC] });
        assert_eq!(
            may_index_post(&public, &author(Some(true), "")),
            Verdict::Allowed
        );
        assert_eq!(
            may_index_post(&public, &author(None, "")),
            Verdict::NotIndexable
        );
        assert_eq!(
            may_index_post(&public, &author(Some(false), "")),
            Verdict::NotIndexable
        );
        let unlisted = json!({ "to": ["https://a.example/users/x/followers"], "cc": [PUBLIC] });
        assert_eq!(
            may_index_post(&unlisted, &author(Some(true), "")),
            Verdict::NotPublic
        );
        let as_public = json!({ "to": "as:Public" });
        assert_eq!(
            may_index_post(&as_public, &author(Some(true), "")),
            Verdict::Allowed
        );
    }

    #[test]
    fn searchable_by_takes_precedence_and_empty_means_unset() {
        let followers_only =
            json!({ "to": [PUBLIC], "searchableBy": ["https://a.example/users/x/followers"] });
        assert_eq!(
            may_index_post(&followers_only, &author(Some(true), "")),
            Verdict::SearchableByExcludesPublic
        );
        let everyone = json!({ "to": [PUBLIC], "searchableBy": [PUBLIC] });
        assert_eq!(
            may_index_post(&everyone, &author(None, "")),
            Verdict::Allowed
        );
        let empty = json!({ "to": [PUBLIC], "searchableBy": [] });
        assert_eq!(
            may_index_post(&empty, &author(None, "")),
            Verdict::NotIndexable
        );
        let mut inherits = author(None, "");
        inherits["searchableBy"] = json!(PUBLIC);
        assert_eq!(
            may_index_post(&json!({ "to": [PUBLIC] }), &inherits),
            Verdict::Allowed
        );
    }

    #[test]
    fn bio_veto_wins_except_over_a_posts_own_consent() {
        let vetoed = author(Some(true), "co-op baker #NoBot");
        assert_eq!(
            may_index_post(&json!({ "to": [PUBLIC] }), &vetoed),
            Verdict::BioVeto
        );
        let consented = json!({ "to": [PUBLIC], "searchableBy": [PUBLIC] });
        assert_eq!(may_index_post(&consented, &vetoed), Verdict::Allowed);
        // Nor does an author who is not indexable, or whose searchableBy leaves Public out, undo it.
        assert_eq!(
            may_index_post(&consented, &author(Some(false), "")),
            Verdict::Allowed
        );
        let mut narrowed = author(Some(true), "");
        narrowed["searchableBy"] = json!(["https://a.example/users/x/followers"]);
        assert_eq!(may_index_post(&consented, &narrowed), Verdict::Allowed);
        let mut a = author(Some(true), "please NOINDEX me");
        a["discoverable"] = json!(true);
        assert_eq!(may_list_profile(&a), Verdict::BioVeto);
    }

    #[test]
    fn directory_needs_discoverable() {
        let actor = fixture("mastodon-actor.json");
        let expected = if flag(&actor, &["discoverable"]) {
            Verdict::Allowed
        } else {
            Verdict::NotDiscoverable
        };
        assert_eq!(may_list_profile(&actor), expected);
        assert_eq!(
            may_list_profile(&json!({ "discoverable": "true" })),
            Verdict::Allowed
        );
        assert_eq!(may_list_profile(&json!({})), Verdict::NotDiscoverable);
    }

    #[test]
    fn real_payloads() {
        let create = fixture("mastodon-create-note.json");
        let object = create.get("object").cloned().unwrap_or(Value::Null);
        let verdict = may_index_post(&object, &author(Some(true), ""));
        assert_eq!(verdict.allowed(), has_public(object.get("to")));
        let private = fixture("mastodon-announce-private.json");
        assert_eq!(
            may_index_post(&private, &author(Some(true), "")),
            Verdict::NotPublic
        );
    }

    #[test]
    fn rule_1_public_only() {
        let a = author(Some(true), "");
        for to in [
            json!(PUBLIC),
            json!(["http://www.w3.org/ns/activitystreams#Public"]),
            json!("as:Public"),
            json!(["Public", "https://a.example/users/x/followers"]),
        ] {
            assert_eq!(
                may_index_post(&json!({ "to": to }), &a),
                Verdict::Allowed,
                "{to}"
            );
        }
        let unlisted = json!({ "to": ["https://a.example/users/x/followers"], "cc": [PUBLIC] });
        let followers = json!({ "to": ["https://a.example/users/x/followers"] });
        let direct = json!({ "to": ["https://b.example/users/y"] });
        let nowhere = json!({});
        for object in [unlisted, followers, direct, nowhere] {
            assert_eq!(may_index_post(&object, &a), Verdict::NotPublic, "{object}");
        }
    }

    #[test]
    fn rule_2_indexable_missing_means_no() {
        let public = json!({ "to": [PUBLIC] });
        assert_eq!(
            may_index_post(&public, &author(None, "")),
            Verdict::NotIndexable
        );
        assert_eq!(
            may_index_post(&public, &author(Some(false), "")),
            Verdict::NotIndexable
        );
        assert_eq!(
            may_index_post(&public, &author(Some(true), "")),
            Verdict::Allowed
        );
        assert_eq!(
            may_index_post(&public, &json!({ "indexable": "true" })),
            Verdict::Allowed
        );
        assert_eq!(
            may_index_post(&public, &json!({ "toot:indexable": true })),
            Verdict::Allowed
        );
        assert_eq!(
            may_index_post(&public, &json!({ "indexable": "yes please" })),
            Verdict::NotIndexable
        );
    }

    #[test]
    fn rule_3_object_searchable_by_overrides_indexable() {
        let narrowed = json!({ "to": [PUBLIC], "searchableBy": "https://a.example/users/x" });
        assert_eq!(
            may_index_post(&narrowed, &author(Some(true), "")),
            Verdict::SearchableByExcludesPublic
        );
        let widened = json!({ "to": [PUBLIC], "http://fedibird.com/ns#searchableBy": [PUBLIC] });
        assert_eq!(
            may_index_post(&widened, &author(Some(false), "")),
            Verdict::Allowed
        );
        assert!(object_decides(&widened));
        assert!(!object_decides(
            &json!({ "to": [PUBLIC], "searchableBy": [] })
        ));
    }

    #[test]
    fn rule_3_actor_searchable_by_is_inherited_and_overridden() {
        let mut narrowed = author(Some(true), "");
        narrowed["fedibird:searchableBy"] = json!(["https://a.example/users/x/followers"]);
        let plain = json!({ "to": [PUBLIC] });
        assert_eq!(
            may_index_post(&plain, &narrowed),
            Verdict::SearchableByExcludesPublic
        );
        assert_eq!(
            may_index_posts_of(&narrowed),
            Verdict::SearchableByExcludesPublic
        );
        let own = json!({ "to": [PUBLIC], "searchableBy": [PUBLIC] });
        assert_eq!(may_index_post(&own, &narrowed), Verdict::Allowed);
    }

    #[test]
    fn rule_4_directory_needs_discoverable() {
        assert_eq!(
            may_list_profile(&json!({ "discoverable": true })),
            Verdict::Allowed
        );
        assert_eq!(
            may_list_profile(&json!({ "toot:discoverable": true })),
            Verdict::Allowed
        );
        assert_eq!(
            may_list_profile(&json!({ "discoverable": false, "indexable": true })),
            Verdict::NotDiscoverable
        );
    }

    #[test]
    fn rule_5_every_veto_word_in_any_case_and_markup() {
        let public = json!({ "to": [PUBLIC] });
        for word in ["#nobot", "#NoIndex", "#NOSEARCH", "noindex", "NoSearch"] {
            let mut a = author(Some(true), &format!("<p>baker, {word}</p>"));
            a["discoverable"] = json!(true);
            assert_eq!(may_index_post(&public, &a), Verdict::BioVeto, "{word}");
            assert_eq!(may_list_profile(&a), Verdict::BioVeto, "{word}");
            assert_eq!(may_index_posts_of(&a), Verdict::BioVeto, "{word}");
        }
        // Mastodon renders a bio hashtag as `#<span>nobot</span>`.
        let rendered = author(
            Some(true),
            "<p><a href=\"https://a.example/tags/nobot\" class=\"mention hashtag\">#<span>nobot</span></a></p>",
        );
        assert_eq!(may_index_posts_of(&rendered), Verdict::BioVeto);
        let mut tagged = author(Some(true), "");
        tagged["tag"] = json!([{ "type": "Hashtag", "name": "#NoBot" }]);
        assert_eq!(may_index_posts_of(&tagged), Verdict::BioVeto);
        assert_eq!(
            may_index_posts_of(&author(Some(true), "robots welcome")),
            Verdict::Allowed
        );
    }

    #[test]
    fn pleroma_fixture_bio_vetoes() {
        assert!(bio_vetoes(&fixture("pleroma-actor.json")));
    }
}
