//! What a topic carries and how it is sent: a [`Carry`] is the log entry a matched post becomes (one
//! entry for every topic it matched, so a follower inbox that follows several of them gets it once),
//! and [`Carry::body`] is what one follower inbox receives, from one of those topics. No I/O.
//!
//! The shapes mirror what the relay itself sends, with the topic as the actor: a new post is an
//! `Announce` of its id (Mastodon shows a boost by the topic); an edit or a deletion goes the way the
//! relay forwards it — the author's own activity as received when it carries the author's LD signature
//! and the follower speaks Mastodon's relay protocol, else an `Announce` of it — and a post the topic
//! may no longer carry (its author withdrew consent) is an `Undo` of the topic's `Announce`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ap::PUBLIC;
use crate::ap::outgoing::AS_CONTEXT;
use crate::store::Style;
use crate::topics::Topic;
use crate::topics::actor::TopicUrls;

/// What happened to a post a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarryKind {
    /// A new post: announced.
    Announce,
    /// An edit of a post the topics carried.
    Update,
    /// A post the topics carried was deleted.
    Delete,
    /// A post the topics carried may no longer be carried: its Announce is undone.
    Withdraw,
}

impl CarryKind {
    /// The name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CarryKind::Announce => "announce",
            CarryKind::Update => "update",
            CarryKind::Delete => "delete",
            CarryKind::Withdraw => "withdraw",
        }
    }
}

/// One carried change, kept in the log entry that delivers it (`store::log`, column `carry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carry {
    /// What happened.
    pub kind: CarryKind,
    /// The post's id.
    pub object: String,
    /// What an `Announce` of this change names: the post for a new post or an edit, the author's
    /// `Delete` activity for a deletion.
    pub announce_object: String,
    /// The topics that carry it ([`Topic::key`]), in the order a follower inbox picks the one it
    /// receives it from.
    pub topics: Vec<String>,
    /// Mastodon-style followers receive the author's activity as received (the entry's body): it
    /// carries the author's LD signature.
    #[serde(default)]
    pub verbatim: bool,
    /// For [`CarryKind::Withdraw`]: the log entry whose Announce is undone.
    #[serde(default)]
    pub announced_seq: Option<u64>,
    /// For [`CarryKind::Announce`]: the post's author, remembered so that what the topics carried
    /// of them can be withdrawn when they stop agreeing to be found.
    #[serde(default)]
    pub author: Option<String>,
    /// The bodies sent so far, by topic and protocol: a carried post reaches many inboxes, which
    /// get at most one body per topic and protocol, built and hashed once (never stored).
    #[serde(skip)]
    pub rendered: Rendered,
}

/// One body ready to send: the bytes and their `Digest` header value.
pub type Body = (Bytes, Arc<str>);

/// [`Carry::rendered`]: a few bodies kept with the entry in memory. Not part of what a carry is:
/// every copy starts empty and all compare equal.
#[derive(Default)]
pub struct Rendered(Mutex<Vec<(String, Style, Body)>>);

impl Clone for Rendered {
    fn clone(&self) -> Rendered {
        Rendered::default()
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Rendered) -> bool {
        true
    }
}

impl Eq for Rendered {}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered")
    }
}

/// The id of what topic `urls` sent for log entry `seq`: resolvable under the topic actor.
pub fn carried_id(urls: &TopicUrls, seq: u64) -> String {
    format!("{}/carried/{seq}", urls.actor)
}

impl Carry {
    /// The Announce of the post `object` (what an outbox lists).
    pub fn announced(object: &str) -> Carry {
        Carry {
            kind: CarryKind::Announce,
            object: object.to_owned(),
            announce_object: object.to_owned(),
            topics: Vec::new(),
            verbatim: false,
            announced_seq: None,
            author: None,
            rendered: Rendered::default(),
        }
    }

    /// The same change, carried by `topics`.
    pub fn to(self, topics: Vec<String>) -> Carry {
        Carry { topics, ..self }
    }

    /// Parses the `carry` column of a log entry.
    pub fn from_json(text: &str) -> Option<Carry> {
        serde_json::from_str(text).ok()
    }

    /// The `carry` column of a log entry.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The first of this change's topics that `follows` says the inbox follows, and how.
    pub fn pick(&self, follows: impl Fn(&str) -> Option<Style>) -> Option<(&str, Style)> {
        self.topics
            .iter()
            .find_map(|key| follows(key).map(|style| (key.as_str(), style)))
    }

    /// What a follower of `topic` speaking `style` receives for log entry `seq` (`original`: the
    /// entry's body, the author's activity when [`Carry::verbatim`]); `published` is the entry's
    /// time as RFC 3339.
    pub fn body(
        &self,
        base: &str,
        topic: &Topic,
        style: Style,
        seq: u64,
        original: &Bytes,
        published: &str,
    ) -> Bytes {
        if self.verbatim && style == Style::Mastodon && !original.is_empty() {
            return original.clone();
        }
        Bytes::from(self.document(base, topic, seq, published).to_string())
    }

