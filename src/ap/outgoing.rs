//! The documents the relay publishes and sends.
//!
//! Every JSON document Plaza emits is built here, as pure functions of the relay's public base URL (scheme and
//! authority, no trailing slash, e.g. `https://relay.example.org`), so the exact shapes real servers depend on
//! live in one place: the actor's `inbox` must equal `{base}/inbox` byte for byte (Mastodon compares it with
//! the URL its admin pasted), an `Accept` embeds the `Follow` (Misskey and GoToSocial match on its id and
//! actor; the relay embeds a normalised copy, never the sender's padding), and
//! the relay announces with its own actor (Misskey refuses a signer whose host differs from the activity's).
//!
//! Relay URLs: actor `{base}/actor`, key `{base}/actor#main-key`, inbox `{base}/inbox`, outbox
//! `{base}/outbox`, followers `{base}/followers`, following `{base}/following`, activities
//! `{base}/activities/<uuid>`, NodeInfo `{base}/nodeinfo/2.1`.

use serde_json::{Value, json};

use super::value::get_id;

/// The ActivityStreams JSON-LD context.
pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
/// The security vocabulary context (for `publicKey`).
pub const SECURITY_CONTEXT: &str = "https://w3id.org/security/v1";
/// The NodeInfo 2.1 schema rel.
pub const NODEINFO_21_REL: &str = "http://nodeinfo.diaspora.software/ns/schema/2.1";
/// The FEP-2677 rel naming the server's application actor in `/.well-known/nodeinfo`.
pub const APPLICATION_ACTOR_REL: &str = "https://www.w3.org/ns/activitystreams#Application";
/// The NodeInfo `software.name` (must match `^[a-z0-9-]+$`).
pub const SOFTWARE_NAME: &str = "plaza";

fn trim(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// The relay actor's id: `{base}/actor`.
pub fn actor_id(base: &str) -> String {
    format!("{}/actor", trim(base))
}

/// The relay key's id: `{base}/actor#main-key`.
pub fn key_id(base: &str) -> String {
    format!("{}/actor#main-key", trim(base))
}

/// The relay inbox (also its shared inbox): `{base}/inbox`.
pub fn inbox_url(base: &str) -> String {
    format!("{}/inbox", trim(base))
}

/// The relay's followers collection: `{base}/followers`.
pub fn followers_url(base: &str) -> String {
    format!("{}/followers", trim(base))
}

/// A fresh activity id: `{base}/activities/<uuid v7>`. Version 7 ids begin with the time, and this
/// process makes them in increasing order, so the store's index of published ids grows at its end
/// instead of at a random page per activity (with v4 ids a group commit of 64 inbox activities took
/// half as long again: `cargo bench --bench micro -- log/`). Most of their bits are still random.
pub fn new_activity_id(base: &str) -> String {
    format!("{}/activities/{}", trim(base), uuid::Uuid::now_v7())
}

/// The relay actor served at `GET /actor`.
///
/// Type `Application`, `preferredUsername` `relay`, `inbox` and `endpoints.sharedInbox` both exactly
/// `{base}/inbox`, `url` the relay's home page `{base}/`, `manuallyApprovesFollowers` false.
pub fn relay_actor(base: &str, public_key_pem: &str, name: &str, summary: &str) -> Value {
    let base = trim(base);
    let actor = actor_id(base);
    json!({
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": actor,
        "type": "Application",
        "preferredUsername": "relay",
        "name": name,
        "summary": summary,
        "url": format!("{base}/"),
        "inbox": inbox_url(base),
        "outbox": format!("{base}/outbox"),
        "followers": followers_url(base),
        "following": format!("{base}/following"),
        "endpoints": { "sharedInbox": inbox_url(base) },
        "manuallyApprovesFollowers": false,
        "publicKey": {
            "id": key_id(base),
            "owner": actor,
            "publicKeyPem": public_key_pem,
        },
    })
}

fn respond(base: &str, kind: &str, follow: &Value, to_actor: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(base),
        "type": kind,
        "actor": actor_id(base),
        "object": normalised_follow(follow),
        "to": [to_actor],
    })
}

