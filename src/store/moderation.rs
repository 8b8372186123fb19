//! The store's moderation tables: blocks, pending subscriptions, what is known of each instance
//! (NodeInfo software), per-instance rate limits, run-time settings and the admin audit log.
//!
//! Every admin change is written in the same transaction as its audit entry, so the log never misses
//! a change nor records one that did not happen. The `blocks` table keeps the minimal shape
//! `(domain PRIMARY KEY, reason, created_at)` of the store's schema and gains what blocks by software and
//! Mastodon's block lists carry (`migrate`); a domain and a software name cannot share a row.

use crate::store::db::{Conn, Row, params};
use serde::Serialize;

use crate::moderation::audit::{AuditEntry, NewAudit};
use crate::moderation::blocks::{Block, BlockKind, Severity};
use crate::moderation::domain;
use crate::store::{Member, Store, Style, ddl};
use crate::{Error, Result};

/// The moderation tables besides `blocks` (which the main schema creates with its minimal shape and
/// [`migrate`] extends).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pending (
    authority  TEXT PRIMARY KEY,
    actor_id   TEXT NOT NULL,
    inbox      TEXT NOT NULL,
    style      TEXT NOT NULL,
    follow     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    authority  TEXT PRIMARY KEY,
    software   TEXT,
    version    TEXT,
    nodeinfo   TEXT,
    fetched_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_limits (
    authority TEXT PRIMARY KEY,
    rate      INTEGER NOT NULL,
    burst     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    admin  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_target ON audit(target, at);
";

/// A Follow waiting for an admin.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// The instance (host and port).
    pub authority: String,
    /// The actor that sent the Follow.
    pub actor_id: String,
    /// Where the Accept or Reject goes.
    pub inbox: String,
    /// `mastodon` or `litepub`.
    pub protocol: &'static str,
    /// The Follow activity as received.
    pub follow: serde_json::Value,
    /// Unix seconds of the Follow.
    pub created_at: i64,
}

/// What [`Store::hold`] did with a Follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The instance now waits for an admin.
    New,
    /// The instance already waited: its Follow was replaced, its place kept.
    Again,
    /// Too many instances wait already: nothing was stored.
    Full,
}

impl Pending {
    /// The subscription style the Follow asked for.
    pub fn style(&self) -> Style {
        Style::parse(self.protocol)
    }
}

/// What NodeInfo said about an instance.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct InstanceInfo {
    /// NodeInfo `software.name`, lower case.
    pub software: Option<String>,
    /// NodeInfo `software.version`.
    pub version: Option<String>,
    /// The NodeInfo document (trimmed to what admins look at), as JSON.
    pub nodeinfo: Option<serde_json::Value>,
    /// Unix seconds of the fetch.
    pub fetched_at: i64,
}

/// A per-instance inbound rate limit that overrides the configured one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct LimitOverride {
    /// Requests per second, sustained; 0 means unlimited.
    pub rate: u32,
    /// Requests at once.
    pub burst: u32,
}

/// What `blocks` gains over its minimal shape, with the values rows written before mean.
const BLOCK_COLUMNS: [(&str, &str); 7] = [
    ("kind", "TEXT NOT NULL DEFAULT 'domain'"),
    ("severity", "TEXT NOT NULL DEFAULT 'suspend'"),
    ("reject_media", "INTEGER NOT NULL DEFAULT 0"),
    ("reject_reports", "INTEGER NOT NULL DEFAULT 0"),
    ("obfuscate", "INTEGER NOT NULL DEFAULT 0"),
    ("purge", "INTEGER NOT NULL DEFAULT 0"),
    ("created_by", "TEXT NOT NULL DEFAULT ''"),
];

