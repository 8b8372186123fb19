//! The `--topics` mode of the load benchmark: topic feeds (issue 16) at 1,000 topics.
//!
//! Setup, against a relay with topics on (`max_topics` = the topics made here) and an admin token:
//! 1. 50 curated searches through the admin API (`POST /api/v1/admin/topics`), mixing words, phrases,
//!    hashtags, `OR`, exclusions and operators;
//! 2. 300 follower instances — simulated receiving servers like the other phases' subscribers: each
//!    verifies the signature of every request with the key its keyId names (a topic's own key, or the
//!    relay's) and counts what arrives — send 2,000 follows of 930 hashtags, 20 languages and the 50
//!    searches: every topic one follower, the other 1,050 follows on the popular ones (a rank drawn from
//!    a skewed distribution). A third are Mastodon's relay subscription (the instance actor's Follow of
//!    Public), a third LitePub's (the instance actor's Follow of the topic actor), a third a person's
//!    (`/users/pN` follows the topic actor); each is POSTed, signed, to the topic's inbox, 32 in flight,
//!    and the relay answers with an Accept signed by the topic's key, made on the topic's first follow;
//! 3. one origin instance subscribed to the relay (one, so that with no other subscriber the relay's
//!    own fan-out is nothing) posts the load benchmark's kind of post (public, by an
//!    `indexable` author, so the indexer takes it and the topics match it), each with 1 to 4 of the
//!    topics' hashtags, a declared language and a few words the curated searches look for, all drawn
//!    toward the popular ones, so a post matches several topics.
//!
//! Phases:
//! - **topics alone**: bursts of posts with no subscriber but the origin: topic deliveries per second against the signing bound measured around the burst, every expected delivery checked (the inboxes following a topic the benchmark's
//!   own matcher finds for the post), duplicates and unexpected ones counted;
//! - **fan-out, topics on**: `--subscribers` instances subscribe to the relay; bursts give the relay's
//!   deliveries to its subscribers, the topic deliveries, and both together against the bound;
//! - **fan-out, topics off**: a fresh relay with `max_topics = 0`, the same subscribers and posts.
//!
//! Matching µs per post comes from the relay's `/metrics` (`plaza_topic_match_cpu_seconds_total` over
//! `plaza_topic_matched_posts_total`: the matching thread's CPU time; the wall time during the bursts,
//! `plaza_topic_match_seconds_total`, beside it) when it exports them;
//! it is also timed here, warm, with `plaza_index::topic_match` (what the relay runs on ingest) over the
//! same topics and the documents of the same posts: the CPU cost alone. Both are printed.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use plaza::httpsig::PrivateKey;
use plaza_index::document::Post;
use plaza_index::query::{self, QueryLimits};
use plaza_index::topic_match::{Matcher, Rule};
use serde_json::{Value, json};

use super::{
    Behaviour, Options, Origin, PUBLIC, Pacer, Prepared, Record, RelayProcess, SubHandle,
    percentile, post_all, prepare, signing_bound, signing_bound_and_cost, start_subscriber_with,
    subscribe,
};

const TOKEN: &str = "topics-bench";
/// Keys the simulated instances share (each key costs tens of milliseconds to make).
const KEYS: usize = 8;
/// Follows sent to topic inboxes at once.
const FOLLOWS_IN_FLIGHT: usize = 32;

/// How many topics and followers.
struct Scale {
    tags: usize,
    languages: usize,
    curated: usize,
    follows: usize,
    inboxes: usize,
}

/// What issue 16 asks for.
const FULL: Scale = Scale {
    tags: 930,
    languages: 20,
    curated: 50,
    follows: 2_000,
    inboxes: 300,
};

/// `--quick`: a fifth of it.
const QUICK: Scale = Scale {
    tags: 180,
    languages: 10,
    curated: 10,
    follows: 400,
    inboxes: 60,
};

const LANGUAGES: [&str; 20] = [
    "en", "de", "fr", "es", "ja", "it", "pt", "nl", "sv", "pl", "ru", "uk", "ko", "zh", "ar", "tr",
    "fi", "da", "no", "cs",
];

