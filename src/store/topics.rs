//! Topic actors' durable state: each topic's own key pair, kept so the actor's key never changes under
//! its followers (a changed key breaks every signature they check), and who follows each topic. A
//! `topics` row exists once a topic was first needed (the `max_topics` cap counts them); followers are
//! capped per topic by `max_followers_per_topic`.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, now_ms};
use crate::Result;
use crate::store::Style;
use crate::topics::Topic;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS topics (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    public_pem  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS topic_followers (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    inbox      TEXT NOT NULL,
    style      TEXT NOT NULL,
    follow_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name, actor_id)
);
CREATE INDEX IF NOT EXISTS topic_followers_inbox ON topic_followers(inbox);
";

/// One follower of a topic: an instance's relay actor or a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFollower {
    /// The follower's actor id.
    pub actor_id: String,
    /// Where carried posts go (its shared inbox when it has one, so a post reaches a server once).
    pub inbox: String,
    /// How it followed: Follow of Public (Mastodon relay) or of the topic actor.
    pub style: Style,
    /// The id of its Follow, which an Undo may name.
    pub follow_id: String,
}

/// What recording a follow came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// A new follower.
    New,
    /// The actor already followed; its inbox, style and Follow id are updated.
    Again,
    /// The topic has `max_followers` followers already.
    Full,
}

/// A topic's stored key pair, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicKey {
    /// PKCS#8 private key.
    pub private_pem: String,
    /// SPKI public key, as served in the actor document.
    pub public_pem: String,
}

/// The stored key of `kind`/`name`, if any.
fn stored_key(conn: &Connection, kind: &str, name: &str) -> Result<Option<TopicKey>> {
    Ok(conn
        .prepare_cached("SELECT private_pem, public_pem FROM topics WHERE kind = ?1 AND name = ?2")?
        .query_row(params![kind, name], |row| {
            Ok(TopicKey {
                private_pem: row.get(0)?,
                public_pem: row.get(1)?,
            })
        })
        .optional()?)
}

/// How many topics exist.
fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM topics", [], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

impl Store {
    /// The stored key of `topic`, if the topic exists.
    pub async fn topic_key(&self, topic: &Topic) -> Result<Option<TopicKey>> {
        let (kind, name) = (topic.kind().as_str(), topic.name().to_owned());
        self.read(move |conn| stored_key(conn, kind, &name)).await
    }

    /// How many topics exist.
    pub async fn topic_count(&self) -> Result<u64> {
        self.read(count).await
    }

    /// Stores `key` for `topic` unless the topic already has one (then the stored key wins, so two
    /// racing first requests agree) or `max_topics` topics exist already (then `None`).
    pub async fn create_topic(
        &self,
        topic: &Topic,
        key: TopicKey,
        max_topics: u64,
    ) -> Result<Option<TopicKey>> {
        let (kind, name) = (topic.kind().as_str(), topic.name().to_owned());
        self.write(move |conn, _| {
            let existing = stored_key(conn, kind, &name)?;
            if existing.is_some() {
                return Ok(existing);
            }
            if count(conn)? >= max_topics {
                return Ok(None);
            }
            conn.execute(
                "INSERT INTO topics (kind, name, private_pem, public_pem, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, name, key.private_pem, key.public_pem, now_ms()],
            )?;
            Ok(Some(key))
        })
        .await
    }
}