/// Creates the moderation tables and brings `blocks` to its full shape. Rows from before name an
/// instance authority (`host:port`); they become blocks of its host, as domain blocks are.
pub(super) fn migrate(conn: &Conn<'_>) -> Result<()> {
    ddl::create_tables(conn, SCHEMA)?;
    for (name, declaration) in BLOCK_COLUMNS {
        ddl::add_column(conn, "blocks", name, declaration)?;
    }
    let stored: Vec<String> = conn.query_rows(
        "SELECT domain FROM blocks WHERE kind = 'domain'",
        params![],
        |r| r.get(0),
    )?;
    for old in stored {
        let host = domain::host_of(&old);
        if host != old {
            // A block of the host may exist already: the authority's row then goes.
            conn.execute(
                "DELETE FROM blocks WHERE domain = ?2 AND EXISTS (SELECT 1 FROM blocks WHERE domain = ?1)",
                params![old, host],
            )?;
            conn.execute(
                "UPDATE blocks SET domain = ?2 WHERE domain = ?1",
                params![old, host],
            )?;
        }
    }
    Ok(())
}

/// Whether a domain block (not `noop`) covers the instance at `authority`; read inside the
/// transaction that would subscribe it, so a Follow racing a block cannot slip in.
pub(super) fn blocked_in(conn: &Conn<'_>, authority: &str) -> Result<bool> {
    let host = domain::host_of(authority);
    for rule in domain::candidates(&host) {
        let blocks: i64 = conn.query_row(
            "SELECT COUNT(*) FROM blocks WHERE domain = ?1 AND kind = 'domain' AND severity != 'noop'",
            params![rule],
            |r| r.get(0),
        )?;
        if blocks > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn now_secs() -> i64 {
    super::now_ms() / 1000
}

fn insert_audit(conn: &Conn<'_>, audit: &NewAudit) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, admin, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now_secs(),
            audit.admin,
            audit.action,
            audit.target,
            audit.detail.to_string()
        ],
    )?;
    Ok(())
}

fn pending_from_row(r: &Row<'_>) -> Result<Pending> {
    let style: String = r.get(3)?;
    let follow: String = r.get(4)?;
    Ok(Pending {
        authority: r.get(0)?,
        actor_id: r.get(1)?,
        inbox: r.get(2)?,
        protocol: Style::parse(&style).as_str(),
        follow: serde_json::from_str(&follow).unwrap_or(serde_json::Value::Null),
        created_at: r.get(5)?,
    })
}

fn block_from_row(r: &Row<'_>) -> Result<Block> {
    let kind: String = r.get(3)?;
    let severity: String = r.get(4)?;
    Ok(Block {
        domain: r.get(0)?,
        reason: r.get(1)?,
        created_at: r.get(2)?,
        kind: BlockKind::parse(&kind).unwrap_or(BlockKind::Domain),
        severity: Severity::parse(&severity).unwrap_or(Severity::Suspend),
        reject_media: r.get_bool(5)?,
        reject_reports: r.get_bool(6)?,
        obfuscate: r.get_bool(7)?,
        purge: r.get_bool(8)?,
        created_by: r.get(9)?,
    })
}

impl Store {
    /// Records an admin action that changes nothing in the store itself.
    pub async fn record_audit(&self, audit: NewAudit) -> Result<()> {
        self.write(move |conn, _| insert_audit(conn, &audit)).await
    }

    /// Records an audit entry unless the same one (admin, action, target and detail) was recorded in
    /// the last `within_secs` seconds: what the relay audits on its own (a refused Follow) costs one row
    /// per instance and period however often the instance asks. Returns whether it recorded.
    pub async fn record_audit_unless_recent(
        &self,
        audit: NewAudit,
        within_secs: i64,
    ) -> Result<bool> {
        self.write(move |conn, _| {
            let detail = audit.detail.to_string();
            let recent = conn.query_row(
                "SELECT COUNT(*) FROM audit WHERE target = ?1 AND at >= ?2 AND admin = ?3
                 AND action = ?4 AND detail = ?5",
                params![
                    audit.target,
                    now_secs() - within_secs,
                    audit.admin,
                    audit.action,
                    detail
                ],
                |r| r.get_bool(0),
            )?;
            if recent {
                return Ok(false);
            }
            insert_audit(conn, &audit)?;
            Ok(true)
        })
        .await
    }

