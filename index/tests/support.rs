//! Builders for the integration tests: actors and notes shaped like Mastodon's, and a small index.

#![allow(dead_code)]

use plaza_index::{Index, IndexConfig};
use serde_json::{Value, json};

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// An index in memory that commits only when told (tests commit explicitly).
pub fn index() -> Index {
    Index::in_memory(IndexConfig {
        writer_memory_bytes: 15_000_000,
        commit_interval: std::time::Duration::from_secs(3600),
        ..IndexConfig::default()
    })
    .expect("index")
}

/// A fixture from the shared fixtures directory.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An indexable, discoverable person on `host`.
pub fn actor(host: &str, name: &str) -> Value {
    json!({
        "id": format!("https://{host}/users/{name}"),
        "type": "Person",
        "preferredUsername": name,
        "name": format!("{name} display"),
        "summary": format!("<p>I am {name}</p>"),
        "url": format!("https://{host}/@{name}"),
        "indexable": true,
        "discoverable": true,
        "published": "2020-01-01T00:00:00Z",
        "icon": {"type": "Image", "url": format!("https://{host}/avatars/{name}.png")},
    })
}

/// Sets `key` of a JSON object.
pub fn with(mut value: Value, key: &str, v: Value) -> Value {
    value[key] = v;
    value
}

/// A public note by `author`, number `n`, with `html` content, published at `published`.
pub fn note(author: &Value, n: u32, html: &str, published: &str) -> Value {
    let author_id = author["id"].as_str().expect("author id");
    json!({
        "id": format!("{author_id}/statuses/{n}"),
        "type": "Note",
        "attributedTo": author_id,
        "content": html,
        "to": [PUBLIC],
        "cc": [format!("{author_id}/followers")],
        "published": published,
        "url": format!("{author_id}/posts/{n}"),
    })
}

/// [`note`] with the fields of the object `extra` set on it (any other `extra` sets nothing).
pub fn note_with(author: &Value, n: u32, html: &str, published: &str, extra: Value) -> Value {
    let mut object = note(author, n, html, published);
    if let Value::Object(more) = extra {
        for (k, v) in more {
            object[k] = v;
        }
    }
    object
}

/// The host of an actor's id, the instance its posts arrive from.
pub fn host(author: &Value) -> &str {
    author["id"]
        .as_str()
        .and_then(|id| id.split('/').nth(2))
        .expect("author host")
}

/// Object ids of the hits of a post search.
pub fn ids(index: &Index, q: &str) -> Vec<String> {
    let page = index
        .search_posts(&plaza_index::SearchRequest::new(q))
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut ids: Vec<String> = page.hits.into_iter().map(|h| h.post.uri).collect();
    ids.sort();
    ids
}

/// The post number of each id (`…/statuses/N`), sorted.
pub fn numbers(index: &Index, q: &str) -> Vec<u32> {
    let mut n: Vec<u32> = ids(index, q)
        .iter()
        .filter_map(|id| id.rsplit('/').next()?.parse().ok())
        .collect();
    n.sort_unstable();
    n
}

/// Adds note number `n` by `author` with `html` content, published 2024-01-01, from the author's host;
/// fails the test unless the index accepts it.
pub fn add_note(index: &Index, author: &Value, n: u32, html: &str) {
    index
        .add_post(
            &note(author, n, html, "2024-01-01T00:00:00Z"),
            author,
            host(author),
        )
        .expect("add");
}
