//! Actors and public keys fetched from other instances.
//!
//! Verifying a signature means dereferencing its keyId, and what comes back is either an actor that lists the
//! key in `publicKey` (Mastodon, Misskey, Pleroma, Lemmy; GoToSocial returns a stub actor with only the key) or a
//! standalone key document with an `owner` (Fedify). [`KeyOrActor`] reads both. Subscribing and delivering need
//! the actor's inboxes; indexing needs its consent flags. [`Actor`] holds all of that, and `raw` the rest.

use serde_json::Value;

use super::iri::strip_fragment;
use super::value::{get_bool, get_id, get_str, has_type, id_of};
use crate::{Error, Result};

/// A public key as published by an actor or as a standalone document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key id (what signatures name as `keyId` / `creator`).
    pub id: String,
    /// The actor the key claims to belong to. Often absent on keys embedded in an actor, where the actor is
    /// the owner.
    pub owner: Option<String>,
    /// The PEM text (SPKI `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY`), unparsed.
    pub pem: String,
}

impl KeyDoc {
    /// Reads a key object; `None` unless it has an `id` and a `publicKeyPem`.
    pub fn from_value(v: &Value) -> Option<KeyDoc> {
        Some(KeyDoc {
            id: v.get("id").and_then(id_of)?.to_owned(),
            owner: get_id(v, "owner").map(str::to_owned),
            pem: get_str(v, "publicKeyPem")?.to_owned(),
        })
    }
}

/// An actor document (Person, Service, Application, Group, Organization…).
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The actor id.
    pub id: String,
    /// The actor type; empty when the document has none.
    pub kind: String,
    /// The personal inbox (absent on key stubs).
    pub inbox: Option<String>,
    /// `endpoints.sharedInbox`, or Misskey's top-level `sharedInbox`.
    pub shared_inbox: Option<String>,
    /// The handle without host.
    pub preferred_username: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Bio (HTML).
    pub summary: Option<String>,
    /// The keys in `publicKey` (object or array) that have an id and a PEM.
    pub public_keys: Vec<KeyDoc>,
    /// The followers collection.
    pub followers: Option<String>,
    /// The outbox.
    pub outbox: Option<String>,
    /// `toot:indexable` (FEP-5feb): consent to full-text search. Absent means no.
    pub indexable: Option<bool>,
    /// `toot:discoverable`: consent to directory listing. Absent means no.
    pub discoverable: Option<bool>,
    /// The whole document, unchanged.
    pub raw: Value,
}

impl Actor {
    /// Reads an actor document. Fails with [`Error::BadRequest`] only when it is not an object or has no `id`;
    /// every other field is optional.
    pub fn from_value(raw: Value) -> Result<Actor> {
        if !raw.is_object() {
            return Err(Error::BadRequest("an actor must be a JSON object".into()));
        }
        let id = raw
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| Error::BadRequest("actor has no `id`".into()))?
            .to_owned();
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let public_keys = match raw.get("publicKey") {
            Some(Value::Array(items)) => items.iter().filter_map(KeyDoc::from_value).collect(),
            Some(one) => KeyDoc::from_value(one).into_iter().collect(),
            None => Vec::new(),
        };
        let shared_inbox = raw
            .get("endpoints")
            .and_then(|e| get_id(e, "sharedInbox"))
            .or_else(|| get_id(&raw, "sharedInbox"));
        Ok(Actor {
            kind: get_str(&raw, "type").unwrap_or_default().to_owned(),
            inbox: owned(get_id(&raw, "inbox")),
            shared_inbox: owned(shared_inbox),
            preferred_username: owned(get_str(&raw, "preferredUsername")),
            name: owned(get_str(&raw, "name")),
            summary: owned(get_str(&raw, "summary")),
            followers: owned(get_id(&raw, "followers")),
            outbox: owned(get_id(&raw, "outbox")),
            indexable: get_bool(&raw, "indexable"),
            discoverable: get_bool(&raw, "discoverable"),
            public_keys,
            id,
            raw,
        })
    }

    /// The key that `key_id` names.
    ///
    /// An exact id match among the actor's keys; failing that, when the actor has exactly one key and `key_id`
    /// without its fragment is the actor id, that key (signers that name the actor rather than the key). A key
    /// whose `owner` is set to some other actor is never returned: the document contradicts itself.
    pub fn key(&self, key_id: &str) -> Option<&KeyDoc> {
        let owned = |k: &&KeyDoc| k.owner.as_deref().is_none_or(|o| o == self.id);
        if let Some(k) = self
            .public_keys
            .iter()
            .filter(owned)
            .find(|k| k.id == key_id)
        {
            return Some(k);
        }
        match self.public_keys.as_slice() {
            [only] if strip_fragment(key_id) == self.id => Some(only).filter(owned),
            _ => None,
        }
    }

    /// Where to deliver to this actor's instance: the shared inbox, else the personal inbox.
    pub fn delivery_inbox(&self) -> Option<&str> {
        self.shared_inbox.as_deref().or(self.inbox.as_deref())
    }
}