/// Words the posts use and the curated searches look for, the most frequent first.
const WORDS: [&str; 40] = [
    "bakery", "bread", "garden", "repair", "bicycle", "library", "music", "housing", "energy",
    "solar", "farm", "market", "school", "clinic", "theatre", "river", "forest", "railway",
    "harbour", "festival", "kitchen", "recipe", "coffee", "cheese", "pottery", "weaving",
    "printing", "radio", "archive", "museum", "cinema", "poetry", "chess", "sailing", "union",
    "tenants", "council", "budget", "transit", "weather",
];

/// A rank in `0..n`, low ranks far more often (a cube of a uniform draw: roughly Zipf-like).
fn skewed(rng: &mut fastrand::Rng, n: usize) -> usize {
    ((rng.f64().powi(3) * n as f64) as usize).min(n - 1)
}

/// One topic of the benchmark.
struct Topic {
    kind: &'static str,
    name: String,
    /// A curated search's query.
    query: Option<String>,
}

impl Topic {
    fn actor(&self, relay: &str) -> String {
        format!("{relay}/topics/{}/{}", self.kind, self.name)
    }

    /// The rule the relay's registry makes of this topic.
    fn rule(&self) -> Rule {
        match &self.query {
            Some(q) => Rule::Query(query::parse(q, &QueryLimits::default()).expect("query")),
            None if self.kind == "language" => Rule::Language(self.name.clone()),
            None => Rule::Tag(self.name.clone()),
        }
    }
}

fn tag(rank: usize) -> String {
    format!("tag{rank}")
}

/// The hashtags, then the languages, then the curated searches.
fn topic_set(scale: &Scale) -> Vec<Topic> {
    let mut rng = fastrand::Rng::with_seed(16);
    let mut topics: Vec<Topic> = (0..scale.tags)
        .map(|i| Topic {
            kind: "tag",
            name: tag(i),
            query: None,
        })
        .collect();
    topics.extend(LANGUAGES[..scale.languages].iter().map(|code| Topic {
        kind: "language",
        name: (*code).to_string(),
        query: None,
    }));
    for i in 0..scale.curated {
        let mut word = || WORDS[skewed(&mut rng, WORDS.len())];
        let code = LANGUAGES[i % scale.languages];
        let query = match i % 6 {
            0 => format!("{} {}", word(), word()),
            1 => format!("\"{} {}\"", word(), word()),
            2 => format!("#{} OR #{} -is:reply", tag(i * 7), tag(i * 7 + 1)),
            3 => format!("language:{code} {} -{}", word(), word()),
            4 => format!("type:organization {} OR {} has:media", word(), word()),
            _ => format!("{} OR #{} -\"{} {}\"", word(), tag(i), word(), word()),
        };
        topics.push(Topic {
            kind: "search",
            name: format!("curated-{i}"),
            query: Some(query),
        });
    }
    topics
}

/// How a follower follows a topic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Mastodon's relay subscription: the instance actor's Follow of Public, sent to the topic inbox.
    Relay,
    /// LitePub: the instance actor follows the topic actor.
    LitePub,
    /// A person follows the topic actor.
    Person,
}

struct Follow {
    topic: usize,
    inbox: usize,
    way: Way,
}

/// Every topic gets one follower, the rest go to popular topics (languages 40%, hashtags 40%, curated
/// searches 20%); an instance actor follows a topic once (a second draw becomes a person's follow).
fn follow_plan(scale: &Scale, topics: usize) -> Vec<Follow> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut taken: HashSet<(usize, usize)> = HashSet::new();
    (0..scale.follows)
        .map(|k| {
            let topic = if k < topics {
                k
            } else {
                match rng.usize(..10) {
                    0..4 => scale.tags + skewed(&mut rng, scale.languages),
                    4..8 => skewed(&mut rng, scale.tags),
                    _ => scale.tags + scale.languages + rng.usize(..scale.curated),
                }
            };
            let inbox = rng.usize(..scale.inboxes);
            let way = match k % 3 {
                0 => Way::Relay,
                1 => Way::LitePub,
                _ => Way::Person,
            };
            let way = if way != Way::Person && !taken.insert((inbox, topic)) {
                Way::Person
            } else {
                way
            };
            Follow { topic, inbox, way }
        })
        .collect()
}

