//! Topic actors' durable state: each topic's own key pair, kept so the actor's key never changes under
//! its followers (a changed key breaks every signature they check), who follows each topic, the
//! searches the admins curated, and which posts each topic carried (its outbox, and what a later edit
//! or deletion of a post concerns). A `topics` row exists once a topic was first needed (the
//! `max_topics` cap counts them; one nobody follows may be evicted for a new one); followers are capped
//! per topic by `max_followers_per_topic` and per instance. Each follower inbox's delivery cursor
//! lives in the `cursors` table under [`inbox_cursor_name`]. Under the approval policy, a Follow from
//! an instance not admitted yet waits in `topic_pending` until an admin approves or rejects it.

use crate::store::db::{Conn, Row, params};

use super::{Store, ddl, now_ms};
use crate::Result;
use crate::store::Style;
use crate::topics::carry::{Carry, CarryKind};
use crate::topics::{Topic, TopicKind};

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
CREATE TABLE IF NOT EXISTS topic_searches (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS topic_carried (
    topic  TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    object TEXT NOT NULL,
    author TEXT,
    at     INTEGER NOT NULL,
    PRIMARY KEY (topic, seq)
);
CREATE INDEX IF NOT EXISTS topic_carried_object ON topic_carried(object);
CREATE INDEX IF NOT EXISTS topic_carried_author ON topic_carried(author);
CREATE INDEX IF NOT EXISTS topic_carried_at ON topic_carried(at);
CREATE TABLE IF NOT EXISTS topic_pending (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    inbox      TEXT NOT NULL,
    style      TEXT NOT NULL,
    follow_id  TEXT NOT NULL,
    authority  TEXT NOT NULL,
    follow     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name, actor_id)
);
";

/// Adds what a database made by an earlier release lacks: the follower's instance, counted for the
/// per-instance cap.
pub(super) fn migrate(conn: &Conn<'_>) -> Result<()> {
    ddl::add_column(
        conn,
        "topic_followers",
        "authority",
        "TEXT NOT NULL DEFAULT ''",
    )?;
    ddl::create_tables(
        conn,
        "CREATE INDEX IF NOT EXISTS topic_followers_authority ON topic_followers(authority);",
    )
}

/// The name of a follower inbox's delivery cursor in the `cursors` table.
pub fn inbox_cursor_name(inbox: &str) -> String {
    format!("topic-inbox {inbox}")
}

/// A search the relay's admins made a topic of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CuratedTopic {
    /// Its slug: `/topics/search/{slug}`.
    pub slug: String,
    /// Its name for people.
    pub name: String,
    /// The query, in Plaza's query language.
    pub query: String,
    /// Unix milliseconds of its creation.
    pub created_at: i64,
}

/// A topic with how many follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    /// The topic.
    pub topic: Topic,
    /// Its followers.
    pub followers: u64,
    /// Posts it carried within the log's retention.
    pub carried: u64,
}

/// How many topics of one kind exist and how many follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindCount {
    /// The kind.
    pub kind: TopicKind,
    /// Topics of that kind that exist.
    pub topics: u64,
    /// Follows of topics of that kind.
    pub followers: u64,
}

/// One follow, with the topic followed (the registry's view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The topic.
    pub topic: Topic,
    /// The follower.
    pub follower: TopicFollower,
}

/// One post a topic carried, for its outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// The log entry that carried it.
    pub seq: u64,
    /// The post's id.
    pub object: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// Records, inside the transaction appending log entry `seq`, which topics carried a post (an
/// Announce), or that they no longer do (a deletion, a withdrawal).
pub(super) fn record_carried(conn: &Conn<'_>, seq: u64, carry: &Carry, now: i64) -> Result<()> {
    match carry.kind {
        CarryKind::Announce => {
            for topic in &carry.topics {
                conn.execute(
                    "INSERT INTO topic_carried (topic, seq, object, author, at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![topic, seq as i64, carry.object, carry.author, now],
                )?;
            }
        }
        CarryKind::Delete | CarryKind::Withdraw => {
            conn.execute(
                "DELETE FROM topic_carried WHERE object = ?1",
                params![&carry.object],
            )?;
        }
        CarryKind::Update => {}
    }
    Ok(())
}

