//! What may be indexed: the consent rules of DESIGN.md section 5, as pure functions over the author's
//! actor document and the object. The most restrictive rule wins.
//!
//! 1. Only objects addressed `to` Public (not unlisted: Public only in `cc`; not followers-only or direct).
//! 2. The author's actor says `indexable: true` (FEP-5feb); missing means no.
//! 3. FEP-268d `searchableBy` on the object, else inherited from the actor, takes precedence when set:
//!    searchable only if it contains Public. An empty list means unset.
//! 4. Profiles appear in the directory only with `discoverable: true`.
//! 5. A bio containing `#nobot`, `#noindex`, `#nosearch`, `noindex` or `nosearch` vetoes both.

use serde_json::Value;

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

/// Strings of a field that may be a string, an object with `id`, or an array of either.
fn iris(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).into_iter().collect(),
        Some(Value::Array(items)) => items.iter().flat_map(|v| iris(Some(v))).collect(),
        _ => Vec::new(),
    }
}

fn has_public(value: Option<&Value>) -> bool {
    iris(value).iter().any(|i| PUBLIC_FORMS.contains(i))
}

/// A boolean that servers send as `true`, `"true"`, or under a prefixed key.
fn flag(actor: &Value, names: &[&str]) -> bool {
    names.iter().any(|name| match actor.get(*name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
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

/// Whether the actor's bio carries one of the veto words.
pub fn bio_vetoes(actor: &Value) -> bool {
    let bio = actor
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    VETO_WORDS.iter().any(|w| bio.contains(w))
}

/// May `object` (a Note, Article, Page…) by `author` be put in the search index?
pub fn may_index_post(object: &Value, author: &Value) -> Verdict {
    if bio_vetoes(author) {
        return Verdict::BioVeto;
    }
    if !has_public(object.get("to")) {
        return Verdict::NotPublic;
    }
    match searchable_by(object).or_else(|| searchable_by(author)) {
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
    use serde_json::json;

    const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../shared/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("json")
    }

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
    fn bio_veto_wins() {
        let public = json!({ "to": [PUBLIC], "searchableBy": [PUBLIC] });
        assert_eq!(
            may_index_post(&public, &author(Some(true), "co-op baker #NoBot")),
            Verdict::BioVeto
        );
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
}
