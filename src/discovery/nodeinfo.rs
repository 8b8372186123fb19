//! Reading an instance's NodeInfo: `/.well-known/nodeinfo` lists schema links, the newest 2.x document
//! says what software the instance runs, how many people use it and whether it takes sign-ups. The
//! instance directory shows these facts. Plain functions over JSON; the indexer does the fetching.

use serde_json::Value;

use crate::ap::same_authority;
use crate::ap::value::get_str;
use crate::discovery::sink::InstanceFacts;

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

/// The facts of a NodeInfo 2.x document (missing fields stay `None`).
pub fn facts(authority: &str, doc: &Value, subscribed_since: i64) -> InstanceFacts {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.trim().chars().take(MAX_DESCRIPTION).collect::<String>())
            .filter(|s| !s.is_empty())
    };
    let metadata = doc.get("metadata");
    let users = doc.get("usage").and_then(|u| u.get("users"));
    InstanceFacts {
        authority: authority.to_string(),
        software: text(doc.get("software").and_then(|s| s.get("name"))),
        version: text(doc.get("software").and_then(|s| s.get("version"))),
        users: users.and_then(|u| u.get("total")).and_then(Value::as_u64),
        active_month: users
            .and_then(|u| u.get("activeMonth"))
            .and_then(Value::as_u64),
        open_registrations: doc.get("openRegistrations").and_then(Value::as_bool),
        name: text(metadata.and_then(|m| m.get("nodeName"))),
        description: text(
            metadata.and_then(|m| m.get("nodeDescription").or_else(|| m.get("description"))),
        ),
        subscribed_since,
        last_activity: None,
    }
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
    fn facts_come_from_2x_documents_of_either_version() {
        for name in ["nodeinfo-2.0-example.json", "nodeinfo-2.1-example.json"] {
            let f = facts("node.example", &fixtures::json(name), 5);
            assert_eq!(f.software.as_deref(), Some("diaspora"), "{name}");
            assert_eq!(f.version.as_deref(), Some("0.5.0"));
            assert_eq!(f.users, Some(123));
            assert_eq!(f.active_month, Some(23));
            assert_eq!(f.open_registrations, Some(true));
            assert_eq!(f.subscribed_since, 5);
        }
        let mastodon_like = json!({ "software": { "name": "mastodon", "version": "4.5.0" },
            "openRegistrations": false, "usage": { "users": { "total": "lots" } },
            "metadata": { "nodeName": "Co-op Social", "nodeDescription": "  A home for co-ops.  " } });
        let f = facts("coop.example", &mastodon_like, 0);
        assert_eq!(f.name.as_deref(), Some("Co-op Social"));
        assert_eq!(f.description.as_deref(), Some("A home for co-ops."));
        assert_eq!(f.users, None, "a malformed count is left out");
        assert_eq!(f.open_registrations, Some(false));
        assert_eq!(facts("x", &json!("garbage"), 0).software, None);
    }
}
