//! What the nodes sharing one database know of each other: each node's heartbeat (`nodes`) and the
//! leases that give one node at a time a piece of the work (`leases`: a subscriber's deliveries, a
//! topic follower inbox's, a job such as pruning). See [`crate::cluster`] for how they are used.
//!
//! Times are the database's clock, never a node's: two machines whose clocks disagree still agree on
//! whether a lease expired. A lease is claimed, renewed and released by one statement each, so two
//! nodes claiming one lease at once end with one holder.

use crate::Result;
use crate::store::Store;
use crate::store::db::{Conn, params};
use crate::store::notice::Notice;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    node_id      TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    roles        TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    leases       INTEGER NOT NULL DEFAULT 0,
    lag          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    since_ms   INTEGER NOT NULL,
    prev_node  TEXT
);
CREATE INDEX IF NOT EXISTS leases_node ON leases(node);
";

/// How long a silent node stays listed, and an expired lease nobody claimed is kept: a day.
const FORGET_AFTER_MS: i64 = 86_400_000;

/// The database's clock in Unix milliseconds, as an SQL expression: the same value throughout a
/// statement (PostgreSQL's is its transaction's start, a group commit's few milliseconds).
fn now_sql(conn: &Conn<'_>) -> &'static str {
    if conn.is_postgres() {
        "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)"
    } else {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    }
}

/// What a node says of itself at each heartbeat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The node's id.
    pub node_id: String,
    /// Where it serves (its listen address), for the operators.
    pub address: String,
    /// What it can take besides deliveries, space separated (`index`).
    pub roles: String,
    /// Its release.
    pub version: String,
    /// How many leases it holds.
    pub leases: u64,
    /// How far its slowest delivery worker is behind the log's head, in entries.
    pub lag: u64,
    /// Its first heartbeat: the others are told, so they rebalance at once.
    pub joining: bool,
}

/// A node as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeRow {
    /// Its id.
    pub node_id: String,
    /// Where it serves.
    pub address: String,
    /// What it takes besides deliveries.
    pub roles: String,
    /// Its release.
    pub version: String,
    /// When it started (Unix ms, the database's clock).
    pub started_ms: i64,
    /// Its last heartbeat (Unix ms, the database's clock).
    pub heartbeat_ms: i64,
    /// The leases it held at its last heartbeat.
    pub leases: u64,
    /// Its slowest delivery worker's lag at its last heartbeat.
    pub lag: u64,
    /// Milliseconds since its last heartbeat.
    pub silent_ms: i64,
}

/// A lease this node just claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The lease's name.
    pub name: String,
    /// The node that held it before and let it expire (a takeover), if any.
    pub from: Option<String>,
}

impl Store {
    /// Records this node's heartbeat and renews every lease it holds for `lease_ms` more; returns the
    /// names of the leases it still holds (one another node took after it expired is not among them).
    pub async fn heartbeat(&self, beat: Heartbeat, lease_ms: i64) -> Result<Vec<String>> {
        self.write(move |conn, changes| {
            let now = now_sql(conn);
            if beat.joining {
                changes.notices.push(Notice::Nodes);
            }
            conn.execute(
                &format!(
                    "INSERT INTO nodes (node_id, address, roles, version, started_ms, heartbeat_ms, leases, lag)
                     VALUES (?1, ?2, ?3, ?4, {now}, {now}, ?5, ?6)
                     ON CONFLICT (node_id) DO UPDATE SET address = excluded.address, roles = excluded.roles,
                       version = excluded.version, heartbeat_ms = excluded.heartbeat_ms,
                       leases = excluded.leases, lag = excluded.lag"
                ),
                params![
                    beat.node_id,
                    beat.address,
                    beat.roles,
                    beat.version,
                    beat.leases as i64,
                    beat.lag as i64
                ],
            )?;
            // What nodes gone for a day left behind: their rows, and leases of work nobody took.
            conn.execute(
                &format!("DELETE FROM nodes WHERE heartbeat_ms < {now} - ?1"),
                params![FORGET_AFTER_MS],
            )?;
            conn.execute(
                &format!("DELETE FROM leases WHERE expires_ms < {now} - ?1"),
                params![FORGET_AFTER_MS],
            )?;
            conn.query_rows(
                &format!(
                    "UPDATE leases SET expires_ms = {now} + ?2 WHERE node = ?1 AND expires_ms >= {now}
                     RETURNING name"
                ),
                params![beat.node_id, lease_ms],
                |r| r.get::<String>(0),
            )
        })
        .await
    }

