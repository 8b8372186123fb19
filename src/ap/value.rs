//! Lenient accessors over `serde_json::Value`.
//!
//! ActivityStreams lets almost every property be a single value or an array, and every reference be a bare
//! IRI or an embedded object with an `id`. Servers use all of these forms. These helpers read any of them, so
//! the rest of the relay never matches on JSON shapes by hand and never indexes or unwraps input.

use serde_json::Value;

/// The id a reference stands for: the string itself, or an embedded object's `id`.
///
/// Empty strings count as absent.
pub fn id_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => non_empty(s),
        Value::Object(map) => map.get("id").and_then(Value::as_str).and_then(non_empty),
        _ => None,
    }
}

/// All ids in a reference property: a string, an object, or an array of either (other entries are skipped).
pub fn ids(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(items) => items.iter().filter_map(id_of).collect(),
        other => id_of(other).into_iter().collect(),
    }
}

/// The first id of a reference property (see [`ids`]).
pub fn first_id(v: &Value) -> Option<&str> {
    match v {
        Value::Array(items) => items.iter().find_map(id_of),
        other => id_of(other),
    }
}

/// A string, or the first string of an array. Empty strings count as absent.
pub fn first_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => non_empty(s),
        Value::Array(items) => items.iter().find_map(|i| i.as_str().and_then(non_empty)),
        _ => None,
    }
}

/// Property `key` of an object as a string (see [`first_str`]); `None` when `v` is not an object.
pub fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(first_str)
}

/// Property `key` of an object as an id (see [`first_id`]); `None` when `v` is not an object.
pub fn get_id<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(first_id)
}

/// Property `key` of an object as a boolean. Accepts JSON booleans and the strings `"true"` / `"false"`.
pub fn get_bool(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The `type` values of an object (`"Note"` or `["Announce", "Relay"]`).
pub fn types(v: &Value) -> Vec<&str> {
    match v.get("type") {
        Some(Value::String(s)) => non_empty(s).into_iter().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(non_empty)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the object's `type` is, or contains, `kind` (exact, case-sensitive, as in ActivityStreams).
pub fn has_type(v: &Value, kind: &str) -> bool {
    types(v).contains(&kind)
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_of_string_object_and_others() {
        assert_eq!(id_of(&json!("https://a/x")), Some("https://a/x"));
        assert_eq!(
            id_of(&json!({"id": "https://a/y", "type": "Note"})),
            Some("https://a/y")
        );
        assert_eq!(id_of(&json!({"type": "Note"})), None);
        assert_eq!(id_of(&json!({"id": 5})), None);
        assert_eq!(id_of(&json!("")), None);
        assert_eq!(id_of(&json!(null)), None);
        assert_eq!(
            id_of(&json!(["https://a/x"])),
            None,
            "an array is not a single reference"
        );
    }

    #[test]
    fn ids_accepts_every_form() {
        assert_eq!(ids(&json!("a")), vec!["a"]);
        assert_eq!(ids(&json!({"id": "b"})), vec!["b"]);
        assert_eq!(
            ids(&json!(["a", {"id": "b"}, 3, null, {"x": 1}, ""])),
            vec!["a", "b"]
        );
        assert!(ids(&json!(null)).is_empty());
        assert!(ids(&json!(true)).is_empty());
        assert_eq!(first_id(&json!([1, {"id": "b"}, "c"])), Some("b"));
        assert_eq!(first_id(&json!([])), None);
    }

    #[test]
    fn strings_bools_and_types() {
        let v = json!({"a": "x", "b": ["", "y"], "c": 1, "t": true, "f": "False", "type": ["Announce", "Relay"]});
        assert_eq!(get_str(&v, "a"), Some("x"));
        assert_eq!(get_str(&v, "b"), Some("y"));
        assert_eq!(get_str(&v, "c"), None);
        assert_eq!(get_str(&json!([1]), "a"), None);
        assert_eq!(get_bool(&v, "t"), Some(true));
        assert_eq!(get_bool(&v, "f"), Some(false));
        assert_eq!(get_bool(&v, "c"), None);
        assert_eq!(types(&v), vec!["Announce", "Relay"]);
        assert!(has_type(&v, "Relay"));
        assert!(!has_type(&json!("Note"), "Note"));
    }
}
