//! The subscribers: subscribing (and the replies stored with it), unsubscribing, delivery cursors, and
//! the in-memory mirror every inbox request asks instead of the database.

use crate::store::db::{Conn, Row, params};

use crate::store::log::{NewEntry, Style, head_seq, insert_entry};
use crate::store::{Store, activity, moderation, now_ms};
use crate::{Error, Result};

/// An instance subscribed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The instance's identity: host and non-default port of its actor id.
    pub authority: String,
    /// The actor that followed the relay.
    pub actor_id: String,
    /// Where deliveries go (shared inbox when the actor has one).
    pub inbox: String,
    /// Which relay protocol it uses.
    pub style: Style,
    /// Highest log sequence delivered (or skipped) in order.
    pub cursor: u64,
    /// Entries the subscriber never got because they were pruned or refused permanently.
    pub skipped: u64,
    /// Unix seconds of the subscription.
    pub created_at: i64,
    /// The id of the Follow that subscribed (what its Undo names); empty when unknown.
    pub follow_id: String,
}

/// What [`Store::subscribe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A new subscriber; delivery starts after the current head of the log.
    New,
    /// The instance was already subscribed with another actor, inbox or protocol, now replaced; its
    /// cursor is unchanged.
    Again,
    /// The same actor followed again with the same inbox and protocol: only the Follow id was updated,
    /// no reply was stored, and its delivery worker need not change.
    Unchanged,
}

/// One change to the subscriber mirror, the same as the write made to the `subscribers` table.
pub(super) enum Member {
    Upsert(Subscriber),
    Remove(String),
    Cursor {
        authority: String,
        cursor: u64,
        skipped: u64,
    },
}

impl Store {
    /// Records a subscription and appends the replies it needs (`replies`, each targeted at the new
    /// subscriber) in the same transaction. A new subscriber's cursor starts at the head of the log.
    ///
    /// A Follow again by the same actor with the same inbox and protocol ([`Subscribed::Unchanged`])
    /// stores only its Follow (the one its Undo will name) and none of `replies`: a re-Follow costs no
    /// log space, and the caller answers it without touching the delivery worker. A blocked instance is
    /// refused with [`Error::InstanceBlocked`], in the same transaction, so a Follow racing an admin
    /// removal cannot slip in after it.
    pub async fn subscribe(
        &self,
        sub: Subscriber,
        follow: String,
        replies: Vec<NewEntry>,
    ) -> Result<(Subscribed, Subscriber)> {
        self.write(move |conn, changes| {
            if moderation::blocked_in(conn, &sub.authority)? {
                return Err(Error::InstanceBlocked(sub.authority));
            }
            let existing = load_subscriber(conn, &sub.authority)?;
            let (state, stored) = match existing {
                Some(old)
                    if old.actor_id == sub.actor_id
                        && old.inbox == sub.inbox
                        && old.style == sub.style =>
                {
                    conn.execute(
                        "UPDATE subscribers SET follow = ?2, follow_id = ?3 WHERE authority = ?1",
                        params![sub.authority, follow, sub.follow_id],
                    )?;
                    let stored = Subscriber {
                        follow_id: sub.follow_id,
                        ..old
                    };
                    changes.members.push(Member::Upsert(stored.clone()));
                    return Ok((Subscribed::Unchanged, stored));
                }
                Some(mut old) => {
                    conn.execute(
                        "UPDATE subscribers SET actor_id = ?2, inbox = ?3, style = ?4, follow = ?5, follow_id = ?6 WHERE authority = ?1",
                        params![sub.authority, sub.actor_id, sub.inbox, sub.style.as_str(), follow, sub.follow_id],
                    )?;
                    old.actor_id = sub.actor_id;
                    old.inbox = sub.inbox;
                    old.style = sub.style;
                    old.follow_id = sub.follow_id;
                    (Subscribed::Again, old)
                }
                None => {
                    let head = head_seq(conn)?;
                    let created_at = now_ms() / 1000;
                    conn.execute(
                        "INSERT INTO subscribers (authority, actor_id, inbox, style, follow, cursor, created_at, follow_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![sub.authority, sub.actor_id, sub.inbox, sub.style.as_str(), follow, head as i64, created_at, sub.follow_id],
                    )?;
                    (Subscribed::New, Subscriber { cursor: head, created_at, skipped: 0, ..sub })
                }
            };
            let now = now_ms();
            for reply in replies {
                insert_entry(conn, reply, None, now, &mut changes.appended)?;
            }
            changes.members.push(Member::Upsert(stored.clone()));
            Ok((state, stored))
        })
        .await
    }