    /// The nodes whose last heartbeat is at most `within_ms` old, by id.
    pub async fn live_nodes(&self, within_ms: i64) -> Result<Vec<NodeRow>> {
        self.read(move |conn| {
            let now = now_sql(conn);
            conn.query_rows(
                &format!(
                    "SELECT node_id, address, roles, version, started_ms, heartbeat_ms, leases, lag,
                            {now} - heartbeat_ms
                     FROM nodes WHERE heartbeat_ms >= {now} - ?1 ORDER BY node_id"
                ),
                params![within_ms],
                |r| {
                    Ok(NodeRow {
                        node_id: r.get(0)?,
                        address: r.get(1)?,
                        roles: r.get(2)?,
                        version: r.get(3)?,
                        started_ms: r.get(4)?,
                        heartbeat_ms: r.get(5)?,
                        leases: r.get::<i64>(6)?.max(0) as u64,
                        lag: r.get::<i64>(7)?.max(0) as u64,
                        silent_ms: r.get(8)?,
                    })
                },
            )
        })
        .await
    }

    /// Claims the leases `names` for `node` for `lease_ms`: each one free, expired or already its own
    /// becomes its own; one another node holds is left alone. Returns those claimed.
    pub async fn claim_leases(
        &self,
        node: &str,
        names: Vec<String>,
        lease_ms: i64,
    ) -> Result<Vec<Claimed>> {
        let node = node.to_owned();
        self.write(move |conn, _| {
            let now = now_sql(conn);
            let sql = format!(
                "INSERT INTO leases (name, node, expires_ms, since_ms) VALUES (?1, ?2, {now} + ?3, {now})
                 ON CONFLICT (name) DO UPDATE SET node = excluded.node, expires_ms = excluded.expires_ms,
                   since_ms = CASE WHEN leases.node = excluded.node THEN leases.since_ms ELSE excluded.since_ms END,
                   prev_node = CASE WHEN leases.node = excluded.node THEN leases.prev_node ELSE leases.node END
                 WHERE leases.node = excluded.node OR leases.expires_ms < {now}
                 RETURNING prev_node, CAST(CASE WHEN since_ms = {now} THEN 1 ELSE 0 END AS BIGINT)"
            );
            let mut claimed = Vec::new();
            for name in names {
                let row = conn.query_opt(&sql, params![name, node, lease_ms], |r| {
                    Ok((r.get::<Option<String>>(0)?, r.get_bool(1)?))
                })?;
                if let Some((prev, fresh)) = row {
                    claimed.push(Claimed {
                        name,
                        from: prev.filter(|p| fresh && *p != node),
                    });
                }
            }
            Ok(claimed)
        })
        .await
    }

