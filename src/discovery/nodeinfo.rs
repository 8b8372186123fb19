//! Finding an instance's NodeInfo: `/.well-known/nodeinfo` lists schema links, the newest 2.x document
//! says what software the instance runs, how many people use it and whether it takes sign-ups. The
//! index reads those facts (`plaza_index` parses the document); the relay finds the document and keeps
//! only its describing parts. Plain functions over JSON; the indexer does the fetching.

use serde_json::Value;

use crate::ap::same_authority;
use crate::ap::value::get_str;

/// The schema rel prefixes of NodeInfo 2.x links (servers use both schemes).
const SCHEMA_2: &[&str] = &[
    "http://nodeinfo.diaspora.software/ns/schema/2.",
    "https://nodeinfo.diaspora.software/ns/schema/2.",
];

/// The longest description kept, in characters.
const MAX_DESCRIPTION: usize = 2000;

/// The well-known discovery document of the instance whose actor is `actor_id`.
pub fn well_known_url(actor_id: &str) -> Option<String> {
    let url = url::Url::parse(actor_id).ok()?;
    let mut base = url.join("/.well-known/nodeinfo").ok()?;
    base.set_query(None);
    base.set_fragment(None);
    Some(base.to_string())
}

/// The newest NodeInfo 2.x document linked from the well-known document fetched at `well_known`;
/// only links on the same host are followed.
pub fn document_link(links: &Value, well_known: &str) -> Option<String> {
    let items = links.get("links")?.as_array()?;
    items
        .iter()
        .filter_map(|link| {
            let rel = get_str(link, "rel")?;
            let minor = SCHEMA_2.iter().find_map(|p| rel.strip_prefix(p))?;
            let minor: u32 = minor.parse().ok()?;
            let href = get_str(link, "href")?;
            same_authority(href, well_known).then(|| (minor, href.to_string()))
        })
        .max_by_key(|(minor, _)| *minor)
        .map(|(_, href)| href)
}

/// Top-level NodeInfo properties that describe an instance; the rest (services, protocols, arbitrary
/// metadata) is not kept.
const DESCRIBING: &[&str] = &["version", "software", "openRegistrations", "usage"];

/// `metadata` properties that describe an instance.
const DESCRIBING_METADATA: &[&str] = &[
    "nodeName",
    "nodeDescription",
    "description",
    "shortDescription",
];

/// The describing parts of a NodeInfo 2.x document (`None` when it is not an object), with texts cut
/// to a reasonable length.
pub fn describing(doc: &Value) -> Option<Value> {
    let map = doc.as_object()?;
    let mut kept: serde_json::Map<String, Value> = DESCRIBING
        .iter()
        .filter_map(|k| Some((k.to_string(), map.get(*k)?.clone())))
        .collect();
    if let Some(metadata) = map.get("metadata").and_then(Value::as_object) {
        let metadata: serde_json::Map<String, Value> = DESCRIBING_METADATA
            .iter()
            .filter_map(|k| {
                let text = metadata.get(*k)?.as_str()?;
                Some((k.to_string(), Value::from(cut(text))))
            })
            .collect();
        kept.insert("metadata".into(), Value::Object(metadata));
    }
    Some(Value::Object(kept))
}

fn cut(text: &str) -> String {
    text.trim().chars().take(MAX_DESCRIPTION).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    #[test]
    fn the_newest_2x_link_on_the_same_host_is_followed() {
        let well_known = well_known_url("https://node.example/actor").unwrap();
        assert_eq!(well_known, "https://node.example/.well-known/nodeinfo");
        let fixture = fixtures::json("nodeinfo-wellknown-fep2677.json");
        assert_eq!(
            document_link(&fixture, &well_known).as_deref(),
            Some("https://node.example/nodeinfo/2.0")
        );
        let both = json!({ "links": [
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://node.example/nodeinfo/2.0" },
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://node.example/nodeinfo/2.1" },
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/1.0", "href": "https://node.example/nodeinfo/1.0" }
        ]});
        assert_eq!(
            document_link(&both, &well_known).as_deref(),
            Some("https://node.example/nodeinfo/2.1")
        );
        let elsewhere = json!({ "links": [
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://other.example/ni" }
        ]});
        assert_eq!(document_link(&elsewhere, &well_known), None);
        assert_eq!(document_link(&json!({}), &well_known), None);
    }

    #[test]
    fn only_the_describing_parts_are_kept() {
        for name in ["nodeinfo-2.0-example.json", "nodeinfo-2.1-example.json"] {
            let kept = describing(&fixtures::json(name)).unwrap();
            assert_eq!(kept["software"]["name"], "diaspora", "{name}");
            assert_eq!(kept["usage"]["users"]["total"], 123);
            assert_eq!(kept["openRegistrations"], true);
            assert!(kept.get("services").is_none() && kept.get("protocols").is_none());
            assert_eq!(kept["metadata"], json!({}), "chat_enabled is not kept");
        }
        let long = "x".repeat(MAX_DESCRIPTION + 10);
        let mastodon_like = json!({ "software": { "name": "mastodon", "version": "4.5.0" },
            "metadata": { "nodeName": "Co-op Social", "nodeDescription": format!("  {long}"),
                "config": { "huge": true } } });
        let kept = describing(&mastodon_like).unwrap();
        assert_eq!(kept["metadata"]["nodeName"], "Co-op Social");
        assert_eq!(
            kept["metadata"]["nodeDescription"]
                .as_str()
                .map(|d| d.len()),
            Some(MAX_DESCRIPTION)
        );
        assert!(kept["metadata"].get("config").is_none());
        assert_eq!(describing(&json!("garbage")), None);
    }
}
