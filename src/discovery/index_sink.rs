//! `plaza-index` as the indexer's sink: opening the index in `DATA_DIR/index` with the configured
//! budget, and each [`IndexSink`] call as the crate's own call. The index applies consent; this file
//! only translates.

use std::sync::Arc;

use plaza_index::{Index, InstanceRecord};
use serde_json::Value;

use crate::config::Config;
use crate::discovery::sink::{IndexSink, InstanceFacts};
use crate::{Error, Result};

/// Opens (creating when needed) the index in `DATA_DIR/index`. An index an earlier release wrote (an
/// older schema version) is first rebuilt from the documents it stores, as `plaza reindex` does, its
/// progress in the log: an upgrade that changes the schema needs no step of its own. A damaged index, or
/// one a newer release wrote, stops the relay with the crate's message, which names the way out
/// (`plaza reindex`).
pub fn open(config: &Config) -> Result<Arc<Index>> {
    let dir = config.index_dir();
    let opened = match Index::open(&dir, config.index_config()) {
        Err(plaza_index::Error::SchemaMismatch {
            found, expected, ..
        }) if found.parse::<u32>().is_ok_and(|v| v < expected) => {
            tracing::warn!(
                found = %found,
                expected,
                "the search index was written by an earlier release: rebuilding it from the documents it stores"
            );
            rebuild(config)?;
            Index::open(&dir, config.index_config())
        }
        other => other,
    };
    opened.map(Arc::new).map_err(index_error)
}

/// Rebuilds the index, logging its progress every tenth of the way.
fn rebuild(config: &Config) -> Result<()> {
    let started = std::time::Instant::now();
    let mut logged = 0;
    let report = crate::reindex::reindex(config, &mut |done, total| {
        let tenths = done.saturating_mul(10) / total.max(1);
        if tenths > logged {
            logged = tenths;
            tracing::info!(done, total, "rebuilding the search index");
        }
    })?;
    tracing::info!(
        posts = report.posts,
        actors = report.actors,
        instances = report.instances,
        left_out = report.dropped,
        seconds = started.elapsed().as_secs_f64(),
        "search index rebuilt"
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use plaza_index::schema::{SCHEMA_VERSION, VERSION_FILE};
    use serde_json::json;

    use super::*;

    fn author() -> Value {
        json!({
            "id": "https://coop.example/users/bakery",
            "type": "Organization",
            "preferredUsername": "bakery",
            "indexable": true,
            "summary": "Bread for all"
        })
    }

    fn found(index: &Index, q: &str) -> u64 {
        index
            .search_posts(&plaza_index::SearchRequest::new(q))
            .expect("search")
            .total
    }

    /// An index an earlier release wrote is rebuilt at start and keeps what it held; one a newer
    /// release wrote is refused, naming `plaza reindex`.
    #[test]
    fn an_index_of_an_earlier_schema_is_rebuilt_at_start_and_a_newer_one_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: tmp.path().to_path_buf(),
            ..Config::default()
        };
        {
            let index = open(&config).expect("create");
            let note = json!({
                "id": "https://coop.example/users/bakery/statuses/1",
                "type": "Note",
                "attributedTo": "https://coop.example/users/bakery",
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "content": "<p>sourdough of the day</p>",
                "published": "2026-11-20T10:00:00Z"
            });
            let added = index.add_post(&note, &author(), "coop.example");
            assert!(added.expect("add").allowed());
            index.commit().expect("commit");
        }
        let version = config.index_dir().join(VERSION_FILE);
        std::fs::write(&version, (SCHEMA_VERSION - 1).to_string()).expect("write");
        {
            let index = open(&config).expect("rebuilt at start");
            assert_eq!(found(&index, "\"of the\" sourdough"), 1);
        }
        let written = std::fs::read_to_string(&version).expect("read");
        assert_eq!(written.trim(), SCHEMA_VERSION.to_string());
        std::fs::write(&version, (SCHEMA_VERSION + 1).to_string()).expect("write");
        let refused = open(&config).expect_err("a newer index");
        assert!(refused.to_string().contains("plaza reindex"), "{refused}");
    }
}
