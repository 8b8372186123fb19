//! When each subscriber was last heard from and last delivered to, kept across restarts for the
//! admins' subscriber list. Written cheaply, never once per activity: the delivery time rides along
//! with the cursor the delivery worker persists anyway (at most once a second while busy), and the
//! inbound time is written at most once a minute per instance (see
//! [`crate::federation::ratelimit::InboxLimiter::note_seen`]).

use std::collections::HashMap;

use crate::store::db::{Conn, params};

use super::Store;
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscriber_activity (
    authority      TEXT PRIMARY KEY,
    last_inbound   INTEGER,
    last_delivered INTEGER
);
";

/// What the store remembers of one instance's traffic (Unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityTimes {
    /// Its last verified inbox request, as last written.
    pub last_inbound: Option<i64>,
    /// The last delivery it accepted, as last written.
    pub last_delivered: Option<i64>,
}

/// Records a delivery to `authority` at `at`, inside the transaction that persists its cursor.
pub(super) fn record_delivered(conn: &Conn<'_>, authority: &str, at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO subscriber_activity (authority, last_delivered) VALUES (?1, ?2)
         ON CONFLICT(authority) DO UPDATE
         SET last_delivered = CASE WHEN COALESCE(subscriber_activity.last_delivered, 0) > excluded.last_delivered
              THEN subscriber_activity.last_delivered ELSE excluded.last_delivered END",
        params![authority, at],
    )?;
    Ok(())
}

impl Store {
    /// Records a verified inbox request from `authority` at `at` (Unix seconds).
    pub async fn record_inbound(&self, authority: &str, at: i64) -> Result<()> {
        let authority = authority.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO subscriber_activity (authority, last_inbound) VALUES (?1, ?2)
                 ON CONFLICT(authority) DO UPDATE
                 SET last_inbound = CASE WHEN COALESCE(subscriber_activity.last_inbound, 0) > excluded.last_inbound
              THEN subscriber_activity.last_inbound ELSE excluded.last_inbound END",
                params![authority, at],
            )?;
            Ok(())
        })
        .await
    }

    /// What is remembered of every instance's traffic, by authority.
    pub async fn activity_times(&self) -> Result<HashMap<String, ActivityTimes>> {
        self.read(|conn| {
            let rows = conn.query_rows(
                "SELECT authority, last_inbound, last_delivered FROM subscriber_activity",
                params![],
                |r| {
                    Ok((
                        r.get::<String>(0)?,
                        ActivityTimes {
                            last_inbound: r.get(1)?,
                            last_delivered: r.get(2)?,
                        },
                    ))
                },
            )?;
            Ok(rows.into_iter().collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    async fn times_only_move_forward_and_survive_a_reopen(db: TestDb) {
        {
            let store = db.open().await;
            store.record_inbound("a.example", 100).await.unwrap();
            store.record_inbound("a.example", 50).await.unwrap();
            store
                .advance_cursor("b.example", 0, 0, Some(70))
                .await
                .unwrap();
            store.advance_cursor("b.example", 0, 0, None).await.unwrap();
        }
        let store = db.open().await;
        let times = store.activity_times().await.unwrap();
        assert_eq!(
            times["a.example"],
            ActivityTimes {
                last_inbound: Some(100),
                last_delivered: None
            }
        );
        assert_eq!(times["b.example"].last_delivered, Some(70));
    }

    crate::on_both_backends!(times_only_move_forward_and_survive_a_reopen,);
}
