//! The in-memory tail of the activity log.
//!
//! Delivery workers that keep up read new entries from here instead of the database; only a subscriber
//! that fell further behind than the tail holds reads the store. The store's writer thread pushes entries
//! right after they are committed, in sequence order, so a worker never sees a gap that will later fill;
//! it holds only this store's commits, so it answers no read across a gap in its numbers (which may be
//! another node's entries).
//! It is bounded by entry count and by the bytes of the bodies it holds, so large posts cannot make it
//! grow past its budget.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::store::Entry;

/// Recent log entries plus a watch on the highest committed sequence.
pub struct Tail {
    entries: Mutex<Held>,
    capacity: usize,
    max_bytes: usize,
    head: watch::Sender<u64>,
}

/// The entries held and the bytes of their bodies.
#[derive(Default)]
struct Held {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
}

/// The memory an entry's bodies take (once when both styles share one body, as Announces do).
fn weight(entry: &Entry) -> usize {
    let (a, b) = (&entry.mastodon_body, &entry.litepub_body);
    if a.as_ptr() == b.as_ptr() && a.len() == b.len() {
        a.len()
    } else {
        a.len() + b.len()
    }
}

impl Tail {
    /// An empty tail that starts after `head` and keeps up to `capacity` entries whose bodies take at
    /// most `max_bytes` together (the oldest go first).
    pub fn new(head: u64, capacity: usize, max_bytes: usize) -> Tail {
        Tail {
            entries: Mutex::new(Held::default()),
            capacity,
            max_bytes,
            head: watch::Sender::new(head),
        }
    }

    /// Adds committed entries (in increasing sequence) and wakes the workers.
    pub fn push(&self, new: Vec<Entry>) {
        let Some(last) = new.last().map(|e| e.seq) else {
            return;
        };
        if let Ok(mut held) = self.entries.lock() {
            for entry in new {
                held.bytes += weight(&entry);
                held.entries.push_back(Arc::new(entry));
                while held.entries.len() > self.capacity || held.bytes > self.max_bytes {
                    let Some(old) = held.entries.pop_front() else {
                        break;
                    };
                    held.bytes -= weight(&old);
                }
            }
        }
        self.head.send_replace(last);
    }

    /// How many entries and body bytes the tail holds.
    pub fn held(&self) -> (usize, usize) {
        self.entries
            .lock()
            .map(|h| (h.entries.len(), h.bytes))
            .unwrap_or_default()
    }

    /// The highest committed sequence.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that changes whenever the head moves.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Up to `limit` entries after `seq`, or `None` when the tail does not hold `seq + 1` and the
    /// caller must read the store. The entries returned follow each other: the tail answers only up to
    /// a gap in its sequence numbers, since what is missing there may be in the database (entries
    /// another node sharing a PostgreSQL database committed; on PostgreSQL also a number a rolled-back
    /// insert used, which nothing fills) and only the database can tell.
    pub fn after(&self, seq: u64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        let held = self.entries.lock().ok()?;
        let entries = &held.entries;
        let head = self.head();
        if seq >= head {
            return Some(Vec::new());
        }
        let start = entries.partition_point(|e| e.seq <= seq);
        if entries.get(start)?.seq != seq + 1 {
            return None;
        }
        Some(
            entries
                .range(start..)
                .zip(seq + 1..)
                .take_while(|(e, expected)| e.seq == *expected)
                .take(limit)
                .map(|(e, _)| e.clone())
                .collect(),
        )
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
            carry: None,
        }
    }

    #[test]
    fn serves_recent_entries_and_sends_laggards_to_the_store() {
        let tail = Tail::new(10, 3, usize::MAX);
        assert_eq!(tail.after(10, 10).map(|v| v.len()), Some(0));
        tail.push((11..=14).map(entry).collect());
        assert_eq!(tail.head(), 14);
        let seqs: Vec<u64> = tail.after(11, 10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![12, 13, 14]);
        assert!(tail.after(10, 10).is_none(), "entry 11 was evicted");
        assert_eq!(tail.after(12, 1).unwrap().len(), 1);
        assert_eq!(tail.after(14, 10).unwrap().len(), 0);
    }

    #[test]
    fn a_gap_in_the_numbers_is_read_from_the_store() {
        // 13 and 14 are another node's, or numbers rolled back: only the database knows which.
        let tail = Tail::new(10, 100, usize::MAX);
        tail.push(vec![entry(11), entry(12)]);
        tail.push(vec![entry(15), entry(16)]);
        let seqs = |after: u64| {
            tail.after(after, 10)
                .map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>())
        };
        assert_eq!(seqs(10), Some(vec![11, 12]), "up to the gap, not across it");
        assert_eq!(seqs(12), None);
        assert_eq!(seqs(13), None);
        assert_eq!(seqs(14), Some(vec![15, 16]));
        assert_eq!(seqs(16), Some(vec![]));
    }

    #[test]
    fn large_bodies_are_bounded_by_bytes() {
        let sized = |seq: u64, size: usize| Entry {
            mastodon_body: Bytes::from(vec![b'x'; size]),
            litepub_body: Bytes::from(vec![b'y'; 100]),
            ..entry(seq)
        };
        let tail = Tail::new(0, 4096, 10_000);
        tail.push((1..=5).map(|seq| sized(seq, 2_900)).collect());
        assert_eq!(
            tail.held(),
            (3, 9_000),
            "three of 3,000 bytes fit in 10,000"
        );
        assert!(
            tail.after(1, 10).is_none(),
            "the evicted ones are read from the store"
        );
        assert_eq!(tail.after(2, 10).unwrap().len(), 3);
        // One entry over the whole budget is not kept at all; readers go to the store.
        tail.push(vec![sized(6, 20_000)]);
        assert_eq!(tail.held(), (0, 0));
        assert_eq!(tail.head(), 6);
        assert!(tail.after(5, 10).is_none());
        // A body shared by both styles counts once.
        let shared = Bytes::from(vec![b'z'; 4_000]);
        tail.push(vec![Entry {
            mastodon_body: shared.clone(),
            litepub_body: shared,
            ..entry(7)
        }]);
        assert_eq!(tail.held(), (1, 4_000));
    }
}