    /// The most recent `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(move |conn| {
            conn.query_rows(
                "SELECT id, at, admin, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1",
                params![limit as i64],
                |r| {
                    let detail: String = r.get(5)?;
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        admin: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    })
                },
            )
        })
        .await
    }

    /// Adds (or replaces) `blocks` and, in the same transaction, ends the subscriptions and drops the
    /// pending Follows of the `victims` it covers; records `audit`. Returns the subscriptions ended.
    pub async fn add_blocks(
        &self,
        blocks: Vec<Block>,
        victims: Vec<String>,
        audit: NewAudit,
    ) -> Result<Vec<String>> {
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Moderation);
            let created_at = now_secs();
            for b in &blocks {
                let other: Option<String> = conn
                    .query_opt(
                        "SELECT kind FROM blocks WHERE domain = ?1 AND kind != ?2",
                        params![b.domain, b.kind.as_str()],
                        |r| r.get(0),
                    )?;
                if let Some(other) = other {
                    return Err(Error::BadRequest(format!(
                        "{} is already blocked as a {other}; lift that block first",
                        b.domain
                    )));
                }
                conn.execute(
                    "INSERT INTO blocks (domain, reason, created_at, kind, severity, reject_media,
                     reject_reports, obfuscate, purge, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason,
                        created_at = excluded.created_at, kind = excluded.kind, severity = excluded.severity,
                        reject_media = excluded.reject_media, reject_reports = excluded.reject_reports,
                        obfuscate = excluded.obfuscate, purge = excluded.purge, created_by = excluded.created_by",
                    params![b.domain, b.reason, created_at, b.kind.as_str(), b.severity.as_str(),
                        i64::from(b.reject_media), i64::from(b.reject_reports), i64::from(b.obfuscate),
                        i64::from(b.purge), audit.admin],
                )?;
            }
            let mut ended = Vec::new();
            for authority in victims {
                conn.execute("DELETE FROM pending WHERE authority = ?1", params![&authority])?;
                if conn.execute("DELETE FROM subscribers WHERE authority = ?1", params![&authority])? > 0 {
                    ended.push(authority.clone());
                }
                changes.members.push(Member::Remove(authority));
            }
            insert_audit(conn, &audit)?;
            Ok(ended)
        })
        .await
    }

    /// Lifts a block; false when there was none.
    pub async fn remove_block(
        &self,
        kind: BlockKind,
        target: &str,
        audit: NewAudit,
    ) -> Result<bool> {
        let target = target.to_string();
        self.write(move |conn, changes| {
            changes
                .notices
                .push(crate::store::notice::Notice::Moderation);
            let removed = conn.execute(
                "DELETE FROM blocks WHERE kind = ?1 AND domain = ?2",
                params![kind.as_str(), target],
            )? > 0;
            if removed {
                insert_audit(conn, &audit)?;
            }
            Ok(removed)
        })
        .await
    }

    /// Every block, domains first, each kind by name.
    pub async fn blocks(&self) -> Result<Vec<Block>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT domain, reason, created_at, kind, severity, reject_media, reject_reports,
                 obfuscate, purge, created_by FROM blocks ORDER BY kind, domain",
                params![],
                block_from_row,
            )
        })
        .await
    }

    /// Holds a Follow for an admin, in one transaction with the checks that make it safe under
    /// concurrent Follows: a blocked instance is refused ([`Error::InstanceBlocked`]); a Follow again
    /// from an instance already waiting replaces its Follow but keeps its place in the queue; a new
    /// instance is held only while fewer than `max_waiting` wait.
    pub async fn hold(&self, pending: Pending, max_waiting: usize) -> Result<Held> {
        self.write(move |conn, _| {
            if blocked_in(conn, &pending.authority)? {
                return Err(Error::InstanceBlocked(pending.authority));
            }
            let follow = pending.follow.to_string();
            let replaced = conn.execute(
                "UPDATE pending SET actor_id = ?2, inbox = ?3, style = ?4, follow = ?5 WHERE authority = ?1",
                params![pending.authority, pending.actor_id, pending.inbox, pending.protocol, follow],
            )?;
            if replaced > 0 {
                return Ok(Held::Again);
            }
            let waiting: i64 = conn.query_row("SELECT COUNT(*) FROM pending", params![], |r| r.get(0))?;
            if waiting as usize >= max_waiting {
                return Ok(Held::Full);
            }
            conn.execute(
                "INSERT INTO pending (authority, actor_id, inbox, style, follow, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    pending.authority,
                    pending.actor_id,
                    pending.inbox,
                    pending.protocol,
                    follow,
                    now_secs()
                ],
            )?;
            Ok(Held::New)
        })
        .await
    }

    /// The Follows waiting for an admin, oldest first.
    pub async fn pending(&self) -> Result<Vec<Pending>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT authority, actor_id, inbox, style, follow, created_at FROM pending
                 ORDER BY created_at, authority",
                params![],
                pending_from_row,
            )
        })
        .await
    }

    /// The Follow of `authority` waiting for an admin, if there is one.
    pub async fn pending_of(&self, authority: &str) -> Result<Option<Pending>> {
        let authority = authority.to_string();
        self.read(move |conn| {
            conn.query_opt(
                "SELECT authority, actor_id, inbox, style, follow, created_at FROM pending
                     WHERE authority = ?1",
                params![authority],
                pending_from_row,
            )
        })
        .await
    }

    /// Withdraws the Follow of `authority` by `actor_id` waiting for an admin (its sender undid it).
    /// False when none was waiting.
    pub async fn withdraw_pending(&self, authority: &str, actor_id: &str) -> Result<bool> {
        let (authority, actor_id) = (authority.to_string(), actor_id.to_string());
        self.write(move |conn, _| {
            Ok(conn.execute(
                "DELETE FROM pending WHERE authority = ?1 AND actor_id = ?2",
                params![&authority, &actor_id],
            )? > 0)
        })
        .await
    }

    /// Drops a pending Follow once an admin decided; records `audit`. False when none was pending.
    pub async fn resolve_pending(&self, authority: &str, audit: NewAudit) -> Result<bool> {
        let authority = authority.to_string();
        self.write(move |conn, _| {
            let removed = conn.execute(
                "DELETE FROM pending WHERE authority = ?1",
                params![&authority],
            )? > 0;
            if removed {
                insert_audit(conn, &audit)?;
            }
            Ok(removed)
        })
        .await
    }

    /// Records what NodeInfo said about an instance.
    pub async fn record_instance(&self, authority: &str, info: InstanceInfo) -> Result<()> {
        let authority = authority.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO instances (authority, software, version, nodeinfo, fetched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (authority) DO UPDATE SET software = excluded.software,
                    version = excluded.version, nodeinfo = excluded.nodeinfo, fetched_at = excluded.fetched_at",
                params![
                    authority,
                    info.software,
                    info.version,
                    info.nodeinfo.map(|v| v.to_string()),
                    info.fetched_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// What is known of every instance, by authority.
    pub async fn instances(&self) -> Result<Vec<(String, InstanceInfo)>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT authority, software, version, nodeinfo, fetched_at FROM instances",
                params![],
                |r| {
                    let nodeinfo: Option<String> = r.get(3)?;
                    Ok((
                        r.get(0)?,
                        InstanceInfo {
                            software: r.get(1)?,
                            version: r.get(2)?,
                            nodeinfo: nodeinfo.and_then(|n| serde_json::from_str(&n).ok()),
                            fetched_at: r.get(4)?,
                        },
                    ))
                },
            )
        })
        .await
    }

    /// Sets (`Some`) or clears (`None`) an instance's rate-limit override; records `audit`. Returns
    /// false when clearing an override that did not exist.
    pub async fn set_limit(
        &self,
        authority: &str,
        limit: Option<LimitOverride>,
        audit: NewAudit,
    ) -> Result<bool> {
        let authority = authority.to_string();
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Moderation);
            let changed = match limit {
                Some(l) => conn.execute(
                    "INSERT INTO rate_limits (authority, rate, burst) VALUES (?1, ?2, ?3)
                     ON CONFLICT (authority) DO UPDATE SET rate = excluded.rate, burst = excluded.burst",
                    params![authority, i64::from(l.rate), i64::from(l.burst)],
                )?,
                None => conn.execute("DELETE FROM rate_limits WHERE authority = ?1", params![&authority])?,
            } > 0;
            if changed {
                insert_audit(conn, &audit)?;
            }
            Ok(changed)
        })
        .await
    }

    /// Every rate-limit override, by authority.
    pub async fn limits(&self) -> Result<Vec<(String, LimitOverride)>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT authority, rate, burst FROM rate_limits ORDER BY authority",
                params![],
                |r| {
                    Ok((
                        r.get(0)?,
                        LimitOverride {
                            rate: r.get_u32(1)?,
                            burst: r.get_u32(2)?,
                        },
                    ))
                },
            )
        })
        .await
    }

    /// Saves a run-time setting (JSON) and records `audit`.
    pub async fn save_setting(
        &self,
        key: &'static str,
        value: serde_json::Value,
        audit: NewAudit,
    ) -> Result<()> {
        self.write(move |conn, changes| {
            changes
                .notices
                .push(crate::store::notice::Notice::Moderation);
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value.to_string()],
            )?;
            insert_audit(conn, &audit)
        })
        .await
    }

    /// A run-time setting saved earlier.
    pub async fn setting(&self, key: &'static str) -> Result<Option<serde_json::Value>> {
        self.read(move |conn| {
            let value: Option<String> = conn.query_opt(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )?;
            value
                .map(|v| {
                    serde_json::from_str(&v)
                        .map_err(|e| Error::Config(format!("stored setting {key}: {e}")))
                })
                .transpose()
        })
        .await
    }

    /// How many entries the log holds now (after pruning). Sequences are never reused and pruning
    /// removes the oldest, so the span of sequences is the count, read from the primary key's ends
    /// instead of scanning the log.
    pub async fn log_size(&self) -> Result<u64> {
        self.read(|conn| {
            let (first, last): (Option<i64>, Option<i64>) =
                conn.query_row("SELECT MIN(seq), MAX(seq) FROM log", params![], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(match (first, last) {
                (Some(first), Some(last)) => (last - first + 1) as u64,
                _ => 0,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Subscriber;
    use crate::store::test_db::TestDb;

    fn audit(action: &'static str, target: &str) -> NewAudit {
        NewAudit {
            admin: "alice".into(),
            action,
            target: target.into(),
            detail: serde_json::json!({"x": 1}),
        }
    }

    async fn a_block_ends_the_subscription_in_the_same_write_and_is_audited(db: TestDb) {
        let store = db.open().await;
        let sub = Subscriber {
            authority: "social.spam.example".into(),
            actor_id: "https://social.spam.example/actor".into(),
            inbox: "https://social.spam.example/inbox".into(),
            style: Style::Mastodon,
            cursor: 0,
            skipped: 0,
            created_at: 0,
            follow_id: "https://social.spam.example/follows/1".into(),
        };
        store.subscribe(sub, "{}".into(), vec![]).await.unwrap();
        let block = Block::new(BlockKind::Domain, "spam.example", "spam").unwrap();
        let ended = store
            .add_blocks(
                vec![block],
                vec!["social.spam.example".into()],
                audit("block", "spam.example"),
            )
            .await
            .unwrap();
        assert_eq!(ended, ["social.spam.example"]);
        assert!(store.subscriber("social.spam.example").is_none());
        let blocks = store.blocks().await.unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].created_by, "alice");
        assert!(blocks[0].created_at > 0);
        assert!(
            store
                .remove_block(
                    BlockKind::Domain,
                    "spam.example",
                    audit("unblock", "spam.example")
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_block(
                    BlockKind::Domain,
                    "spam.example",
                    audit("unblock", "spam.example")
                )
                .await
                .unwrap()
        );
        let log = store.audit_log(10).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["unblock", "block"],
            "one entry per change, newest first; the no-op unblock is not recorded"
        );
        assert_eq!(log[0].admin, "alice");
    }

    #[tokio::test]
    async fn blocks_of_the_minimal_shape_are_migrated_and_kinds_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE blocks (domain TEXT PRIMARY KEY, reason TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO blocks VALUES ('removed.example:8443', 'removed by an admin', 7);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let blocks = store.blocks().await.unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[0].domain, "removed.example",
            "a block of the host, as domain blocks are"
        );
        assert_eq!(blocks[0].kind, BlockKind::Domain);
        assert_eq!(blocks[0].severity, Severity::Suspend);
        assert_eq!(blocks[0].created_at, 7);
        let same_name = Block::new(BlockKind::Software, "removed.example", "").unwrap();
        let refused = store
            .add_blocks(vec![same_name], vec![], audit("block", "removed.example"))
            .await
            .unwrap_err();
        assert_eq!(refused.status().as_u16(), 400);
        assert_eq!(
            store.audit_log(10).await.unwrap().len(),
            0,
            "nothing half-stored"
        );
    }

    fn follow_from(authority: &str, actor: &str) -> Pending {
        Pending {
            authority: authority.into(),
            actor_id: format!("https://{authority}/{actor}"),
            inbox: format!("https://{authority}/inbox"),
            protocol: "mastodon",
            follow: serde_json::json!({"type": "Follow", "actor": actor}),
            created_at: 0,
        }
    }

    async fn concurrent_follows_keep_the_cap_one_entry_per_instance_and_blocks(db: TestDb) {
        let store = db.open().await;
        // Two actors of one instance and three other instances, all at once, against a cap of 3.
        let follows = [
            follow_from("a.example", "relay"),
            follow_from("a.example", "actor"),
            follow_from("b.example", "relay"),
            follow_from("c.example", "relay"),
            follow_from("d.example", "relay"),
        ];
        let mut racing = tokio::task::JoinSet::new();
        for f in follows {
            let store = store.clone();
            racing.spawn(async move { store.hold(f, 3).await.unwrap() });
        }
        let outcomes = racing.join_all().await;
        let waiting = store.pending().await.unwrap();
        assert_eq!(waiting.len(), 3, "the cap holds under concurrency");
        let a: Vec<_> = waiting
            .iter()
            .filter(|p| p.authority == "a.example")
            .collect();
        assert_eq!(a.len(), 1, "one entry per instance");
        assert_eq!(outcomes.iter().filter(|h| **h == Held::Again).count(), 1);
        assert_eq!(outcomes.iter().filter(|h| **h == Held::Full).count(), 1);

        // A Follow again replaces the Follow but keeps the place in the queue.
        let first = waiting[0].clone();
        let mut again = follow_from(&first.authority, "again");
        again.actor_id = "https://again.example/x".into();
        assert_eq!(store.hold(again, 3).await.unwrap(), Held::Again);
        let now = store.pending().await.unwrap();
        assert_eq!(now[0].authority, first.authority);
        assert_eq!(now[0].created_at, first.created_at);
        assert_eq!(now[0].follow["actor"], "again");

        // A blocked instance is never held, whatever raced the block.
        let block = Block::new(BlockKind::Domain, "blocked.example", "spam").unwrap();
        store
            .add_blocks(vec![block], vec![], audit("block", "blocked.example"))
            .await
            .unwrap();
        let refused = store
            .hold(follow_from("sub.blocked.example", "relay"), 100)
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::InstanceBlocked(_)));
    }

    async fn what_the_relay_audits_on_its_own_is_recorded_once_per_period(db: TestDb) {
        let store = db.open().await;
        let refusal = |target: &str, reason: &str| NewAudit {
            admin: "relay".into(),
            action: "reject",
            target: target.into(),
            detail: serde_json::json!({ "reason": reason }),
        };
        for _ in 0..50 {
            store
                .record_audit_unless_recent(refusal("a.example", "blocked"), 3600)
                .await
                .unwrap();
        }
        assert!(
            store
                .record_audit_unless_recent(refusal("a.example", "full"), 3600)
                .await
                .unwrap(),
            "another reason is another entry"
        );
        assert!(
            store
                .record_audit_unless_recent(refusal("b.example", "blocked"), 3600)
                .await
                .unwrap()
        );
        assert!(
            store
                .record_audit_unless_recent(refusal("a.example", "blocked"), -1)
                .await
                .unwrap(),
            "once the period is over it is recorded again"
        );
        assert_eq!(store.audit_log(100).await.unwrap().len(), 4);
    }

    async fn pending_limits_settings_and_instances_round_trip(db: TestDb) {
        let store = db.open().await;
        store
            .hold(
                Pending {
                    authority: "a.example".into(),
                    actor_id: "https://a.example/relay".into(),
                    inbox: "https://a.example/inbox".into(),
                    protocol: "litepub",
                    follow: serde_json::json!({"type": "Follow"}),
                    created_at: 0,
                },
                10,
            )
            .await
            .unwrap();
        let pending = store.pending().await.unwrap();
        assert_eq!(pending[0].style(), Style::LitePub);
        assert_eq!(pending[0].follow["type"], "Follow");
        assert!(
            store
                .resolve_pending("a.example", audit("approve", "a.example"))
                .await
                .unwrap()
        );
        assert!(store.pending().await.unwrap().is_empty());

        let limit = LimitOverride { rate: 5, burst: 10 };
        assert!(
            store
                .set_limit("a.example", Some(limit), audit("set-limit", "a.example"))
                .await
                .unwrap()
        );
        assert_eq!(
            store.limits().await.unwrap(),
            [("a.example".to_string(), limit)]
        );
        assert!(
            store
                .set_limit("a.example", None, audit("clear-limit", "a.example"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_limit("a.example", None, audit("clear-limit", "a.example"))
                .await
                .unwrap()
        );

        assert_eq!(store.setting("policy").await.unwrap(), None);
        store
            .save_setting(
                "policy",
                serde_json::json!({"policy": "approval"}),
                audit("set-policy", ""),
            )
            .await
            .unwrap();
        assert_eq!(
            store.setting("policy").await.unwrap().unwrap()["policy"],
            "approval"
        );

        let info = InstanceInfo {
            software: Some("pleroma".into()),
            version: Some("2.6".into()),
            nodeinfo: None,
            fetched_at: 5,
        };
        store
            .record_instance("a.example", info.clone())
            .await
            .unwrap();
        assert_eq!(
            store.instances().await.unwrap(),
            [("a.example".to_string(), info)]
        );
        assert_eq!(store.audit_log(100).await.unwrap().len(), 4);

        assert_eq!(store.log_size().await.unwrap(), 0);
        for n in 0..3 {
            store
                .append(crate::store::NewEntry {
                    origin: "a.example".into(),
                    target: None,
                    kind: "Create".into(),
                    mastodon_body: format!("{n}").into(),
                    litepub_body: format!("{n}").into(),
                    signer: None,
                    original: None,
                })
                .await
                .unwrap();
        }
        assert_eq!(store.log_size().await.unwrap(), 3);
    }

    crate::on_both_backends!(
        a_block_ends_the_subscription_in_the_same_write_and_is_audited,
        concurrent_follows_keep_the_cap_one_entry_per_instance_and_blocks,
        what_the_relay_audits_on_its_own_is_recorded_once_per_period,
        pending_limits_settings_and_instances_round_trip,
    );
}
