//! FASP `data_sharing` v0 on the wire, as plain Rust: reading an announcement a server POSTs to
//! `/data_sharing/v0/announcements` (leniently typed — ids as strings or numbers, one URI or a list —
//! but strictly checked: every malformed shape is refused with a reason, answered 422), and the
//! bodies Plaza sends when it subscribes and asks for backfill.

use std::collections::HashSet;

use serde_json::{Value, json};
use url::Url;

use crate::{Error, Result};

/// Most URIs one announcement may carry (Mastodon sends batches of at most a few hundred).
pub const MAX_URIS: usize = 1_000;
/// Longest URI accepted, in bytes.
pub const MAX_URI_BYTES: usize = 2_048;
/// Longest subscription or backfill id accepted, in bytes.
const MAX_ID_BYTES: usize = 200;

/// What an announcement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Posts.
    Content,
    /// Actors.
    Account,
}

impl Category {
    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Content => "content",
            Category::Account => "account",
        }
    }

    /// From the wire.
    pub fn parse(text: &str) -> Option<Category> {
        match text {
            "content" => Some(Category::Content),
            "account" => Some(Category::Account),
            _ => None,
        }
    }
}

/// What happened to the announced objects (an event subscription's `eventType`), or a backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Created.
    New,
    /// Changed.
    Update,
    /// Deleted.
    Delete,
    /// Trending on the server (content only).
    Trending,
    /// Delivered for a backfill request.
    Backfill,
}

impl Event {
    /// As queued (the wire's `eventType`, or `backfill`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::New => "new",
            Event::Update => "update",
            Event::Delete => "delete",
            Event::Trending => "trending",
            Event::Backfill => "backfill",
        }
    }

    /// From a queued value.
    pub fn parse(text: &str) -> Option<Event> {
        match text {
            "new" => Some(Event::New),
            "update" => Some(Event::Update),
            "delete" => Some(Event::Delete),
            "trending" => Some(Event::Trending),
            "backfill" => Some(Event::Backfill),
            _ => None,
        }
    }
}

/// Where an announcement comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An event subscription, by the id the server gave it.
    Subscription(String),
    /// A backfill request, by the id the server gave it.
    Backfill(String),
}

/// A well-formed announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Its source.
    pub source: Source,
    /// Its category.
    pub category: Category,
    /// The event (`Backfill` for a backfill delivery).
    pub event: Event,
    /// The announced URIs, each once, in the order given.
    pub uris: Vec<String>,
    /// For a backfill: whether the server has more objects to deliver.
    pub more: bool,
}

fn unprocessable(reason: impl Into<String>) -> Error {
    Error::Unprocessable(reason.into())
}

