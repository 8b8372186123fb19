//! The relay's key pair in the store, for a relay on PostgreSQL: every node that runs on the database
//! signs as the same actor, so the key lives beside the data they share rather than in one node's data
//! directory. (On SQLite the table stays empty: the key is the data directory's file,
//! [`crate::federation::keyfile`].)
//!
//! One row, written once: the first node to start stores its key with `INSERT … ON CONFLICT DO
//! NOTHING` and every node, that one included, then uses the row it reads back, so two nodes starting
//! together end up with one key.

use crate::Result;
use crate::store::db::{Conn, params};
use crate::store::{Store, now_ms};

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS relay_key (
    name        TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
";

/// The name of the relay actor's row.
const RELAY: &str = "relay";

/// Stores `private_pem` as the relay's key unless one is stored already; the stored one.
pub(super) fn offer(conn: &Conn<'_>, private_pem: &str) -> Result<String> {
    conn.execute(
        "INSERT INTO relay_key (name, private_pem, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        params![RELAY, private_pem, now_ms()],
    )?;
    conn.query_row(
        "SELECT private_pem FROM relay_key WHERE name = ?1",
        params![RELAY],
        |r| r.get(0),
    )
}

impl Store {
    /// The relay's private key (PKCS#8 PEM) when the store holds one.
    pub async fn relay_key(&self) -> Result<Option<String>> {
        self.read(|conn| {
            conn.query_opt(
                "SELECT private_pem FROM relay_key WHERE name = ?1",
                params![RELAY],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Stores `private_pem` as the relay's key unless another node stored one first; the key every
    /// node now uses.
    pub async fn offer_relay_key(&self, private_pem: String) -> Result<String> {
        self.write(move |conn, _| offer(conn, &private_pem)).await
    }
}
