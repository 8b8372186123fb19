//! Asking an instance whether an actor is its own instance actor.
//!
//! A Mastodon-style Follow of Public subscribes a whole instance, so it must come from the instance's
//! own actor, not from any account that calls itself a `Service` (a bot named `relay` is one). Most
//! instance actors are known by their path ([`relay::instance_actor_evidence`]); for the others the
//! relay asks the instance, with signed GETs and only after the Follow's signature was verified:
//!
//! 1. WebFinger `acct:HOST@HOST`: Mastodon's instance actor answers to the instance's domain.
//! 2. WebFinger of the instance origin (`resource=https://HOST/`, FEP-d556) with a `self`,
//!    `…#Application` or `…#Service` link.
//! 3. `/.well-known/nodeinfo` with an `https://www.w3.org/ns/activitystreams#Application` link
//!    (FEP-2677). NodeInfo's `metadata` is free-form and not used.
//! 4. For an `Application` only: WebFinger `acct:relay.actor@HOST`, Misskey's relay system account
//!    (Misskey serves its system accounts, and only those, as `Application`; a dot cannot appear in a
//!    Misskey user name).
//!
//! The first answer naming the actor wins; failures count as "no".

use serde_json::Value;
use url::Url;

use crate::ap::Actor;
use crate::ap::outgoing::APPLICATION_ACTOR_REL;
use crate::ap::value::get_str;
use crate::federation::net::Http;
use crate::federation::relay::{self, InstanceEvidence};

/// The FEP-d556 rel of a server-level `Service` actor (its `Application` twin is [`APPLICATION_ACTOR_REL`]).
const SERVICE_ACTOR_REL: &str = "https://www.w3.org/ns/activitystreams#Service";

/// Whether `actor` is its instance's own actor: by convention without I/O, else by asking the instance.
pub async fn confirmed(http: &Http, actor: &Actor) -> bool {
    match relay::instance_actor_evidence(actor) {
        InstanceEvidence::Convention => true,
        InstanceEvidence::NotInstance => false,
        InstanceEvidence::Discover => {
            for url in discovery_urls(actor) {
                match http.get_json(&url).await {
                    Ok(doc) if names_actor(&doc, &actor.id) => {
                        tracing::debug!(actor = %actor.id, %url, "instance actor confirmed");
                        return true;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%url, error = %e, "instance actor discovery"),
                }
            }
            false
        }
    }
}

/// The documents that may name the instance actor of `actor`'s instance, in the order asked.
pub fn discovery_urls(actor: &Actor) -> Vec<String> {
    let Ok(url) = Url::parse(&actor.id) else {
        return Vec::new();
    };
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let webfinger = |resource: &str| format!("{origin}/.well-known/webfinger?resource={resource}");
    let mut urls = vec![
        webfinger(&format!("acct:{host}@{host}")),
        webfinger(&format!("{origin}/")),
        format!("{origin}/.well-known/nodeinfo"),
    ];
    if actor.kind == "Application" {
        urls.push(webfinger(&format!("acct:relay.actor@{host}")));
    }
    urls
}

/// Whether a WebFinger JRD or a NodeInfo link document names `actor_id` as an (instance) actor: a link
/// whose `rel` is `self` or one of the application/service actor rels, with `href` equal to it.
pub fn names_actor(doc: &Value, actor_id: &str) -> bool {
    let Some(links) = doc.get("links").and_then(Value::as_array) else {
        return false;
    };
    links.iter().any(|link| {
        let rel = get_str(link, "rel").unwrap_or_default();
        matches!(rel, "self" | APPLICATION_ACTOR_REL | SERVICE_ACTOR_REL)
            && get_str(link, "href") == Some(actor_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    #[test]
    fn links_that_name_the_instance_actor() {
        let fep = fixtures::json("nodeinfo-wellknown-fep2677.json");
        let named = fep["links"][1]["href"].as_str().unwrap();
        assert!(names_actor(&fep, named));
        assert!(!names_actor(&fep, "https://elsewhere.example/actor"));
        // The NodeInfo schema link itself names no actor.
        let schema = fep["links"][0]["href"].as_str().unwrap();
        assert!(!names_actor(&fep, schema));
        let mastodon = json!({"subject": "acct:a.example@a.example", "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "href": "https://a.example/about"},
            {"rel": "self", "type": "application/activity+json", "href": "https://a.example/actor"}]});
        assert!(names_actor(&mastodon, "https://a.example/actor"));
        assert!(!names_actor(&mastodon, "https://a.example/about"));
        assert!(!names_actor(&json!({"links": "nope"}), "x"));
        assert!(!names_actor(&json!([1, 2]), "x"));
    }

    #[test]
    fn discovery_asks_the_actors_own_origin() {
        let actor =
            |id: &str, kind: &str| Actor::from_value(json!({"id": id, "type": kind})).unwrap();
        let bot = discovery_urls(&actor("https://a.example/users/relay", "Service"));
        assert_eq!(
            bot,
            vec![
                "https://a.example/.well-known/webfinger?resource=acct:a.example@a.example",
                "https://a.example/.well-known/webfinger?resource=https://a.example/",
                "https://a.example/.well-known/nodeinfo",
            ]
        );
        let misskey = discovery_urls(&actor("http://m.example:3000/users/9x", "Application"));
        assert_eq!(misskey.len(), 4);
        assert!(
            misskey
                .iter()
                .all(|u| u.starts_with("http://m.example:3000/"))
        );
        assert_eq!(
            misskey[3],
            "http://m.example:3000/.well-known/webfinger?resource=acct:relay.actor@m.example"
        );
        assert!(discovery_urls(&actor("urn:x", "Service")).is_empty());
    }
}
