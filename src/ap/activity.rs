//! Incoming activities.
//!
//! The inbox turns a request body into an [`Activity`]: the few fields the relay decides on (type, actor,
//! object, addressing) pulled out leniently, and the untouched JSON kept in `raw` so a Mastodon `Create` can be
//! forwarded byte for byte and the indexer can read whatever else it needs. Parsing refuses only what cannot be
//! an activity at all — not JSON, not an object, no `type`, no `actor` — with a reason the sender can act on.

use serde_json::Value;

use super::audience::Audience;
use super::iri::{authority_of, same_authority};
use super::value::{first_id, get_str, id_of};
use crate::{Error, Result};

/// The ActivityStreams 2.0 activity types, plus the fediverse's `EmojiReact`.
///
/// Used by [`Activity::is_activity_type`]: an object that carries an `actor` but is not an activity (a Note
/// posted straight to the inbox) parses, and must then be refused by policy.
pub const ACTIVITY_TYPES: &[&str] = &[
    "Accept",
    "Add",
    "Announce",
    "Arrive",
    "Block",
    "Create",
    "Delete",
    "Dislike",
    "EmojiReact",
    "Flag",
    "Follow",
    "Ignore",
    "Invite",
    "Join",
    "Leave",
    "Like",
    "Listen",
    "Move",
    "Offer",
    "Question",
    "Read",
    "Reject",
    "Remove",
    "TentativeAccept",
    "TentativeReject",
    "Travel",
    "Undo",
    "Update",
    "View",
];

/// An activity received by the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The activity's `id`, when it has one.
    pub id: Option<String>,
    /// The activity type (the first one when `type` is an array).
    pub kind: String,
    /// The id of the actor: a string, an embedded object's `id`, or the first of an array.
    pub actor: String,
    /// The `object` as sent: an id, an embedded object, or an array.
    pub object: Option<Value>,
    /// The activity's own `to` / `cc`.
    pub audience: Audience,
    /// The whole document, unchanged.
    pub raw: Value,
}

/// A Linked Data signature block (`signature`), as Mastodon attaches to public activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdSignature {
    /// The signature suite, e.g. `RsaSignature2017`.
    pub kind: String,
    /// The key id that made it, e.g. `https://host/users/a#main-key`.
    pub creator: String,
}

