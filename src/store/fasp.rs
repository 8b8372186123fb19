//! The FASP registrations (fediverse servers that plugged Plaza in as a provider) and the capabilities
//! each one activated, kept durably: a restart must neither forget a server's keys nor what it enabled.
//!
//! One row per registered server in `fasp_servers` (the ids and keys of both sides, what the server
//! answered at registration), one row per activated capability version in `fasp_activations`, one row
//! per sign-up from the public form waiting for an admin's approval in `fasp_signups`.

use crate::store::db::params;

use super::{Store, now_ms};
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fasp_servers (
    server_id         TEXT PRIMARY KEY,
    server_url        TEXT NOT NULL,
    fasp_base_url     TEXT NOT NULL,
    fasp_id           TEXT NOT NULL,
    server_public_key TEXT NOT NULL,
    own_private_key   TEXT NOT NULL,
    own_public_key    TEXT NOT NULL,
    completion_uri    TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fasp_activations (
    server_id    TEXT NOT NULL,
    capability   TEXT NOT NULL,
    major        INTEGER NOT NULL,
    activated_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, capability, major)
);
CREATE TABLE IF NOT EXISTS fasp_signups (
    server_url   TEXT PRIMARY KEY,
    requested_at INTEGER NOT NULL
);
";

/// One registered fediverse server, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaspServer {
    /// The id Plaza assigned to the server (the `keyid` of its requests).
    pub server_id: String,
    /// The server's URL as the admin gave it.
    pub server_url: String,
    /// The server's own FASP base URL (NodeInfo `metadata.faspBaseUrl`).
    pub fasp_base_url: String,
    /// The id the server assigned to Plaza (the `keyid` of Plaza's signatures).
    pub fasp_id: String,
    /// The server's Ed25519 public key, base64 of the 32 raw bytes.
    pub server_public_key: String,
    /// Plaza's Ed25519 private key for this server, base64 of its PKCS#8 document.
    pub own_private_key: String,
    /// Plaza's Ed25519 public key for this server, base64 of the 32 raw bytes.
    pub own_public_key: String,
    /// Where the server's admin completes the registration.
    pub completion_uri: String,
    /// When it was registered, in milliseconds since the epoch.
    pub created_at: i64,
}

/// One activated capability version of a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Activation {
    /// The server.
    pub server_id: String,
    /// The capability id (`account_search`, …).
    pub capability: String,
    /// Its major version.
    pub major: u32,
}

/// A sign-up from the `/fasp` form waiting for an admin (under the approval policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaspSignup {
    /// The server's origin (`https://host[:port]`).
    pub server_url: String,
    /// When it was asked, in milliseconds since the epoch.
    pub requested_at: i64,
}

impl Store {
    /// The sign-ups waiting for approval, oldest first.
    pub async fn fasp_signups(&self) -> Result<Vec<FaspSignup>> {
        self.read(|conn| {
            conn.query_rows(
"SELECT server_url, requested_at FROM fasp_signups ORDER BY requested_at, server_url",
                params![],
                |r| {
                    Ok(FaspSignup {
                        server_url: r.get(0)?,
                        requested_at: r.get(1)?,
                    })
                },
            )
        })
        .await
    }

    /// Records a sign-up for `server_url` unless `max` already wait: `Some(true)` added, `Some(false)`
    /// already waiting, `None` the list is full.
    pub async fn add_fasp_signup(&self, server_url: &str, max: usize) -> Result<Option<bool>> {
        let url = server_url.to_string();
        self.write(move |conn, _| {
            let waiting: i64 =
                conn.query_row("SELECT COUNT(*) FROM fasp_signups", params![], |r| r.get(0))?;
            let known: i64 = conn.query_row(
                "SELECT COUNT(*) FROM fasp_signups WHERE server_url = ?1",
                params![&url],
                |r| r.get(0),
            )?;
            if known > 0 {
                return Ok(Some(false));
            }
            if usize::try_from(waiting).unwrap_or(usize::MAX) >= max {
                return Ok(None);
            }
            conn.execute(
                "INSERT INTO fasp_signups (server_url, requested_at) VALUES (?1, ?2)",
                params![url, now_ms()],
            )?;
            Ok(Some(true))
        })
        .await
    }

    /// Removes a waiting sign-up; false when there was none.
    pub async fn remove_fasp_signup(&self, server_url: &str) -> Result<bool> {
        let url = server_url.to_string();
        self.write(move |conn, _| {
            Ok(conn.execute(
                "DELETE FROM fasp_signups WHERE server_url = ?1",
                params![&url],
            )? > 0)
        })
        .await
    }