/// Forgets carried posts older than `cutoff` (Unix milliseconds), with the log.
pub(super) fn prune(conn: &Conn<'_>, cutoff: i64) -> Result<()> {
    conn.execute("DELETE FROM topic_carried WHERE at < ?1", params![cutoff])?;
    Ok(())
}

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
    /// Its instance's authority (what the per-instance cap counts).
    pub authority: String,
}

/// What recording a follow of a topic ([`Store::follow_topic`]) or one waiting for an admin
/// ([`Store::hold_topic_follow`]) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded now: a new follower, or a Follow now waiting.
    New,
    /// Recorded before: the actor already followed, or its Follow was waiting; its inbox, style and
    /// Follow id (and the Follow kept) are updated.
    Again,
    /// Refused: the topic has its `max_followers`, or `max_waiting` Follows wait.
    Full,
    /// Refused: the follower's instance follows `max_per_instance` topics, or has as many Follows
    /// waiting.
    InstanceFull,
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
fn stored_key(conn: &Conn<'_>, kind: &str, name: &str) -> Result<Option<TopicKey>> {
    conn.query_opt(
        "SELECT private_pem, public_pem FROM topics WHERE kind = ?1 AND name = ?2",
        params![kind, name],
        |row| {
            Ok(TopicKey {
                private_pem: row.get(0)?,
                public_pem: row.get(1)?,
            })
        },
    )
}

/// How many topics exist.
fn count(conn: &Conn<'_>) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM topics", params![], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

/// A topic made room for a new one: the oldest that nobody follows, that is no curated search and
/// that was made more than [`IDLE_TOPIC_MS`] ago (a handle looked up and never followed). Whether
/// one was removed.
fn evict_idle(conn: &Conn<'_>, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM topics WHERE (kind, name) IN (
            SELECT t.kind, t.name FROM topics t
            WHERE t.kind != 'search' AND t.created_at < ?1
              AND NOT EXISTS (SELECT 1 FROM topic_followers f WHERE f.kind = t.kind AND f.name = t.name)
            ORDER BY t.created_at LIMIT 1)",
        params![now - IDLE_TOPIC_MS],
    )? > 0)
}