    /// Removes a subscription; returns whether there was one.
    pub async fn unsubscribe(&self, authority: &str) -> Result<bool> {
        let key = authority.to_string();
        self.write(move |conn, changes| {
            let removed = conn.execute(
                "DELETE FROM subscribers WHERE authority = ?1",
                params![&key],
            )? > 0;
            changes.members.push(Member::Remove(key));
            Ok(removed)
        })
        .await
    }

    /// Moves a subscriber's cursor forward (never backward), adds to its skipped count and, when given,
    /// records the Unix seconds of its last accepted delivery (see [`activity`]).
    pub async fn advance_cursor(
        &self,
        authority: &str,
        cursor: u64,
        skipped: u64,
        last_delivered: Option<u64>,
    ) -> Result<()> {
        let key = authority.to_string();
        self.write(move |conn, changes| {
            conn.execute(
                "UPDATE subscribers SET cursor = CASE WHEN cursor > ?2 THEN cursor ELSE ?2 END, skipped = skipped + ?3 WHERE authority = ?1",
                params![key, cursor as i64, skipped as i64],
            )?;
            if let Some(at) = last_delivered {
                activity::record_delivered(conn, &key, at as i64)?;
            }
            changes.members.push(Member::Cursor {
                authority: key,
                cursor,
                skipped,
            });
            Ok(())
        })
        .await
    }

    /// One subscriber by authority (from memory; the database is the source it mirrors).
    pub fn subscriber(&self, authority: &str) -> Option<Subscriber> {
        self.members.read().ok()?.get(authority).cloned()
    }

    /// How `authority` is subscribed, if it is: what every inbox request asks, without copying the
    /// whole subscriber.
    pub fn subscribed_style(&self, authority: &str) -> Option<Style> {
        self.members.read().ok()?.get(authority).map(|s| s.style)
    }

    /// All subscribers, by authority, as stored (cursors as last persisted).
    pub async fn subscribers(&self) -> Result<Vec<Subscriber>> {
        self.read(all_subscribers).await
    }

    /// How many instances are subscribed.
    pub fn subscriber_count(&self) -> usize {
        self.members.read().map(|m| m.len()).unwrap_or(0)
    }

    /// The authorities of all subscribers (from memory).
    pub fn subscriber_authorities(&self) -> Vec<String> {
        self.members
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

const SUBSCRIBER_COLUMNS: &str = "SELECT authority, actor_id, inbox, style, cursor, skipped, created_at, follow_id FROM subscribers";

fn subscriber_from_row(r: &Row<'_>) -> Result<Subscriber> {
    Ok(Subscriber {
        authority: r.get(0)?,
        actor_id: r.get(1)?,
        inbox: r.get(2)?,
        style: Style::parse(&r.get::<String>(3)?),
        cursor: r.get::<i64>(4)? as u64,
        skipped: r.get::<i64>(5)? as u64,
        created_at: r.get(6)?,
        follow_id: r.get(7)?,
    })
}

pub(super) fn all_subscribers(conn: &Conn<'_>) -> Result<Vec<Subscriber>> {
    conn.query_rows(
        &format!("{SUBSCRIBER_COLUMNS} ORDER BY authority"),
        params![],
        subscriber_from_row,
    )
}

pub(super) fn load_subscriber(conn: &Conn<'_>, authority: &str) -> Result<Option<Subscriber>> {
    conn.query_opt(
        &format!("{SUBSCRIBER_COLUMNS} WHERE authority = ?1"),
        params![authority],
        subscriber_from_row,
    )
}