/// Post `n`'s content, hashtags and declared language (the same for every origin and run).
fn fill(note: &mut Value, n: u64, scale: &Scale) {
    let mut rng = fastrand::Rng::with_seed(1_000_003 * n + 11);
    let language = LANGUAGES[skewed(&mut rng, scale.languages)];
    let words: Vec<&str> = (0..3 + rng.usize(..6))
        .map(|_| WORDS[skewed(&mut rng, WORDS.len())])
        .collect();
    let tags: Vec<String> = (0..1 + rng.usize(..4))
        .map(|_| tag(skewed(&mut rng, scale.tags)))
        .collect();
    let links: Vec<String> = tags
        .iter()
        .map(|t| {
            format!("<a href=\"https://example.org/tags/{t}\" rel=\"tag\">#<span>{t}</span></a>")
        })
        .collect();
    let html = format!(
        "<p>A co-op bakery in the valley is hiring two bakers. Worker-owned, fair wages, bread for the \
         neighbourhood.</p><p>{}</p><p>{}</p>",
        words.join(" "),
        links.join(" ")
    );
    note["content"] = json!(html);
    note["contentMap"] = json!({ language: html });
    note["tag"] = json!(
        tags.iter()
            .map(|t| json!({"type": "Hashtag", "name": format!("#{t}"), "href": format!("https://example.org/tags/{t}")}))
            .collect::<Vec<_>>()
    );
}

/// The topics' followers: which inboxes receive a post that matched which topics.
struct Expected {
    matcher: Matcher,
    /// Topic → the inboxes following it.
    inboxes: Vec<Vec<usize>>,
}

impl Expected {
    fn new(topics: &[Topic], follows: &[Follow]) -> Expected {
        let matcher = Matcher::new(topics.iter().enumerate().map(|(i, t)| (i as u32, t.rule())));
        let mut inboxes = vec![Vec::new(); topics.len()];
        for f in follows {
            inboxes[f.topic].push(f.inbox);
        }
        Expected { matcher, inboxes }
    }

    /// The inboxes `post` goes to, and how long matching it took.
    fn of(&self, post: &Post) -> (HashSet<usize>, Duration) {
        let started = Instant::now();
        let matched = self.matcher.matches(post);
        let took = started.elapsed();
        let inboxes = matched
            .iter()
            .flat_map(|t| self.inboxes[*t as usize].iter().copied())
            .collect();
        (inboxes, took)
    }
}

/// The document the relay's indexer builds of post `n` from `origin`.
fn document(origin: &Origin, n: u64, scale: &Scale) -> Post {
    let mut note = origin.note(n);
    fill(&mut note, n, scale);
    let author = json!({
        "id": note["attributedTo"], "type": "Person", "preferredUsername": "baker",
        "indexable": true, "discoverable": true,
    });
    Post::from_json(&note, &author, &origin.handle.sub.authority).expect("a valid post")
}

/// Keys for the simulated instances, made on all cores.
fn key_pool() -> Vec<PrivateKey> {
    std::thread::scope(|s| {
        let made: Vec<_> = (0..KEYS)
            .map(|_| s.spawn(|| PrivateKey::generate().expect("key")))
            .collect();
        made.into_iter().map(|h| h.join().expect("key")).collect()
    })
}

/// A relay with its origin and subscribers.
struct Fleet {
    relay: RelayProcess,
    client: reqwest::Client,
    /// What the relay's subscribers receive.
    main: Arc<Record>,
    origin: Arc<Origin>,
    subscribers: Vec<SubHandle>,
}

impl Fleet {
    async fn start(env: &[(&str, &str)]) -> Fleet {
        let relay = RelayProcess::start_with(env).await;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let main = Arc::new(Record::default());
        let origin = Origin::start(usize::MAX, &relay, &main, &client).await;
        let fleet = Fleet {
            relay,
            client,
            main,
            origin,
            subscribers: Vec::new(),
        };
        fleet.wait_accepts().await;
        fleet
    }

