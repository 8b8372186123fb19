//! From the indexer to the topics: what the index just did with a post ([`Handed`]) becomes what the
//! topics carry ([`Carry`]), appended to the log for their followers' workers.
//!
//! Only what the index took is carried — the consent rules (public, `indexable`, `searchableBy`, bio
//! vetoes) are the index's, applied once — and matching runs on the document the index built, against
//! every topic at once ([`crate::topics::registry::Snapshot::matches`]), never a search per topic.
//! It runs where the post was indexed, on the indexer's own thread ([`Topics::matched`]): that
//! thread's analyzers have just read the post's words, and its priority is the indexer's, below the
//! inbox and the deliveries. What is appended to the log is then done on the runtime ([`Topics::carry`]),
//! the new posts of one indexer batch in one store job.
//! A post the topics carried gets their `Update` when edited, their `Delete` when deleted, and an
//! `Undo` of their `Announce` when an edit takes it out of the index. Each append is deduplicated by
//! what it is about, so the indexer replaying entries after a restart carries nothing twice.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use plaza_index::document::Post;
use serde_json::Value;

use crate::Result;
use crate::ap::authority_of;
use crate::store::{CarryAppend, Entry};
use crate::topics::Topics;
use crate::topics::carry::{Carry, CarryKind};

/// What the index did with one post.
#[derive(Debug)]
pub enum Handed {
    /// The post is in the index (new, or edited), as indexed.
    Indexed(Box<Post>),
    /// The post (its id) was refused by the consent rules: any earlier version left the index.
    Refused(String),
    /// The post (its id) was removed: deleted by its author.
    Removed(String),
    /// The author (their id) no longer lets their posts be found (`indexable` off, a veto in the
    /// bio), or was deleted: what the topics carried of them is withdrawn.
    AuthorGone(String),
}

impl Handed {
    /// What a fresh actor document means for the topics: [`Handed::AuthorGone`] when it refuses its
    /// posts to be found.
    pub fn from_profile(actor: &Value) -> Option<Handed> {
        let refused = !plaza_index::consent::may_index_posts_of(actor).allowed();
        let id = crate::ap::value::id_of(actor)?;
        refused.then(|| Handed::AuthorGone(id.to_owned()))
    }
}

/// The log entry that brought a change, when it came through the relay.
#[derive(Debug, Clone)]
pub struct Source {
    /// The activity type (`Create`, `Update`, `Delete`…).
    pub kind: String,
    /// The activity as received.
    pub body: Bytes,
    /// Whether the relay forwards it verbatim (it carries its author's LD signature).
    pub verbatim: bool,
}

impl Source {
    /// The source of a log entry written for a received activity; `None` for the relay's own.
    pub fn of(entry: &Entry) -> Option<Source> {
        let (body, _) = entry.received()?;
        Some(Source {
            kind: entry.kind.clone(),
            body: body.clone(),
            verbatim: entry.original.is_none(),
        })
    }

    fn activity_id(&self) -> Option<String> {
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        crate::ap::value::id_of(&value).map(str::to_owned)
    }
}

/// A change the index made, with the topics it concerns: for a post just indexed, the keys of the
/// topics it matches (see [`Topics::matched`]); for any other change, none yet (what the topics
/// carried of it is looked up when it is carried).
#[derive(Debug)]
pub struct Matched {
    change: Handed,
    topics: Vec<String>,
}

impl Topics {
    /// Matches `change`'s post, when it is one just indexed, against every topic at once. Synchronous,
    /// and meant for the thread that indexed the post (see the module documentation).
    pub fn matched(&self, change: Handed) -> Matched {
        let topics = match &change {
            Handed::Indexed(post) => {
                let snapshot = self.registry.snapshot();
                if snapshot.matched_topics() == 0 {
                    Vec::new()
                } else {
                    // The CPU readings sit inside the wall-clock ones.
                    let started = Instant::now();
                    let cpu_before = super::thread_cpu_time();
                    let topics = snapshot.matches(post);
                    let cpu = super::thread_cpu_time().saturating_sub(cpu_before);
                    self.stats.note_match(started.elapsed(), cpu);
                    topics
                }
            }
            _ => Vec::new(),
        };
        Matched { change, topics }
    }

