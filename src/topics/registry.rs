//! The topics in force, in memory: which topics are matched on ingest (those somebody follows, and
//! every curated search, whose outbox shows what it carries), the matcher compiled from them, which
//! topics each follower inbox follows and how, and each topic's signing key.
//!
//! A [`Snapshot`] is immutable and swapped whole after every change (a follow, an unfollow, a curated
//! search added or removed), so the indexer matching a post and the delivery workers picking the topic
//! an inbox receives a post from read a consistent view without locks held across awaits. Changes
//! are rare next to posts; a reload reads the followers and searches from the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use plaza_index::document::Post;
use plaza_index::query::{self, QueryLimits};
use plaza_index::topic_match::{Matcher, Rule};

use crate::httpsig::PrivateKey;
use crate::store::topics::CuratedTopic;
use crate::store::{Store, Style};
use crate::topics::actor::TopicUrls;
use crate::topics::admission::TopicSettings;
use crate::topics::{Topic, TopicKind};
use crate::{Error, Result};

/// What one follower inbox follows: topic key → how it followed.
pub type InboxFollows = HashMap<String, Style>;

/// One consistent view of the topics in force.
#[derive(Default)]
pub struct Snapshot {
    /// The matched topics; a matcher id is an index here.
    topics: Vec<Topic>,
    matcher: Option<Matcher>,
    /// Follower inbox → the topics it follows.
    inboxes: HashMap<String, InboxFollows>,
    /// Topic key → the inboxes that follow it (what the delivery dispatcher wakes).
    followers: HashMap<String, Vec<String>>,
    /// The curated searches, by slug.
    curated: HashMap<String, CuratedTopic>,
}

impl Snapshot {
    /// Builds the view from every follow and every curated search; a curated query that no longer
    /// parses is left out (and logged), the others still match. Topics `settings` no longer offers
    /// (a kind turned off, a hashtag blocked since they were followed) carry nothing.
    pub fn build(
        settings: &TopicSettings,
        follows: &[crate::store::topics::Follow],
        curated: Vec<CuratedTopic>,
    ) -> Snapshot {
        let mut inboxes: HashMap<String, InboxFollows> = HashMap::new();
        let mut topics: Vec<Topic> = Vec::new();
        for follow in follows.iter().filter(|f| settings.serves(&f.topic)) {
            inboxes
                .entry(follow.follower.inbox.clone())
                .or_default()
                .entry(follow.topic.key())
                .or_insert(follow.follower.style);
            topics.push(follow.topic.clone());
        }
        let mut followers: HashMap<String, Vec<String>> = HashMap::new();
        for (inbox, follows) in &inboxes {
            for key in follows.keys() {
                followers
                    .entry(key.clone())
                    .or_default()
                    .push(inbox.clone());
            }
        }
        let curated: HashMap<String, CuratedTopic> =
            curated.into_iter().map(|c| (c.slug.clone(), c)).collect();
        topics.extend(
            curated
                .keys()
                .filter_map(|slug| Topic::search(slug))
                .filter(|t| settings.serves(t)),
        );
        topics.sort();
        topics.dedup();
        let mut rules = Vec::with_capacity(topics.len());
        for (n, topic) in topics.iter().enumerate() {
            let rule = match topic.kind() {
                TopicKind::Tag => Rule::Tag(topic.name().to_owned()),
                TopicKind::Language => Rule::Language(topic.name().to_owned()),
                TopicKind::Instance => Rule::Instance(topic.name().to_owned()),
                TopicKind::Search => {
                    let Some(search) = curated.get(topic.name()) else {
                        continue;
                    };
                    match query::parse(&search.query, &QueryLimits::default()) {
                        Ok(parsed) => Rule::Query(parsed),
                        Err(e) => {
                            tracing::warn!(slug = %search.slug, error = %e, "curated topic query no longer parses");
                            continue;
                        }
                    }
                }
            };
            rules.push((n as u32, rule));
        }
        Snapshot {
            matcher: Some(Matcher::new(rules)),
            topics,
            inboxes,
            followers,
            curated,
        }
    }

