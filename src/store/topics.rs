//! Topic actors' durable state: each topic's own key pair, kept so the actor's key never changes under
//! its followers (a changed key breaks every signature they check). A row exists once a topic was
//! first needed; the number of rows is what the `max_topics` cap counts.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, now_ms};
use crate::Result;
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
";

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
}