/// How long a topic nobody follows is kept before a new topic may take its place.
pub const IDLE_TOPIC_MS: i64 = 3600 * 1000;

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
            if count(conn)? >= max_topics && !evict_idle(conn, now_ms())? {
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
    /// Records `follower` as following `topic`, unless the topic has `max_followers` others already
    /// or the follower's instance follows `max_per_instance` topics already.
    pub async fn follow_topic(
        &self,
        topic: &Topic,
        follower: TopicFollower,
        max_followers: u64,
        max_per_instance: u64,
    ) -> Result<Recorded> {
        let (kind, name) = (topic.kind().as_str(), topic.name().to_owned());
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Topics);
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
                return Ok(Recorded::Again);
            }
            if follower_count(conn, kind, &name)? >= max_followers {
                return Ok(Recorded::Full);
            }
            if of_instance(conn, "topic_followers", &follower.authority)? >= max_per_instance {
                return Ok(Recorded::InstanceFull);
            }
            conn.execute(
                "INSERT INTO topic_followers (kind, name, actor_id, inbox, style, follow_id, created_at, authority)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    kind,
                    name,
                    follower.actor_id,
                    follower.inbox,
                    follower.style.as_str(),
                    follower.follow_id,
                    now_ms(),
                    follower.authority
                ],
            )?;
            Ok(Recorded::New)
        })
        .await
    }

    /// Ends `actor_id`'s follow of `topic`; whether it followed.
    pub async fn unfollow_topic(&self, topic: &Topic, actor_id: &str) -> Result<bool> {
        let (kind, name, actor) = follow_key(topic, actor_id);
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Topics);
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
        let (kind, name, actor) = follow_key(topic, actor_id);
        self.read(move |conn| {
            conn.query_opt(
                "SELECT actor_id, inbox, style, follow_id, authority FROM topic_followers
                     WHERE kind = ?1 AND name = ?2 AND actor_id = ?3",
                params![kind, name, actor],
                follower_row,
            )
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

/// A Follow of a topic waiting for an admin (the approval policy, an instance not admitted yet).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTopicFollow {
    /// The topic.
    pub topic: Topic,
    /// Who asked, and where the answer goes.
    pub follower: TopicFollower,
    /// The Follow as received (the Accept or Reject embeds it).
    pub follow: serde_json::Value,
    /// Unix milliseconds of the Follow.
    pub created_at: i64,
}

impl Store {
    /// Keeps `follow` of `topic` by `follower` for an admin, unless `max_waiting` Follows wait already
    /// ([`Recorded::Full`]) or `max_per_instance` of the follower's instance do
    /// ([`Recorded::InstanceFull`]: one instance cannot fill the queue with its people).
    pub async fn hold_topic_follow(
        &self,
        topic: &Topic,
        follower: TopicFollower,
        follow: &serde_json::Value,
        max_waiting: u64,
        max_per_instance: u64,
    ) -> Result<Recorded> {
        let (kind, name, follow) = (
            topic.kind().as_str(),
            topic.name().to_owned(),
            follow.to_string(),
        );
        self.write(move |conn, _| {
            let replaced = conn.execute(
                "UPDATE topic_pending SET inbox = ?4, style = ?5, follow_id = ?6, follow = ?7
                 WHERE kind = ?1 AND name = ?2 AND actor_id = ?3",
                params![
                    kind,
                    name,
                    follower.actor_id,
                    follower.inbox,
                    follower.style.as_str(),
                    follower.follow_id,
                    follow
                ],
            )?;
            if replaced > 0 {
                return Ok(Recorded::Again);
            }
            if pending_count(conn)? >= max_waiting {
                return Ok(Recorded::Full);
            }
            if of_instance(conn, "topic_pending", &follower.authority)? >= max_per_instance {
                return Ok(Recorded::InstanceFull);
            }
            conn.execute(
                "INSERT INTO topic_pending
                 (kind, name, actor_id, inbox, style, follow_id, authority, follow, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    kind,
                    name,
                    follower.actor_id,
                    follower.inbox,
                    follower.style.as_str(),
                    follower.follow_id,
                    follower.authority,
                    follow,
                    now_ms()
                ],
            )?;
            Ok(Recorded::New)
        })
        .await
    }

    /// The Follows of topics waiting for an admin, oldest first.
    pub async fn topic_pending(&self) -> Result<Vec<PendingTopicFollow>> {
        let rows = self
            .read(|conn| {
                conn.query_rows(
                    &format!("{PENDING_SELECT} ORDER BY created_at, kind, name, actor_id"),
                    params![],
                    pending_row,
                )
            })
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    /// How many Follows of topics wait for an admin.
    pub async fn topic_pending_count(&self) -> Result<u64> {
        self.read(pending_count).await
    }

    /// `actor_id`'s Follow of `topic` waiting for an admin, if one waits.
    pub async fn topic_pending_of(
        &self,
        topic: &Topic,
        actor_id: &str,
    ) -> Result<Option<PendingTopicFollow>> {
        let (kind, name, actor) = follow_key(topic, actor_id);
        let row = self
            .read(move |conn| {
                conn.query_opt(
                    &format!("{PENDING_SELECT} {PENDING_KEY}"),
                    params![kind, name, actor],
                    pending_row,
                )
            })
            .await?;
        Ok(row.flatten())
    }

    /// Takes `actor_id`'s waiting Follow of `topic` out of the queue (approved, rejected or
    /// withdrawn); `None` when none waits.
    pub async fn take_topic_pending(
        &self,
        topic: &Topic,
        actor_id: &str,
    ) -> Result<Option<PendingTopicFollow>> {
        let (kind, name, actor) = follow_key(topic, actor_id);
        let row = self
            .write(move |conn, _| {
                let found = conn.query_opt(
                    &format!("{PENDING_SELECT} {PENDING_KEY}"),
                    params![kind, name, actor],
                    pending_row,
                )?;
                conn.execute(
                    &format!("DELETE FROM topic_pending {PENDING_KEY}"),
                    params![kind, name, actor],
                )?;
                Ok(found)
            })
            .await?;
        Ok(row.flatten())
    }
}

/// Rows of `table` (`topic_followers` or `topic_pending`) of the instance `authority`: what the
/// per-instance caps count.
fn of_instance(conn: &Conn<'_>, table: &'static str, authority: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE authority = ?1"),
        params![authority],
        |row| row.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Follows of topics waiting for an admin.
fn pending_count(conn: &Conn<'_>) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM topic_pending", params![], |row| {
        row.get(0)
    })?;
    Ok(n.max(0) as u64)
}

/// The columns [`pending_row`] reads.
const PENDING_SELECT: &str = "SELECT kind, name, actor_id, inbox, style, follow_id, authority, \
     follow, created_at FROM topic_pending";

/// One waiting Follow: `kind`, `name` and `actor_id` as the first three parameters.
const PENDING_KEY: &str = "WHERE kind = ?1 AND name = ?2 AND actor_id = ?3";

/// A waiting Follow as stored (`None` for a row whose topic no longer parses).
fn pending_row(row: &Row<'_>) -> Result<Option<PendingTopicFollow>> {
    let (kind, name): (String, String) = (row.get(0)?, row.get(1)?);
    let Some(topic) = stored_topic(&kind, &name) else {
        return Ok(None);
    };
    let follow: String = row.get(7)?;
    Ok(Some(PendingTopicFollow {
        topic,
        follower: follower_from(row, 2)?,
        follow: serde_json::from_str(&follow).unwrap_or(serde_json::Value::Null),
        created_at: row.get(8)?,
    }))
}

fn follower_row(row: &Row<'_>) -> Result<TopicFollower> {
    follower_from(row, 0)
}

/// A follower read from `row`'s columns `actor_id, inbox, style, follow_id, authority`, the first at
/// `first`.
fn follower_from(row: &Row<'_>, first: usize) -> Result<TopicFollower> {
    Ok(TopicFollower {
        actor_id: row.get(first)?,
        inbox: row.get(first + 1)?,
        style: Style::parse(&row.get::<String>(first + 2)?),
        follow_id: row.get(first + 3)?,
        authority: row.get(first + 4)?,
    })
}

/// The key columns of `actor_id`'s follow of `topic` (`kind`, `name`, `actor_id`), owned for a
/// store call.
fn follow_key(topic: &Topic, actor_id: &str) -> (&'static str, String, String) {
    (
        topic.kind().as_str(),
        topic.name().to_owned(),
        actor_id.to_owned(),
    )
}

/// The topic of a `kind`, `name` pair as stored (rows that no longer parse are skipped).
fn stored_topic(kind: &str, name: &str) -> Option<Topic> {
    Topic::new(TopicKind::parse(kind)?, name)
}

impl Store {
    /// Every follow of every topic (what the topic registry mirrors).
    pub async fn topic_follows(&self) -> Result<Vec<Follow>> {
        let rows = self
            .read(|conn| {
                conn.query_rows(
"SELECT kind, name, actor_id, inbox, style, follow_id, authority FROM topic_followers",
                    params![],
                    |row| {
                        let (kind, name): (String, String) = (row.get(0)?, row.get(1)?);
                        Ok((
                            kind,
                            name,
                            TopicFollower {
                                actor_id: row.get(2)?,
                                inbox: row.get(3)?,
                                style: Style::parse(&row.get::<String>(4)?),
                                follow_id: row.get(5)?,
                                authority: row.get(6)?,
                            },
                        ))
                    },
                )
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, name, follower)| {
                Some(Follow {
                    topic: stored_topic(&kind, &name)?,
                    follower,
                })
            })
            .collect())
    }

    /// Every topic that exists, with its followers and the posts it carried, most followed first.
    pub async fn topic_summaries(&self) -> Result<Vec<TopicSummary>> {
        let rows = self
            .read(|conn| {
                conn.query_rows(
"SELECT t.kind, t.name,
                        (SELECT COUNT(*) FROM topic_followers f WHERE f.kind = t.kind AND f.name = t.name),
                        (SELECT COUNT(*) FROM topic_carried c WHERE c.topic = t.kind || '/' || t.name)
                     FROM topics t",
                    params![],
                    |row| {
                        Ok((
                            row.get::<String>(0)?,
                            row.get::<String>(1)?,
                            row.get::<i64>(2)?,
                            row.get::<i64>(3)?,
                        ))
                    },
                )
            })
            .await?;
        let mut topics: Vec<TopicSummary> = rows
            .into_iter()
            .filter_map(|(kind, name, followers, carried)| {
                Some(TopicSummary {
                    topic: stored_topic(&kind, &name)?,
                    followers: followers.max(0) as u64,
                    carried: carried.max(0) as u64,
                })
            })
            .collect();
        topics.sort_by(|a, b| {
            b.followers
                .cmp(&a.followers)
                .then(b.carried.cmp(&a.carried))
                .then(a.topic.cmp(&b.topic))
        });
        Ok(topics)
    }

    /// For each kind of topic: how many topics exist and how many follows they have (a cheap count
    /// for the metrics, apart from [`Store::topic_summaries`], which counts each topic's posts too).
    pub async fn topic_counts_by_kind(&self) -> Result<Vec<KindCount>> {
        self.read(|conn| {
            let by_kind = |sql: &str| -> Result<Vec<(String, u64)>> {
                conn.query_rows(sql, params![], |row| {
                    Ok((row.get::<String>(0)?, row.get::<i64>(1)?.max(0) as u64))
                })
            };
            let topics = by_kind("SELECT kind, COUNT(*) FROM topics GROUP BY kind")?;
            let followers = by_kind("SELECT kind, COUNT(*) FROM topic_followers GROUP BY kind")?;
            let of = |rows: &[(String, u64)], kind: TopicKind| {
                rows.iter()
                    .find(|(k, _)| k == kind.as_str())
                    .map_or(0, |(_, n)| *n)
            };
            Ok(TopicKind::ALL
                .into_iter()
                .map(|kind| KindCount {
                    kind,
                    topics: of(&topics, kind),
                    followers: of(&followers, kind),
                })
                .collect())
        })
        .await
    }

    /// The topics that carried the post `object` (their keys) and the log entry of their Announce.
    pub async fn carried_by(&self, object: &str) -> Result<Option<(Vec<String>, u64)>> {
        let object = object.to_owned();
        let rows = self
            .read(move |conn| {
                conn.query_rows(
                    "SELECT topic, seq FROM topic_carried WHERE object = ?1 ORDER BY seq, topic",
                    params![object],
                    |row| Ok((row.get::<String>(0)?, row.get::<i64>(1)?)),
                )
            })
            .await?;
        let Some(seq) = rows.first().map(|(_, seq)| *seq as u64) else {
            return Ok(None);
        };
        Ok(Some((rows.into_iter().map(|(t, _)| t).collect(), seq)))
    }

    /// The posts by `author` that topics carry.
    pub async fn carried_of_author(&self, author: &str) -> Result<Vec<String>> {
        let author = author.to_owned();
        self.read(move |conn| {
            conn.query_rows(
                "SELECT DISTINCT object FROM topic_carried WHERE author = ?1",
                params![author],
                |row| row.get(0),
            )
        })
        .await
    }

    /// A page of what `topic` carried, newest first, before log entry `before`; and the total.
    pub async fn topic_outbox(
        &self,
        topic: &Topic,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Carried>, u64)> {
        let key = topic.key();
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        self.read(move |conn| {
            let items = conn.query_rows(
                "SELECT seq, object, at FROM topic_carried WHERE topic = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3",
                params![key, before, limit as i64],
                |row| {
                    Ok(Carried {
                        seq: row.get::<i64>(0)? as u64,
                        object: row.get(1)?,
                        at: row.get(2)?,
                    })
                },
            )?;
            let total: i64 = conn.query_row(
                "SELECT COUNT(*) FROM topic_carried WHERE topic = ?1",
                params![&key],
                |row| row.get(0),
            )?;
            Ok((items, total.max(0) as u64))
        })
        .await
    }

    /// The instances whose actors follow topics.
    pub async fn topic_follower_authorities(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT DISTINCT authority FROM topic_followers",
                params![],
                |row| row.get(0),
            )
        })
        .await
    }

    /// Ends every topic follow by actors of `authorities` (a block covers them); how many ended.
    pub async fn remove_topic_followers_of(&self, authorities: Vec<String>) -> Result<usize> {
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Topics);
            let mut removed = 0;
            for authority in &authorities {
                removed += conn.execute(
                    "DELETE FROM topic_followers WHERE authority = ?1",
                    params![authority],
                )?;
            }
            Ok(removed)
        })
        .await
    }

    /// Stops a follower inbox's deliveries for good: forgets its cursor.
    pub async fn forget_topic_inbox(&self, inbox: &str) -> Result<()> {
        let name = inbox_cursor_name(inbox);
        self.write(move |conn, _| {
            conn.execute("DELETE FROM cursors WHERE name = ?1", params![name])?;
            Ok(())
        })
        .await
    }

    /// The curated searches, by slug.
    pub async fn curated_topics(&self) -> Result<Vec<CuratedTopic>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT slug, name, query, created_at FROM topic_searches ORDER BY slug",
                params![],
                |row| {
                    Ok(CuratedTopic {
                        slug: row.get(0)?,
                        name: row.get(1)?,
                        query: row.get(2)?,
                        created_at: row.get(3)?,
                    })
                },
            )
        })
        .await
    }

    /// Adds or redefines the curated search `curated`, with its topic's key (kept when it exists
    /// already); `None` when `max_topics` topics exist and none can make room.
    pub async fn put_curated_topic(
        &self,
        curated: CuratedTopic,
        key: TopicKey,
        max_topics: u64,
    ) -> Result<Option<CuratedTopic>> {
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Topics);
            let now = now_ms();
            if stored_key(conn, "search", &curated.slug)?.is_none() {
                if count(conn)? >= max_topics && !evict_idle(conn, now)? {
                    return Ok(None);
                }
                conn.execute(
                    "INSERT INTO topics (kind, name, private_pem, public_pem, created_at)
                     VALUES ('search', ?1, ?2, ?3, ?4)",
                    params![curated.slug, key.private_pem, key.public_pem, now],
                )?;
            }
            conn.execute(
                "INSERT INTO topic_searches (slug, name, query, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(slug) DO UPDATE SET name = excluded.name, query = excluded.query",
                params![curated.slug, curated.name, curated.query, now],
            )?;
            Ok(Some(CuratedTopic {
                created_at: now,
                ..curated
            }))
        })
        .await
    }

    /// Removes the curated search `slug`, its topic, key and followers; whether it existed.
    pub async fn remove_curated_topic(&self, slug: &str) -> Result<bool> {
        let slug = slug.to_owned();
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Topics);
            let removed =
                conn.execute("DELETE FROM topic_searches WHERE slug = ?1", params![&slug])?;
            conn.execute(
                "DELETE FROM topics WHERE kind = 'search' AND name = ?1",
                params![&slug],
            )?;
            conn.execute(
                "DELETE FROM topic_followers WHERE kind = 'search' AND name = ?1",
                params![&slug],
            )?;
            Ok(removed > 0)
        })
        .await
    }
}