/// The part of a received `Follow` the relay keeps and embeds in its answer: `id`, `type`, `actor` and
/// `object`, the references as ids. What receivers match an Accept on, and nothing a sender padded in.
pub fn normalised_follow(follow: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(id) = get_id(follow, "id") {
        out.insert("id".into(), Value::from(id));
    }
    out.insert("type".into(), Value::from("Follow"));
    for key in ["actor", "object"] {
        if let Some(id) = get_id(follow, key) {
            out.insert(key.into(), Value::from(id));
        }
    }
    Value::Object(out)
}

/// `Accept` of a subscription, embedding the [`normalised_follow`], addressed `to` the follower.
pub fn accept(base: &str, follow: &Value, to_actor: &str) -> Value {
    respond(base, "Accept", follow, to_actor)
}

/// `Reject` of a subscription, shaped like [`accept`].
pub fn reject(base: &str, follow: &Value, to_actor: &str) -> Value {
    respond(base, "Reject", follow, to_actor)
}

/// The relay's own `Follow` of a LitePub instance relay actor (sent after accepting its Follow).
pub fn follow(base: &str, target_actor: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(base),
        "type": "Follow",
        "actor": actor_id(base),
        "object": target_actor,
        "to": [target_actor],
    })
}

/// `Undo` of an activity the relay sent earlier (typically its own [`follow`]), embedded whole.
///
/// Addressed to the inner activity's `to` when it has one, so an `Undo` of a Follow goes to the followed actor.
pub fn undo(base: &str, inner: &Value) -> Value {
    let mut out = json!({
        "@context": AS_CONTEXT,
        "id": new_activity_id(base),
        "type": "Undo",
        "actor": actor_id(base),
        "object": inner,
    });
    if let (Some(to), Some(map)) = (inner.get("to"), out.as_object_mut()) {
        map.insert("to".into(), to.clone());
    }
    out
}

/// The relay's `Announce` of an object id, as sent to subscribers that cannot take a verbatim `Create`.
///
/// `to` is `[{base}/followers]` and there is no `cc`: that is what ActivityRelay and AodeRelay send, and what
/// subscribers are known to accept. The relay's Announce is a delivery vehicle, not a public boost — Mastodon
/// stores the fetched object and drops the relay's reblog itself, and adding Public would make servers that do
/// keep it (Misskey renotes) show the relay's boost on public timelines. `id` is given by the caller so a
/// redelivery keeps the same id and receivers can deduplicate.
pub fn announce(base: &str, id: &str, object_id: &str) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "Announce",
        "actor": actor_id(base),
        "object": object_id,
        "to": [followers_url(base)],
    })
}

/// An `OrderedCollection` at `id` listing `items` (ids or objects) in full, e.g. the relay's followers.
pub fn ordered_collection(id: &str, items: Vec<Value>) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })
}

/// A paged `OrderedCollection` at `id` (the outbox): `totalItems` and the URL of its `first` page,
/// `{id}?page=true`.
pub fn paged_collection(id: &str, total: u64) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": format!("{id}?page=true"),
    })
}

/// The id of the page of `collection` that starts before `before` (the first page without it).
pub fn page_id(collection: &str, before: Option<u64>) -> String {
    match before {
        Some(before) => format!("{collection}?page=true&before={before}"),
        None => format!("{collection}?page=true"),
    }
}

/// One `OrderedCollectionPage` of the collection at `collection`: `items`, newest first, and a `next` page
/// (`{collection}?page=true&before=N`) when `next` says where older items continue.
pub fn collection_page(
    collection: &str,
    page: &str,
    items: Vec<Value>,
    next: Option<u64>,
) -> Value {
    let mut out = json!({
        "@context": AS_CONTEXT,
        "id": page,
        "type": "OrderedCollectionPage",
        "partOf": collection,
        "orderedItems": items,
    });
    if let (Some(before), Some(map)) = (next, out.as_object_mut()) {
        map.insert(
            "next".into(),
            Value::String(format!("{collection}?page=true&before={before}")),
        );
    }
    out
}

