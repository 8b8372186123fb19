//! Which HTTP signature scheme each receiving host accepted, so that a restart does not knock twice.
//!
//! The delivery clients learn it (see `federation::schemes`); the store only keeps the names
//! (`cavage`, `rfc9421`) by host, one row per host that ever needed the other scheme or told the relay
//! which one it uses.

use crate::store::db::params;

use super::{Store, now_ms};
use crate::Result;

/// Created with the store's schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS signature_schemes (
    authority TEXT PRIMARY KEY,
    scheme    TEXT NOT NULL,
    at        INTEGER NOT NULL
);
";

impl Store {
    /// Every remembered (host, scheme name) pair.
    pub async fn signature_schemes(&self) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            conn.query_rows(
                "SELECT authority, scheme FROM signature_schemes",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Remembers that `authority` accepts the scheme named `scheme`.
    pub async fn set_signature_scheme(&self, authority: &str, scheme: &str) -> Result<()> {
        let (authority, scheme) = (authority.to_string(), scheme.to_string());
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO signature_schemes (authority, scheme, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(authority) DO UPDATE SET scheme = excluded.scheme, at = excluded.at",
                params![authority, scheme, now_ms()],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_db::TestDb;

    async fn schemes_survive_a_reopen_and_the_last_one_wins(db: TestDb) {
        {
            let store = db.open().await;
            store
                .set_signature_scheme("a.example", "cavage")
                .await
                .unwrap();
            store
                .set_signature_scheme("a.example", "rfc9421")
                .await
                .unwrap();
            store
                .set_signature_scheme("b.example", "cavage")
                .await
                .unwrap();
        }
        let mut all = db.open().await.signature_schemes().await.unwrap();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("a.example".to_string(), "rfc9421".to_string()),
                ("b.example".to_string(), "cavage".to_string())
            ]
        );
    }

    crate::on_both_backends!(schemes_survive_a_reopen_and_the_last_one_wins,);
}