    /// The keys of the topics `post` matches, in the order an inbox picks from: hashtags first, then
    /// curated searches, instances and languages (the most specific first).
    pub fn matches(&self, post: &Post) -> Vec<String> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let mut found: Vec<&Topic> = matcher
            .matches(post)
            .into_iter()
            .filter_map(|id| self.topics.get(id as usize))
            .collect();
        found.sort_by_key(|t| {
            let rank = match t.kind() {
                TopicKind::Tag => 0,
                TopicKind::Search => 1,
                TopicKind::Instance => 2,
                TopicKind::Language => 3,
            };
            (rank, t.name().to_owned())
        });
        found.into_iter().map(Topic::key).collect()
    }

    /// How many topics are matched on ingest.
    pub fn matched_topics(&self) -> usize {
        self.topics.len()
    }

    /// The topics `inbox` follows, if any.
    pub fn inbox(&self, inbox: &str) -> Option<&InboxFollows> {
        self.inboxes.get(inbox)
    }

    /// The inboxes that follow the topic with key `key`.
    pub fn followers_of(&self, key: &str) -> &[String] {
        self.followers.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every follower inbox.
    pub fn inboxes(&self) -> impl Iterator<Item = &String> {
        self.inboxes.keys()
    }

    /// The curated search `slug`.
    pub fn curated(&self, slug: &str) -> Option<&CuratedTopic> {
        self.curated.get(slug)
    }
}

/// A topic's signing key, parsed once.
#[derive(Clone)]
pub struct Signer {
    /// The private key.
    pub key: Arc<PrivateKey>,
    /// Its id, `{actor}#main-key`.
    pub key_id: Arc<str>,
}

/// The registry: the current [`Snapshot`] and the topics' parsed keys.
pub struct Registry {
    store: Store,
    base: String,
    settings: TopicSettings,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises reloads, so a slower reload never replaces a newer one; holds the number of the
    /// last reload request the current snapshot covers.
    reloading: tokio::sync::Mutex<u64>,
    /// Reload requests so far: a request waiting for the lock is already covered when a reload
    /// that started after it finished, so a burst of follows costs two reloads, not one each.
    requested: AtomicU64,
    /// Reloads done (for the tests and the logs).
    reloads: AtomicU64,
    signers: Mutex<HashMap<String, Signer>>,
}

impl Registry {
    /// A registry over `store` for the relay at `base` offering what `settings` says, loaded.
    pub async fn load(store: Store, base: &str, settings: TopicSettings) -> Result<Arc<Registry>> {
        let registry = Arc::new(Registry {
            store,
            base: base.to_owned(),
            settings,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(0),
            requested: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            signers: Mutex::new(HashMap::new()),
        });
        registry.reload().await?;
        Ok(registry)
    }

    /// The current view.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads the follows and curated searches again and swaps the view; when another reload that
    /// began after this call finishes first, its view is this call's too.
    pub async fn reload(&self) -> Result<Arc<Snapshot>> {
        let request = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.reloading.lock().await;
        if *covered >= request {
            return Ok(self.snapshot());
        }
        // Every request made until now is read by this reload.
        let covers = self.requested.load(Ordering::SeqCst);
        let follows = self.store.topic_follows().await?;
        let curated = self.store.curated_topics().await?;
        let settings = self.settings.clone();
        // Parsing the curated queries and compiling the matcher is CPU work: off the runtime.
        let fresh = Arc::new(
            tokio::task::spawn_blocking(move || Snapshot::build(&settings, &follows, curated))
                .await
                .map_err(|e| Error::Unavailable(format!("loading the topics: {e}")))?,
        );
        match self.snapshot.write() {
            Ok(mut current) => *current = fresh.clone(),
            Err(e) => *e.into_inner() = fresh.clone(),
        }
        *covered = covers;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(fresh)
    }

    /// Reloads done since the registry was made.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// The key `topic` signs with, parsed from the store on first use.
    pub async fn signer(&self, topic: &Topic) -> Result<Signer> {
        self.signer_of(&topic.key()).await
    }

    /// [`Registry::signer`] by the topic's key ([`Topic::key`]), as log entries name topics: the
    /// name is parsed only the first time.
    pub async fn signer_of(&self, key: &str) -> Result<Signer> {
        if let Some(signer) = self.signers.lock().ok().and_then(|s| s.get(key).cloned()) {
            return Ok(signer);
        }
        let topic = Topic::from_key(key).ok_or_else(|| Error::NotFound(format!("topic {key}")))?;
        let stored = self
            .store
            .topic_key(&topic)
            .await?
            .ok_or_else(|| Error::NotFound(format!("the key of topic {topic}")))?;
        let parsed =
            tokio::task::spawn_blocking(move || PrivateKey::from_pkcs8_pem(&stored.private_pem))
                .await
                .map_err(|e| Error::Crypto(format!("parsing a topic key: {e}")))??;
        let signer = Signer {
            key: Arc::new(parsed),
            key_id: TopicUrls::new(&self.base, &topic).key.into(),
        };
        if let Ok(mut signers) = self.signers.lock() {
            signers.insert(key.to_owned(), signer.clone());
        }
        Ok(signer)
    }