/// The WebFinger answer for `acct:relay@{host}`: its `self` link is the relay actor.
pub fn webfinger(base: &str, host: &str) -> Value {
    json!({
        "subject": format!("acct:relay@{host}"),
        "aliases": [actor_id(base)],
        "links": [{
            "rel": "self",
            "type": "application/activity+json",
            "href": actor_id(base),
        }],
    })
}

/// `/.well-known/nodeinfo`: the NodeInfo 2.1 link and the FEP-2677 application actor link.
pub fn nodeinfo_links(base: &str) -> Value {
    json!({
        "links": [
            { "rel": NODEINFO_21_REL, "href": format!("{}/nodeinfo/2.1", trim(base)) },
            { "rel": APPLICATION_ACTOR_REL, "href": actor_id(base) },
        ],
    })
}

/// The NodeInfo 2.1 document (valid against the 2.1 schema).
///
/// `version` is Plaza's version, `users` what the relay counts as users (its subscribed instances),
/// `metadata` free-form — a non-object is replaced by `{}` since the schema requires an object. `base` is
/// unused by the schema; it is published as `metadata.actor` (unless the caller set that key) so crawlers can
/// find the relay actor from NodeInfo alone.
pub fn nodeinfo(
    base: &str,
    version: &str,
    users: u64,
    open_registrations: bool,
    metadata: Value,
) -> Value {
    let mut metadata = match metadata {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    metadata
        .entry("actor")
        .or_insert_with(|| Value::String(actor_id(base)));
    json!({
        "version": "2.1",
        "software": {
            "name": SOFTWARE_NAME,
            "version": version,
        },
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": [] },
        "openRegistrations": open_registrations,
        "usage": { "users": { "total": users } },
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ap::{Activity, KeyOrActor};
    use crate::test_fixtures as fixtures;

    const BASE: &str = "https://relay.example.org";
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n";

    #[test]
    fn activity_ids_are_fresh_and_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_activity_id(BASE)).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "each id sorts after the one before"
        );
        assert!(ids[0].starts_with("https://relay.example.org/activities/"));
    }

    #[test]
    fn relay_actor_is_exact() {
        let a = relay_actor(BASE, PEM, "Plaza", "A relay");
        assert_eq!(a["inbox"], "https://relay.example.org/inbox");
        assert_eq!(
            a["endpoints"]["sharedInbox"],
            "https://relay.example.org/inbox"
        );
        assert_eq!(a["id"], "https://relay.example.org/actor");
        assert_eq!(a["type"], "Application");
        assert_eq!(a["preferredUsername"], "relay");
        assert_eq!(
            a["publicKey"]["id"],
            "https://relay.example.org/actor#main-key"
        );
        assert_eq!(a["publicKey"]["owner"], "https://relay.example.org/actor");
        assert_eq!(a["publicKey"]["publicKeyPem"], PEM);
        assert_eq!(a["followers"], "https://relay.example.org/followers");
        assert_eq!(a["following"], "https://relay.example.org/following");
        assert_eq!(a["outbox"], "https://relay.example.org/outbox");
        assert_eq!(a["manuallyApprovesFollowers"], false);
        assert_eq!(a["@context"], json!([AS_CONTEXT, SECURITY_CONTEXT]));
        // A trailing slash on the base changes nothing.
        assert_eq!(
            relay_actor("https://relay.example.org/", PEM, "Plaza", "A relay"),
            a
        );
        // Our own parser reads it back as a deliverable actor with its key.
        let Ok(KeyOrActor::Actor(parsed)) = KeyOrActor::from_value(a) else {
            panic!("actor")
        };
        assert_eq!(
            parsed.delivery_inbox(),
            Some("https://relay.example.org/inbox")
        );
        assert!(parsed.key(&key_id(BASE)).is_some());
    }

    #[test]
    fn same_shape_as_activityrelay_actor() {
        let theirs = fixtures::json("relay-actor-activityrelay.json");
        let ours = relay_actor(BASE, PEM, "Plaza", "A relay");
        let (Some(theirs), Some(ours)) = (theirs.as_object(), ours.as_object()) else {
            panic!("objects")
        };
        for key in theirs.keys().filter(|k| k.as_str() != "@context") {
            assert!(ours.contains_key(key), "relay actor lacks {key}");
        }
    }

    #[test]
    fn accept_embeds_the_follow() {
        let mut follow_json = fixtures::json("mastodon-follow-public-relay.json");
        let acc = accept(BASE, &follow_json, "https://innocent.yukimochi.io/actor");
        assert_eq!(acc["type"], "Accept");
        assert_eq!(acc["actor"], "https://relay.example.org/actor");
        if let Some(map) = follow_json.as_object_mut() {
            map.remove("@context");
        }
        assert_eq!(
            acc["object"], follow_json,
            "the Follow as sent, without its context"
        );
        assert_eq!(acc["to"], json!(["https://innocent.yukimochi.io/actor"]));
        let id = acc["id"].as_str().expect("id");
        assert!(id.starts_with("https://relay.example.org/activities/"));
        assert_ne!(
            accept(BASE, &follow_json, "x")["id"],
            acc["id"],
            "fresh ids"
        );
        let parsed = Activity::from_value(acc.clone()).expect("parses");
        assert_eq!(parsed.object_id(), follow_json["id"].as_str());
        // The same keys as ActivityRelay's Accept.
        let theirs = fixtures::json("relay-accept-follow-template.json");
        for key in theirs.as_object().into_iter().flat_map(|m| m.keys()) {
            assert!(acc.get(key).is_some(), "accept lacks {key}");
        }
        // Padding and embedded objects are not copied: the answer stays small whatever was sent.
        let padded = json!({"id": "https://p.example/f/1", "type": "Follow", "padding": "x".repeat(100_000),
            "actor": {"id": "https://p.example/relay", "type": "Application", "name": "y".repeat(1000)},
            "object": "https://relay.example.org/actor", "to": ["https://relay.example.org/actor"]});
        let small = accept(BASE, &padded, "https://p.example/relay");
        assert_eq!(
            small["object"],
            json!({"id": "https://p.example/f/1", "type": "Follow", "actor": "https://p.example/relay", "object": "https://relay.example.org/actor"})
        );
        assert!(small.to_string().len() < 500);
        let rej = reject(BASE, &follow_json, "https://innocent.yukimochi.io/actor");
        assert_eq!(
            (rej["type"].as_str(), &rej["object"]),
            (Some("Reject"), &follow_json)
        );
    }

    #[test]
    fn follow_undo_announce() {
        let f = follow(BASE, "https://pleroma.example/relay");
        assert_eq!(f["object"], "https://pleroma.example/relay");
        assert_eq!(f["to"], json!(["https://pleroma.example/relay"]));
        assert_eq!(f["actor"], "https://relay.example.org/actor");
        let u = undo(BASE, &f);
        assert_eq!(u["type"], "Undo");
        assert_eq!(u["object"], f);
        assert_eq!(u["to"], f["to"]);
        assert!(undo(BASE, &json!("https://x/1")).get("to").is_none());
        let a = announce(
            BASE,
            "https://relay.example.org/activities/1",
            "https://h/objects/9",
        );
        assert_eq!(a["id"], "https://relay.example.org/activities/1");
        assert_eq!(a["object"], "https://h/objects/9");
        assert_eq!(a["to"], json!(["https://relay.example.org/followers"]));
        assert!(a.get("cc").is_none());
        let parsed = Activity::from_value(a).expect("parses");
        assert!(!parsed.is_public());
    }

    #[test]
    fn webfinger_and_nodeinfo_links() {
        let w = webfinger(BASE, "relay.example.org");
        assert_eq!(w["subject"], "acct:relay@relay.example.org");
        assert_eq!(w["links"][0]["rel"], "self");
        assert_eq!(w["links"][0]["type"], "application/activity+json");
        assert_eq!(w["links"][0]["href"], "https://relay.example.org/actor");
        let l = nodeinfo_links(BASE);
        assert_eq!(l["links"][0]["rel"], NODEINFO_21_REL);
        assert_eq!(
            l["links"][0]["href"],
            "https://relay.example.org/nodeinfo/2.1"
        );
        // The FEP-2677 link uses the same rel as the FEP's own example.
        let fep = fixtures::json("nodeinfo-wellknown-fep2677.json");
        assert_eq!(l["links"][1]["rel"], fep["links"][1]["rel"]);
        assert_eq!(l["links"][1]["href"], "https://relay.example.org/actor");
    }

    /// Checks the document against the parts of the NodeInfo 2.1 schema file it uses: required keys at each
    /// level, no additional properties where the schema forbids them, enums, the name pattern, and types.
    #[test]
    fn nodeinfo_matches_the_2_1_schema() {
        let schema = fixtures::json("nodeinfo-2.1-schema.json");
        let doc = nodeinfo(BASE, "0.1.0", 12, false, json!({"nodeName": "Plaza test"}));
        assert_eq!(violations(&schema, &doc), Vec::<String>::new());
        assert_eq!(doc["software"]["name"], "plaza");
        assert_eq!(doc["usage"]["users"]["total"], 12);
        assert_eq!(doc["openRegistrations"], false);
        assert_eq!(doc["metadata"]["nodeName"], "Plaza test");
        assert_eq!(doc["metadata"]["actor"], "https://relay.example.org/actor");
        let fallback = nodeinfo(BASE, "0.1.0", 0, true, json!([1, 2]));
        assert_eq!(violations(&schema, &fallback), Vec::<String>::new());
        let kept = nodeinfo(BASE, "0.1.0", 0, true, json!({"actor": "custom"}));
        assert_eq!(kept["metadata"]["actor"], "custom");
    }

    /// A small JSON-schema (draft-04 subset) checker, enough for the NodeInfo schema: the violations found.
    fn violations(schema: &Value, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        check_against(schema, doc, "nodeinfo", &mut out);
        out
    }

    fn check_against(schema: &Value, doc: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => doc.is_object(),
                "array" => doc.is_array(),
                "string" => doc.is_string(),
                "boolean" => doc.is_boolean(),
                "integer" => doc.is_u64() || doc.is_i64(),
                _ => true,
            };
            if !ok {
                out.push(format!("{path}: expected {t}, got {doc}"));
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.contains(doc)
        {
            out.push(format!("{path}: {doc} not in enum"));
        }
        if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
            && doc.as_i64().is_none_or(|n| n < min)
        {
            out.push(format!("{path}: below minimum {min}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            // The only pattern in the NodeInfo schemas; checked by hand (no regex dependency).
            assert_eq!(
                pattern, "^[a-z0-9-]+$",
                "{path}: unexpected pattern in schema"
            );
            let s = doc.as_str().unwrap_or_default();
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                out.push(format!("{path}: {s:?} does not match {pattern}"));
            }
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && doc.as_array().is_none_or(|a| (a.len() as u64) < min)
        {
            out.push(format!("{path}: fewer than {min} items"));
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), doc.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                check_against(items, item, &format!("{path}[{i}]"), out);
            }
        }
        let Some(obj) = doc.as_object() else { return };
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = req.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                out.push(format!("{path}: missing required {key}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (key, value) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(sub) => check_against(sub, value, &format!("{path}.{key}"), out),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{path}: property {key} not allowed"));
                }
                None => {}
            }
        }
    }

    #[test]
    fn schema_checker_catches_mistakes() {
        let schema = fixtures::json("nodeinfo-2.1-schema.json");
        let mut doc = nodeinfo(BASE, "0.1.0", 1, false, json!({}));
        if let Some(m) = doc.as_object_mut() {
            m.remove("services");
            m.insert("extra".into(), json!(1));
        }
        doc["software"]["name"] = json!("Plaza");
        doc["protocols"] = json!([]);
        let found = violations(&schema, &doc).join("\n");
        for expected in [
            "missing required services",
            "property extra not allowed",
            "does not match",
            "fewer than 1",
        ] {
            assert!(
                found.contains(expected),
                "{expected} not caught in:\n{found}"
            );
        }
        // Every key the schema requires is checked, read from the schema file itself.
        let required = schema["required"].as_array().map_or(0, Vec::len);
        assert_eq!(required, 7);
    }
}