impl Activity {
    /// Parses a request body.
    ///
    /// Fails with [`Error::BadRequest`] when the body is not JSON, not a JSON object, or has no usable `type`
    /// or `actor`. `@context` is not examined.
    pub fn parse(bytes: &[u8]) -> Result<Activity> {
        let raw: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::BadRequest(format!("body is not valid JSON: {e}")))?;
        Activity::from_value(raw)
    }

    /// Builds an activity from JSON already parsed (see [`Activity::parse`] for what is refused).
    pub fn from_value(raw: Value) -> Result<Activity> {
        if !raw.is_object() {
            return Err(Error::BadRequest(format!(
                "an activity must be a JSON object, got {}",
                json_kind(&raw)
            )));
        }
        let kind = get_str(&raw, "type")
            .ok_or_else(|| Error::BadRequest("activity has no `type`".into()))?
            .to_owned();
        let actor = raw
            .get("actor")
            .and_then(first_id)
            .ok_or_else(|| Error::BadRequest(format!("{kind} activity has no `actor` id")))?
            .to_owned();
        let id = raw.get("id").and_then(id_of).map(str::to_owned);
        let object = raw.get("object").filter(|o| !o.is_null()).cloned();
        let audience = Audience::from_value(&raw);
        Ok(Activity {
            id,
            kind,
            actor,
            object,
            audience,
            raw,
        })
    }

    /// Whether `kind` is an ActivityStreams activity type (see [`ACTIVITY_TYPES`]).
    pub fn is_activity_type(&self) -> bool {
        ACTIVITY_TYPES.contains(&self.kind.as_str())
    }

    /// The id of the object: a bare IRI, an embedded object's `id`, or the first of an array.
    pub fn object_id(&self) -> Option<&str> {
        self.object.as_ref().and_then(first_id)
    }

    /// The embedded object, when the object is an object (or an array whose first entry is one).
    pub fn embedded_object(&self) -> Option<&Value> {
        match self.object.as_ref()? {
            o @ Value::Object(_) => Some(o),
            Value::Array(items) => items.first().filter(|o| o.is_object()),
            _ => None,
        }
    }

    /// The `type` of the embedded object; `None` when the object is only an id.
    pub fn object_kind(&self) -> Option<&str> {
        self.embedded_object().and_then(|o| get_str(o, "type"))
    }

    /// The `to` / `cc` of the embedded object, when there is one.
    pub fn object_audience(&self) -> Option<Audience> {
        self.embedded_object().map(Audience::from_value)
    }

    /// The Linked Data signature, when the activity carries a `signature` block with a type and a creator.
    pub fn ld_signature(&self) -> Option<LdSignature> {
        let sig = self.raw.get("signature")?;
        Some(LdSignature {
            kind: get_str(sig, "type")?.to_owned(),
            creator: sig.get("creator").and_then(id_of)?.to_owned(),
        })
    }

    /// Whether the activity is public (Public in `to` or `cc`): the condition for relaying a `Delete`, `Move`
    /// or `Undo` (posts and edits need [`Activity::is_listed_public`]).
    ///
    /// For `Create` and `Update` with an embedded object, the object's addressing counts too: the activity is
    /// public when either the activity or the object says Public. Servers normally copy the object's addressing
    /// onto the activity, but not all do (an `Update` of a public Note may come unaddressed), and the object's
    /// addressing is what its author chose. Other types use only their own addressing. An account `Delete`
    /// usually carries no addressing: policy decides about those, not this method.
    pub fn is_public(&self) -> bool {
        self.audience.is_public()
            || self
                .wrapped_object_audience()
                .is_some_and(|a| a.is_public())
    }

    /// Like [`Activity::is_public`] but with Public in `to` only (listed, not unlisted): the condition for
    /// relaying a `Create`, `Announce` or `Update`, and the first condition for indexing.
    pub fn is_listed_public(&self) -> bool {
        self.audience.is_listed_public()
            || self
                .wrapped_object_audience()
                .is_some_and(|a| a.is_listed_public())
    }

    fn wrapped_object_audience(&self) -> Option<Audience> {
        if matches!(self.kind.as_str(), "Create" | "Update") {
            self.object_audience()
        } else {
            None
        }
    }

    /// The authority (`host[:port]`) of the actor: the instance the activity claims to come from.
    pub fn actor_authority(&self) -> Option<String> {
        authority_of(&self.actor)
    }

    /// The authority of the activity's id.
    pub fn id_authority(&self) -> Option<String> {
        self.id.as_deref().and_then(authority_of)
    }

    /// Whether an embedded object comes from the actor's own instance (its id has the actor's authority).
    ///
    /// `false` when there is no embedded object or it has no id. An embedded object from another host is only
    /// the sender's claim (a forged Announce can embed anything): fetch it from its origin instead of trusting
    /// the copy.
    pub fn embedded_object_same_origin(&self) -> bool {
        self.embedded_object()
            .and_then(id_of)
            .is_some_and(|object_id| same_authority(object_id, &self.actor))
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ap::audience::PUBLIC;
    use crate::test_fixtures as fixtures;
    use serde_json::json;

    fn parse(name: &str) -> Activity {
        Activity::parse(&fixtures::bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn bad_request(bytes: &[u8]) -> String {
        match Activity::parse(bytes) {
            Err(Error::BadRequest(reason)) => reason,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    /// Every fixture shaped like an activity (an object with `type` and `actor`) parses.
    #[test]
    fn every_activity_fixture_parses() {
        let mut count = 0;
        for (name, v) in fixtures::all_json() {
            if v.get("type").is_none() || v.get("actor").is_none() {
                continue;
            }
            let a =
                Activity::parse(&fixtures::bytes(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!a.kind.is_empty() && !a.actor.is_empty(), "{name}");
            assert!(
                a.actor_authority().is_some() || a.actor.contains("{{"),
                "{name}: actor {}",
                a.actor
            );
            // Exercise every accessor on real data.
            let _ = (
                a.object_id(),
                a.object_kind(),
                a.ld_signature(),
                a.is_public(),
                a.is_listed_public(),
            );
            let _ = (
                a.id_authority(),
                a.embedded_object_same_origin(),
                a.is_activity_type(),
            );
            count += 1;
        }
        assert!(count >= 35, "only {count} activity fixtures found");
    }

    #[test]
    fn rejects_unusable_bodies() {
        assert!(bad_request(b"").contains("not valid JSON"));
        assert!(bad_request(b"<html>").contains("not valid JSON"));
        assert!(bad_request(b"{\"type\":\"Follow\",").contains("not valid JSON"));
        assert!(
            bad_request(b"[{\"type\":\"Follow\",\"actor\":\"https://a/b\"}]").contains("an array")
        );
        assert!(bad_request(b"\"Follow\"").contains("a string"));
        assert!(bad_request(b"null").contains("null"));
        assert!(bad_request(br#"{"actor":"https://a/b"}"#).contains("`type`"));
        assert!(bad_request(br#"{"type":"Follow","object":"x"}"#).contains("`actor`"));
        assert!(bad_request(br#"{"type":"Follow","actor":""}"#).contains("`actor`"));
        assert!(bad_request(br#"{"type":"Follow","actor":[1,null]}"#).contains("`actor`"));
        assert!(bad_request(br#"{"type":"Follow","actor":{"name":"x"}}"#).contains("`actor`"));
        assert!(bad_request(br#"{"type":5,"actor":"https://a/b"}"#).contains("`type`"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(bad_request(deep.as_bytes()).contains("not valid JSON"));
        assert_eq!(
            Activity::parse(b"{}").err().map(|e| e.status()),
            Some(axum::http::StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn lenient_shapes() {
        let a = Activity::parse(
            br#"{"type":["Announce","Relay"],"actor":[{"id":"https://h.example/a"},"https://x/y"],
                 "object":[{"id":"https://o.example/1","type":"Note","to":"as:Public"}],"to":{"id":"https://h.example/f"}}"#,
        )
        .expect("lenient");
        assert_eq!(a.kind, "Announce");
        assert_eq!(a.actor, "https://h.example/a");
        assert_eq!(a.object_id(), Some("https://o.example/1"));
        assert_eq!(a.object_kind(), Some("Note"));
        assert_eq!(a.audience.to, vec!["https://h.example/f"]);
        assert!(!a.is_public(), "Announce looks only at its own addressing");
        let a = Activity::parse(br#"{"type":"Follow","actor":"https://h/a","object":null,"id":7}"#)
            .expect("ok");
        assert_eq!((a.object.is_none(), a.id.is_none()), (true, true));
    }

    /// Replaces every top-level value of every activity fixture with odd JSON: parsing may fail, never panic.
    #[test]
    fn no_panic_on_odd_values() {
        let odd = [
            json!(null),
            json!(1),
            json!(-1.5),
            json!([]),
            json!({}),
            json!(""),
            json!([null, 2, [3]]),
        ];
        for (_, v) in fixtures::all_json() {
            let Some(map) = v.as_object() else { continue };
            for key in map.keys() {
                for o in &odd {
                    let mut m = map.clone();
                    m.insert(key.clone(), o.clone());
                    if let Ok(a) = Activity::from_value(Value::Object(m)) {
                        let _ = (
                            a.object_id(),
                            a.object_kind(),
                            a.ld_signature(),
                            a.is_public(),
                        );
                        let _ = (
                            a.is_listed_public(),
                            a.embedded_object_same_origin(),
                            a.id_authority(),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn mastodon_relay_follow_and_undo() {
        let f = parse("mastodon-follow-public-relay.json");
        assert_eq!(f.kind, "Follow");
        assert_eq!(f.actor, "https://innocent.yukimochi.io/actor");
        assert_eq!(f.object_id(), Some(PUBLIC));
        assert!(
            f.audience.is_empty(),
            "a Mastodon relay Follow carries no to/cc"
        );
        let u = parse("mastodon-undo-follow-public-relay.json");
        assert_eq!(u.object_kind(), Some("Follow"));
        assert_eq!(
            u.embedded_object().and_then(|o| get_str(o, "object")),
            Some(PUBLIC)
        );
        assert_eq!(u.object_id(), f.id.as_deref());
        let fep = parse("fep-ae0c-mastodon-follow.json");
        assert_eq!(fep.object_id(), Some(PUBLIC));
        // Its Undo has a malformed @context ("https: //www…"): ignored.
        let fep_undo = parse("fep-ae0c-mastodon-undo-follow.json");
        assert_eq!(
            fep_undo.object_id(),
            Some("https://client.example/6ae15297")
        );
    }

    #[test]
    fn litepub_relay_follow_announce_undo() {
        let f = parse("pleroma-relay-follow-litepub.json");
        assert_eq!(
            f.actor,
            "https://carol-sol-coffee-shareware.trycloudflare.com/relay"
        );
        assert_eq!(f.object_id(), Some("https://relay.toot.yukimochi.jp/actor"));
        assert_eq!(f.audience.to, vec!["https://relay.toot.yukimochi.jp/actor"]);
        assert!(f.audience.cc.is_empty());
        assert!(
            !f.is_public(),
            "LitePub relay follows are not addressed to Public"
        );
        let a = parse("pleroma-relay-announce-litepub.json");
        assert_eq!(a.kind, "Announce");
        assert_eq!(
            a.object_id(),
            Some(
                "https://carol-sol-coffee-shareware.trycloudflare.com/objects/b22bb689-3333-4390-9089-5a2597ee38ee"
            )
        );
        assert!(a.audience.contains("https://relay.toot.yukimochi.jp/actor"));
        assert!(
            !a.is_public(),
            "the LitePub Announce is not public; the object must be fetched and checked"
        );
        let u = parse("pleroma-relay-undo-follow-litepub.json");
        assert_eq!(u.object_kind(), Some("Follow"));
        assert_eq!(u.object_id(), f.id.as_deref());
        assert_eq!(
            u.actor_authority().as_deref(),
            Some("carol-sol-coffee-shareware.trycloudflare.com")
        );
    }

    #[test]
    fn ld_signed_create() {
        let c = parse("mastodon-create-note-ld-signed.json");
        assert_eq!(c.kind, "Create");
        assert_eq!(c.object_kind(), Some("Note"));
        assert!(c.is_public() && c.is_listed_public());
        assert!(c.embedded_object_same_origin());
        let sig = c.ld_signature().expect("signature");
        assert_eq!(sig.kind, "RsaSignature2017");
        assert_eq!(
            sig.creator,
            "https://innocent.yukimochi.io/users/YUKIMOCHI#main-key"
        );
        assert_eq!(crate::ap::iri::strip_fragment(&sig.creator), c.actor);
        assert!(parse("pleroma-create-note.json").ld_signature().is_none());
    }

    #[test]
    fn audiences_from_real_servers() {
        // Pleroma: Public in `to` after a mention.
        let p = parse("pleroma-create-note.json");
        assert!(p.is_listed_public());
        assert_eq!(
            p.audience.to,
            vec!["https://enterprise.lemmy.ml/u/picard", PUBLIC]
        );
        // GoToSocial: `to` and `cc` are plain strings, not arrays; the actor is on a non-default port.
        let g = parse("gotosocial-delete-public.json");
        assert_eq!(g.audience.to, vec![PUBLIC]);
        assert!(g.is_listed_public());
        assert_eq!(g.actor_authority().as_deref(), Some("localhost:8080"));
        // A followers-only boost must not be relayed.
        let private = parse("mastodon-announce-private.json");
        assert!(!private.is_public());
        assert_eq!(
            private.object_audience().map(|a| a.is_public()),
            Some(false)
        );
        assert!(parse("mastodon-announce.json").is_listed_public());
        // Account Delete carries no addressing at all.
        let d = parse("mastodon-delete-actor.json");
        assert_eq!((d.object_kind(), d.is_public()), (Some("Person"), false));
        assert_eq!(d.object_id(), Some(d.actor.as_str()));
        // Undo of a public Announce: the embedded Announce uses the http:// spelling of Public.
        let u = parse("mastodon-undo-announce.json");
        assert!(!u.is_public());
        assert_eq!(
            u.object_audience().map(|a| a.is_listed_public()),
            Some(true)
        );
        // Misskey Like: cc only, to the liked author.
        let like = parse("misskey-like.json");
        assert_eq!((like.kind.as_str(), like.is_public()), ("Like", false));
    }

    #[test]
    fn create_update_look_at_the_object() {
        let c = Activity::from_value(json!({"type": "Update", "actor": "https://h/a",
            "object": {"id": "https://h/n/1", "type": "Note", "to": [PUBLIC]}}))
        .expect("ok");
        assert!(c.is_public() && c.is_listed_public());
        let unlisted = Activity::from_value(json!({"type": "Create", "actor": "https://h/a",
            "object": {"id": "https://h/n/1", "type": "Note", "to": ["https://h/a/followers"], "cc": [PUBLIC]}}))
        .expect("ok");
        assert!(unlisted.is_public() && !unlisted.is_listed_public());
        let del = Activity::from_value(json!({"type": "Delete", "actor": "https://h/a",
            "object": {"id": "https://h/n/1", "type": "Tombstone", "to": [PUBLIC]}}))
        .expect("ok");
        assert!(
            !del.is_public(),
            "only Create/Update inherit the object's addressing"
        );
    }

    #[test]
    fn negative_fixtures() {
        // A boost embedding a Note from another host: the copy cannot be trusted, only the id.
        let bogus = parse("negative-bogus-mastodon-announce.json");
        assert_eq!(bogus.kind, "Announce");
        assert!(!bogus.embedded_object_same_origin());
        assert_eq!(
            bogus.object_id(),
            Some("https://mastodon.social/users/emelie/statuses/101849165031453404")
        );
        assert_ne!(
            bogus.actor_authority(),
            bogus.object_id().and_then(authority_of)
        );
        assert!(
            bogus.ld_signature().is_none(),
            "no LD signature: may only be wrapped, not forwarded verbatim"
        );
        // A bare Note carrying an `actor`: parses (lenient), but it is no activity and has no object.
        let spoof = parse("negative-spoofed-object.json");
        assert_eq!(spoof.kind, "Note");
        assert!(!spoof.is_activity_type());
        assert!(spoof.object.is_none());
        assert!(parse("mastodon-create-note.json").is_activity_type());
    }
}