    /// Forgets the parsed key of `topic` (it was removed).
    pub fn forget_signer(&self, topic: &Topic) {
        if let Ok(mut signers) = self.signers.lock() {
            signers.remove(&topic.key());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::topics::{Follow, TopicFollower};
    use crate::test_fixtures::topic_settings;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_follows_waiting_for_a_reload_is_covered_by_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("store");
        let registry = Registry::load(store.clone(), "https://relay.example", topic_settings())
            .await
            .expect("load");
        assert_eq!(registry.reloads(), 1);
        let coop = Topic::tag("coop").expect("tag");
        crate::topics::keys::key_for(&store, &coop, 10)
            .await
            .expect("key");
        const FOLLOWS: u64 = 40;
        for n in 0..FOLLOWS {
            let f = follow(
                coop.clone(),
                &format!("https://i{n}.example/inbox"),
                Style::Mastodon,
            );
            store
                .follow_topic(&coop, f.follower, 1_000, 1_000)
                .await
                .expect("follow");
        }
        // Each follow asks for a reload while one is running (held here): when it ends, the first
        // waiter's reload reads every follow, and the others find themselves covered.
        let running = registry.reloading.lock().await;
        let waiting: Vec<_> = (0..FOLLOWS)
            .map(|_| {
                let registry = registry.clone();
                tokio::spawn(async move { registry.reload().await.map(|s| s.inboxes().count()) })
            })
            .collect();
        while registry.requested.load(Ordering::SeqCst) < 1 + FOLLOWS {
            tokio::task::yield_now().await;
        }
        drop(running);
        for waiter in waiting {
            let inboxes = waiter.await.expect("task").expect("reload");
            assert_eq!(inboxes, FOLLOWS as usize, "every waiter sees every follow");
        }
        assert_eq!(registry.reloads(), 2, "one reload for the whole burst");
    }

    fn follow(topic: Topic, inbox: &str, style: Style) -> Follow {
        Follow {
            topic,
            follower: TopicFollower {
                actor_id: format!("{inbox}#actor"),
                inbox: inbox.to_owned(),
                style,
                follow_id: String::new(),
                authority: String::new(),
            },
        }
    }

    #[test]
    fn an_inbox_knows_its_topics_and_matching_covers_followed_and_curated_ones() {
        let coop = Topic::tag("coop").expect("tag");
        let es = Topic::language("es").expect("es");
        let follows = vec![
            follow(coop.clone(), "https://a.example/inbox", Style::Mastodon),
            follow(es.clone(), "https://a.example/inbox", Style::Mastodon),
            follow(coop.clone(), "https://b.example/inbox", Style::LitePub),
        ];
        let curated = vec![CuratedTopic {
            slug: "co-ops".into(),
            name: "Co-ops".into(),
            query: "#coop OR #cooperative".into(),
            created_at: 0,
        }];
        let all = topic_settings();
        let snapshot = Snapshot::build(&all, &follows, curated.clone());
        assert_eq!(snapshot.matched_topics(), 3);
        let a = snapshot.inbox("https://a.example/inbox").expect("a");
        assert_eq!(a.len(), 2);
        assert_eq!(
            snapshot
                .inbox("https://b.example/inbox")
                .and_then(|b| b.get("tag/coop")),
            Some(&Style::LitePub)
        );
        assert!(snapshot.inbox("https://c.example/inbox").is_none());
        let mut coop = snapshot.followers_of("tag/coop").to_vec();
        coop.sort();
        assert_eq!(coop, ["https://a.example/inbox", "https://b.example/inbox"]);
        assert!(snapshot.followers_of("tag/other").is_empty());
        assert_eq!(
            snapshot.curated("co-ops").map(|c| c.name.as_str()),
            Some("Co-ops")
        );
        // A hashtag blocked and a kind turned off since: followed, but carrying nothing.
        let fewer = TopicSettings {
            kinds: vec![TopicKind::Tag, TopicKind::Search],
            blocked_tags: vec!["coop".into()],
            ..all
        };
        let snapshot = Snapshot::build(&fewer, &follows, curated);
        assert_eq!(snapshot.matched_topics(), 1, "only the curated search");
        assert!(snapshot.inbox("https://a.example/inbox").is_none());
    }
}
