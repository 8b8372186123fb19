//! The documents the relay serves for a topic actor: the `Service` actor itself (with its own key,
//! inbox, outbox and followers), its followers collection (a count only: who follows a topic is the
//! followers' business) and its WebFinger answer.

use serde_json::{Value, json};

use crate::ap::outgoing::{AS_CONTEXT, SECURITY_CONTEXT};
use crate::topics::Topic;

/// The URLs of one topic actor under the relay's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicUrls {
    /// The actor id, `{base}/topics/tag/coop`.
    pub actor: String,
    /// Its key's id, `{actor}#main-key`.
    pub key: String,
    /// Its inbox, also what a Mastodon admin adds as a relay.
    pub inbox: String,
    /// Its outbox: the posts it carried.
    pub outbox: String,
    /// Its followers collection.
    pub followers: String,
}

impl TopicUrls {
    /// The URLs of `topic` on the relay at `base`.
    pub fn new(base: &str, topic: &Topic) -> TopicUrls {
        let actor = format!("{}{}", base.trim_end_matches('/'), topic.path());
        TopicUrls {
            key: format!("{actor}#main-key"),
            inbox: format!("{actor}/inbox"),
            outbox: format!("{actor}/outbox"),
            followers: format!("{actor}/followers"),
            actor,
        }
    }
}

/// The topic's actor document: type `Service` (Mastodon shows what it carries as boosts by a bot), the
/// inbox its own (no `sharedInbox`: a Follow must reach the topic it names), not manually approving.
pub fn document(base: &str, topic: &Topic, relay_name: &str, public_key_pem: &str) -> Value {
    let urls = TopicUrls::new(base, topic);
    let label = topic.label();
    json!({
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": urls.actor,
        "type": "Service",
        "preferredUsername": topic.user(),
        "name": format!("{label} on {relay_name}"),
        "summary": format!(
            "Public posts about {label} whose authors agreed to be found, carried by {relay_name}. \
             Follow it from your account, or add {} to your server as a relay.",
            urls.inbox
        ),
        "url": urls.actor,
        "inbox": urls.inbox,
        "outbox": urls.outbox,
        "followers": urls.followers,
        "manuallyApprovesFollowers": false,
        "discoverable": true,
        "publicKey": {
            "id": urls.key,
            "owner": urls.actor,
            "publicKeyPem": public_key_pem,
        },
    })
}

/// The followers collection: how many follow, without listing them.
pub fn followers(base: &str, topic: &Topic, count: u64) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": TopicUrls::new(base, topic).followers,
        "type": "OrderedCollection",
        "totalItems": count,
    })
}

/// The WebFinger answer for `acct:{topic.user()}@{host}`.
pub fn webfinger(base: &str, host: &str, topic: &Topic) -> Value {
    let urls = TopicUrls::new(base, topic);
    json!({
        "subject": format!("acct:{}@{host}", topic.user()),
        "aliases": [urls.actor],
        "links": [
            { "rel": "self", "type": "application/activity+json", "href": urls.actor },
            { "rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": urls.actor },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_a_service_with_its_own_key_and_inbox() {
        let topic = Topic::tag("Coop").expect("tag");
        let doc = document("https://relay.example/", &topic, "Plaza", "PEM");
        assert_eq!(doc["id"], "https://relay.example/topics/tag/coop");
        assert_eq!(doc["type"], "Service");
        assert_eq!(doc["preferredUsername"], "tag.coop");
        assert_eq!(doc["inbox"], "https://relay.example/topics/tag/coop/inbox");
        assert_eq!(
            doc["outbox"],
            "https://relay.example/topics/tag/coop/outbox"
        );
        assert_eq!(
            doc["followers"],
            "https://relay.example/topics/tag/coop/followers"
        );
        assert_eq!(
            doc["publicKey"]["id"],
            "https://relay.example/topics/tag/coop#main-key"
        );
        assert_eq!(doc["publicKey"]["owner"], doc["id"]);
        assert_eq!(doc["publicKey"]["publicKeyPem"], "PEM");
        assert!(doc.get("endpoints").is_none(), "no shared inbox");
    }

    #[test]
    fn webfinger_and_followers_name_the_topic() {
        let topic = Topic::language("es").expect("es");
        let finger = webfinger("https://relay.example", "relay.example", &topic);
        assert_eq!(finger["subject"], "acct:language.es@relay.example");
        assert_eq!(
            finger["links"][0]["href"],
            "https://relay.example/topics/language/es"
        );
        let followers = followers("https://relay.example", &topic, 3);
        assert_eq!(followers["totalItems"], 3);
        assert!(followers.get("orderedItems").is_none());
    }
}
