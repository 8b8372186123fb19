//! `plaza reindex`: rebuilds the discovery index in `DATA_DIR/index` from the source documents it stores
//! (a schema change, new text analysis or stricter consent rules then apply to everything, without the
//! network). The relay must be stopped: the index directory is swapped at the end, so this takes the
//! index's writer lock first and holds it throughout, and refuses with a clear message while a running
//! relay holds it.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use plaza_index::{IndexConfig, ReindexReport};

use crate::config::Config;
use crate::{Error, Result};

/// The lock file of the index's single writer (tantivy's name for it): a running relay holds it.
const WRITER_LOCK: &str = ".tantivy-writer.lock";

/// The index's writer lock, held until dropped.
#[derive(Debug)]
pub struct IndexLock {
    _file: File,
}

impl IndexLock {
    /// Takes the writer lock of the index in `dir` without waiting; a relay using the index holds it,
    /// and then this is [`Error::Index`] saying to stop the relay first.
    pub fn acquire(dir: &Path) -> Result<IndexLock> {
        let path = dir.join(WRITER_LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(IndexLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Index(format!(
                "the index in {} is in use by a running relay: stop the relay, then run `plaza reindex` again",
                dir.display()
            ))),
            Err(TryLockError::Error(source)) => Err(Error::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// Where the index of `config` lives, checked to hold an index.
fn index_dir(config: &Config) -> Result<PathBuf> {
    let dir = config.index_dir();
    if !dir.join("meta.json").exists() {
        return Err(Error::Index(format!(
            "there is no index in {} to rebuild (the relay creates it when it starts with index_enabled)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Rebuilds the index of `config` from its stored sources, calling `progress(done, total)` as it goes
/// (every thousand documents and at the end).
pub fn reindex(config: &Config, progress: &mut dyn FnMut(u64, u64)) -> Result<ReindexReport> {
    let dir = index_dir(config)?;
    let _lock = IndexLock::acquire(&dir)?;
    // The configured writer memory, at normal priority: a rebuild is the job at hand.
    let index = IndexConfig {
        background_nice: 0,
        ..config.index_config()
    };
    plaza_index::reindex(&dir, index, progress).map_err(|e| Error::Index(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    fn author() -> serde_json::Value {
        json!({
            "id": "https://coop.example/users/bakery",
            "type": "Organization",
            "preferredUsername": "bakery",
            "indexable": true,
            "discoverable": true,
            "summary": "Bread for all"
        })
    }

    fn note(n: u32) -> serde_json::Value {
        json!({
            "id": format!("https://coop.example/users/bakery/statuses/{n}"),
            "type": "Note",
            "attributedTo": "https://coop.example/users/bakery",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "content": format!("<p>sourdough loaf number {n}</p>"),
            "published": "2026-11-20T10:00:00Z"
        })
    }

    fn found(index: &plaza_index::Index, q: &str) -> u64 {
        index
            .search_posts(&plaza_index::SearchRequest::new(q))
            .expect("search")
            .total
    }

    #[test]
    fn rebuilds_from_sources_and_keeps_results() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config(tmp.path());
        {
            let index = plaza_index::Index::open(&config.index_dir(), IndexConfig::default())
                .expect("open");
            index.upsert_actor(&author()).expect("actor");
            for n in 0..3 {
                assert!(
                    index
                        .add_post(&note(n), &author(), "coop.example")
                        .expect("add")
                        .allowed()
                );
            }
            index.commit().expect("commit");
            assert_eq!(found(&index, "sourdough"), 3);
        }
        let mut calls = Vec::new();
        let report =
            reindex(&config, &mut |done, total| calls.push((done, total))).expect("reindex");
        assert_eq!(report.posts, 3);
        assert_eq!(
            calls.last().copied(),
            Some((
                report.posts + report.actors + report.instances + report.dropped,
                report.posts + report.actors + report.instances + report.dropped
            ))
        );
        let index =
            plaza_index::Index::open(&config.index_dir(), IndexConfig::default()).expect("reopen");
        assert_eq!(found(&index, "sourdough"), 3);
    }

    #[test]
    fn refuses_while_the_index_is_open() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config(tmp.path());
        let index =
            plaza_index::Index::open(&config.index_dir(), IndexConfig::default()).expect("open");
        let e = reindex(&config, &mut |_, _| {}).expect_err("locked");
        assert!(e.to_string().contains("stop the relay"), "{e}");
        drop(index);
        // The index's writer lets its lock go from its own threads, a moment after the drop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = reindex(&config, &mut |_, _| {}) {
            assert!(
                std::time::Instant::now() < deadline,
                "still locked once closed: {e}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn no_index_is_a_clear_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = reindex(&config(tmp.path()), &mut |_, _| {}).expect_err("nothing");
        assert!(e.to_string().contains("no index"), "{e}");
    }
}