    /// Starts and subscribes `count` instances to the relay.
    async fn subscribe(&mut self, count: usize, keys: &[PrivateKey]) {
        for i in 0..count {
            let sub = start_subscriber_with(
                i,
                Behaviour::Healthy,
                &self.relay,
                self.main.clone(),
                self.client.clone(),
                keys[i % keys.len()].clone(),
            )
            .await;
            subscribe(&sub, &self.relay.base).await;
            self.subscribers.push(sub);
        }
        self.wait_accepts().await;
    }

    async fn wait_accepts(&self) {
        let want = 1 + self.subscribers.len() as u64;
        wait_for(&self.main.accepts, want, "the relay's Accepts").await;
    }

    /// Relay deliveries each post makes: one per subscriber (the origin does not get its own back).
    fn main_recipients(&self) -> usize {
        self.subscribers.len()
    }
}

/// Waits (60 s at most) until `counter` reaches `want`.
async fn wait_for(counter: &std::sync::atomic::AtomicU64, want: u64, what: &str) {
    let start = Instant::now();
    while counter.load(Ordering::Relaxed) < want {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: {} of {want} in 60 s",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The topic followers' side: their instances and the inboxes each post should reach.
struct Followers {
    record: Arc<Record>,
    _inboxes: Vec<SubHandle>,
    /// Post number → the inboxes (instance index) it should reach.
    expected: HashMap<u64, HashSet<usize>>,
}

/// What one kind of delivery in one burst came to.
#[derive(Default, Clone, Copy)]
struct Count {
    expected: usize,
    /// First arrivals (expected or not).
    delivered: usize,
    missing: usize,
    duplicates: usize,
    /// Arrivals at an inbox the post should not reach.
    unexpected: usize,
    per_sec: f64,
    last: Option<Instant>,
}

impl Count {
    /// Counts the arrivals of posts `posts` in `record`; `expected(recipient, n)` says whether one
    /// was due.
    fn of(
        record: &Record,
        posts: &Range<u64>,
        expected: usize,
        due: impl Fn(usize, u64) -> bool,
        start: Instant,
    ) -> Count {
        let arrivals = record.arrivals.lock().unwrap();
        let mut c = Count {
            expected,
            ..Count::default()
        };
        for ((recipient, n), times) in arrivals.iter() {
            if !posts.contains(n) {
                continue;
            }
            c.delivered += 1;
            c.duplicates += times.len() - 1;
            if !due(*recipient, *n) {
                c.unexpected += 1;
            }
            c.last = c.last.max(times.first().copied());
        }
        c.missing = expected.saturating_sub(c.delivered - c.unexpected);
        let secs = c.last.map_or(f64::NAN, |l| (l - start).as_secs_f64());
        c.per_sec = c.delivered as f64 / secs;
        c
    }
}

/// What one burst measured.
struct Burst {
    bound: f64,
    main: Count,
    topic: Count,
    /// Relay and topic deliveries together per second (first send to last arrival).
    all_per_sec: f64,
    relay_cpu_us: f64,
    /// CPU time of one signature measured around the burst (the lower of before/after).
    signature_cpu_us: f64,
}

impl Burst {
    fn share(&self) -> f64 {
        self.all_per_sec / self.bound
    }

    /// One signature's CPU over the relay's CPU per delivery: the share of the bound the relay would
    /// reach with the cores to itself (steadier than [`Burst::share`] when other jobs load the machine).
    fn cpu_share(&self) -> f64 {
        self.signature_cpu_us / self.relay_cpu_us
    }
}

/// Posts `posts` at once and waits for every expected delivery (or 10 s without any progress); the
/// signing bound is measured right before and after, the higher one counting, as in the fan-out phase.
async fn burst(
    fleet: &Fleet,
    followers: Option<&Followers>,
    posts: Range<u64>,
    scale: &Scale,
    batch: Duration,
) -> Burst {
    let relay = &fleet.relay.base;
    let prepared = fleet.origin.presign_with(posts.clone(), |n| {
        fleet
            .origin
            .create_note(n, relay, |note| fill(note, n, scale))
    });
    let before = tokio::task::spawn_blocking(|| signing_bound_and_cost(2.0))
        .await
        .expect("bound");
    let main_expected = posts.clone().count() * fleet.main_recipients();
    let topic_expected: usize = followers.map_or(0, |f| {
        posts
            .clone()
            .map(|n| f.expected.get(&n).map_or(0, HashSet::len))
            .sum()
    });
    let arrived = || {
        fleet.main.first_arrivals.load(Ordering::Relaxed)
            + followers.map_or(0, |f| f.record.first_arrivals.load(Ordering::Relaxed))
    };
    let target = arrived() + (main_expected + topic_expected) as u64;
    eprintln!(
        "burst: {} posts, {main_expected} relay deliveries and {topic_expected} topic deliveries expected",
        posts.end - posts.start
    );
    let relay_cpu0 = fleet.relay.cpu_secs();
    let pacer = Pacer::start(batch);
    let start = Instant::now();
    let (accepted, refused) = post_all(prepared, 16).await;
    assert!(
        refused.is_empty(),
        "the relay refused burst posts: {refused:?}"
    );
    assert_eq!(accepted.len(), posts.clone().count());
    let (mut seen, mut progress) = (arrived(), Instant::now());
    while seen < target && progress.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = arrived();
        if now != seen {
            (seen, progress) = (now, Instant::now());
        }
    }
    let relay_cpu1 = fleet.relay.cpu_secs();
    pacer.stop().await;
    fleet.main.checks.settle().await;
    if let Some(f) = followers {
        f.record.checks.settle().await;
    }
    let after = tokio::task::spawn_blocking(|| signing_bound_and_cost(2.0))
        .await
        .expect("bound");
    let main = Count::of(
        &fleet.main,
        &posts,
        main_expected,
        |r, _| r < fleet.subscribers.len(),
        start,
    );
    let topic = followers.map_or_else(Count::default, |f| {
        Count::of(
            &f.record,
            &posts,
            topic_expected,
            |r, n| f.expected.get(&n).is_some_and(|e| e.contains(&r)),
            start,
        )
    });
    let last = main.last.max(topic.last).unwrap_or(start);
    let delivered = main.delivered + topic.delivered;
    Burst {
        bound: before.0.max(after.0),
        signature_cpu_us: before.1.min(after.1),
        main,
        topic,
        all_per_sec: delivered as f64 / (last - start).as_secs_f64(),
        relay_cpu_us: (relay_cpu1 - relay_cpu0) * 1e6 / delivered.max(1) as f64,
    }
}

/// Runs `bursts` bursts of `size` posts from post `first` on; the one with the median `key` stands
/// for them, and every burst's key is returned too, lowest first.
async fn bursts(
    fleet: &Fleet,
    followers: Option<&Followers>,
    first: u64,
    o: &Options,
    scale: &Scale,
    key: impl Fn(&Burst) -> f64,
) -> (Burst, Vec<f64>, Count, Count) {
    let mut all = Vec::new();
    for b in 0..o.bursts as u64 {
        let start = first + b * o.posts as u64;
        all.push(
            burst(
                fleet,
                followers,
                start..start + o.posts as u64,
                scale,
                o.batch,
            )
            .await,
        );
    }
    let total = |pick: fn(&Burst) -> Count| {
        all.iter().fold(Count::default(), |mut t, b| {
            let c = pick(b);
            t.expected += c.expected;
            t.delivered += c.delivered;
            t.missing += c.missing;
            t.duplicates += c.duplicates;
            t.unexpected += c.unexpected;
            t
        })
    };
    let (main, topic) = (total(|b| b.main), total(|b| b.topic));
    all.sort_by(|x, y| key(x).total_cmp(&key(y)));
    let keys = all.iter().map(&key).collect();
    (all.swap_remove(all.len() / 2), keys, main, topic)
}

/// The Follow that follower `k` sends, signed for the topic's inbox.
fn follow_request(k: usize, f: &Follow, inbox: &SubHandle, topic: &Topic, relay: &str) -> Prepared {
    let base = &inbox.sub.base;
    let topic_actor = topic.actor(relay);
    let (actor, object) = match f.way {
        Way::Relay => (format!("{base}/actor"), PUBLIC.to_string()),
        Way::LitePub => (format!("{base}/actor"), topic_actor.clone()),
        Way::Person => (format!("{base}/users/p{k}"), topic_actor.clone()),
    };
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{base}/follows/{k}"),
        "type": "Follow",
        "actor": actor,
        "object": object,
    });
    prepare(
        &inbox.key,
        &format!("{actor}#main-key"),
        &format!("{topic_actor}/inbox"),
        &follow,
    )
}

