//! Lenient reading of ActivityPub JSON: servers send a field as a string, an object with an `id` (or
//! `href`/`url`), or an array of either; a boolean as `true` or `"true"`; a link as a string, a `Link`
//! object or an array of links. These helpers accept every shape and never fail.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The ids of a field that may be a string, an object with `id`, or an array of either.
pub fn iris(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).into_iter().collect(),
        Some(Value::Array(items)) => items.iter().flat_map(|v| iris(Some(v))).collect(),
        _ => Vec::new(),
    }
}

/// The first id of a field (see [`iris`]).
pub fn first_iri(value: Option<&Value>) -> Option<&str> {
    iris(value).into_iter().next()
}

/// The address of a link field: a string, a `Link`/`Image` object with `href` or `url`, or an array of
/// those (the first `text/html` link wins, else the first one).
pub fn link(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o
            .get("href")
            .and_then(Value::as_str)
            .or_else(|| link(o.get("url"))),
        Value::Array(items) => items
            .iter()
            .find(|i| i.get("mediaType").and_then(Value::as_str) == Some("text/html"))
            .or_else(|| items.first())
            .and_then(|i| link(Some(i))),
        _ => None,
    }
}

/// A non-empty string field.
pub fn text<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A boolean sent as `true` or `"true"` under any of `names`.
pub fn flag(doc: &Value, names: &[&str]) -> bool {
    names.iter().any(|name| match doc.get(*name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// The items of a field that may be one object or an array of them (and, for an embedded collection,
/// its `items` or `orderedItems`).
pub fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(o)) => match o.get("orderedItems").or_else(|| o.get("items")) {
            Some(inner) => items(Some(inner)),
            None => vec![value.unwrap_or(&Value::Null)],
        },
        _ => Vec::new(),
    }
}

/// An RFC 3339 timestamp field.
pub fn time(doc: &Value, key: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text(doc, key)?, &Rfc3339).ok()
}

/// The host (with a port when one is given) of an absolute URL, lowercase.
pub fn host(iri: &str) -> Option<String> {
    let url = url::Url::parse(iri).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// The type of a document (`type` may be a string or an array of strings; the first one counts).
pub fn kind(doc: &Value) -> Option<&str> {
    match doc.get("type")? {
        Value::String(s) => Some(s.as_str()),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape_of_an_id() {
        assert_eq!(iris(Some(&json!("a"))), ["a"]);
        assert_eq!(iris(Some(&json!({"id": "b"}))), ["b"]);
        assert_eq!(iris(Some(&json!(["a", {"id": "b"}, 3]))), ["a", "b"]);
        assert!(iris(None).is_empty());
    }

    #[test]
    fn every_shape_of_a_link() {
        assert_eq!(link(Some(&json!("https://x"))), Some("https://x"));
        assert_eq!(
            link(Some(&json!({"type": "Image", "url": "https://i"}))),
            Some("https://i")
        );
        assert_eq!(
            link(Some(
                &json!([{"href": "https://a", "mediaType": "application/json"},
                              {"href": "https://b", "mediaType": "text/html"}])
            )),
            Some("https://b")
        );
    }

    #[test]
    fn hosts_keep_ports() {
        assert_eq!(
            host("https://Social.Example/u/a").as_deref(),
            Some("social.example")
        );
        assert_eq!(
            host("http://localhost:8080/users/z").as_deref(),
            Some("localhost:8080")
        );
        assert_eq!(host("not a url"), None);
    }

    #[test]
    fn items_of_collections() {
        let c = json!({"type": "Collection", "items": [{"name": "#a"}, {"name": "#b"}]});
        assert_eq!(items(Some(&c)).len(), 2);
        assert_eq!(items(Some(&json!({"name": "#a"}))).len(), 1);
    }
}
