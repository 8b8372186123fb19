//! What software an instance runs, from its NodeInfo: `/.well-known/nodeinfo` lists the documents, the
//! newest schema's document names the software. Fetched with the signing client (its address policy,
//! size cap, timeout and per-host bound) when an instance asks to subscribe; admins see it next to the
//! subscriber and software blocks match on its name.

use serde_json::{Value, json};

use crate::ap::same_authority;
use crate::federation::net::Http;
use crate::store::moderation::InstanceInfo;
use crate::{Error, Result};

/// The link relation prefix of NodeInfo documents.
const SCHEMA_PREFIX: &str = "http://nodeinfo.diaspora.software/ns/schema/";

/// The NodeInfo document to read from a `/.well-known/nodeinfo` answer: the highest schema version
/// on the instance's own host (a link elsewhere is not followed).
pub fn pick_link(links: &Value, base: &str) -> Option<String> {
    links["links"]
        .as_array()?
        .iter()
        .filter_map(|link| {
            let version = link["rel"]
                .as_str()?
                .strip_prefix(SCHEMA_PREFIX)?
                .to_string();
            let href = link["href"].as_str()?;
            same_authority(href, base).then(|| (version, href.to_string()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, href)| href)
}

/// The part of a NodeInfo document admins look at.
pub fn summarize(document: &Value, fetched_at: i64) -> InstanceInfo {
    let text = |v: &Value| v.as_str().map(|s| s.chars().take(100).collect::<String>());
    InstanceInfo {
        software: text(&document["software"]["name"]).map(|s| s.to_ascii_lowercase()),
        version: text(&document["software"]["version"]),
        nodeinfo: Some(json!({
            "software": document["software"],
            "protocols": document["protocols"],
            "openRegistrations": document["openRegistrations"],
            "usage": document["usage"],
            "metadata": {
                "nodeName": document["metadata"]["nodeName"],
                // What the instance directory of the index shows.
                "nodeDescription": text_up_to(&document["metadata"]["nodeDescription"], 2000),
            },
        })),
        fetched_at,
    }
}

/// A string cut to `max` characters; null when it is not a string.
fn text_up_to(v: &Value, max: usize) -> Value {
    v.as_str().map_or(Value::Null, |s| {
        Value::from(s.chars().take(max).collect::<String>())
    })
}

/// Fetches the NodeInfo of the instance whose actor is `actor_id`.
pub async fn fetch(http: &Http, actor_id: &str) -> Result<InstanceInfo> {
    let url = url::Url::parse(actor_id).map_err(|e| Error::fetch(actor_id, e))?;
    let base = format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    );
    let links = http
        .get_json(&format!("{base}/.well-known/nodeinfo"))
        .await?;
    let href = pick_link(&links, &base)
        .ok_or_else(|| Error::fetch(&base, "no NodeInfo document on the instance's host"))?;
    let document = http.get_json(&href).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(summarize(&document, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_schema_on_the_same_host_is_read() {
        let links = json!({"links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://a.example/nodeinfo/2.0"},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://a.example/nodeinfo/2.1"},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.2", "href": "https://elsewhere.example/ni"},
            {"rel": "https://www.w3.org/ns/activitystreams#Application", "href": "https://a.example/actor"}
        ]});
        assert_eq!(
            pick_link(&links, "https://a.example").as_deref(),
            Some("https://a.example/nodeinfo/2.1")
        );
        assert_eq!(pick_link(&json!({}), "https://a.example"), None);
    }

    #[test]
    fn the_software_is_named_in_lower_case() {
        let doc = json!({"version": "2.0", "software": {"name": "Pleroma", "version": "2.6.1"},
            "protocols": ["activitypub"], "usage": {"users": {"total": 3}}, "openRegistrations": false,
            "metadata": {"nodeName": "Coop", "nodeDescription": "Where co-ops meet", "private": "not kept"}});
        let info = summarize(&doc, 7);
        assert_eq!(info.software.as_deref(), Some("pleroma"));
        assert_eq!(info.version.as_deref(), Some("2.6.1"));
        let kept = info.nodeinfo.unwrap();
        assert_eq!(kept["metadata"]["nodeName"], "Coop");
        assert_eq!(kept["metadata"]["nodeDescription"], "Where co-ops meet");
        assert!(kept["metadata"]["private"].is_null());
        assert_eq!(summarize(&json!({}), 0).software, None);
    }
}