/// Makes the curated searches through the admin API, all at once.
async fn curate(fleet: &Fleet, topics: &[Topic]) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in topics.iter().filter(|t| t.query.is_some()) {
        let request = fleet
            .client
            .post(format!("{}/api/v1/admin/topics", fleet.relay.base))
            .bearer_auth(TOKEN)
            .json(&json!({"slug": t.name, "name": format!("Search {}", t.name), "query": t.query}));
        tasks.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    while let Some(done) = tasks.join_next().await {
        let status = done.expect("task").expect("admin API");
        assert_eq!(status, StatusCode::CREATED, "curated topic refused");
    }
}

/// The relay's own matching figures per post, from its `/metrics`.
struct RelayMatching {
    /// The matching thread's CPU time (µs), when the relay exports it.
    cpu_us: Option<f64>,
    /// Wall time (µs): on a busy machine it includes the indexer's waits for a core.
    wall_us: f64,
    posts: f64,
}

/// The relay's own matching figures, when it exports them.
async fn metrics_matching(fleet: &Fleet) -> Option<RelayMatching> {
    let text = super::metrics_text(&fleet.client, &fleet.relay.base).await;
    let value = |name: &str| super::metric(&text, name);
    let seconds = value("plaza_topic_match_seconds_total")?;
    let posts = value("plaza_topic_matched_posts_total")?;
    let cpu_seconds = value("plaza_topic_match_cpu_seconds_total");
    (posts > 0.0).then(|| RelayMatching {
        cpu_us: cpu_seconds.map(|s| s * 1e6 / posts),
        wall_us: seconds * 1e6 / posts,
        posts,
    })
}

