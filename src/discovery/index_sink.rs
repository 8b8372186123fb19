//! `plaza-index` as the indexer's sink: opening the index in `DATA_DIR/index` with the configured
//! budget, and each [`IndexSink`] call as the crate's own call. The index applies consent; this file
//! only translates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use plaza_index::{Index, IndexConfig, InstanceRecord};
use serde_json::Value;

use crate::config::Config;
use crate::discovery::sink::{IndexSink, InstanceFacts};
use crate::{Error, Result};

/// The index settings of a relay configuration.
pub fn index_config(config: &Config) -> IndexConfig {
    IndexConfig {
        writer_memory_bytes: (config.index_writer_memory_mb as usize).saturating_mul(1 << 20),
        commit_interval: Duration::from_millis(config.index_commit_ms.max(1)),
        background_nice: config.index_nice,
        ..IndexConfig::default()
    }
}

/// Opens (creating when needed) the index at `dir`. A damaged index or one of another schema version
/// stops the relay with the crate's message, which names the way out (`plaza reindex`).
pub fn open(dir: &Path, config: &Config) -> Result<Arc<Index>> {
    Index::open(dir, index_config(config))
        .map(Arc::new)
        .map_err(index_error)
}

fn index_error(e: plaza_index::Error) -> Error {
    Error::Index(e.to_string())
}

impl IndexSink for Index {
    fn add_post(
        &self,
        object: &Value,
        author: &Value,
        instance: &str,
    ) -> Result<Option<plaza_index::document::Post>> {
        Index::add_post_document(self, object, author, instance)
            .map(|(_, post)| post)
            .map_err(index_error)
    }

    fn add_or_update_profile(&self, actor: &Value) -> Result<()> {
        self.upsert_actor(actor).map(drop).map_err(index_error)
    }

    fn remove_post(&self, id: &str) -> Result<()> {
        self.delete_post(id).map_err(index_error)
    }

    fn remove_actor(&self, actor_id: &str) -> Result<()> {
        self.delete_actor(actor_id).map_err(index_error)
    }

    fn upsert_instance(&self, facts: &InstanceFacts) -> Result<()> {
        let record = InstanceRecord {
            host: facts.authority.to_ascii_lowercase(),
            nodeinfo: facts.nodeinfo.clone(),
            subscribed_since: Some(facts.subscribed_since),
            last_activity: facts.last_activity,
        };
        Index::upsert_instance(self, &record).map_err(index_error)
    }

    fn remove_instance(&self, authority: &str) -> Result<()> {
        self.delete_instance_docs(authority).map_err(index_error)
    }

    fn expire_posts(&self, unix_secs: i64) -> Result<()> {
        let cutoff = time::OffsetDateTime::from_unix_timestamp(unix_secs)
            .map_err(|e| Error::Index(format!("retention cutoff {unix_secs}: {e}")))?;
        self.purge_older_than(cutoff).map_err(index_error)
    }

    fn commit(&self) -> Result<()> {
        Index::commit(self).map_err(index_error)
    }
}
