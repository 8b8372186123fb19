//! Following the log from a cursor: what every reader of the log (a delivery worker, the indexer) does
//! the same way. Batches come from the in-memory tail while the reader keeps up and from the database
//! when it lags; at the head the reader sleeps until a commit moves it; entries pruned before the
//! reader got to them are counted, not waited for.

use std::sync::Arc;

use tokio::sync::watch;

use crate::Result;
use crate::store::{Entry, Store};

/// One step forward in the log.
pub struct Batch {
    /// Entries after the previous cursor, in order (empty at the head).
    pub entries: Vec<Arc<Entry>>,
    /// Entries between the previous cursor and the first of `entries` that were pruned.
    pub pruned: u64,
}

/// A cursor into the log and the means to move it.
pub struct LogReader {
    store: Store,
    head: watch::Receiver<u64>,
    cursor: u64,
    batch: usize,
}

impl LogReader {
    /// A reader of `store` after `cursor`, taking up to `batch` entries at a time.
    pub fn new(store: Store, cursor: u64, batch: usize) -> LogReader {
        LogReader {
            head: store.tail().watch(),
            store,
            cursor,
            batch,
        }
    }

    /// The last entry returned (or the starting cursor).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next entries after the cursor, moving the cursor past them.
    pub async fn next(&mut self) -> Result<Batch> {
        let entries = self.store.entries_after(self.cursor, self.batch).await?;
        let pruned = entries
            .first()
            .map_or(0, |first| first.seq.saturating_sub(self.cursor + 1));
        if let Some(last) = entries.last() {
            self.cursor = last.seq;
        }
        Ok(Batch { entries, pruned })
    }

    /// The next entries after the cursor, at least one: an empty log is waited on, a failed read
    /// logged (as `who`) and tried again a second later. `None` when the store is gone.
    pub async fn next_batch(&mut self, who: &str) -> Option<Batch> {
        loop {
            match self.next().await {
                Ok(batch) if batch.entries.is_empty() => {
                    if !self.wait().await {
                        return None;
                    }
                }
                Ok(batch) => return Some(batch),
                Err(e) => {
                    tracing::error!(reader = who, error = %e, "reading the log");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Waits until the log's head moves past the cursor; false when the store is gone.
    pub async fn wait(&mut self) -> bool {
        while *self.head.borrow_and_update() <= self.cursor {
            if self.head.changed().await.is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEntry;
    use crate::store::test_db::TestDb;
    use axum::body::Bytes;

    fn entry(n: u32) -> NewEntry {
        NewEntry {
            origin: "a.example".into(),
            target: None,
            kind: "Create".into(),
            mastodon_body: Bytes::from(format!("{n}")),
            litepub_body: Bytes::new(),
            signer: None,
            original: None,
        }
    }

    async fn reads_forward_waits_at_the_head_and_counts_pruned_entries(db: TestDb) {
        let store = db.open().await;
        for n in 0..5 {
            store.append(entry(n)).await.unwrap();
        }
        let mut reader = LogReader::new(store.clone(), 0, 3);
        let first = reader.next().await.unwrap();
        assert_eq!(
            first.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!((first.pruned, reader.cursor()), (0, 3));
        assert_eq!(reader.next().await.unwrap().entries.len(), 2);
        assert!(reader.next().await.unwrap().entries.is_empty());
        let appender = store.clone();
        tokio::spawn(async move { appender.append(entry(5)).await.unwrap() });
        assert!(reader.wait().await, "woken by the next commit");
        assert_eq!(reader.next().await.unwrap().entries[0].seq, 6);
        // A reader that starts behind entries that are gone skips them and says how many.
        store.prune(-60_000).await.unwrap();
        drop((store, reader));
        let store = db.open().await;
        store.append(entry(6)).await.unwrap();
        let batch = LogReader::new(store, 0, 10).next().await.unwrap();
        assert_eq!((batch.pruned, batch.entries[0].seq), (6, 7));
    }

    crate::on_both_backends!(reads_forward_waits_at_the_head_and_counts_pruned_entries,);
}
