//! Shares of posts the relay saw (the `Announce`s subscribers sent through it), kept a little longer
//! than the longest trend window: with the `trending` events of FASP servers they are what content
//! trends count ([`Store::trend_shares_since`]). Kept apart from the log, whose retention an operator
//! may set shorter than a week.

use crate::store::db::{Conn, params};

use super::{Store, now_ms};
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shares (
    post_uri  TEXT NOT NULL,
    actor     TEXT NOT NULL,
    authority TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (post_uri, actor)
);
CREATE INDEX IF NOT EXISTS shares_at ON shares(at_ms);
";

/// How long a share is kept: the longest trend window (seven days) and a day more.
pub const SHARES_KEPT_MS: i64 = 8 * 24 * 3600 * 1000;

/// One share as content trends count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// The shared post.
    pub uri: String,
    /// Who shared it: an actor id, or `fasp:{server id}` for a FASP server's `trending` event.
    pub account: String,
    /// Their instance (authority), or `fasp:{server id}`.
    pub instance: String,
}

impl Store {
    /// Records that `actor` (of the instance `authority`) shared `post_uri` (the latest time counts).
    pub async fn record_share(&self, post_uri: &str, actor: &str, authority: &str) -> Result<()> {
        let (uri, actor, authority) = (
            post_uri.to_string(),
            actor.to_string(),
            authority.to_string(),
        );
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO shares (post_uri, actor, authority, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (post_uri, actor) DO UPDATE SET authority = excluded.authority, at_ms = excluded.at_ms",
                params![uri, actor, authority, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// The shares since `since_ms` — the relay's and the FASP servers' `trending` events — newest
    /// first, at most `limit`.
    pub async fn trend_shares_since(&self, since_ms: i64, limit: usize) -> Result<Vec<ShareRow>> {
        self.read(move |conn| {
            conn.query_rows(
                "SELECT post_uri, actor, authority, at_ms FROM shares WHERE at_ms >= ?1
                 UNION ALL
                 SELECT uri, 'fasp:' || server_id, 'fasp:' || server_id, at_ms
                   FROM fasp_trend_signals WHERE at_ms >= ?1
                 ORDER BY at_ms DESC LIMIT ?2",
                params![since_ms, limit as i64],
                |r| {
                    Ok(ShareRow {
                        uri: r.get(0)?,
                        account: r.get(1)?,
                        instance: r.get(2)?,
                    })
                },
            )
        })
        .await
    }
}

/// Deletes shares older than [`SHARES_KEPT_MS`] (with the log's pruning).
pub(super) fn prune(conn: &Conn<'_>) -> Result<()> {
    conn.execute(
        "DELETE FROM shares WHERE at_ms < ?1",
        params![now_ms() - SHARES_KEPT_MS],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    async fn shares_and_fasp_signals_are_read_together_newest_first_and_pruned(db: TestDb) {
        let store = db.open().await;
        store
            .record_share(
                "https://a.example/1",
                "https://b.example/u/bob",
                "b.example",
            )
            .await
            .unwrap();
        store
            .record_share(
                "https://a.example/1",
                "https://b.example/u/bob",
                "b.example",
            )
            .await
            .unwrap();
        store
            .record_trend_signal("https://a.example/1", "srv1")
            .await
            .unwrap();
        let rows = store.trend_shares_since(0, 10).await.unwrap();
        assert_eq!(rows.len(), 2, "one per sharer: {rows:?}");
        assert!(
            rows.iter()
                .any(|r| r.account == "fasp:srv1" && r.instance == "fasp:srv1")
        );
        assert!(rows.iter().any(|r| r.instance == "b.example"));
        assert_eq!(store.trend_shares_since(0, 1).await.unwrap().len(), 1);
        assert!(
            store
                .trend_shares_since(now_ms() + 1000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .write(|conn, _| {
                conn.execute("UPDATE shares SET at_ms = 0", params![])?;
                prune(conn)
            })
            .await
            .unwrap();
        assert_eq!(store.trend_shares_since(0, 10).await.unwrap().len(), 1);
    }

    crate::on_both_backends!(shares_and_fasp_signals_are_read_together_newest_first_and_pruned,);
}
