//! What the discovery indexer keeps in the store: its cursor into the log (and any other named reader's),
//! the instances the index holds with their last NodeInfo fetch, and the authors due for a consent
//! re-check.
//!
//! Several nodes each keep an index of their own (a replica in their data directory) and so their own
//! instances and authors: every call takes the replica's *scope* (the node's id; empty alone), and a
//! scoped row's key is the scope, a space, then the authority or author id (which hold no spaces). A
//! relay alone uses the bare keys, as it always did.

use crate::store::db::params;

use crate::Result;
use crate::store::Store;

impl Store {
    /// The position of a named log reader that is not a subscriber (the indexer), if it has saved one.
    pub async fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let key = name.to_string();
        self.read(move |conn| {
            let seq: Option<i64> = conn.query_opt(
                "SELECT seq FROM cursors WHERE name = ?1",
                params![&key],
                |r| r.get(0),
            )?;
            Ok(seq.map(|s| s as u64))
        })
        .await
    }

    /// Saves the position of a named log reader (never moves it backward).
    pub async fn set_cursor(&self, name: &str, seq: u64) -> Result<()> {
        let key = name.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE
                 SET seq = CASE WHEN cursors.seq > excluded.seq THEN cursors.seq ELSE excluded.seq END",
                params![key, seq as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// Moves the named cursors that exist forward to the positions given, all in one store job (one
    /// commit); never moves one backward, and never brings back one that was deleted since (a
    /// follower inbox forgotten meanwhile stays forgotten).
    pub async fn advance_cursors(&self, positions: Vec<(String, u64)>) -> Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        self.write(move |conn, _| {
            for (name, seq) in &positions {
                conn.execute(
                    "UPDATE cursors SET seq = CASE WHEN seq > ?2 THEN seq ELSE ?2 END
                     WHERE name = ?1",
                    params![name, *seq as i64],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// The instances the index holds (their NodeInfo, their posts), with the Unix seconds of their
    /// last NodeInfo fetch; what the indexer compares with the subscribers to add and purge instances.
    pub async fn index_instances(&self, scope: &str) -> Result<Vec<(String, i64)>> {
        let prefix = prefix(scope);
        let scope = scope.to_string();
        self.read(move |conn| {
            conn.query_rows(
                "SELECT authority, nodeinfo_at FROM index_instances
                 WHERE (?1 = '' AND authority NOT LIKE '% %')
                    OR (?1 <> '' AND substr(authority, 1, length(?1)) = ?1)
                 ORDER BY authority",
                params![prefix],
                |r| Ok((unscoped(&scope, r.get(0)?), r.get(1)?)),
            )
        })
        .await
    }

    /// Records that the index holds `authority`, its NodeInfo fetched at `nodeinfo_at` (Unix seconds).
    pub async fn mark_index_instance(
        &self,
        scope: &str,
        authority: &str,
        nodeinfo_at: i64,
    ) -> Result<()> {
        let key = scoped(scope, authority);
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO index_instances (authority, nodeinfo_at) VALUES (?1, ?2)
                 ON CONFLICT(authority) DO UPDATE SET nodeinfo_at = excluded.nodeinfo_at",
                params![key, nodeinfo_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Records that an author of indexed posts was fetched at `fetched_at` (Unix seconds): the
    /// indexer fetches authors again on a schedule to re-check their consent, across restarts.
    pub async fn note_author(&self, scope: &str, id: &str, fetched_at: i64) -> Result<()> {
        let key = scoped(scope, id);
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO index_authors (id, fetched_at) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET fetched_at = excluded.fetched_at",
                params![key, fetched_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` authors last fetched before `before` (Unix seconds), oldest first.
    pub async fn stale_authors(
        &self,
        scope: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<String>> {
        let prefix = prefix(scope);
        let scope = scope.to_string();
        self.read(move |conn| {
            conn.query_rows(
                "SELECT id FROM index_authors
                 WHERE ((?1 = '' AND id NOT LIKE '% %')
                    OR (?1 <> '' AND substr(id, 1, length(?1)) = ?1))
                   AND fetched_at < ?2
                 ORDER BY fetched_at LIMIT ?3",
                params![prefix, before, limit as i64],
                |r| Ok(unscoped(&scope, r.get(0)?)),
            )
        })
        .await
    }

    /// Forgets an author (deleted, or of an instance that left).
    pub async fn forget_author(&self, scope: &str, id: &str) -> Result<()> {
        let key = scoped(scope, id);
        self.write(move |conn, _| {
            conn.execute("DELETE FROM index_authors WHERE id = ?1", params![&key])?;
            Ok(())
        })
        .await
    }

    /// Records that the index no longer holds `authority`.
    pub async fn forget_index_instance(&self, scope: &str, authority: &str) -> Result<()> {
        let key = scoped(scope, authority);
        self.write(move |conn, _| {
            conn.execute(
                "DELETE FROM index_instances WHERE authority = ?1",
                params![&key],
            )?;
            Ok(())
        })
        .await
    }
}

/// The stored key of `key` in `scope`.
fn scoped(scope: &str, key: &str) -> String {
    if scope.is_empty() {
        key.to_string()
    } else {
        format!("{scope} {key}")
    }
}

/// `stored` without its scope's prefix.
fn unscoped(scope: &str, stored: String) -> String {
    if scope.is_empty() {
        return stored;
    }
    match stored.strip_prefix(scope).and_then(|k| k.strip_prefix(' ')) {
        Some(key) => key.to_string(),
        None => stored,
    }
}

/// What the keys of `scope`'s rows start with (alone: nothing, and they hold no space); compared as
/// text, not by a collation's order, which may skip spaces.
fn prefix(scope: &str) -> String {
    if scope.is_empty() {
        String::new()
    } else {
        format!("{scope} ")
    }
}
