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
//! What an instance's documents name is remembered per instance for a few minutes, so a stream of
//! Follows costs at most one round of fetches; a failed fetch names nobody.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;
use url::Url;

use crate::ap::outgoing::APPLICATION_ACTOR_REL;
use crate::ap::value::get_str;
use crate::ap::{Actor, authority_of};
use crate::federation::net::Http;
use crate::federation::relay::{self, InstanceEvidence};

/// The FEP-d556 rel of a server-level `Service` actor (its `Application` twin is [`APPLICATION_ACTOR_REL`]).
const SERVICE_ACTOR_REL: &str = "https://www.w3.org/ns/activitystreams#Service";

/// How long what an instance said about its actors is remembered. Asking costs up to four signed GETs,
/// so a stream of Follows from one host asks at most once in this time.
const REMEMBER: Duration = Duration::from_secs(300);

/// What an instance's discovery documents name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// Actors named as the instance actor (WebFinger `acct:HOST@HOST`, FEP-d556, FEP-2677).
    pub instance: Vec<String>,
    /// The actor WebFinger names as `acct:relay.actor@HOST` (Misskey's relay system account).
    pub misskey_relay: Option<String>,
}

impl Named {
    /// Whether `actor` is one of the instance's own actors by this answer.
    pub fn includes(&self, actor: &Actor) -> bool {
        self.instance.contains(&actor.id)
            || (actor.kind == "Application" && self.misskey_relay.as_deref() == Some(&actor.id))
    }
}

/// Answers "is this actor its instance's own actor?", remembering each instance's answer a while.
#[derive(Clone)]
pub struct InstanceActors {
    http: Http,
    named: Cache<String, Arc<Named>>,
}

impl InstanceActors {
    /// Asks with `http` (signed GETs, the address policy applies).
    pub fn new(http: Http) -> InstanceActors {
        InstanceActors {
            http,
            named: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REMEMBER)
                .build(),
        }
    }

    /// Whether `actor` is its instance's own actor: by convention without I/O, else by asking the
    /// instance (once per `REMEMBER` per instance; concurrent askers share one round of fetches).
    pub async fn confirmed(&self, actor: &Actor) -> bool {
        match relay::instance_actor_evidence(actor) {
            InstanceEvidence::Convention => true,
            InstanceEvidence::NotInstance => false,
            InstanceEvidence::Application | InstanceEvidence::Discover => {
                let (Some(host), Some(urls)) = (authority_of(&actor.id), DiscoveryUrls::of(actor))
                else {
                    return false;
                };
                let named = self.named.get_with(host, self.ask(urls)).await;
                named.includes(actor)
            }
        }
    }

    async fn ask(&self, urls: DiscoveryUrls) -> Arc<Named> {
        let mut named = Named::default();
        for url in urls.instance {
            if let Some(doc) = self.fetch(&url).await {
                named
                    .instance
                    .extend(named_actors(&doc).into_iter().map(str::to_string));
            }
        }
        if let Some(doc) = self.fetch(&urls.misskey_relay).await {
            named.misskey_relay = named_actors(&doc).first().map(|s| s.to_string());
        }
        tracing::debug!(?named, "instance actor discovery");
        Arc::new(named)
    }

    async fn fetch(&self, url: &str) -> Option<Value> {
        self.http
            .get_json(url)
            .await
            .inspect_err(|e| tracing::debug!(%url, error = %e, "instance actor discovery"))
            .ok()
    }
}

/// The documents that may name an instance's actors.
#[derive(Debug, PartialEq, Eq)]
pub struct DiscoveryUrls {
    /// WebFinger `acct:HOST@HOST`, WebFinger of the origin (FEP-d556), `/.well-known/nodeinfo`.
    pub instance: Vec<String>,
    /// WebFinger `acct:relay.actor@HOST`.
    pub misskey_relay: String,
}

impl DiscoveryUrls {
    /// The URLs on the origin (scheme, host, port) of `actor`'s id; `None` when it has no host.
    pub fn of(actor: &Actor) -> Option<DiscoveryUrls> {
        let url = Url::parse(&actor.id).ok()?;
        let host = url.host_str()?;
        let origin = url.origin().ascii_serialization();
        let webfinger =
            |resource: &str| format!("{origin}/.well-known/webfinger?resource={resource}");
        Some(DiscoveryUrls {
            instance: vec![
                webfinger(&format!("acct:{host}@{host}")),
                webfinger(&format!("{origin}/")),
                format!("{origin}/.well-known/nodeinfo"),
            ],
            misskey_relay: webfinger(&format!("acct:relay.actor@{host}")),
        })
    }
}

/// The actors a WebFinger JRD or a NodeInfo link document names: the `href` of each link whose `rel` is
/// `self` or one of the application/service actor rels.
pub fn named_actors(doc: &Value) -> Vec<&str> {
    let Some(links) = doc.get("links").and_then(Value::as_array) else {
        return Vec::new();
    };
    links
        .iter()
        .filter(|link| {
            matches!(
                get_str(link, "rel").unwrap_or_default(),
                "self" | APPLICATION_ACTOR_REL | SERVICE_ACTOR_REL
            )
        })
        .filter_map(|link| get_str(link, "href"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    #[test]
    fn links_that_name_the_instance_actor() {
        let fep = fixtures::json("nodeinfo-wellknown-fep2677.json");
        // The application actor link, not the NodeInfo schema link.
        assert_eq!(
            named_actors(&fep),
            vec![fep["links"][1]["href"].as_str().unwrap()]
        );
        let mastodon = json!({"subject": "acct:a.example@a.example", "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "href": "https://a.example/about"},
            {"rel": "self", "type": "application/activity+json", "href": "https://a.example/actor"}]});
        assert_eq!(named_actors(&mastodon), vec!["https://a.example/actor"]);
        assert!(named_actors(&json!({"links": "nope"})).is_empty());
        assert!(named_actors(&json!([1, 2])).is_empty());
    }

    fn actor(id: &str, kind: &str) -> Actor {
        Actor::from_value(json!({"id": id, "type": kind})).unwrap()
    }

    #[test]
    fn what_the_instance_names_decides() {
        let named = Named {
            instance: vec!["https://a.example/users/relay".into()],
            misskey_relay: Some("https://a.example/users/9x".into()),
        };
        assert!(named.includes(&actor("https://a.example/users/relay", "Service")));
        assert!(!named.includes(&actor("https://a.example/users/other", "Service")));
        assert!(named.includes(&actor("https://a.example/users/9x", "Application")));
        // A Mastodon account that registered the name relay.actor is a Service or a Person, never
        // an Application: not Misskey's system account.
        assert!(!named.includes(&actor("https://a.example/users/9x", "Service")));
    }

    #[test]
    fn discovery_asks_the_actors_own_origin() {
        let bot = DiscoveryUrls::of(&actor("https://a.example/users/relay", "Service")).unwrap();
        assert_eq!(
            bot.instance,
            vec![
                "https://a.example/.well-known/webfinger?resource=acct:a.example@a.example",
                "https://a.example/.well-known/webfinger?resource=https://a.example/",
                "https://a.example/.well-known/nodeinfo",
            ]
        );
        assert_eq!(
            bot.misskey_relay,
            "https://a.example/.well-known/webfinger?resource=acct:relay.actor@a.example"
        );
        let misskey =
            DiscoveryUrls::of(&actor("http://m.example:3000/users/9x", "Application")).unwrap();
        assert!(
            misskey
                .instance
                .iter()
                .all(|u| u.starts_with("http://m.example:3000/"))
        );
        assert!(DiscoveryUrls::of(&actor("urn:x", "Service")).is_none());
    }
}
