//! The in-memory tail of the activity log.
//!
//! Delivery workers that keep up read new entries from here instead of the database; only a subscriber
//! that fell further behind than the tail holds reads the store. The tail is *complete*: every entry
//! committed after its floor and up to its head is in it, so a reader at or past the floor reads
//! memory, and numbers missing there are numbers no entry has (on PostgreSQL, one a rolled-back
//! insert took). The store's writer pushes its own commits right after they are committed, in
//! sequence order; on PostgreSQL, where other nodes commit too, the store reads their entries in first
//! ([`crate::store::notices`]), so nothing is pushed past a number the tail has not accounted for.
//! It is bounded by entry count and by the bytes of the bodies it holds, so large posts cannot make it
//! grow past its budget; what it lets go raises its floor.

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

/// The entries held, the bytes of their bodies, and the floor: every entry after it (up to the head)
/// is held.
#[derive(Default)]
struct Held {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    floor: u64,
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
            entries: Mutex::new(Held {
                floor: head,
                ..Held::default()
            }),
            capacity,
            max_bytes,
            head: watch::Sender::new(head),
        }
    }

    /// Adds committed entries (in increasing sequence; those at or below the head, already pushed,
    /// are left out), moves the head to the last and wakes the workers. The caller vouches that
    /// nothing committed between the head and them is missing.
    pub fn push(&self, new: Vec<Entry>) {
        let head = self.head();
        let Some(last) = new.last().map(|e| e.seq).filter(|last| *last > head) else {
            return;
        };
        if let Ok(mut held) = self.entries.lock() {
            for entry in new.into_iter().filter(|e| e.seq > head) {
                held.bytes += weight(&entry);
                held.entries.push_back(Arc::new(entry));
                while held.entries.len() > self.capacity || held.bytes > self.max_bytes {
                    let Some(old) = held.entries.pop_front() else {
                        break;
                    };
                    held.bytes -= weight(&old);
                    held.floor = old.seq;
                }
            }
            if held.entries.is_empty() {
                // Everything pushed went over the budget: nothing before the head is held.
                held.floor = last;
            }
        }
        self.head.send_replace(last);
    }

    /// Moves the head to `seq` when it is behind: no entry numbered up to `seq` is missing any more
    /// (those between that exist were pushed).
    pub fn advance_to(&self, seq: u64) {
        self.head.send_if_modified(|head| {
            let moved = seq > *head;
            *head = (*head).max(seq);
            moved
        });
    }

    /// Lets everything go and starts again after `seq` (the entries up to it are left to the
    /// database: too many to read into memory at once).
    pub fn skip_to(&self, seq: u64) {
        if let Ok(mut held) = self.entries.lock() {
            held.entries.clear();
            held.bytes = 0;
            held.floor = held.floor.max(seq);
        }
        self.advance_to(seq);
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

    /// Up to `limit` entries after `seq`, or `None` when `seq` is before the floor (entries after it
    /// were let go) and the caller must read the store.
    pub fn after(&self, seq: u64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        let held = self.entries.lock().ok()?;
        if seq >= self.head() {
            return Some(Vec::new());
        }
        if seq < held.floor {
            return None;
        }
        let start = held.entries.partition_point(|e| e.seq <= seq);
        Some(held.entries.range(start..).take(limit).cloned().collect())
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
    fn numbers_no_entry_has_are_passed_over_and_other_nodes_entries_fill_in() {
        // 13 and 14 were rolled back: the tail was told nothing is missing between 12 and 15.
        let tail = Tail::new(10, 100, usize::MAX);
        tail.push(vec![entry(11), entry(12)]);
        tail.push(vec![entry(15), entry(16)]);
        let seqs = |after: u64| {
            tail.after(after, 10)
                .map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>())
        };
        assert_eq!(seqs(10), Some(vec![11, 12, 15, 16]));
        assert_eq!(seqs(13), Some(vec![15, 16]));
        assert_eq!(seqs(16), Some(vec![]));
        assert_eq!(seqs(9), None, "before the floor");
        // What was pushed already (another node's entries read in first) is not pushed twice.
        tail.push(vec![entry(16), entry(17)]);
        assert_eq!(seqs(15), Some(vec![16, 17]));
        // Rolled-back numbers at the end: the head moves, nothing held.
        tail.advance_to(19);
        assert_eq!(tail.head(), 19);
        assert_eq!(seqs(17), Some(vec![]));
        tail.advance_to(18);
        assert_eq!(tail.head(), 19, "the head never goes back");
        // Far behind: the tail starts over, readers before it go to the store.
        tail.skip_to(10_000);
        assert_eq!(tail.held(), (0, 0));
        assert_eq!(seqs(9_999), None);
        assert_eq!(seqs(10_000), Some(vec![]));
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