    /// Carries what each matched change calls for (see the module documentation), in order. New posts
    /// to announce go to the store together, a run of them in one append (one commit, not one per
    /// post); any other change reads what was carried before, so the run ahead of it is appended
    /// first. Errors are logged: a failed change (or run) does not hold the others.
    pub async fn carry(&self, handed: Vec<(Matched, Option<Source>)>) {
        if self.registry.snapshot().matched_topics() == 0 {
            return;
        }
        let mut run = Vec::new();
        for (matched, source) in handed {
            match Step::of(&matched, source.as_ref()) {
                Step::Nothing => {}
                Step::Announce(append) => run.push(*append),
                Step::Other => {
                    if let Err(e) = self.append(std::mem::take(&mut run)).await {
                        tracing::error!(error = %e, "topics: carrying new posts");
                    }
                    if let Err(e) = self.carry_other(matched, source).await {
                        tracing::error!(error = %e, "topics: carrying a change");
                    }
                }
            }
        }
        if let Err(e) = self.append(run).await {
            tracing::error!(error = %e, "topics: carrying new posts");
        }
    }

    /// A change that is not a new post's announcement ([`Step::Other`]): an edit, a refusal, an
    /// author gone, a removal.
    async fn carry_other(&self, matched: Matched, source: Option<Source>) -> Result<()> {
        let Matched { change, topics } = matched;
        match change {
            Handed::Indexed(post) => {
                // An edit arrives as an `Update` for the topics that carried the post; a post they
                // did not carry that now matches some is announced as new.
                let Some(source) = source.filter(|s| s.kind == "Update") else {
                    return Ok(());
                };
                let Some((carried, _)) = self.store().carried_by(&post.id).await? else {
                    if topics.is_empty() {
                        return Ok(());
                    }
                    return self
                        .append(vec![CarryAppend::announcing(&post, topics)])
                        .await;
                };
                let dedup = format!(
                    "carry update {}",
                    source.activity_id().unwrap_or_else(|| post.id.clone())
                );
                let carry = Carry {
                    kind: CarryKind::Update,
                    verbatim: source.verbatim,
                    ..Carry::announced(&post.id).to(carried)
                };
                self.append(vec![CarryAppend::of(carry, source.body, dedup)])
                    .await
            }
            Handed::Refused(object) => self.withdraw(object).await,
            Handed::AuthorGone(author) => {
                for object in self.store().carried_of_author(&author).await? {
                    self.withdraw(object).await?;
                }
                Ok(())
            }
            Handed::Removed(object) => {
                let Some((carried, _)) = self.store().carried_by(&object).await? else {
                    return Ok(());
                };
                let (announce_object, verbatim, body) = match &source {
                    Some(source) => (
                        source.activity_id().unwrap_or_else(|| object.clone()),
                        source.verbatim,
                        source.body.clone(),
                    ),
                    None => (object.clone(), false, Bytes::new()),
                };
                let carry = Carry {
                    kind: CarryKind::Delete,
                    announce_object,
                    verbatim,
                    ..Carry::announced(&object).to(carried)
                };
                let dedup = format!("carry delete {object}");
                self.append(vec![CarryAppend::of(carry, body, dedup)]).await
            }
        }
    }

    /// Undoes the topics' Announce of `object`, when they carried it.
    async fn withdraw(&self, object: String) -> Result<()> {
        let Some((carried, announced)) = self.store().carried_by(&object).await? else {
            return Ok(());
        };
        let carry = Carry {
            kind: CarryKind::Withdraw,
            announced_seq: Some(announced),
            ..Carry::announced(&object).to(carried)
        };
        let dedup = format!("carry withdraw {object} {announced}");
        self.append(vec![CarryAppend::of(carry, Bytes::new(), dedup)])
            .await
    }

    /// Appends `carries` in order, in one store job (one commit); each is skipped when its
    /// deduplicating id was seen before.
    async fn append(&self, carries: Vec<CarryAppend>) -> Result<()> {
        if carries.is_empty() {
            return Ok(());
        }
        let seqs = self.store().append_carries(carries).await?;
        let carried = seqs.iter().flatten().count();
        self.stats
            .carried
            .fetch_add(carried as u64, Ordering::Relaxed);
        tracing::debug!(carried, "topics: carried");
        Ok(())
    }
}