    /// Every registered server.
    pub async fn fasp_servers(&self) -> Result<Vec<FaspServer>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT server_id, server_url, fasp_base_url, fasp_id, server_public_key,
                        own_private_key, own_public_key, completion_uri, created_at
                 FROM fasp_servers ORDER BY created_at",
                params![],
                |r| {
                    Ok(FaspServer {
                        server_id: r.get(0)?,
                        server_url: r.get(1)?,
                        fasp_base_url: r.get(2)?,
                        fasp_id: r.get(3)?,
                        server_public_key: r.get(4)?,
                        own_private_key: r.get(5)?,
                        own_public_key: r.get(6)?,
                        completion_uri: r.get(7)?,
                        created_at: r.get(8)?,
                    })
                },
            )
        })
        .await
    }

    /// Stores a new registration (`created_at` is set here) and returns it as stored.
    pub async fn add_fasp_server(&self, mut server: FaspServer) -> Result<FaspServer> {
        server.created_at = now_ms();
        let s = server.clone();
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Fasp);
            conn.execute(
                "INSERT INTO fasp_servers (server_id, server_url, fasp_base_url, fasp_id,
                    server_public_key, own_private_key, own_public_key, completion_uri, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.server_id,
                    s.server_url,
                    s.fasp_base_url,
                    s.fasp_id,
                    s.server_public_key,
                    s.own_private_key,
                    s.own_public_key,
                    s.completion_uri,
                    s.created_at
                ],
            )?;
            Ok(())
        })
        .await?;
        Ok(server)
    }

    /// Removes a registration and its activations; false when there was none.
    pub async fn remove_fasp_server(&self, server_id: &str) -> Result<bool> {
        let id = server_id.to_string();
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Fasp);
            conn.execute(
                "DELETE FROM fasp_activations WHERE server_id = ?1",
                params![&id],
            )?;
            Ok(conn.execute(
                "DELETE FROM fasp_servers WHERE server_id = ?1",
                params![&id],
            )? > 0)
        })
        .await
    }

    /// Every activated capability version.
    pub async fn fasp_activations(&self) -> Result<Vec<Activation>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT server_id, capability, major FROM fasp_activations",
                params![],
                |r| {
                    Ok(Activation {
                        server_id: r.get(0)?,
                        capability: r.get(1)?,
                        major: r.get_u32(2)?,
                    })
                },
            )
        })
        .await
    }

    /// Records `activation` as active (`true`) or not.
    pub async fn set_fasp_activation(&self, activation: Activation, active: bool) -> Result<()> {
        self.write(move |conn, changes| {
            changes.notices.push(crate::store::notice::Notice::Fasp);
            if active {
                conn.execute(
                    "INSERT INTO fasp_activations (server_id, capability, major, activated_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![
                        activation.server_id,
                        activation.capability,
                        i64::from(activation.major),
                        now_ms()
                    ],
                )?;
            } else {
                conn.execute(
                    "DELETE FROM fasp_activations WHERE server_id = ?1 AND capability = ?2 AND major = ?3",
                    params![activation.server_id, activation.capability, i64::from(activation.major)],
                )?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    fn server(id: &str) -> FaspServer {
        FaspServer {
            server_id: id.into(),
            server_url: "https://m.example".into(),
            fasp_base_url: "https://m.example/api/fasp".into(),
            fasp_id: "f1".into(),
            server_public_key: "cHVi".into(),
            own_private_key: "cHJpdg==".into(),
            own_public_key: "b3du".into(),
            completion_uri: "https://m.example/admin/fasp/1".into(),
            created_at: 0,
        }
    }

    async fn registrations_and_activations_survive_a_reopen_and_leave_together(db: TestDb) {
        let activation = |id: &str| Activation {
            server_id: id.into(),
            capability: "account_search".into(),
            major: 0,
        };
        {
            let store = db.open().await;
            store.add_fasp_server(server("a")).await.unwrap();
            store.add_fasp_server(server("b")).await.unwrap();
            store
                .set_fasp_activation(activation("a"), true)
                .await
                .unwrap();
            store
                .set_fasp_activation(activation("a"), true)
                .await
                .unwrap();
            store
                .set_fasp_activation(activation("b"), true)
                .await
                .unwrap();
            store
                .set_fasp_activation(activation("b"), false)
                .await
                .unwrap();
        }
        let store = db.open().await;
        let servers = store.fasp_servers().await.unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].fasp_base_url, "https://m.example/api/fasp");
        assert!(servers[0].created_at > 0);
        assert_eq!(
            store.fasp_activations().await.unwrap(),
            vec![activation("a")]
        );
        assert!(store.remove_fasp_server("a").await.unwrap());
        assert!(!store.remove_fasp_server("a").await.unwrap());
        assert!(store.fasp_activations().await.unwrap().is_empty());
        assert_eq!(store.fasp_servers().await.unwrap().len(), 1);
    }

    async fn signups_wait_durably_up_to_a_cap(db: TestDb) {
        {
            let store = db.open().await;
            assert_eq!(
                store.add_fasp_signup("https://a.example", 2).await.unwrap(),
                Some(true)
            );
            assert_eq!(
                store.add_fasp_signup("https://a.example", 2).await.unwrap(),
                Some(false)
            );
            assert_eq!(
                store.add_fasp_signup("https://b.example", 2).await.unwrap(),
                Some(true)
            );
            assert_eq!(
                store.add_fasp_signup("https://c.example", 2).await.unwrap(),
                None
            );
        }
        let store = db.open().await;
        let waiting = store.fasp_signups().await.unwrap();
        assert_eq!(waiting.len(), 2);
        assert_eq!(waiting[0].server_url, "https://a.example");
        assert!(store.remove_fasp_signup("https://a.example").await.unwrap());
        assert!(!store.remove_fasp_signup("https://a.example").await.unwrap());
        assert_eq!(store.fasp_signups().await.unwrap().len(), 1);
    }

    crate::on_both_backends!(
        registrations_and_activations_survive_a_reopen_and_leave_together,
        signups_wait_durably_up_to_a_cap,
    );
}