/// An id given as a string or a number.
fn id_of(value: &Value, what: &str) -> Result<String> {
    let id = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Err(unprocessable(format!("{what} has no id"))),
        other => {
            return Err(unprocessable(format!(
                "{what} id must be a string or a number, not {other}"
            )));
        }
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(unprocessable(format!(
            "{what} id must have 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(id)
}

fn source_of(body: &Value) -> Result<Source> {
    let source = body
        .get("source")
        .filter(|s| s.is_object())
        .ok_or_else(|| unprocessable("source must be an object"))?;
    match (source.get("subscription"), source.get("backfillRequest")) {
        (Some(s), None) => Ok(Source::Subscription(id_of(
            s.get("id").unwrap_or(&Value::Null),
            "source.subscription",
        )?)),
        (None, Some(b)) => Ok(Source::Backfill(id_of(
            b.get("id").unwrap_or(&Value::Null),
            "source.backfillRequest",
        )?)),
        (Some(_), Some(_)) => Err(unprocessable(
            "source names both a subscription and a backfillRequest",
        )),
        (None, None) => Err(unprocessable(
            "source names neither a subscription nor a backfillRequest",
        )),
    }
}

/// An announced URI: http(s), with a host, of bounded length.
fn uri_of(value: &Value) -> Result<String> {
    let text = value
        .as_str()
        .ok_or_else(|| unprocessable(format!("objectUris holds {value}, not a string")))?
        .trim();
    if text.len() > MAX_URI_BYTES {
        return Err(unprocessable(format!(
            "an object URI is longer than {MAX_URI_BYTES} bytes"
        )));
    }
    let url = Url::parse(text).map_err(|e| unprocessable(format!("{text:?} is not a URI: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(unprocessable(format!(
            "{text:?} is not an http(s) URI with a host"
        )));
    }
    Ok(text.to_string())
}

/// Reads an announcement body; every malformed shape is [`Error::Unprocessable`] with the reason.
pub fn read_announcement(body: &Value) -> Result<Announcement> {
    if !body.is_object() {
        return Err(unprocessable("the announcement must be a JSON object"));
    }
    let source = source_of(body)?;
    let category = body
        .get("category")
        .and_then(Value::as_str)
        .and_then(Category::parse)
        .ok_or_else(|| unprocessable("category must be \"content\" or \"account\""))?;
    let event = match (&source, body.get("eventType")) {
        (Source::Backfill(_), None | Some(Value::Null)) => Event::Backfill,
        (Source::Backfill(_), Some(_)) => {
            return Err(unprocessable("a backfill delivery carries no eventType"));
        }
        (Source::Subscription(_), found) => match found.and_then(Value::as_str) {
            Some("new") => Event::New,
            Some("update") => Event::Update,
            Some("delete") => Event::Delete,
            Some("trending") if category == Category::Content => Event::Trending,
            Some("trending") => {
                return Err(unprocessable("only content can be trending"));
            }
            _ => {
                return Err(unprocessable(
                    "eventType must be \"new\", \"update\", \"delete\" or \"trending\"",
                ));
            }
        },
    };
    let listed = match body.get("objectUris") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(one @ Value::String(_)) => std::slice::from_ref(one),
        _ => return Err(unprocessable("objectUris must be an array of URIs")),
    };
    if listed.len() > MAX_URIS {
        return Err(unprocessable(format!(
            "objectUris holds {} URIs; at most {MAX_URIS} per announcement",
            listed.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut uris = Vec::with_capacity(listed.len());
    for item in listed {
        let uri = uri_of(item)?;
        if seen.insert(uri.clone()) {
            uris.push(uri);
        }
    }
    let more = match body.get("moreObjectsAvailable") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(unprocessable(format!(
                "moreObjectsAvailable must be a boolean, not {other}"
            )));
        }
    };
    if more && matches!(source, Source::Subscription(_)) {
        return Err(unprocessable(
            "moreObjectsAvailable belongs to backfill deliveries only",
        ));
    }
    Ok(Announcement {
        source,
        category,
        event,
        uris,
        more,
    })
}

/// The event subscriptions Plaza asks for: `(category, subscriptionType)`.
pub const SUBSCRIPTIONS: [(Category, &str); 3] = [
    (Category::Content, "lifecycle"),
    (Category::Content, "trends"),
    (Category::Account, "lifecycle"),
];

/// The body of an event subscription request.
pub fn subscription_body(category: Category, subscription_type: &str, max_batch: u32) -> Value {
    json!({
        "category": category.as_str(),
        "subscriptionType": subscription_type,
        "maxBatchSize": max_batch,
    })
}

/// The body of a backfill request.
pub fn backfill_body(category: Category, max_count: u32) -> Value {
    json!({ "category": category.as_str(), "maxCount": max_count })
}

/// The id in a server's answer to a subscription (`{"subscription": {"id"}}`) or backfill request
/// (`{"backfillRequest": {"id"}}`): `wrapper` names the object.
pub fn created_id(answer: &Value, wrapper: &str) -> Result<String> {
    id_of(
        answer
            .get(wrapper)
            .and_then(|w| w.get("id"))
            .unwrap_or(&Value::Null),
        wrapper,
    )
    .map_err(|e| Error::BadRequest(format!("the server's answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(uris: Value) -> Value {
        json!({
            "source": { "subscription": { "id": "4" } },
            "category": "content",
            "eventType": "new",
            "objectUris": uris,
        })
    }

    #[test]
    fn well_formed_announcements_are_read_leniently() {
        let a = read_announcement(&event(json!([
            "https://a.example/statuses/1",
            "https://a.example/statuses/1",
            " http://b.example/notes/2 "
        ])))
        .unwrap();
        assert_eq!(a.source, Source::Subscription("4".into()));
        assert_eq!(a.category, Category::Content);
        assert_eq!(a.event, Event::New);
        assert_eq!(
            a.uris,
            ["https://a.example/statuses/1", "http://b.example/notes/2"],
            "each once, trimmed"
        );
        assert!(!a.more);
        // A numeric id, a single URI, a backfill with more to come.
        let b = read_announcement(&json!({
            "source": { "backfillRequest": { "id": 12 } },
            "category": "account",
            "objectUris": "https://a.example/users/alice",
            "moreObjectsAvailable": true,
        }))
        .unwrap();
        assert_eq!(b.source, Source::Backfill("12".into()));
        assert_eq!(b.event, Event::Backfill);
        assert_eq!(b.uris, ["https://a.example/users/alice"]);
        assert!(b.more);
        let mut trending = event(json!([]));
        trending["eventType"] = json!("trending");
        assert_eq!(read_announcement(&trending).unwrap().event, Event::Trending);
    }

    #[test]
    fn every_malformed_shape_is_unprocessable_with_a_reason() {
        let good = event(json!(["https://a.example/statuses/1"]));
        let with = |path: &[&str], value: Value| {
            let mut body = good.clone();
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            body
        };
        let without = |key: &str| {
            let mut body = good.clone();
            body.as_object_mut().unwrap().remove(key);
            body
        };
        let too_many: Vec<String> = (0..=MAX_URIS)
            .map(|n| format!("https://a.example/s/{n}"))
            .collect();
        let long = format!("https://a.example/{}", "x".repeat(MAX_URI_BYTES));
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "JSON object"),
            (json!("text"), "JSON object"),
            (without("source"), "source must be an object"),
            (with(&["source"], json!("4")), "source must be an object"),
            (with(&["source"], json!({})), "neither"),
            (
                with(
                    &["source"],
                    json!({"subscription": {"id": 1}, "backfillRequest": {"id": 2}}),
                ),
                "both",
            ),
            (with(&["source", "subscription"], json!({})), "has no id"),
            (with(&["source", "subscription", "id"], json!("")), "1 to"),
            (
                with(&["source", "subscription", "id"], json!({"x": 1})),
                "string or a number",
            ),
            (
                with(&["source", "subscription", "id"], json!("x".repeat(201))),
                "1 to",
            ),
            (without("category"), "category"),
            (with(&["category"], json!("posts")), "category"),
            (without("eventType"), "eventType"),
            (with(&["eventType"], json!("created")), "eventType"),
            (with(&["eventType"], json!(3)), "eventType"),
            (without("objectUris"), "objectUris must be an array"),
            (
                with(&["objectUris"], json!({"a": 1})),
                "objectUris must be an array",
            ),
            (with(&["objectUris"], json!([3])), "not a string"),
            (with(&["objectUris"], json!(["not a uri"])), "not a URI"),
            (
                with(&["objectUris"], json!(["ftp://a.example/x"])),
                "http(s)",
            ),
            (
                with(&["objectUris"], json!(["mailto:a@b.example"])),
                "http(s)",
            ),
            (with(&["objectUris"], json!([long])), "longer than"),
            (with(&["objectUris"], json!(too_many)), "at most"),
            (
                with(&["moreObjectsAvailable"], json!(true)),
                "backfill deliveries only",
            ),
            (with(&["moreObjectsAvailable"], json!(2)), "boolean"),
        ];
        for (body, reason) in cases {
            match read_announcement(&body) {
                Err(Error::Unprocessable(found)) => {
                    assert!(found.contains(reason), "{body}: {found:?} lacks {reason:?}")
                }
                other => panic!("{body}: expected 422 for {reason:?}, got {other:?}"),
            }
        }
        let mut account_trend = with(&["eventType"], json!("trending"));
        account_trend["category"] = json!("account");
        assert!(matches!(
            read_announcement(&account_trend),
            Err(Error::Unprocessable(r)) if r.contains("only content")
        ));
        let mut backfill_event = good.clone();
        backfill_event["source"] = json!({"backfillRequest": {"id": "9"}});
        assert!(matches!(
            read_announcement(&backfill_event),
            Err(Error::Unprocessable(r)) if r.contains("no eventType")
        ));
        assert_eq!(
            Error::Unprocessable(String::new()).status().as_u16(),
            422,
            "never a 500"
        );
    }

    #[test]
    fn request_bodies_and_answers() {
        assert_eq!(
            subscription_body(Category::Content, "trends", 100),
            json!({"category": "content", "subscriptionType": "trends", "maxBatchSize": 100})
        );
        assert_eq!(
            backfill_body(Category::Account, 500),
            json!({"category": "account", "maxCount": 500})
        );
        assert_eq!(
            created_id(&json!({"subscription": {"id": 7}}), "subscription").unwrap(),
            "7"
        );
        assert_eq!(
            created_id(&json!({"backfillRequest": {"id": "b1"}}), "backfillRequest").unwrap(),
            "b1"
        );
        assert!(created_id(&json!({"subscription": {}}), "subscription").is_err());
        for e in [
            Event::New,
            Event::Update,
            Event::Delete,
            Event::Trending,
            Event::Backfill,
        ] {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
    }
}