/// What one matched change asks of the store, decided without reading it.
enum Step {
    /// Nothing to carry: a post (not an edit) that no topic matched.
    Nothing,
    /// A post to announce to the topics that matched it (the same post again — a retried `Create`,
    /// a share a FASP server announced too — is deduplicated by its id when appended).
    Announce(Box<CarryAppend>),
    /// Anything else ([`Topics::carry_other`]): it reads what the topics carried before.
    Other,
}

impl Step {
    fn of(matched: &Matched, source: Option<&Source>) -> Step {
        match &matched.change {
            Handed::Indexed(_) if source.is_some_and(|s| s.kind == "Update") => Step::Other,
            Handed::Indexed(_) if matched.topics.is_empty() => Step::Nothing,
            Handed::Indexed(post) => Step::Announce(Box::new(CarryAppend::announcing(
                post,
                matched.topics.clone(),
            ))),
            _ => Step::Other,
        }
    }
}

impl CarryAppend {
    /// The announcement of a new `post` by `topics`.
    fn announcing(post: &Post, topics: Vec<String>) -> CarryAppend {
        let carry = Carry {
            author: Some(post.author_id.clone()),
            ..Carry::announced(&post.id).to(topics)
        };
        CarryAppend::of(carry, Bytes::new(), format!("carry {}", post.id))
    }

    /// The append of `carry`, filed under the origin of the object it is about.
    fn of(carry: Carry, body: Bytes, dedup_id: String) -> CarryAppend {
        CarryAppend {
            origin: authority_of(&carry.object).unwrap_or_default(),
            carry,
            body,
            dedup_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::store::Store;
    use crate::test_fixtures::{follow_topic, paced_inbox, topic_settings};
    use crate::topics::Topic;

    fn post(n: u32) -> Box<Post> {
        let note = json!({
            "id": format!("https://a.example/posts/{n}"),
            "type": "Note",
            "attributedTo": "https://a.example/users/x",
            "content": "<p>Our #coop meets on Thursday</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        });
        let author = json!({ "id": "https://a.example/users/x", "type": "Person", "preferredUsername": "x" });
        Box::new(Post::from_json(&note, &author, "a.example").expect("post"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_of_new_posts_is_carried_in_one_commit_and_an_edit_after_them_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("t.db")).expect("store");
        let engine = crate::test_fixtures::engine(&store);
        let coop = Topic::tag("coop").expect("tag");
        crate::topics::keys::key_for(&store, &coop, 10)
            .await
            .expect("key");
        let (inbox, _) = paced_inbox(|_| 202, |_| Duration::ZERO).await;
        follow_topic(&store, &coop, &inbox).await;
        let topics = Topics::start(
            store.clone(),
            engine,
            "https://relay.example",
            topic_settings(),
        )
        .await
        .expect("topics");

        // An indexer batch: twenty new posts, then an edit of the first.
        let mut handed: Vec<(Matched, Option<Source>)> = (0..20)
            .map(|n| (topics.matched(Handed::Indexed(post(n))), None))
            .collect();
        let update = Source {
            kind: "Update".into(),
            body: Bytes::from(
                json!({ "id": "https://a.example/posts/0#update", "type": "Update" }).to_string(),
            ),
            verbatim: false,
        };
        handed.push((topics.matched(Handed::Indexed(post(0))), Some(update)));
        let commits = store.timings().commits;
        topics.carry(handed).await;
        // One commit for the twenty announcements and one for the edit (the topics' once-a-second
        // save of their followers' cursors may fall in between, once or twice); one each would be
        // twenty-one.
        let spent = store.timings().commits - commits;
        assert!((2..=4).contains(&spent), "{spent} commits");
        let kinds: Vec<(String, String)> = store
            .read_log(0, 100)
            .await
            .expect("log")
            .iter()
            .filter_map(|e| Some((e.kind.clone(), e.carry.as_ref()?.object.clone())))
            .collect();
        let mut expected: Vec<(String, String)> = (0..20)
            .map(|n| {
                (
                    "carry:announce".to_string(),
                    format!("https://a.example/posts/{n}"),
                )
            })
            .collect();
        expected.push((
            "carry:update".to_string(),
            "https://a.example/posts/0".to_string(),
        ));
        assert_eq!(kinds, expected);
        assert_eq!(topics.stats.carried.load(Ordering::Relaxed), 21);
    }
}
