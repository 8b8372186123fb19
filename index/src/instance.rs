//! Instances: what the relay knows of each subscriber (its NodeInfo, when it subscribed, when it was
//! last heard from), read leniently from NodeInfo 2.0/2.1 documents.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::json;
use crate::results::InstanceView;

/// What the relay hands over about an instance. Kept whole as the instance document's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The host (with port, if any).
    pub host: String,
    /// Its NodeInfo document, when fetched.
    pub nodeinfo: Option<Value>,
    /// When it subscribed, Unix seconds.
    pub subscribed_since: Option<i64>,
    /// Last activity seen from it, Unix seconds.
    pub last_activity: Option<i64>,
}

fn rfc3339(unix: Option<i64>) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix?)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

impl InstanceRecord {
    /// A record with the times given as date-times.
    pub fn new(
        host: &str,
        nodeinfo: Option<Value>,
        subscribed_since: Option<OffsetDateTime>,
        last_activity: Option<OffsetDateTime>,
    ) -> InstanceRecord {
        InstanceRecord {
            host: host.to_ascii_lowercase(),
            nodeinfo,
            subscribed_since: subscribed_since.map(OffsetDateTime::unix_timestamp),
            last_activity: last_activity.map(OffsetDateTime::unix_timestamp),
        }
    }

    /// The record as shown in results (`posts` is filled by the caller).
    pub fn view(&self) -> InstanceView {
        let ni = self.nodeinfo.as_ref().unwrap_or(&Value::Null);
        let software = ni.get("software").unwrap_or(&Value::Null);
        let metadata = ni.get("metadata").unwrap_or(&Value::Null);
        let description = ["nodeDescription", "description", "shortDescription"]
            .iter()
            .find_map(|k| json::text(metadata, k))
            .map(str::to_owned);
        InstanceView {
            host: self.host.clone(),
            software: json::text(software, "name").map(str::to_lowercase),
            version: json::text(software, "version").map(str::to_owned),
            users: ni.pointer("/usage/users/total").and_then(Value::as_u64),
            open_registrations: ni.get("openRegistrations").and_then(Value::as_bool),
            description,
            name: json::text(metadata, "nodeName").map(str::to_owned),
            subscribed_since: rfc3339(self.subscribed_since),
            last_activity: rfc3339(self.last_activity),
            posts: 0,
            partial: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixture;

    #[test]
    fn nodeinfo_fields() {
        let record = InstanceRecord::new(
            "Pod.Example",
            Some(fixture("nodeinfo-2.1-example.json")),
            OffsetDateTime::from_unix_timestamp(1_700_000_000).ok(),
            None,
        );
        let view = record.view();
        assert_eq!(view.host, "pod.example");
        assert_eq!(view.software.as_deref(), Some("diaspora"));
        assert_eq!(view.version.as_deref(), Some("0.5.0"));
        assert_eq!(view.users, Some(123));
        assert_eq!(view.open_registrations, Some(true));
        assert_eq!(
            view.subscribed_since.as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(view.last_activity, None);
    }

    #[test]
    fn missing_nodeinfo_is_fine() {
        let view = InstanceRecord::new("a.example", None, None, None).view();
        assert_eq!(view.software, None);
        assert_eq!(view.users, None);
    }
}