/// What dereferencing a keyId returned: an actor listing keys, or a standalone key with an owner.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyOrActor {
    /// An actor document (possibly a stub with only `publicKey`, as GoToSocial serves). Boxed: an actor is
    /// much larger than a key.
    Actor(Box<Actor>),
    /// A standalone `CryptographicKey` / `Key` document; its owner must be fetched and must list it.
    Key(KeyDoc),
}

impl KeyOrActor {
    /// Parses a fetched body (see [`KeyOrActor::from_value`]).
    pub fn parse(bytes: &[u8]) -> Result<KeyOrActor> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::BadRequest(format!("key document is not valid JSON: {e}")))?;
        KeyOrActor::from_value(v)
    }

    /// Tells a key document from an actor by shape.
    ///
    /// A key: `type` `CryptographicKey` or `Key`, or no type but a top-level `publicKeyPem`; it must have an
    /// `id`, an `owner` and a `publicKeyPem`. An actor: anything else with an `id` and a `publicKey`, an
    /// `inbox` or a `type`. Otherwise [`Error::BadRequest`].
    pub fn from_value(v: Value) -> Result<KeyOrActor> {
        if !v.is_object() {
            return Err(Error::BadRequest(
                "key document must be a JSON object".into(),
            ));
        }
        let typed_key = has_type(&v, "CryptographicKey") || has_type(&v, "Key");
        let untyped_key = v.get("type").is_none() && v.get("publicKeyPem").is_some();
        if typed_key || untyped_key {
            let key = KeyDoc::from_value(&v).ok_or_else(|| {
                Error::BadRequest("key document lacks `id` or `publicKeyPem`".into())
            })?;
            if key.owner.is_none() {
                return Err(Error::BadRequest(format!(
                    "key {} names no `owner`",
                    key.id
                )));
            }
            return Ok(KeyOrActor::Key(key));
        }
        if ["publicKey", "inbox", "type"]
            .iter()
            .any(|k| v.get(k).is_some())
        {
            return Actor::from_value(v).map(|a| KeyOrActor::Actor(Box::new(a)));
        }
        Err(Error::BadRequest(
            "document is neither an actor nor a key".into(),
        ))
    }

    /// The key named `key_id` in this document: [`Actor::key`] for an actor, the key itself when its id is
    /// exactly `key_id`.
    pub fn key(&self, key_id: &str) -> Option<&KeyDoc> {
        match self {
            KeyOrActor::Actor(a) => a.key(key_id),
            KeyOrActor::Key(k) => Some(k).filter(|k| k.id == key_id),
        }
    }

    /// The actor that owns the key(s): the actor's id, or the standalone key's `owner`.
    pub fn owner(&self) -> Option<&str> {
        match self {
            KeyOrActor::Actor(a) => Some(&a.id),
            KeyOrActor::Key(k) => k.owner.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    fn actor(name: &str) -> Actor {
        match KeyOrActor::parse(&fixtures::bytes(name)) {
            Ok(KeyOrActor::Actor(a)) => *a,
            other => panic!("{name}: expected an actor, got {other:?}"),
        }
    }

    /// Every fixture shaped like an actor or key (`publicKey`, `inbox`, or a key type) parses as one.
    #[test]
    fn every_actor_and_key_fixture_parses() {
        let mut count = 0;
        for (name, v) in fixtures::all_json() {
            let keyish = has_type(&v, "CryptographicKey") || has_type(&v, "Key");
            if v.get("actor").is_some()
                || !(keyish || v.get("publicKey").is_some() || v.get("inbox").is_some())
            {
                continue;
            }
            let parsed = KeyOrActor::from_value(v).unwrap_or_else(|e| panic!("{name}: {e}"));
            match &parsed {
                KeyOrActor::Actor(a) => {
                    assert!(!a.public_keys.is_empty(), "{name}: no key");
                    for k in &a.public_keys {
                        assert!(k.pem.contains("PUBLIC KEY"), "{name}");
                        assert_eq!(
                            a.key(&k.id).map(|x| &x.id),
                            Some(&k.id),
                            "{name}: key lookup"
                        );
                    }
                }
                KeyOrActor::Key(k) => assert!(k.owner.is_some(), "{name}"),
            }
            count += 1;
        }
        assert!(count >= 17, "only {count} actor/key fixtures found");
    }

    #[test]
    fn mastodon_actor() {
        let a = actor("mastodon-actor.json");
        assert_eq!(a.kind, "Person");
        assert_eq!(
            a.inbox.as_deref(),
            Some("https://ap.example.com/users/foo/inbox")
        );
        assert_eq!(
            a.shared_inbox.as_deref(),
            Some("https://ap.example.com/inbox")
        );
        assert_eq!(a.delivery_inbox(), Some("https://ap.example.com/inbox"));
        assert_eq!(a.preferred_username.as_deref(), Some("foo"));
        assert_eq!(a.name, None, "an empty name counts as absent");
        let k = a
            .key("https://ap.example.com/users/foo#main-key")
            .expect("key");
        assert_eq!(k.owner.as_deref(), Some("https://ap.example.com/users/foo"));
        assert_eq!(
            a.key("https://ap.example.com/users/foo"),
            Some(k),
            "the actor id names its only key"
        );
        assert_eq!(a.key("https://ap.example.com/users/foo#other"), Some(k));
        assert_eq!(a.key("https://ap.example.com/users/bar#main-key"), None);
        let instance = actor("mastodon-instance-actor-application.json");
        assert_eq!(instance.kind, "Application");
        assert_eq!(
            instance.delivery_inbox(),
            Some("https://innocent.yukimochi.io/inbox")
        );
    }

    #[test]
    fn gotosocial_actor_and_stub() {
        let a = actor("gotosocial-actor.json");
        assert_eq!(a.shared_inbox, None, "GoToSocial publishes no sharedInbox");
        assert_eq!(
            a.delivery_inbox(),
            Some("http://localhost:8080/users/the_mighty_zork/inbox")
        );
        assert_eq!(a.discoverable, Some(true));
        assert_eq!(a.indexable, None);
        assert!(
            a.key("http://localhost:8080/users/the_mighty_zork/main-key")
                .is_some()
        );
        let stub = actor("gotosocial-publickey-stub.json");
        assert_eq!(stub.inbox, None);
        assert_eq!(stub.delivery_inbox(), None);
        let k = stub
            .key("https://example.org/users/example_user/main-key")
            .expect("stub key");
        assert_eq!(
            k.owner.as_deref(),
            Some("https://example.org/users/example_user")
        );
    }

    #[test]
    fn fedify_two_keys_and_key_document() {
        let p = actor("httpsig-fedify-example-person.json");
        assert_eq!(p.public_keys.len(), 2);
        let k1 = p.key("https://example.com/key").expect("key 1");
        let k2 = p.key("https://example.com/key2").expect("key 2");
        assert!(
            k1.pem
                .contains("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyIB9")
        );
        assert!(
            k2.pem
                .contains("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoRmB")
        );
        assert_eq!(k2.owner, None);
        assert_eq!(
            p.key("https://example.com/person#main-key"),
            None,
            "two keys: no guessing"
        );
        assert_eq!(p.delivery_inbox(), None);
        match KeyOrActor::parse(&fixtures::bytes("httpsig-fedify-example-key.json")) {
            Ok(doc @ KeyOrActor::Key(_)) => {
                assert_eq!(doc.owner(), Some("https://example.com/person"));
                assert_eq!(
                    doc.key("https://example.com/key").map(|k| &k.pem),
                    Some(&k1.pem)
                );
                assert_eq!(doc.key("https://example.com/key2"), None);
            }
            other => panic!("expected a key, got {other:?}"),
        }
    }

    #[test]
    fn lemmy_misskey_pleroma_mastodon_service() {
        let g = actor("lemmy-group.json");
        assert_eq!(g.kind, "Group");
        assert_eq!(
            g.shared_inbox.as_deref(),
            Some("https://enterprise.lemmy.ml/inbox")
        );
        assert_eq!(g.preferred_username.as_deref(), Some("tenforward"));
        assert!(
            g.key("https://enterprise.lemmy.ml/c/tenforward#main-key")
                .is_some()
        );
        let site = actor("lemmy-instance-actor.json");
        assert_eq!(site.id, "https://enterprise.lemmy.ml/");
        assert!(site.key("https://enterprise.lemmy.ml/#main-key").is_some());
        let m = actor("misskey-actor.json");
        assert_eq!(m.shared_inbox.as_deref(), Some("https://misskey.io/inbox"));
        assert_eq!(m.preferred_username.as_deref(), Some("aimu"));
        assert_eq!(m.discoverable, Some(true));
        assert_eq!(
            m.public_keys[0].id,
            "https://misskey.io/users/83ssedkv53#main-key"
        );
        let p = actor("pleroma-actor.json");
        assert_eq!(
            p.shared_inbox.as_deref(),
            Some("https://queer.hacktivis.me/inbox")
        );
        assert_eq!(p.discoverable, Some(false));
        let s = actor("mastodon-service-actor.json");
        assert_eq!(
            (s.kind.as_str(), s.indexable, s.discoverable),
            ("Service", Some(false), Some(true))
        );
        let relay = actor("relay-actor-activityrelay.json");
        assert_eq!(relay.inbox, relay.shared_inbox);
    }

    #[test]
    fn misskey_top_level_shared_inbox_alone() {
        let a = Actor::from_value(
            json!({"id": "https://m/u/1", "type": "Person", "inbox": "https://m/u/1/inbox",
            "sharedInbox": "https://m/inbox"}),
        )
        .expect("actor");
        assert_eq!(a.delivery_inbox(), Some("https://m/inbox"));
    }

    #[test]
    fn key_owned_by_someone_else_is_refused() {
        let a = Actor::from_value(json!({"id": "https://h/a", "type": "Person", "publicKey":
            {"id": "https://h/a#k", "owner": "https://evil/b", "publicKeyPem": "PEM"}}))
        .expect("actor");
        assert_eq!(a.key("https://h/a#k"), None);
        assert_eq!(a.key("https://h/a"), None);
    }

    #[test]
    fn odd_documents() {
        assert!(KeyOrActor::parse(b"nope").is_err());
        assert!(KeyOrActor::parse(b"[]").is_err());
        assert!(KeyOrActor::parse(br#"{"id":"https://h/x"}"#).is_err());
        assert!(KeyOrActor::parse(br#"{"type":"Person"}"#).is_err(), "no id");
        let no_owner = KeyOrActor::parse(
            br#"{"id":"https://h/k","type":"CryptographicKey","publicKeyPem":"P"}"#,
        );
        assert!(matches!(no_owner, Err(Error::BadRequest(r)) if r.contains("owner")));
        let untyped =
            KeyOrActor::parse(br#"{"id":"https://h/k","owner":"https://h/a","publicKeyPem":"P"}"#);
        assert!(matches!(untyped, Ok(KeyOrActor::Key(_))));
        let weird = KeyOrActor::parse(
            br#"{"id":"https://h/a","type":["Person"],"publicKey":[1,"x",{"id":"k"}],
            "endpoints":"https://h/inbox","inbox":["https://h/a/inbox"],"indexable":"yes"}"#,
        )
        .expect("lenient");
        let KeyOrActor::Actor(a) = weird else {
            panic!("actor expected")
        };
        assert!(a.public_keys.is_empty());
        assert_eq!(
            (a.inbox.as_deref(), a.shared_inbox.as_deref(), a.indexable),
            (Some("https://h/a/inbox"), None, None)
        );
        assert_eq!(a.key("https://h/a"), None);
    }

    /// Replaces every top-level value of every actor fixture with odd JSON: never a panic.
    #[test]
    fn no_panic_on_odd_values() {
        let odd = [
            json!(null),
            json!(1),
            json!([]),
            json!({}),
            json!(""),
            json!([null, {"id": 2}]),
            json!(true),
        ];
        for (_, v) in fixtures::all_json() {
            let Some(map) = v.as_object() else { continue };
            if !map.contains_key("publicKey") && !map.contains_key("publicKeyPem") {
                continue;
            }
            for key in map.keys() {
                for o in &odd {
                    let mut m = map.clone();
                    m.insert(key.clone(), o.clone());
                    if let Ok(doc) = KeyOrActor::from_value(Value::Object(m)) {
                        let _ = (doc.key("https://h/a#main-key"), doc.owner());
                        if let KeyOrActor::Actor(a) = &doc {
                            let _ = a.delivery_inbox();
                        }
                    }
                }
            }
        }
    }
}