fn follower_count(conn: &Conn<'_>, kind: &str, name: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM topic_followers WHERE kind = ?1 AND name = ?2",
        params![kind, name],
        |row| row.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// What people are shown of the topics (`/topics`, the topics API).
impl Store {
    /// The topics somebody follows, and every curated search (followed or not), of `kind` when
    /// given: most followed first, at most `limit`, each with its follower count. A tag or language
    /// topic nobody follows (one whose handle was only looked up) is not listed.
    pub async fn listed_topics(
        &self,
        kind: Option<TopicKind>,
        limit: usize,
    ) -> Result<Vec<(Topic, u64)>> {
        let kind = kind.map(TopicKind::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(move |conn| {
                conn.query_rows(
                    "SELECT t.kind, t.name, COUNT(f.actor_id) AS followers FROM topics t
                     LEFT JOIN topic_followers f ON f.kind = t.kind AND f.name = t.name
                     WHERE ?1 IS NULL OR t.kind = ?1
                     GROUP BY t.kind, t.name
                     HAVING followers > 0 OR t.kind = 'search'
                     ORDER BY followers DESC, t.kind, t.name
                     LIMIT ?2",
                    params![kind, limit],
                    |row| {
                        Ok((
                            row.get::<String>(0)?,
                            row.get::<String>(1)?,
                            row.get::<i64>(2)?,
                        ))
                    },
                )
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, name, followers)| {
                Some((stored_topic(&kind, &name)?, followers.max(0) as u64))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    async fn follows_wait_for_an_admin_survive_a_restart_and_leave_once(db: TestDb) {
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        let asker = |n: u8| TopicFollower {
            actor_id: format!("https://i{n}.example/actor"),
            inbox: format!("https://i{n}.example/inbox"),
            style: Style::Mastodon,
            follow_id: format!("https://i{n}.example/follow/{n}"),
            authority: format!("i{n}.example"),
        };
        let follow = |n: u8| serde_json::json!({ "type": "Follow", "id": format!("f{n}") });
        {
            let store = db.open().await;
            let hold = |topic: &Topic, n: u8, max_per_instance: u64| {
                let (topic, follow) = (topic.clone(), follow(n));
                let store = store.clone();
                async move {
                    store
                        .hold_topic_follow(&topic, asker(n), &follow, 2, max_per_instance)
                        .await
                }
            };
            assert_eq!(hold(&coop, 1, 5).await.expect("hold"), Recorded::New);
            assert_eq!(hold(&coop, 1, 5).await.expect("again"), Recorded::Again);
            assert_eq!(
                hold(&es, 1, 1).await.expect("one of that instance waits"),
                Recorded::InstanceFull
            );
            assert_eq!(hold(&es, 1, 5).await.expect("another topic"), Recorded::New);
            assert_eq!(hold(&coop, 2, 5).await.expect("full"), Recorded::Full);
        }
        let store = db.open().await;
        let waiting = store.topic_pending().await.expect("list");
        assert_eq!(waiting.len(), 2);
        let of_coop = waiting.iter().find(|p| p.topic == coop).expect("coop's");
        assert_eq!(of_coop.follower, asker(1));
        assert_eq!(of_coop.follow, follow(1));
        let found = store
            .topic_pending_of(&coop, &asker(1).actor_id)
            .await
            .expect("read");
        assert_eq!(found.map(|p| p.follow), Some(follow(1)));
        let taken = store
            .take_topic_pending(&coop, &asker(1).actor_id)
            .await
            .expect("take");
        assert_eq!(taken.map(|p| p.follower), Some(asker(1)));
        assert_eq!(
            store
                .take_topic_pending(&coop, &asker(1).actor_id)
                .await
                .expect("take again"),
            None
        );
        assert_eq!(store.topic_pending().await.expect("list").len(), 1);
        assert_eq!(store.topic_pending_count().await.expect("count"), 1);
    }

    crate::on_both_backends!(follows_wait_for_an_admin_survive_a_restart_and_leave_once,);

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
        let counts = store.topic_counts_by_kind().await.expect("counts");
        let topics: Vec<(&str, u64)> = counts.iter().map(|c| (c.kind.as_str(), c.topics)).collect();
        assert_eq!(
            topics,
            [("tag", 1), ("language", 1), ("instance", 0), ("search", 0)]
        );
    }

    fn follower(actor: &str, follow: &str) -> TopicFollower {
        TopicFollower {
            actor_id: actor.to_owned(),
            inbox: format!("{actor}/inbox"),
            style: Style::LitePub,
            follow_id: follow.to_owned(),
            authority: crate::ap::authority_of(actor).unwrap_or_default(),
        }
    }

    #[tokio::test]
    async fn listed_topics_are_followed_ones_and_curated_searches_most_followed_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("l.db")).expect("open");
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        let idle = Topic::tag("idle").expect("tag");
        for (n, topic) in [&coop, &es, &idle].into_iter().enumerate() {
            store
                .create_topic(topic, key(n as u8), 10)
                .await
                .expect("create");
        }
        let curated = CuratedTopic {
            slug: "co-ops".into(),
            name: "Co-ops".into(),
            query: "#coop OR #cooperative".into(),
            created_at: 0,
        };
        store
            .put_curated_topic(curated, key(9), 10)
            .await
            .expect("curated");
        for (topic, actor) in [
            (&coop, "https://a.example/relay"),
            (&coop, "https://b.example/relay"),
            (&es, "https://a.example/relay"),
        ] {
            store
                .follow_topic(topic, follower(actor, "f"), 10, 10)
                .await
                .expect("follow");
        }
        let search = Topic::search("co-ops").expect("slug");
        assert_eq!(
            store.listed_topics(None, 10).await.expect("list"),
            vec![(coop.clone(), 2), (es.clone(), 1), (search.clone(), 0)],
            "the idle tag is not listed"
        );
        assert_eq!(
            store.listed_topics(None, 1).await.expect("list"),
            vec![(coop.clone(), 2)]
        );
        assert_eq!(
            store
                .listed_topics(Some(TopicKind::Search), 10)
                .await
                .expect("list"),
            vec![(search, 0)]
        );
        assert_eq!(
            store
                .listed_topics(Some(TopicKind::Instance), 10)
                .await
                .expect("list"),
            vec![]
        );
    }

    #[tokio::test]
    async fn followers_are_counted_per_topic_capped_and_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        let (a, b) = ("https://a.example/u/a", "https://b.example/relay");
        let followed = |topic, actor, id| store.follow_topic(topic, follower(actor, id), 1, 10);
        assert_eq!(
            followed(&coop, a, "f1").await.expect("follow"),
            Recorded::New
        );
        // Following again updates, even at the cap; another follower does not fit.
        assert_eq!(
            followed(&coop, a, "f2").await.expect("follow"),
            Recorded::Again
        );
        assert_eq!(
            followed(&coop, b, "f3").await.expect("follow"),
            Recorded::Full
        );
        // The cap is per topic.
        assert_eq!(followed(&es, b, "f3").await.expect("follow"), Recorded::New);
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
        let followers: Vec<(&str, u64)> = store
            .topic_counts_by_kind()
            .await
            .expect("counts")
            .iter()
            .map(|c| (c.kind.as_str(), c.followers))
            .collect();
        assert_eq!(
            followers,
            [("tag", 0), ("language", 1), ("instance", 0), ("search", 0)]
        );
    }
}
