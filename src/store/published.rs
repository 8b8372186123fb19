//! What the relay has published, by id: every activity it sends (Announce, Accept, Follow, Reject, Undo)
//! must resolve at its id for as long as the log keeps it, since some servers dereference an Announce
//! before trusting it.
//!
//! Activities that travel through the log are not stored twice: the `published` table maps the id to
//! the log entry (its LitePub body is always the relay's own document), and is pruned with the log. A
//! Reject, or the fresh Accept (and LitePub Follow back) answering a re-Follow, sent once outside the
//! log, keeps its body here. The same table, in publication order, is the
//! relay actor's outbox.

use crate::store::db::{Conn, params};
use axum::body::Bytes;

use super::{Store, now_ms};
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS published (
    n    INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT NOT NULL UNIQUE,
    seq  INTEGER,
    at   INTEGER NOT NULL,
    body BLOB
);
CREATE INDEX IF NOT EXISTS published_seq ON published(seq);
CREATE INDEX IF NOT EXISTS published_at ON published(at);
";

/// The `id` of a document the relay built; anything else is skipped.
#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// The id of the relay's own document in a log entry's LitePub body, if it has one (the entries that
/// carry an activity of another server's have none, or not the relay's): what [`record_id`] keeps.
pub(super) fn id_in(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<IdOnly>(body).ok()?.id
}

/// Records `id`, the relay's own document carried by log entry `seq`, inside the transaction that
/// appends the entry. (On PostgreSQL the append does it in its own statement: see
/// [`RECORD_WITH_APPEND`].)
pub(super) fn record_id(conn: &Conn<'_>, seq: u64, id: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO published (id, seq, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![id, seq as i64, now],
    )?;
    Ok(())
}

/// What [`record_id`] does, as a data-modifying `WITH` clause for PostgreSQL's append statement, which
/// names the new entry `e`, the id `?10` and the time `?4`: one round trip for both.
pub(super) const RECORD_WITH_APPEND: &str = "p AS (INSERT INTO published (id, seq, at)
     SELECT CAST(?10 AS TEXT), seq, ?4 FROM e WHERE CAST(?10 AS TEXT) IS NOT NULL
     ON CONFLICT DO NOTHING)";

/// Deletes what is older than `cutoff` (Unix milliseconds), as the log prune does.
pub(super) fn prune(conn: &Conn<'_>, cutoff: i64) -> Result<()> {
    conn.execute("DELETE FROM published WHERE at < ?1", params![cutoff])?;
    Ok(())
}

/// One page of the outbox.
#[derive(Debug, Clone, Default)]
pub struct OutboxPage {
    /// The activities, newest first.
    pub items: Vec<Bytes>,
    /// The position to continue from (`before`) when there are older ones.
    pub next: Option<u64>,
}

impl Store {
    /// Keeps `body`, an activity the relay sends outside the log (a Reject), resolvable at `id`.
    pub async fn record_published(&self, id: String, body: Bytes) -> Result<()> {
        self.write(move |conn, _| {
            // A new row (a new position in the outbox), as a replaced one would be.
            conn.execute("DELETE FROM published WHERE id = ?1", params![id])?;
            conn.execute(
                "INSERT INTO published (id, at, body) VALUES (?1, ?2, ?3)",
                params![id, now_ms(), &body[..]],
            )?;
            Ok(())
        })
        .await
    }

    /// The activity the relay published at `id`, while it is within the retention window.
    pub async fn published(&self, id: &str) -> Result<Option<Bytes>> {
        let id = id.to_string();
        self.read(move |conn| {
            let body: Option<Option<Vec<u8>>> = conn.query_opt(
                "SELECT COALESCE(p.body, l.litepub_body) FROM published p
                     LEFT JOIN log l ON l.seq = p.seq WHERE p.id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            Ok(body.flatten().map(Bytes::from))
        })
        .await
    }

    /// How many published activities are still resolvable.
    pub async fn published_count(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 =
                conn.query_row("SELECT COUNT(*) FROM published", params![], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    /// Up to `limit` published activities older than position `before` (all when `None`), newest first.
    pub async fn outbox_page(&self, before: Option<u64>, limit: usize) -> Result<OutboxPage> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        self.read(move |conn| {
            let rows = conn.query_rows(
                "SELECT p.n, COALESCE(p.body, l.litepub_body) FROM published p
                 LEFT JOIN log l ON l.seq = p.seq WHERE p.n < ?1 ORDER BY p.n DESC LIMIT ?2",
                params![before, limit as i64 + 1],
                |r| Ok((r.get::<i64>(0)?, r.get::<Option<Vec<u8>>>(1)?)),
            )?;
            let mut page = OutboxPage::default();
            for (n, body) in rows {
                if page.items.len() == limit {
                    page.next = Some(n as u64 + 1);
                    break;
                }
                if let Some(body) = body {
                    page.items.push(Bytes::from(body));
                }
            }
            Ok(page)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEntry;
    use crate::store::test_db::TestDb;

    fn reply(id: &str) -> NewEntry {
        let body = Bytes::from(format!(
            r#"{{"id":"https://relay.example/activities/{id}","type":"Accept"}}"#
        ));
        NewEntry {
            origin: "relay.example".into(),
            target: Some("b.example".into()),
            kind: "Accept".into(),
            mastodon_body: body.clone(),
            litepub_body: body,
            signer: None,
            original: None,
        }
    }

    async fn ids_resolve_until_pruned_and_page_newest_first(db: TestDb) {
        let store = db.open().await;
        for n in 0..5 {
            store.append(reply(&n.to_string())).await.unwrap();
        }
        let reject =
            Bytes::from_static(br#"{"id":"https://relay.example/activities/r","type":"Reject"}"#);
        store
            .record_published("https://relay.example/activities/r".into(), reject.clone())
            .await
            .unwrap();
        let got = store
            .published("https://relay.example/activities/3")
            .await
            .unwrap()
            .expect("resolves");
        assert!(std::str::from_utf8(&got).unwrap().contains("/activities/3"));
        assert_eq!(
            store
                .published("https://relay.example/activities/r")
                .await
                .unwrap(),
            Some(reject)
        );
        assert_eq!(
            store
                .published("https://relay.example/activities/x")
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.published_count().await.unwrap(), 6);

        let first = store.outbox_page(None, 4).await.unwrap();
        assert_eq!(first.items.len(), 4);
        assert!(
            std::str::from_utf8(&first.items[0])
                .unwrap()
                .contains("Reject")
        );
        let rest = store.outbox_page(first.next, 4).await.unwrap();
        assert_eq!(rest.items.len(), 2);
        assert!(rest.next.is_none());
        assert!(
            std::str::from_utf8(&rest.items[1])
                .unwrap()
                .contains("/activities/0")
        );

        // Everything is older than a negative age: the whole log and its ids go.
        store.prune(-1_000).await.unwrap();
        assert_eq!(
            store
                .published("https://relay.example/activities/3")
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.published_count().await.unwrap(), 0);
    }

    crate::on_both_backends!(ids_resolve_until_pruned_and_page_newest_first,);
}