    /// [`Carry::body`] with its `Digest` header value, built once per topic key and protocol and
    /// kept with the carry (`topic` is parsed from the key only the first time).
    pub fn rendered(
        &self,
        base: &str,
        key: &str,
        style: Style,
        seq: u64,
        original: &Bytes,
        received_ms: i64,
    ) -> Option<Body> {
        let mut kept = self.rendered.0.lock().ok()?;
        if let Some((_, _, body)) = kept.iter().find(|(k, s, _)| k == key && *s == style) {
            return Some(body.clone());
        }
        let topic = Topic::from_key(key)?;
        let published = rfc3339(received_ms);
        let bytes = self.body(base, &topic, style, seq, original, &published);
        let digest: Arc<str> = crate::httpsig::digest_header(&bytes).into();
        kept.push((key.to_owned(), style, (bytes.clone(), digest.clone())));
        Some((bytes, digest))
    }

    /// The topic's own document for this change (see [`Carry::body`]).
    pub fn document(&self, base: &str, topic: &Topic, seq: u64, published: &str) -> Value {
        let urls = TopicUrls::new(base, topic);
        let announce = |id: String, object: &str| {
            json!({
                "id": id,
                "type": "Announce",
                "actor": urls.actor,
                "object": object,
                "published": published,
                "to": [PUBLIC],
                "cc": [urls.followers],
            })
        };
        let mut doc = match (self.kind, self.announced_seq) {
            (CarryKind::Withdraw, Some(announced)) => json!({
                "id": carried_id(&urls, seq),
                "type": "Undo",
                "actor": urls.actor,
                "object": announce(carried_id(&urls, announced), &self.object),
                "to": [PUBLIC],
                "cc": [urls.followers],
            }),
            _ => announce(carried_id(&urls, seq), &self.announce_object),
        };
        doc["@context"] = json!(AS_CONTEXT);
        doc
    }
}

/// Unix milliseconds as RFC 3339 (UTC, seconds).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carry(kind: CarryKind) -> Carry {
        Carry {
            kind,
            ..Carry::announced("https://a.example/notes/1")
                .to(vec!["tag/coop".into(), "language/es".into()])
        }
    }

    #[test]
    fn a_new_post_is_an_announce_by_the_topic() {
        let topic = Topic::tag("coop").expect("tag");
        let body = carry(CarryKind::Announce).body(
            "https://relay.example",
            &topic,
            Style::Mastodon,
            42,
            &Bytes::new(),
            "2026-12-04T06:00:00Z",
        );
        let doc: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(doc["type"], "Announce");
        assert_eq!(doc["actor"], "https://relay.example/topics/tag/coop");
        assert_eq!(
            doc["id"],
            "https://relay.example/topics/tag/coop/carried/42"
        );
        assert_eq!(doc["object"], "https://a.example/notes/1");
        assert_eq!(doc["to"][0], PUBLIC);
        assert_eq!(
            doc["cc"][0],
            "https://relay.example/topics/tag/coop/followers"
        );
        assert_eq!(doc["published"], "2026-12-04T06:00:00Z");
    }

    #[test]
    fn edits_go_verbatim_to_mastodon_only_and_withdrawals_undo() {
        let topic = Topic::language("es").expect("es");
        let original = Bytes::from_static(b"{\"type\":\"Update\"}");
        let update = Carry {
            verbatim: true,
            ..carry(CarryKind::Update)
        };
        let at = "2026-12-04T06:00:00Z";
        let base = "https://relay.example";
        assert_eq!(
            update.body(base, &topic, Style::Mastodon, 7, &original, at),
            original
        );
        let litepub: Value =
            serde_json::from_slice(&update.body(base, &topic, Style::LitePub, 7, &original, at))
                .expect("json");
        assert_eq!(litepub["type"], "Announce");
        let withdraw = Carry {
            announced_seq: Some(3),
            ..carry(CarryKind::Withdraw)
        };
        let undo = withdraw.document(base, &topic, 9, at);
        assert_eq!(undo["type"], "Undo");
        assert_eq!(
            undo["object"]["id"],
            "https://relay.example/topics/language/es/carried/3"
        );
        assert_eq!(undo["object"]["object"], "https://a.example/notes/1");
    }

    #[test]
    fn an_inbox_gets_a_change_from_the_first_topic_it_follows() {
        let change = carry(CarryKind::Announce);
        let follows = |key: &str| (key == "language/es").then_some(Style::LitePub);
        assert_eq!(change.pick(follows), Some(("language/es", Style::LitePub)));
        assert_eq!(change.pick(|_| None), None);
        let round = Carry::from_json(&change.to_json()).expect("round trip");
        assert_eq!(round, change);
    }
}
