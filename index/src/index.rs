//! The index handle: opening (or creating) the index directory with its schema-version check, the one
//! long-lived `IndexWriter`, the reader reloaded after every commit, and the background committer that
//! makes a handed-over document searchable within [`IndexConfig::commit_interval`] (plus the commit's own
//! few tens of milliseconds).
//!
//! Writes (see `ingest`) go through a shared lock on the writer, so any number of threads may feed the
//! index at once; a commit takes the lock alone for its duration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tantivy::merge_policy::LogMergePolicy;
use tantivy::{IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::analysis;
use crate::directory::IndexDirectory;
use crate::error::{Error, Result};
use crate::known_ids::KnownIds;
use crate::priority;
use crate::query::QueryLimits;
use crate::schema::{self, Fields, SCHEMA_VERSION, VERSION_FILE};

/// How the index is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Memory the writer may use for documents not yet written to segments, in bytes (split among its
    /// threads; tantivy needs at least 15 MB per thread).
    pub writer_memory_bytes: usize,
    /// Indexing threads of the writer.
    pub writer_threads: usize,
    /// Changes are committed (made searchable) at most this long after they are handed over.
    pub commit_interval: Duration,
    /// Changes are committed at once when this many are waiting (a document written counts one, a
    /// delete one: a document replacing another two).
    pub commit_docs: usize,
    /// Limits on queries.
    pub limits: QueryLimits,
    /// Nice value of the writer's and committer's threads (0: the caller's priority); see
    /// [`crate::priority`].
    pub background_nice: i32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            writer_memory_bytes: 64 << 20,
            writer_threads: 1,
            commit_interval: Duration::from_millis(1000),
            commit_docs: 10_000,
            limits: QueryLimits::default(),
            background_nice: 0,
        }
    }
}

/// The state shared by the handle and the committer thread.
pub(crate) struct Shared {
    pub(crate) index: tantivy::Index,
    pub(crate) fields: Fields,
    writer: RwLock<IndexWriter<TantivyDocument>>,
    pub(crate) reader: IndexReader,
    pending: AtomicUsize,
    pub(crate) config: IndexConfig,
    /// Fingerprints of the author documents written, by actor id: a post whose author is unchanged does
    /// not rewrite the author.
    pub(crate) authors: Mutex<HashMap<String, u64>>,
    /// Each author's own verdict on their posts ([`crate::consent::may_index_posts_of`]: it parses
    /// the bio), with the fingerprint of the document it was reached from.
    pub(crate) verdicts: Mutex<HashMap<String, (u64, crate::consent::Verdict)>>,
    /// The ids the index may hold: writing a document under another skips the delete by id.
    pub(crate) known_ids: KnownIds,
}

/// Tells the committer to stop.
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// Plaza's discovery index: ingest (see [`Index::add_post`] and friends) and search (see
/// [`Index::search_posts`] and friends) over one tantivy index. Cheap to share behind an `Arc`; all
/// methods take `&self`.
pub struct Index {
    pub(crate) shared: Arc<Shared>,
    path: Option<PathBuf>,
    committer: Option<(Arc<Stop>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn directory(dir: &Path) -> Result<IndexDirectory> {
    IndexDirectory::open(dir).map_err(|e| Error::Engine(e.into()))
}

fn check_version(dir: &Path) -> Result<()> {
    let found = match std::fs::read_to_string(dir.join(VERSION_FILE)) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "unknown".to_owned(),
        Err(e) => return Err(e.into()),
    };
    if found != SCHEMA_VERSION.to_string() {
        return Err(Error::SchemaMismatch {
            path: dir.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(())
}

impl Index {
    /// Opens the index in `dir`, creating it (and the directory) when there is none. An index of another
    /// schema version gives [`Error::SchemaMismatch`], one that cannot be read [`Error::Corrupt`]; both
    /// name the way out (`plaza reindex`).
    pub fn open(dir: &Path, config: IndexConfig) -> Result<Index> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema::build();
        let index = if dir.join("meta.json").exists() {
            check_version(dir)?;
            let index = tantivy::Index::open(directory(dir)?).map_err(|e| corrupt(dir, e))?;
            if index.schema() != schema {
                return Err(Error::SchemaMismatch {
                    path: dir.to_owned(),
                    found: format!("{SCHEMA_VERSION} with different fields"),
                    expected: SCHEMA_VERSION,
                });
            }
            index
        } else {
            let index = tantivy::Index::create(directory(dir)?, schema, IndexSettings::default())?;
            std::fs::write(dir.join(VERSION_FILE), SCHEMA_VERSION.to_string())?;
            index
        };
        Self::start(index, fields, config, Some(dir)).map_err(|e| match e {
            // Another process holds the index: not corruption, and reindexing would not help.
            Error::Engine(e @ tantivy::TantivyError::LockFailure(..)) => Error::Engine(e),
            Error::Engine(e) => corrupt(dir, e),
            other => other,
        })
    }

    /// An index in memory only (tests, tools).
    pub fn in_memory(config: IndexConfig) -> Result<Index> {
        let (schema, fields) = schema::build();
        Self::start(tantivy::Index::create_in_ram(schema), fields, config, None)
    }

    fn start(
        index: tantivy::Index,
        fields: Fields,
        config: IndexConfig,
        path: Option<&Path>,
    ) -> Result<Index> {
        analysis::register(index.tokenizers());
        // Made on a thread of background priority, so that the indexing and merging threads tantivy
        // starts with the writer inherit it.
        let writer = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    priority::lower_this_thread(config.background_nice);
                    index.writer_with_num_threads(
                        config.writer_threads.max(1),
                        config.writer_memory_bytes,
                    )
                })
                .join()
                .map_err(|_| {
                    Error::Engine(tantivy::TantivyError::SystemError(
                        "the thread making the index writer panicked".into(),
                    ))
                })
        })??;
        writer.set_merge_policy(Box::new(merge_policy()));
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let known_ids = KnownIds::read(&reader.searcher(), fields.id)?;
        let shared = Arc::new(Shared {
            index,
            fields,
            writer: RwLock::new(writer),
            reader,
            pending: AtomicUsize::new(0),
            config,
            authors: Mutex::new(HashMap::new()),
            verdicts: Mutex::new(HashMap::new()),
            known_ids,
        });
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let committer = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("plaza-index-commit".into())
                .spawn(move || {
                    priority::lower_this_thread(shared.config.background_nice);
                    commit_loop(&shared, &stop)
                })?
        };
        Ok(Index {
            shared,
            path: path.map(Path::to_owned),
            committer: Some((stop, committer)),
        })
    }

    /// The directory of the index (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &IndexConfig {
        &self.shared.config
    }

    /// Makes every change handed over so far searchable now.
    pub fn commit(&self) -> Result<()> {
        self.shared.commit()
    }

    /// Changes handed over and not yet committed.
    pub fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
    }
}

