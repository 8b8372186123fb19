//! The PostgreSQL backend: the pool of connections to the database `database_url` names, and the
//! schema there.
//!
//! Why PostgreSQL: a relay that outgrows one machine runs several `plaza serve` on one shared database,
//! an engine operators already run and back up. The store's statements are the same as on SQLite
//! ([`crate::store::db`]); what differs lives here: connecting, the schema's types (one DDL text,
//! SQLite's, turned into PostgreSQL's by [`crate::store::ddl::postgres`]) and applying it under an advisory lock, so that nodes
//! starting together do not race.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};

use crate::store::db::{Conn, Pg};
use crate::store::schema;
use crate::{Error, Result};

/// Connections the pool keeps beyond the readers: the writer's own and one for probes and migrations.
const SPARE_CONNECTIONS: usize = 2;

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Backend {
    pool: Pool,
}

impl Backend {
    /// Connects to `url` with room for `readers` reads at once, and brings the schema up to date.
    pub async fn connect(url: &str, readers: usize) -> Result<Backend> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("database_url: {e}")))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(readers + SPARE_CONNECTIONS)
            .build()
            .map_err(|e| Error::Database(format!("PostgreSQL pool: {e}")))?;
        let backend = Backend { pool };
        let migrator = backend.writer().await?;
        tokio::task::spawn_blocking(move || {
            let conn = Conn::Postgres(&migrator);
            conn.execute_batch("BEGIN; SELECT pg_advisory_xact_lock(7370111)")?;
            match schema::create(&conn) {
                Ok(()) => conn.execute_batch("COMMIT"),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::Unavailable(format!("store migration task: {e}")))??;
        Ok(backend)
    }

    /// A connection from the pool, waiting for one when all are taken.
    pub async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("no PostgreSQL connection: {e}")))
    }

    /// A connection for a thread outside the runtime (the writer), driven on the current runtime.
    pub async fn writer(&self) -> Result<Pg> {
        Ok(Pg::new(
            self.client().await?,
            tokio::runtime::Handle::current(),
        ))
    }
}