/// Runs the topic phases and prints their figures.
pub async fn run(o: &Options) {
    let scale = if o.quick { QUICK } else { FULL };
    let topics = topic_set(&scale);
    let plan = follow_plan(&scale, topics.len());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "Plaza load benchmark, topic feeds: {cores} cores, {} topics ({} hashtags, {} languages, {} curated \
         searches), {} follows on {} inboxes, {} subscribers, {} bursts of {} posts",
        topics.len(),
        scale.tags,
        scale.languages,
        scale.curated,
        plan.len(),
        scale.inboxes,
        o.subscribers,
        o.bursts,
        o.posts
    );
    let bound = signing_bound(3.0);
    println!("signing bound measured: {bound:.0} signatures/s");
    let keys = tokio::task::spawn_blocking(key_pool).await.expect("keys");
    let max_topics = topics.len().to_string();
    let mut fleet = Fleet::start(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_MAX_TOPICS", &max_topics),
    ])
    .await;

    // Setup: the curated searches, then every follow.
    let setup = Instant::now();
    curate(&fleet, &topics).await;
    let curated_secs = setup.elapsed().as_secs_f64();
    let record = Arc::new(Record::default());
    let mut inboxes = Vec::new();
    for i in 0..scale.inboxes {
        inboxes.push(
            start_subscriber_with(
                i,
                Behaviour::Healthy,
                &fleet.relay,
                record.clone(),
                fleet.client.clone(),
                keys[i % keys.len()].clone(),
            )
            .await,
        );
    }
    let requests: Vec<Prepared> = plan
        .iter()
        .enumerate()
        .map(|(k, f)| follow_request(k, f, &inboxes[f.inbox], &topics[f.topic], &fleet.relay.base))
        .collect();
    let follows_start = Instant::now();
    let (_, refused) = post_all(requests, FOLLOWS_IN_FLIGHT).await;
    assert!(refused.is_empty(), "the relay refused follows: {refused:?}");
    wait_for(&record.accepts, plan.len() as u64, "the topics' Accepts").await;
    let follows_secs = follows_start.elapsed().as_secs_f64();
    let setup_cpu = fleet.relay.cpu_secs();
    let setup_rss = fleet.relay.rss_mb().unwrap_or(f64::NAN);
    println!(
        "setup: {} curated searches in {curated_secs:.1} s, {} follows accepted in {follows_secs:.1} s \
         (relay CPU so far {setup_cpu:.1} s, RSS {setup_rss:.0} MB)",
        scale.curated,
        plan.len()
    );

    // What each post should reach; then matching timed here (outside every burst), once warm (the
    // first pass fills the analyzers' thread-local caches, as the relay's first posts do).
    let expect = Expected::new(&topics, &plan);
    let posts_total = (2 * o.bursts * o.posts) as u64;
    let documents: Vec<Post> = (0..posts_total)
        .map(|n| document(&fleet.origin, n, &scale))
        .collect();
    let expected: HashMap<u64, HashSet<usize>> = (0u64..)
        .zip(&documents)
        .map(|(n, post)| (n, expect.of(post).0))
        .collect();
    let mut matching: Vec<f64> = documents
        .iter()
        .map(|post| expect.of(post).1.as_secs_f64() * 1e6)
        .collect();
    matching.sort_by(|a, b| a.total_cmp(b));
    let reach = expected.values().map(HashSet::len).sum::<usize>() as f64 / posts_total as f64;
    let followers = Followers {
        record,
        _inboxes: inboxes,
        expected,
    };

    // Topics alone, then with the relay's subscribers.
    let topic_share = |b: &Burst| b.topic.per_sec / b.bound;
    let (alone, alone_shares, alone_main, alone_topic) =
        bursts(&fleet, Some(&followers), 0, o, &scale, topic_share).await;
    eprintln!("topics alone measured");
    fleet.subscribe(o.subscribers, &keys).await;
    let first_mixed = (o.bursts * o.posts) as u64;
    let (on, on_shares, on_main, on_topic) = bursts(
        &fleet,
        Some(&followers),
        first_mixed,
        o,
        &scale,
        Burst::share,
    )
    .await;
    let relay_matching = metrics_matching(&fleet).await;
    let rss_on = fleet.relay.peak_rss_mb().unwrap_or(f64::NAN);
    let refused_on = (followers.record.refused().await, fleet.main.refused().await);
    eprintln!("fan-out with topics on measured");
    drop(followers);
    drop(fleet);

    // Topics off: a fresh relay, the same subscribers and posts.
    let mut off_fleet = Fleet::start(&[("PLAZA_MAX_TOPICS", "0")]).await;
    off_fleet.subscribe(o.subscribers, &keys).await;
    let (off, off_shares, off_main, _) =
        bursts(&off_fleet, None, first_mixed, o, &scale, Burst::share).await;
    let rss_off = off_fleet.relay.peak_rss_mb().unwrap_or(f64::NAN);
    let refused_off = off_fleet.main.refused().await;
    drop(off_fleet);

    let bench_us = matching.iter().sum::<f64>() / matching.len() as f64;
    let bench_matching = format!(
        "{bench_us:.1} µs (p50 {:.1} µs, p99 {:.1} µs)",
        percentile(&matching, 0.5),
        percentile(&matching, 0.99)
    );
    // The relay's CPU figure is what matching costs it; its wall time on the indexer, which runs at
    // background priority while the bursts keep both cores busy signing, includes the time the
    // indexer waited for a core.
    let (match_us, match_source, match_where) = match relay_matching {
        Some(RelayMatching {
            cpu_us: Some(cpu),
            wall_us,
            posts,
        }) => (
            cpu,
            format!(
                "the relay's /metrics over {posts:.0} posts, CPU time of the matching thread; \
                 wall time during the bursts {wall_us:.1} µs"
            ),
            "relay, CPU",
        ),
        Some(RelayMatching { wall_us, posts, .. }) => (
            wall_us,
            format!("the relay's /metrics over {posts:.0} posts, wall time during the bursts"),
            "relay, wall time",
        ),
        None => (
            bench_us,
            "the relay exports no matching time: timed in the benchmark".to_string(),
            "timed in the benchmark",
        ),
    };
    let pct = |shares: &[f64]| -> String {
        shares
            .iter()
            .map(|s| format!("{:.0}", 100.0 * s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let checked = |c: &Count| {
        format!(
            "{} / {} / {} / {}",
            c.expected, c.missing, c.duplicates, c.unexpected
        )
    };
    println!();
    println!("| topic feeds figure | value |");
    println!("|---|---|");
    println!("| signing bound at start, RSA-2048, {cores} cores | {bound:.0} signatures/s |");
    println!(
        "| setup: {} curated searches; {} follows sent {FOLLOWS_IN_FLIGHT} at a time, each key made and \
         every Accept received | {curated_secs:.1} s; {follows_secs:.1} s (relay CPU {setup_cpu:.0} s, RSS {setup_rss:.0} MB) |",
        scale.curated,
        plan.len()
    );
    println!("| matching per post, mean | **{match_us:.1} µs** ({match_source}) |");
    println!(
        "| matching per post timed in the benchmark (plaza_index::topic_match, the same {} topics and {} \
         posts, warm, one core to itself), mean | {bench_matching} |",
        topics.len(),
        matching.len()
    );
    println!("| topic deliveries expected per post (inboxes reached) | {reach:.1} |");
    println!(
        "| topics alone: topic deliveries/s, median burst | {:.0} |",
        alone.topic.per_sec
    );
    println!(
        "| … as share of the signing bound around that burst ({:.0}/s), every burst | **{:.0}%** ({}%) |",
        alone.bound,
        100.0 * topic_share(&alone),
        pct(&alone_shares)
    );
    let cpu = |b: &Burst| {
        format!(
            "{:.0} µs, one signature {:.0} µs: {:.0}%",
            b.relay_cpu_us,
            b.signature_cpu_us,
            100.0 * b.cpu_share()
        )
    };
    println!(
        "| … relay CPU per delivery in that burst, one signature's CPU, their ratio | {} |",
        cpu(&alone)
    );
    println!(
        "| fan-out, topics on: relay + topic deliveries/s, median burst | {:.0} + {:.0} = {:.0} |",
        on.main.per_sec, on.topic.per_sec, on.all_per_sec
    );
    println!(
        "| … all deliveries as share of the bound ({:.0}/s), every burst | **{:.0}%** ({}%) |",
        on.bound,
        100.0 * on.share(),
        pct(&on_shares)
    );
    println!(
        "| fan-out, topics off: relay deliveries/s, median burst | {:.0} |",
        off.all_per_sec
    );
    println!(
        "| … as share of the bound ({:.0}/s), every burst | **{:.0}%** ({}%) |",
        off.bound,
        100.0 * off.share(),
        pct(&off_shares)
    );
    println!(
        "| relay CPU per delivery, one signature's CPU, their ratio: topics on | {} |",
        cpu(&on)
    );
    println!("| … topics off | {} |", cpu(&off));
    println!(
        "| topic deliveries: expected / missing / duplicates / unexpected (alone; on) | {}; {} |",
        checked(&alone_topic),
        checked(&on_topic)
    );
    println!(
        "| relay deliveries: expected / missing / duplicates / unexpected (alone; on; off) | {}; {}; {} |",
        checked(&alone_main),
        checked(&on_main),
        checked(&off_main)
    );
    println!(
        "| requests failing verification: at topic followers; at subscribers, topics on / off | {}; {} / {refused_off} |",
        refused_on.0, refused_on.1
    );
    println!("| relay peak RSS: topics on / off (MB) | {rss_on:.0} / {rss_off:.0} |");
    let missing = alone_topic.missing
        + on_topic.missing
        + alone_main.missing
        + on_main.missing
        + off_main.missing;
    let duplicates = alone_topic.duplicates
        + on_topic.duplicates
        + alone_main.duplicates
        + on_main.duplicates
        + off_main.duplicates;
    println!();
    println!(
        "summary: topic matching {match_us:.1} µs/post at {} topics ({match_where}), topic deliveries {:.0}% of the \
         signing bound ({:.0}% by CPU), fan-out {:.0}% of it with topics on ({:.0}% by CPU) vs {:.0}% off ({:.0}% by CPU), \
         {missing} missing, {duplicates} duplicates",
        topics.len(),
        100.0 * topic_share(&alone),
        100.0 * alone.cpu_share(),
        100.0 * on.share(),
        100.0 * on.cpu_share(),
        100.0 * off.share(),
        100.0 * off.cpu_share(),
    );
}
