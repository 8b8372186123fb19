//! Addressing: who an activity or object is for.
//!
//! The relay forwards only what is public and indexes only what is listed public (Public in `to`, not merely
//! in `cc` — that is "unlisted"). Servers spell the public collection several ways; [`is_public_iri`] knows them.

use serde_json::Value;

use super::value::ids;

/// The ActivityStreams public collection.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// Whether an addressee is the public collection.
///
/// Accepts the full IRI, the compact forms `as:Public` and `Public` (valid under the ActivityStreams context),
/// and the `http://` spelling of the full IRI, which some servers still emit (Pleroma's Mastodon fixtures
/// carry it in an embedded Announce); its intent is unambiguous.
pub fn is_public_iri(iri: &str) -> bool {
    matches!(
        iri,
        PUBLIC | "http://www.w3.org/ns/activitystreams#Public" | "as:Public" | "Public"
    )
}

/// The `to` and `cc` addressees of an activity or object, as ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Primary addressees.
    pub to: Vec<String>,
    /// Secondary addressees.
    pub cc: Vec<String>,
}

impl Audience {
    /// Reads `to` and `cc` from a JSON object; each may be a string, an object with `id`, or an array of
    /// either. Anything else (or a non-object) gives an empty audience.
    pub fn from_value(v: &Value) -> Audience {
        let read = |key: &str| -> Vec<String> {
            v.get(key)
                .map(|x| ids(x).into_iter().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Audience {
            to: read("to"),
            cc: read("cc"),
        }
    }

    /// Public in `to` or `cc` (public or unlisted): what a relayed `Delete`, `Move` or `Undo` needs.
    pub fn is_public(&self) -> bool {
        self.to.iter().chain(&self.cc).any(|a| is_public_iri(a))
    }

    /// Public in `to` (listed on public timelines): what a relayed post or edit needs, and what may be indexed.
    pub fn is_listed_public(&self) -> bool {
        self.to.iter().any(|a| is_public_iri(a))
    }

    /// Whether `iri` is among the `to` or `cc` addressees (exact match).
    pub fn contains(&self, iri: &str) -> bool {
        self.to.iter().chain(&self.cc).any(|a| a == iri)
    }

    /// No addressee at all.
    pub fn is_empty(&self) -> bool {
        self.to.is_empty() && self.cc.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_spellings() {
        assert!(is_public_iri(PUBLIC));
        assert!(is_public_iri("as:Public"));
        assert!(is_public_iri("Public"));
        assert!(is_public_iri("http://www.w3.org/ns/activitystreams#Public"));
        assert!(!is_public_iri(
            "https://www.w3.org/ns/activitystreams#public"
        ));
        assert!(!is_public_iri("https://host/users/a/followers"));
    }

    #[test]
    fn listed_unlisted_private() {
        let listed = Audience::from_value(&json!({"to": [PUBLIC], "cc": ["https://h/f"]}));
        assert!(listed.is_public() && listed.is_listed_public());
        let unlisted = Audience::from_value(&json!({"to": "https://h/f", "cc": "as:Public"}));
        assert!(unlisted.is_public() && !unlisted.is_listed_public());
        assert_eq!(unlisted.to, vec!["https://h/f"]);
        let private = Audience::from_value(&json!({"to": ["https://h/f"], "cc": []}));
        assert!(!private.is_public());
        assert!(private.contains("https://h/f"));
        let odd = Audience::from_value(&json!({"to": [{"id": "Public"}, 7, null], "cc": {"x": 1}}));
        assert!(odd.is_listed_public());
        assert!(Audience::from_value(&json!([PUBLIC])).is_empty());
    }
}