    /// Gives back `node`'s leases `names` (its work there stopped): another node may claim them now.
    pub async fn release_leases(&self, node: &str, names: Vec<String>) -> Result<()> {
        let node = node.to_owned();
        self.write(move |conn, _| {
            for name in names {
                conn.execute(
                    "DELETE FROM leases WHERE name = ?1 AND node = ?2",
                    params![name, node],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// A node leaving: its leases are given back and it is no longer listed.
    pub async fn leave(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.write(move |conn, changes| {
            conn.execute("DELETE FROM leases WHERE node = ?1", params![node])?;
            conn.execute("DELETE FROM nodes WHERE node_id = ?1", params![node])?;
            changes.notices.push(Notice::Nodes);
            Ok(())
        })
        .await
    }

    /// Who holds each lease whose name starts with `prefix`, as (name, node).
    pub async fn lease_holders(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        self.read(move |conn| {
            let now = now_sql(conn);
            conn.query_rows(
                &format!(
                    "SELECT name, node FROM leases WHERE name LIKE ?1 ESCAPE '\\' AND expires_ms >= {now}
                     ORDER BY name"
                ),
                params![pattern],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::cluster::Heartbeat;
    use crate::store::test_db::TestDb;

    fn beat(node: &str) -> Heartbeat {
        Heartbeat {
            node_id: node.into(),
            address: "127.0.0.1:1".into(),
            roles: String::new(),
            version: "test".into(),
            leases: 0,
            lag: 0,
            joining: true,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    async fn one_lease_one_holder_expired_ones_are_taken_over(db: TestDb) {
        let store = db.open().await;
        store.heartbeat(beat("a"), 60_000).await.unwrap();
        store.heartbeat(beat("b"), 60_000).await.unwrap();
        let live = store.live_nodes(10_000).await.unwrap();
        assert_eq!(
            live.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );

        let a = store
            .claim_leases("a", names(&["sub:x", "sub:y"]), 60_000)
            .await
            .unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|c| c.from.is_none()), "fresh leases: {a:?}");
        // Held by a: b gets none of them; a claiming again keeps them.
        let b = store
            .claim_leases("b", names(&["sub:x", "sub:z"]), 60_000)
            .await
            .unwrap();
        assert_eq!(
            b.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["sub:z"]
        );
        let again = store
            .claim_leases("a", names(&["sub:x"]), 60_000)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].from, None,
            "a renewing its own lease is no takeover"
        );

        // a's leases run out (a lease of -1 ms is already expired): b takes x over, from a.
        store
            .claim_leases("a", names(&["sub:x"]), -1)
            .await
            .unwrap();
        let taken = store
            .claim_leases("b", names(&["sub:x"]), 60_000)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].from.as_deref(), Some("a"));
        // a's heartbeat renews only what it still holds.
        let held = store.heartbeat(beat("a"), 60_000).await.unwrap();
        assert_eq!(held, names(&["sub:y"]));

        // Released, a lease is free for anyone, and not a takeover.
        store.release_leases("a", names(&["sub:y"])).await.unwrap();
        let freed = store
            .claim_leases("b", names(&["sub:y"]), 60_000)
            .await
            .unwrap();
        assert_eq!(freed[0].from, None);
        let holders = store.lease_holders("sub:").await.unwrap();
        assert_eq!(
            holders,
            vec![
                ("sub:x".to_string(), "b".to_string()),
                ("sub:y".to_string(), "b".to_string()),
                ("sub:z".to_string(), "b".to_string()),
            ]
        );

        // A node silent for more than a day, and a lease nobody claimed in a day, are forgotten at the
        // next heartbeat of any node.
        store
            .write(|conn, _| {
                conn.execute(
                    "INSERT INTO nodes (node_id, address, roles, version, started_ms, heartbeat_ms)
                     VALUES ('old', '', '', '', 0, 0)",
                    crate::store::db::params![],
                )?;
                conn.execute(
                    "INSERT INTO leases (name, node, expires_ms, since_ms) VALUES ('sub:old', 'old', 0, 0)",
                    crate::store::db::params![],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        store.heartbeat(beat("b"), 60_000).await.unwrap();
        let remaining: i64 = store
            .read(|conn| {
                conn.query_row(
                    "SELECT (SELECT COUNT(*) FROM nodes WHERE node_id = 'old')
                          + (SELECT COUNT(*) FROM leases WHERE name = 'sub:old')",
                    crate::store::db::params![],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        assert_eq!(
            remaining, 0,
            "the silent node and its stale lease are forgotten"
        );

        // Leaving gives everything back and takes the node off the list.
        store.leave("b").await.unwrap();
        assert!(store.lease_holders("").await.unwrap().is_empty());
        let live = store.live_nodes(10_000).await.unwrap();
        assert_eq!(live.len(), 1);
    }
    crate::on_both_backends!(one_lease_one_holder_expired_ones_are_taken_over,);
}
