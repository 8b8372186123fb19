//! How the stores of several nodes sharing one PostgreSQL database learn of each other's commits.
//!
//! Every group-commit transaction that changes what the nodes keep in memory says so with
//! `pg_notify` inside the transaction ([`Notice`]: new log entries, a subscriber changed, the
//! moderation rules, the topics, the FASP registrations, the nodes), so a notice is sent exactly when
//! its change commits, never for one rolled back. Each store keeps one connection of its own that
//! `LISTEN`s (`listen`): new entries of other nodes are read once into its in-memory tail (its
//! delivery workers go on reading memory), a changed subscriber is read again into its mirror, and
//! the rest is handed to whoever subscribed ([`Store::notices`]: the relay reloads its rules and
//! topics). When the connection breaks it is made again, and everything is read again, since notices
//! sent meanwhile are lost.
//!
//! SQLite has one node: nothing is sent and nothing listened to.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::store::Store;
use crate::store::db::params;
use crate::store::log::Entry;
pub use crate::store::notice::Notice;
use crate::store::subscribers::load_subscriber;
use crate::{Error, Result};

/// The channel every node listens on.
pub const CHANNEL: &str = "plaza";

/// How many notices the relay's handlers may fall behind before they miss some (and resync).
const BACKLOG: usize = 256;

/// A notice as sent: `{tag} {payload}`, the tag telling a store its own notices apart.
pub(super) fn payload(tag: u64, notice: &Notice) -> String {
    format!("{tag:016x} {}", notice.encode())
}

/// The sender's tag and the notice of a payload; `None` for one this release does not know.
fn parse(payload: &str) -> Option<(u64, Notice)> {
    let (tag, rest) = payload.split_once(' ')?;
    Some((u64::from_str_radix(tag, 16).ok()?, Notice::decode(rest)?))
}

/// The notices of one transaction: what its jobs changed, coalesced (one `Log` with the highest
/// sequence, each subscriber once).
#[derive(Default)]
pub(super) struct BatchNotices {
    /// The lowest and the highest sequence appended.
    log: Option<(u64, u64)>,
    others: Vec<Notice>,
}

impl BatchNotices {
    pub(super) fn add(&mut self, notice: Notice) {
        match notice {
            Notice::Log(seq) => {
                self.log = Some(
                    self.log
                        .map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))),
                )
            }
            other if !self.others.contains(&other) => self.others.push(other),
            _ => {}
        }
    }

    /// The first sequence the batch appended, if it did.
    pub(super) fn first_log(&self) -> Option<u64> {
        self.log.map(|(first, _)| first)
    }

    /// The notices to send, the log's last.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Notice> + '_ {
        self.others
            .drain(..)
            .chain(self.log.take().map(|(_, last)| Notice::Log(last)))
    }
}

/// The sending half the store keeps for the relay's handlers.
pub(super) fn channel() -> broadcast::Sender<Notice> {
    broadcast::channel(BACKLOG).0
}

impl Store {
    /// The notices of other nodes' commits that the relay acts on (moderation, topics, FASP, nodes,
    /// [`Notice::Resync`]); the store itself takes care of the log and the subscribers first.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Reads the log up to `head` into the tail (what other nodes committed), under the feed lock so
    /// the writer's own pushes and these stay in order. Too far behind to be worth holding, the tail
    /// starts over at `head` and the workers read the store.
    async fn feed_foreign(&self, head: u64) -> Result<()> {
        let _feeding = self.feed.lock().await;
        let mut from = self.tail.head();
        if head <= from {
            return Ok(());
        }
        if head - from > super::TAIL_CAPACITY as u64 {
            self.tail.skip_to(head);
            return Ok(());
        }
        while from < head {
            let entries: Vec<Entry> = self.read_log(from, 512).await?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                break;
            };
            self.tail
                .push(entries.into_iter().filter(|e| e.seq <= head).collect());
            from = last;
        }
        self.tail.advance_to(head);
        Ok(())
    }

    /// Reads subscriber `authority` again into the mirror (another node changed it), under the feed
    /// lock: a commit of this node's that the read missed is applied after it, not before.
    pub async fn refresh_member(&self, authority: String) -> Result<()> {
        let _feeding = self.feed.lock().await;
        let key = authority.clone();
        let current = self.read(move |conn| load_subscriber(conn, &key)).await?;
        if let Ok(mut members) = self.members.write() {
            match current {
                Some(sub) => {
                    let cursor = members.get(&authority).map_or(0, |m| m.cursor);
                    let mut sub = sub;
                    sub.cursor = sub.cursor.max(cursor);
                    members.insert(authority, sub);
                }
                None => {
                    members.remove(&authority);
                }
            }
        }
        Ok(())
    }

    /// Reads every subscriber again into the mirror (notices may have been missed).
    pub async fn refresh_members(&self) -> Result<()> {
        let _feeding = self.feed.lock().await;
        let all = self.subscribers().await?;
        if let Ok(mut members) = self.members.write() {
            let cursors: std::collections::HashMap<String, u64> =
                members.iter().map(|(k, v)| (k.clone(), v.cursor)).collect();
            members.clear();
            for mut sub in all {
                if let Some(cursor) = cursors.get(&sub.authority) {
                    sub.cursor = sub.cursor.max(*cursor);
                }
                members.insert(sub.authority.clone(), sub);
            }
        }
        Ok(())
    }

    /// Acts on one notice of another node: the log and the subscribers here, the rest forwarded.
    async fn take_notice(&self, notice: Notice) -> Result<()> {
        match notice {
            Notice::Log(head) => self.feed_foreign(head).await?,
            Notice::Subscriber(authority) => {
                self.refresh_member(authority.clone()).await?;
                let _ = self.notices.send(Notice::Subscriber(authority));
            }
            Notice::Resync => {
                // The highest entry committed, not the highest number handed out (which may be a
                // transaction's still in progress).
                let head = self
                    .read(|conn| {
                        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM log", params![], |r| {
                            r.get::<i64>(0)
                        })
                    })
                    .await?
                    .max(0) as u64;
                self.feed_foreign(head).await?;
                self.refresh_members().await?;
                let _ = self.notices.send(Notice::Resync);
            }
            other => {
                let _ = self.notices.send(other);
            }
        }
        Ok(())
    }
}

