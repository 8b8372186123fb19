//! The in-memory tail of the activity log.
//!
//! Delivery workers that keep up read new entries from here instead of the database; only a subscriber
//! that fell further behind than the tail holds reads the store. The store's writer thread pushes entries
//! right after they are committed, in sequence order, so a worker never sees a gap that will later fill.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::store::Entry;

/// Recent log entries plus a watch on the highest committed sequence.
pub struct Tail {
    entries: Mutex<VecDeque<Arc<Entry>>>,
    capacity: usize,
    head: watch::Sender<u64>,
}

impl Tail {
    /// An empty tail that starts after `head` and keeps up to `capacity` entries.
    pub fn new(head: u64, capacity: usize) -> Tail {
        Tail {
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            head: watch::Sender::new(head),
        }
    }

    /// Adds committed entries (in increasing sequence) and wakes the workers.
    pub fn push(&self, new: Vec<Entry>) {
        let Some(last) = new.last().map(|e| e.seq) else {
            return;
        };
        if let Ok(mut entries) = self.entries.lock() {
            for entry in new {
                if entries.len() == self.capacity {
                    entries.pop_front();
                }
                entries.push_back(Arc::new(entry));
            }
        }
        self.head.send_replace(last);
    }

    /// The highest committed sequence.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that changes whenever the head moves.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Up to `limit` entries after `seq`, or `None` when the tail no longer holds `seq + 1` and the
    /// caller must read the store.
    pub fn after(&self, seq: u64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        let entries = self.entries.lock().ok()?;
        let head = self.head();
        if seq >= head {
            return Some(Vec::new());
        }
        let first = entries.front()?.seq;
        if seq + 1 < first {
            return None;
        }
        let skip = (seq + 1 - first) as usize;
        Some(entries.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            origin: "a.example".into(),
            target: None,
            kind: "Create".into(),
            received_ms: 0,
            mastodon_body: Bytes::new(),
            litepub_body: Bytes::new(),
            signer: None,
            original: None,
            digests: Default::default(),
        }
    }

    #[test]
    fn serves_recent_entries_and_sends_laggards_to_the_store() {
        let tail = Tail::new(10, 3);
        assert_eq!(tail.after(10, 10).map(|v| v.len()), Some(0));
        tail.push((11..=14).map(entry).collect());
        assert_eq!(tail.head(), 14);
        let seqs: Vec<u64> = tail.after(11, 10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![12, 13, 14]);
        assert!(tail.after(10, 10).is_none(), "entry 11 was evicted");
        assert_eq!(tail.after(12, 1).unwrap().len(), 1);
        assert_eq!(tail.after(14, 10).unwrap().len(), 0);
    }
}