/// Segments under this many documents count as one size when merges are chosen.
const MIN_MERGE_LAYER: u32 = 1_000;

/// Tantivy's log merge policy with a smaller first layer. The relay commits every
/// [`IndexConfig::commit_interval`], often a few posts at a time, and tantivy's default counts every
/// segment under 10,000 documents as one size: each merge of eight small segments then rewrote the
/// growing one of up to 10,000 documents again. Measured with the search benchmark committing every
/// 20 posts (`--posts 10000 --commit-docs 20`): CPU per post 3,649 µs with the default against 2,542 µs
/// with this layer, 13–15 segments either way.
fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_layer_size(MIN_MERGE_LAYER);
    policy
}

fn commit_loop(shared: &Shared, stop: &Stop) {
    let mut stopped = stop.stopped.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // A stop that came before this thread first waited (its wake-up went to nobody) is seen
        // here, not after a whole commit interval.
        if *stopped {
            return;
        }
        let (guard, _) = stop
            .wake
            .wait_timeout(stopped, shared.config.commit_interval)
            .unwrap_or_else(|e| e.into_inner());
        stopped = guard;
        if *stopped {
            return;
        }
        if shared.pending.load(Ordering::Relaxed) > 0
            && let Err(e) = shared.commit()
        {
            tracing::warn!(error = %e, "index commit failed; will retry");
        }
    }
}

impl Shared {
    /// The writer, shared (adds and deletes).
    pub(crate) fn writer(&self) -> RwLockReadGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `n` changes; commits at once when enough are waiting.
    pub(crate) fn changed(&self, n: usize) -> Result<()> {
        let pending = self.pending.fetch_add(n, Ordering::Relaxed) + n;
        if pending >= self.config.commit_docs {
            self.commit()?;
        }
        Ok(())
    }

    pub(crate) fn commit(&self) -> Result<()> {
        let mut writer = self.writer.write().unwrap_or_else(|e| e.into_inner());
        if self.pending.swap(0, Ordering::Relaxed) == 0 {
            return Ok(());
        }
        writer.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.committer.take() {
            *stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
            stop.wake.notify_all();
            let _ = handle.join();
        }
        if let Err(e) = self.shared.commit() {
            tracing::warn!(error = %e, "final index commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_mismatch_names_the_way_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Index::open(dir.path(), IndexConfig::default()).expect("create"));
        std::fs::write(dir.path().join(VERSION_FILE), "0").expect("write");
        let err = Index::open(dir.path(), IndexConfig::default()).expect_err("mismatch");
        assert!(matches!(err, Error::SchemaMismatch { ref found, .. } if found == "0"));
        assert!(err.to_string().contains("plaza reindex"));
        std::fs::remove_file(dir.path().join(VERSION_FILE)).expect("remove");
        let err = Index::open(dir.path(), IndexConfig::default()).expect_err("mismatch");
        assert!(matches!(err, Error::SchemaMismatch { ref found, .. } if found == "unknown"));
    }

    #[test]
    fn a_second_writer_is_refused_without_blaming_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Index::open(dir.path(), IndexConfig::default()).expect("create");
        let err = Index::open(dir.path(), IndexConfig::default()).expect_err("locked");
        assert!(matches!(err, Error::Engine(_)), "{err}");
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Index::open(dir.path(), IndexConfig::default()).expect("create"));
        std::fs::write(dir.path().join("meta.json"), "{ not json").expect("write");
        let err = Index::open(dir.path(), IndexConfig::default()).expect_err("corrupt");
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("plaza reindex"));
    }

    #[test]
    fn a_different_schema_under_the_same_version_is_a_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut builder = tantivy::schema::Schema::builder();
        builder.add_text_field("other", tantivy::schema::TEXT);
        drop(tantivy::Index::create_in_dir(dir.path(), builder.build()).expect("create"));
        std::fs::write(dir.path().join(VERSION_FILE), SCHEMA_VERSION.to_string()).expect("write");
        let err = Index::open(dir.path(), IndexConfig::default()).expect_err("mismatch");
        assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
    }
}