/// Listens for the other nodes' notices on a connection of its own while the store whose liveness
/// `alive` tracks is in use (`store` is a detached handle to it, which does not keep it in use);
/// reconnects (and resyncs) when the connection breaks.
pub(super) async fn listen(
    alive: std::sync::Weak<()>,
    store: Store,
    config: tokio_postgres::Config,
) {
    let mut backoff = Duration::from_millis(100);
    while alive.strong_count() > 0 {
        match listen_once(&store, &config, &alive).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "store: listening for other nodes' commits");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One listening connection, until it breaks (an error) or the store is dropped (`Ok`).
async fn listen_once(
    store: &Store,
    config: &tokio_postgres::Config,
    alive: &std::sync::Weak<()>,
) -> Result<()> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "store: the listening connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    let _stop_driver = AbortOnDrop(driver.abort_handle());
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // What committed before this connection listened (since the store was opened, or while the
    // last connection was down) sent notices nobody here heard: read everything again.
    store.take_notice(Notice::Resync).await?;
    let own = store.tag;
    loop {
        let payload = tokio::select! {
            payload = rx.recv() => payload,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if alive.strong_count() == 0 {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(payload) = payload else {
            return Err(Error::Unavailable("the listening connection closed".into()));
        };
        match parse(&payload) {
            Some((tag, _)) if tag == own => {}
            Some((_, notice)) => {
                if let Err(e) = store.take_notice(notice).await {
                    tracing::warn!(error = %e, "store: acting on another node's notice; resyncing");
                    store.take_notice(Notice::Resync).await?;
                }
            }
            None => tracing::debug!(%payload, "store: a notice this release does not know"),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_survive_the_trip_and_strangers_are_ignored() {
        for notice in [
            Notice::Log(42),
            Notice::Subscriber("a.example:8443".into()),
            Notice::Moderation,
            Notice::Topics,
            Notice::Fasp,
            Notice::Nodes,
        ] {
            assert_eq!(parse(&payload(7, &notice)), Some((7, notice)));
        }
        assert_eq!(parse("0000000000000007 tea 3"), None);
        assert_eq!(parse("nothex log 3"), None);
        assert_eq!(parse("0000000000000007 log x"), None);
        assert_eq!(parse("0000000000000007 sub "), None);
    }

    #[test]
    fn a_batch_sends_each_change_once_and_the_log_last() {
        let mut batch = BatchNotices::default();
        batch.add(Notice::Log(3));
        batch.add(Notice::Subscriber("a".into()));
        batch.add(Notice::Log(9));
        batch.add(Notice::Subscriber("a".into()));
        batch.add(Notice::Moderation);
        batch.add(Notice::Log(5));
        assert_eq!(batch.first_log(), Some(3));
        let sent: Vec<Notice> = batch.drain().collect();
        assert_eq!(
            sent,
            vec![
                Notice::Subscriber("a".into()),
                Notice::Moderation,
                Notice::Log(9)
            ]
        );
        assert_eq!(batch.drain().count(), 0);
    }
}
