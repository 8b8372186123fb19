//! Where the follower inboxes' workers keep their places in the log. A follower inbox wants few of
//! the log's entries, so its worker goes idle after nearly every one it sends; saving its cursor each
//! time cost a store commit (an fsync) per topic delivery, about as much of the relay's CPU as all of
//! the workers' own code. The workers note their positions in a [`CursorBook`] instead,
//! and everything noted is written in one store job once a second ([`SAVE_EVERY`]) and when the relay
//! stops. After a crash a follower may so receive again what it was sent in the last second or two —
//! the same `Announce`, with the same id, which a server takes once — as a subscriber may (its worker
//! saves at most once a second while busy). A worker handed over to another node saves its own
//! position at once, so the next holder sends nothing twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Result;
use crate::store::Store;

/// How often the positions noted are written.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Positions noted since the last save, by cursor name.
#[derive(Default)]
pub struct CursorBook {
    noted: Mutex<HashMap<String, u64>>,
}

impl CursorBook {
    /// Notes that the reader of cursor `name` got to `seq` (a position behind one noted is ignored).
    pub fn note(&self, name: &str, seq: u64) {
        if let Ok(mut noted) = self.noted.lock() {
            match noted.get_mut(name) {
                Some(at) => *at = (*at).max(seq),
                None => {
                    noted.insert(name.to_owned(), seq);
                }
            }
        }
    }

    /// Forgets what was noted for `name`: its worker saved its position itself, or its cursor is gone.
    pub fn drop_noted(&self, name: &str) {
        if let Ok(mut noted) = self.noted.lock() {
            noted.remove(name);
        }
    }

    /// Writes everything noted since the last save in one store job, moving each cursor forward
    /// ([`Store::advance_cursors`]: a cursor deleted meanwhile stays deleted). What could not be
    /// written is noted again for the next save. Returns how many positions were written.
    pub async fn save(&self, store: &Store) -> Result<usize> {
        let noted: Vec<(String, u64)> = match self.noted.lock() {
            Ok(mut noted) => noted.drain().collect(),
            Err(_) => return Ok(0),
        };
        if noted.is_empty() {
            return Ok(0);
        }
        let count = noted.len();
        match store.advance_cursors(noted.clone()).await {
            Ok(()) => Ok(count),
            Err(e) => {
                for (name, seq) in noted {
                    self.note(&name, seq);
                }
                Err(e)
            }
        }
    }

    /// Saves what is noted every [`SAVE_EVERY`] until aborted with the relay.
    pub fn keep_saving(self: Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SAVE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = self.save(&store).await {
                    tracing::error!(error = %e, "saving the topic follower inboxes' cursors");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_noted_are_written_together_forward_only() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("t.db")).expect("store");
        for name in ["a", "b", "c"] {
            store.set_cursor(name, 5).await.expect("cursor");
        }
        let book = CursorBook::default();
        book.note("a", 9);
        book.note("a", 7);
        book.note("b", 8);
        book.note("c", 6);
        book.drop_noted("c");
        let commits = store.timings().commits;
        assert_eq!(book.save(&store).await.expect("save"), 2);
        assert_eq!(store.timings().commits - commits, 1, "one commit");
        assert_eq!(store.cursor("a").await.expect("a"), Some(9), "the furthest");
        assert_eq!(store.cursor("b").await.expect("b"), Some(8));
        assert_eq!(store.cursor("c").await.expect("c"), Some(5), "dropped");
        assert_eq!(book.save(&store).await.expect("again"), 0);
        assert_eq!(
            store.timings().commits - commits,
            1,
            "nothing noted, nothing written"
        );
    }
}