impl Store {
    /// Records `follower` as following `topic`, unless the topic has `max_followers` others already.
    pub async fn follow_topic(
        &self,
        topic: &Topic,
        follower: TopicFollower,
        max_followers: u64,
    ) -> Result<Followed> {
        let (kind, name) = (topic.kind().as_str(), topic.name().to_owned());
        self.write(move |conn, _| {
            let updated = conn.execute(
                "UPDATE topic_followers SET inbox = ?4, style = ?5, follow_id = ?6
                 WHERE kind = ?1 AND name = ?2 AND actor_id = ?3",
                params![
                    kind,
                    name,
                    follower.actor_id,
                    follower.inbox,
                    follower.style.as_str(),
                    follower.follow_id
                ],
            )?;
            if updated > 0 {
                return Ok(Followed::Again);
            }
            if follower_count(conn, kind, &name)? >= max_followers {
                return Ok(Followed::Full);
            }
            conn.execute(
                "INSERT INTO topic_followers (kind, name, actor_id, inbox, style, follow_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    kind,
                    name,
                    follower.actor_id,
                    follower.inbox,
                    follower.style.as_str(),
                    follower.follow_id,
                    now_ms()
                ],
            )?;
            Ok(Followed::New)
        })
        .await
    }

    /// Ends `actor_id`'s follow of `topic`; whether it followed.
    pub async fn unfollow_topic(&self, topic: &Topic, actor_id: &str) -> Result<bool> {
        let (kind, name, actor) = (
            topic.kind().as_str(),
            topic.name().to_owned(),
            actor_id.to_owned(),
        );
        self.write(move |conn, _| {
            Ok(conn.execute(
                "DELETE FROM topic_followers WHERE kind = ?1 AND name = ?2 AND actor_id = ?3",
                params![kind, name, actor],
            )? > 0)
        })
        .await
    }

    /// The follow of `topic` by `actor_id`, if it follows.
    pub async fn topic_follower(
        &self,
        topic: &Topic,
        actor_id: &str,
    ) -> Result<Option<TopicFollower>> {
        let (kind, name, actor) = (
            topic.kind().as_str(),
            topic.name().to_owned(),
            actor_id.to_owned(),
        );
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT actor_id, inbox, style, follow_id FROM topic_followers
                     WHERE kind = ?1 AND name = ?2 AND actor_id = ?3",
                )?
                .query_row(params![kind, name, actor], |row| {
                    Ok(TopicFollower {
                        actor_id: row.get(0)?,
                        inbox: row.get(1)?,
                        style: Style::parse(&row.get::<_, String>(2)?),
                        follow_id: row.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// How many follow `topic`.
    pub async fn topic_follower_count(&self, topic: &Topic) -> Result<u64> {
        let (kind, name) = (topic.kind().as_str(), topic.name().to_owned());
        self.read(move |conn| follower_count(conn, kind, &name))
            .await
    }
}

fn follower_count(conn: &Connection, kind: &str, name: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM topic_followers WHERE kind = ?1 AND name = ?2",
        params![kind, name],
        |row| row.get(0),
    )?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> TopicKey {
        TopicKey {
            private_pem: format!("private {n}"),
            public_pem: format!("public {n}"),
        }
    }

    #[tokio::test]
    async fn keys_are_kept_first_writer_wins_and_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.topic_key(&coop).await.expect("read"), None);
            let made = store.create_topic(&coop, key(1), 2).await.expect("create");
            assert_eq!(made, Some(key(1)));
            // A racing second creation gets the stored key, not its own.
            let again = store.create_topic(&coop, key(2), 2).await.expect("again");
            assert_eq!(again, Some(key(1)));
            assert_eq!(store.topic_count().await.expect("count"), 1);
        }
        // Durable across a reopen.
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.topic_key(&coop).await.expect("read"), Some(key(1)));
        assert_eq!(
            store.create_topic(&es, key(3), 1).await.expect("capped"),
            None
        );
        assert_eq!(store.topic_key(&es).await.expect("read"), None);
        assert_eq!(
            store.create_topic(&es, key(3), 2).await.expect("room"),
            Some(key(3))
        );
        assert_eq!(store.topic_count().await.expect("count"), 2);
    }

    fn follower(actor: &str, follow: &str) -> TopicFollower {
        TopicFollower {
            actor_id: actor.to_owned(),
            inbox: format!("{actor}/inbox"),
            style: Style::LitePub,
            follow_id: follow.to_owned(),
        }
    }

    #[tokio::test]
    async fn followers_are_counted_per_topic_capped_and_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        let (a, b) = ("https://a.example/u/a", "https://b.example/relay");
        let followed = |topic, actor, id| store.follow_topic(topic, follower(actor, id), 1);
        assert_eq!(
            followed(&coop, a, "f1").await.expect("follow"),
            Followed::New
        );
        // Following again updates, even at the cap; another follower does not fit.
        assert_eq!(
            followed(&coop, a, "f2").await.expect("follow"),
            Followed::Again
        );
        assert_eq!(
            followed(&coop, b, "f3").await.expect("follow"),
            Followed::Full
        );
        // The cap is per topic.
        assert_eq!(followed(&es, b, "f3").await.expect("follow"), Followed::New);
        assert_eq!(store.topic_follower_count(&coop).await.expect("count"), 1);
        let stored = store
            .topic_follower(&coop, a)
            .await
            .expect("read")
            .expect("follows");
        assert_eq!(stored, follower(a, "f2"));
        assert!(store.unfollow_topic(&coop, a).await.expect("undo"));
        assert!(!store.unfollow_topic(&coop, a).await.expect("undo again"));
        assert_eq!(store.topic_follower_count(&coop).await.expect("count"), 0);
        assert_eq!(store.topic_follower_count(&es).await.expect("count"), 1);
    }
}
