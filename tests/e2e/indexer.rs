//! The indexer against simulated instances: a real store and the relay's signing HTTP client, the
//! indexer fed by log entries as the inbox writes them, and a recording sink in place of the search
//! index, so every decision (fetch from the origin, skip strangers, removals, the cursor) is visible
//! call by call. The recorder answers consent questions with `plaza_index::consent`, as the index does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use plaza::discovery::indexer::{Indexer, Settings};
use plaza::discovery::{IndexSink, InstanceFacts};
use plaza::federation::net::{AddressPolicy, Http, HttpSettings};
use plaza::store::{NewEntry, Store, Style, Subscriber};
use plaza_index::consent;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::*;

/// One call the indexer made.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    AddPost {
        id: String,
        content: String,
        author: String,
        instance: String,
        indexed: bool,
    },
    Profile {
        id: String,
        posts_allowed: bool,
    },
    RemovePost(String),
    RemoveActor(String),
    Instance(InstanceFacts),
    RemoveInstance(String),
    Expire,
    Commit,
}

/// A sink that records every call.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn record(&self, call: Call) -> plaza::Result<()> {
        self.calls.lock().unwrap().push(call);
        Ok(())
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The posts searchable after the last commit: added and not removed since, with their text.
    fn committed_posts(&self) -> Vec<(String, String)> {
        let calls = self.calls();
        let last_commit = calls.iter().rposition(|c| *c == Call::Commit).unwrap_or(0);
        let mut posts: Vec<(String, String, String)> = Vec::new();
        for call in &calls[..last_commit] {
            match call {
                Call::AddPost {
                    id,
                    content,
                    author,
                    indexed,
                    ..
                } => {
                    posts.retain(|(i, _, _)| i != id);
                    if *indexed {
                        posts.push((id.clone(), content.clone(), author.clone()));
                    }
                }
                Call::RemovePost(id) => posts.retain(|(i, _, _)| i != id),
                Call::Profile {
                    id,
                    posts_allowed: false,
                }
                | Call::RemoveActor(id) => posts.retain(|(_, _, a)| a != id),
                _ => {}
            }
        }
        posts.into_iter().map(|(i, c, _)| (i, c)).collect()
    }

    fn committed(&self, id: &str) -> Option<String> {
        self.committed_posts()
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c)
    }

    fn mentions(&self, needle: &str) -> bool {
        self.calls()
            .iter()
            .any(|c| format!("{c:?}").contains(needle))
    }
}

impl IndexSink for Recorder {
    fn add_post(
        &self,
        object: &Value,
        author: &Value,
        instance: &str,
    ) -> plaza::Result<Option<plaza_index::document::Post>> {
        let indexed = consent::may_index_post(object, author).allowed();
        self.record(Call::AddPost {
            id: object["id"].as_str().unwrap_or_default().into(),
            content: object["content"].as_str().unwrap_or_default().into(),
            author: author["id"].as_str().unwrap_or_default().into(),
            instance: instance.into(),
            indexed,
        })?;
        Ok(indexed
            .then(|| plaza_index::document::Post::from_json(object, author, instance).ok())
            .flatten())
    }
    fn add_or_update_profile(&self, actor: &Value) -> plaza::Result<()> {
        self.record(Call::Profile {
            id: actor["id"].as_str().unwrap_or_default().into(),
            posts_allowed: consent::may_index_post(&json!({ "to": [PUBLIC] }), actor).allowed(),
        })
    }
    fn remove_post(&self, id: &str) -> plaza::Result<()> {
        self.record(Call::RemovePost(id.into()))
    }
    fn remove_actor(&self, actor_id: &str) -> plaza::Result<()> {
        self.record(Call::RemoveActor(actor_id.into()))
    }
    fn upsert_instance(&self, facts: &InstanceFacts) -> plaza::Result<()> {
        self.record(Call::Instance(facts.clone()))
    }
    fn remove_instance(&self, authority: &str) -> plaza::Result<()> {
        self.record(Call::RemoveInstance(authority.into()))
    }
    fn expire_posts(&self, _unix_secs: i64) -> plaza::Result<()> {
        self.record(Call::Expire)
    }
    fn commit(&self) -> plaza::Result<()> {
        self.record(Call::Commit)
    }
}

/// A store, the indexer over it, and its recording sink.
struct World {
    dir: tempfile::TempDir,
    store: Store,
    sink: Arc<Recorder>,
    indexer: Arc<Indexer>,
    tasks: JoinSet<()>,
}

fn http() -> Http {
    let key = Arc::new(plaza::httpsig::PrivateKey::generate().expect("key"));
    Http::new(HttpSettings {
        key,
        key_id: "http://127.0.0.1:9/actor#main-key".into(),
        policy: AddressPolicy {
            allow_private: true,
        },
        max_fetch_bytes: 1 << 20,
        fetch_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(5),
        user_agent: "plaza-test".into(),
    })
    .expect("http client")
}

fn settings() -> Settings {
    Settings {
        commit_every: Duration::from_millis(50),
        actor_refresh: Duration::from_secs(3600),
        retention: Duration::from_secs(365 * 86_400),
        purge_on_unsubscribe: true,
        fetch_concurrency: 4,
        sweep_every: Duration::from_secs(3600),
        refresh_retry: Duration::from_secs(3600),
        threads: 1,
        nice: 10,
        node: None,
    }
}

/// [`settings`] with authors refreshed every 200 ms, looked for every 100 ms.
fn refreshing() -> Settings {
    Settings {
        actor_refresh: Duration::from_millis(200),
        sweep_every: Duration::from_millis(100),
        ..settings()
    }
}

impl World {
    async fn new() -> World {
        Self::with(settings()).await
    }

    async fn with(settings: Settings) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("plaza.db")).expect("store");
        Self::on(dir, store, settings).await
    }

    async fn on(dir: tempfile::TempDir, store: Store, settings: Settings) -> World {
        let sink = Arc::new(Recorder::default());
        let indexer = Indexer::new(store.clone(), http(), sink.clone(), settings)
            .await
            .expect("indexer");
        let tasks = indexer.start();
        World {
            dir,
            store,
            sink,
            indexer,
            tasks,
        }
    }

    /// Stops the indexer and starts a new one on the same data, as a restart does.
    async fn restart(self) -> World {
        let World {
            dir,
            store,
            indexer,
            mut tasks,
            ..
        } = self;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        drop((indexer, store));
        let store = Store::open(&dir.path().join("plaza.db")).expect("reopen");
        Self::on(dir, store, settings()).await
    }

    async fn subscribe(&self, instance: &Instance) {
        let subscriber = Subscriber {
            authority: instance.authority(),
            actor_id: instance.instance_actor(),
            inbox: format!("{}/inbox", instance.base),
            style: Style::Mastodon,
            cursor: 0,
            skipped: 0,
            created_at: 0,
            follow_id: format!("{}/follows/1", instance.base),
        };
        self.store
            .subscribe(subscriber, "{}".into(), vec![])
            .await
            .expect("subscribe");
    }

    /// Logs `activity` as the inbox does after verifying that `signer`'s key signed the request sent
    /// by `origin`.
    async fn receive(&self, origin: &Instance, activity: &Value, signer: &str) -> u64 {
        let announce = Bytes::from_static(b"{\"type\":\"Announce\"}");
        self.store
            .append(NewEntry {
                origin: origin.authority(),
                target: None,
                kind: activity["type"].as_str().unwrap_or_default().into(),
                mastodon_body: announce.clone(),
                litepub_body: announce,
                signer: Some(signer.into()),
                original: Some(Bytes::from(activity.to_string())),
            })
            .await
            .expect("append")
    }

    /// Waits until the indexer has committed everything logged so far.
    async fn settled(&self) {
        let head = self.store.tail().head();
        eventually("the indexer to commit the whole log", || {
            self.indexer.saved_cursor() >= head
        })
        .await;
    }
}

async fn instance(indexable: bool) -> Arc<Instance> {
    let instance = Instance::start_for(Flavor::Mastodon, "http://127.0.0.1:9").await;
    instance.set_user_fields(json!({ "indexable": indexable, "discoverable": true }));
    instance
}

fn note_id(create: &Value) -> String {
    create["object"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_relayed_through_a_third_host_is_fetched_from_its_origin() {
    let world = World::new().await;
    let (origin, third) = (instance(true).await, instance(true).await);
    world.subscribe(&origin).await;
    world.subscribe(&third).await;
    // The origin serves the real post; the copy the third host forwards says something else.
    let real = origin.public_create("the words alice wrote");
    origin.host_object(real["object"].clone());
    let mut forwarded = real.clone();
    forwarded["object"]["content"] = json!("<p>words put in alice's mouth</p>");
    forwarded["signature"] = json!({ "type": "RsaSignature2017", "creator": origin.user_key_id(),
        "created": "2026-11-26T10:00:00Z", "signatureValue": "c2lnbmF0dXJl" });
    world
        .receive(&third, &forwarded, &third.instance_actor())
        .await;
    let id = note_id(&real);
    eventually("the post fetched from its origin to be committed", || {
        world.sink.committed(&id).is_some()
    })
    .await;
    assert_eq!(
        world.sink.committed(&id).as_deref(),
        Some("<p>the words alice wrote</p>")
    );
    assert!(
        !world.sink.mentions("put in alice's mouth"),
        "the forwarded copy never reaches the index"
    );
    // Signed on its own host, the received copy is indexed as it is (the origin does not host it).
    let direct = origin.public_create("sent by alice's own server");
    world.receive(&origin, &direct, &origin.user()).await;
    eventually("the directly signed post", || {
        world.sink.committed(&note_id(&direct)).is_some()
    })
    .await;
    assert!(matches!(
        world.sink.calls().iter().find(|c| matches!(c, Call::AddPost { .. })),
        Some(Call::AddPost { author, instance, .. }) if *author == origin.user() && *instance == origin.authority()
    ));
    assert_eq!(
        world
            .indexer
            .fetch_stats()
            .ok
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "one fetch of the post, one of its author"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_from_an_instance_that_is_not_subscribed_is_never_handed_over() {
    let world = World::new().await;
    let (member, stranger) = (instance(true).await, instance(true).await);
    world.subscribe(&member).await;
    let elsewhere = stranger.public_create("from an instance that never subscribed");
    stranger.host_object(elsewhere["object"].clone());
    let id = note_id(&elsewhere);
    // A member's boost of it: relayed, not indexed.
    let boost = json!({ "id": format!("{}/statuses/99/activity", member.user()), "type": "Announce",
        "actor": member.user(), "object": id, "to": [PUBLIC] });
    world.receive(&member, &boost, &member.user()).await;
    // Even a copy signed by its own server (had it slipped into the log).
    world.receive(&stranger, &elsewhere, &stranger.user()).await;
    let marker = member.public_create("marker");
    world.receive(&member, &marker, &member.user()).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&marker)).is_some());
    assert!(
        !world.sink.mentions(&id) && !world.sink.mentions(&stranger.authority()),
        "nothing of the stranger reached the index: {:?}",
        world.sink.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_profile_changes_reach_the_index_in_order() {
    let world = World::new().await;
    let (alice_home, shy_home) = (instance(true).await, instance(false).await);
    world.subscribe(&alice_home).await;
    world.subscribe(&shy_home).await;
    let alice = alice_home.user();
    // The author's consent is the index's to judge: the post and its author go over together.
    let shy = shy_home.public_create("please do not index me");
    world.receive(&shy_home, &shy, &shy_home.user()).await;
    // An unlisted new post is not even handed over (its author is not fetched for it).
    let unlisted = alice_home.create_with(
        "unlisted words",
        json!([format!("{alice}/followers")]),
        json!([PUBLIC]),
    );
    world.receive(&alice_home, &unlisted, &alice).await;
    // Created, edited, deleted, one after the other in the log.
    let post = alice_home.public_create("first draft");
    let id = note_id(&post);
    world.receive(&alice_home, &post, &alice).await;
    let mut edit = post.clone();
    edit["type"] = json!("Update");
    edit["id"] = json!(format!("{id}#updates/1"));
    edit["object"]["content"] = json!("<p>second draft</p>");
    world.receive(&alice_home, &edit, &alice).await;
    world.settled().await;
    assert_eq!(
        world.sink.committed(&id).as_deref(),
        Some("<p>second draft</p>")
    );
    assert_eq!(world.sink.committed(&note_id(&shy)), None);
    assert!(
        world
            .sink
            .calls()
            .iter()
            .any(|c| matches!(c, Call::AddPost { id, indexed: false, .. } if *id == note_id(&shy)))
    );
    assert!(!world.sink.mentions("unlisted words"));
    assert!(
        world.sink.calls().contains(&Call::Profile {
            id: alice.clone(),
            posts_allowed: true
        }),
        "a freshly fetched author goes over for its profile"
    );
    let delete = json!({ "id": format!("{id}#delete"), "type": "Delete", "actor": alice,
        "object": { "id": id, "type": "Tombstone" }, "to": [PUBLIC] });
    world.receive(&alice_home, &delete, &alice).await;
    world.settled().await;
    assert_eq!(world.sink.committed(&id), None, "deleted");

    // An actor Update that turns `indexable` off goes over with the new document.
    let kept = alice_home.public_create("indexed until alice opts out");
    world.receive(&alice_home, &kept, &alice).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&kept)).is_some());
    let opt_out = json!({ "id": format!("{alice}#updates/opt-out"), "type": "Update", "actor": alice,
        "object": { "id": alice, "type": "Person", "indexable": false, "discoverable": false },
        "to": [PUBLIC] });
    world.receive(&alice_home, &opt_out, &alice).await;
    world.settled().await;
    assert!(world.sink.calls().contains(&Call::Profile {
        id: alice.clone(),
        posts_allowed: false
    }));
    assert_eq!(world.sink.committed(&note_id(&kept)), None);

    // An actor Delete removes the actor; a Delete sent for another instance's post does nothing.
    let foreign_post = format!("{}/statuses/1", shy_home.user());
    let foreign = json!({ "id": format!("{alice}#delete-foreign"), "type": "Delete", "actor": alice,
        "object": foreign_post });
    world.receive(&alice_home, &foreign, &alice).await;
    let gone = json!({ "id": format!("{alice}#delete"), "type": "Delete", "actor": alice, "object": alice });
    world.receive(&alice_home, &gone, &alice).await;
    world.settled().await;
    let calls = world.sink.calls();
    assert!(!calls.contains(&Call::RemovePost(foreign_post)));
    assert!(calls.contains(&Call::RemoveActor(alice.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_cursor_survives_a_restart_and_catches_up() {
    let world = World::new().await;
    let home = instance(true).await;
    world.subscribe(&home).await;
    let before = home.public_create("before the restart");
    world.receive(&home, &before, &home.user()).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&before)).is_some());
    let saved = world.indexer.saved_cursor();
    let world = world.restart().await;
    assert_eq!(world.indexer.saved_cursor(), saved, "the cursor was saved");
    // Logged while the new indexer is starting: caught up, and nothing before is replayed.
    let after = home.public_create("after the restart");
    world.receive(&home, &after, &home.user()).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&after)).is_some());
    assert!(
        !world.sink.mentions(&note_id(&before)),
        "{:?}",
        world.sink.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_listed_with_their_nodeinfo_and_purged_when_they_leave() {
    let world = World::new().await;
    let home = instance(true).await;
    home.host_at(
        "/.well-known/nodeinfo",
        json!({ "links": [{ "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": format!("{}/nodeinfo/2.1", home.base) }] }),
    );
    home.host_at(
        "/nodeinfo/2.1",
        json!({ "version": "2.1", "software": { "name": "mastodon", "version": "4.5.0" },
            "openRegistrations": true, "usage": { "users": { "total": 42, "activeMonth": 7 } },
            "metadata": { "nodeName": "Co-op Social", "nodeDescription": "Where co-ops meet." } }),
    );
    // Heard from before it subscribed: the entry says when it was last active.
    let post = home.public_create("a post of the instance");
    world.receive(&home, &post, &home.user()).await;
    world.settled().await;
    world.subscribe(&home).await;
    eventually("the instance entry", || {
        world
            .sink
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Instance(f) if f.authority == home.authority()))
    })
    .await;
    let facts = world
        .sink
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Instance(f) => Some(f),
            _ => None,
        })
        .unwrap();
    let nodeinfo = facts.nodeinfo.expect("the NodeInfo 2.1 document");
    assert_eq!(nodeinfo["software"]["name"], "mastodon");
    assert_eq!(nodeinfo["software"]["version"], "4.5.0");
    assert_eq!(nodeinfo["usage"]["users"]["total"], 42);
    assert_eq!(nodeinfo["openRegistrations"], true);
    assert_eq!(
        nodeinfo["metadata"]["nodeDescription"],
        "Where co-ops meet."
    );
    assert_eq!(facts.last_activity.map(|t| t > 0), Some(true));
    assert_eq!(
        facts.subscribed_since,
        world
            .store
            .subscriber(&home.authority())
            .unwrap()
            .created_at
    );
    until_index_instances(&world.store, "the instance recorded", |i| !i.is_empty()).await;
    assert_eq!(
        world.store.index_instances("").await.unwrap()[0].0,
        home.authority()
    );
    world.settled().await;
    world.store.unsubscribe(&home.authority()).await.unwrap();
    eventually("the instance to be purged", || {
        world
            .sink
            .calls()
            .contains(&Call::RemoveInstance(home.authority()))
    })
    .await;
    eventually("the purge to be committed", || {
        world
            .sink
            .calls()
            .iter()
            .rev()
            .take_while(|c| **c != Call::RemoveInstance(home.authority()))
            .any(|c| *c == Call::Commit)
    })
    .await;
    until_index_instances(&world.store, "the instance forgotten", |i| i.is_empty()).await;
}

/// Waits until the store's list of the index's instances satisfies `check`.
async fn until_index_instances(
    store: &Store,
    what: &str,
    check: impl Fn(&[(String, i64)]) -> bool,
) {
    let check = &check;
    until_store(what, || async move {
        check(&store.index_instances("").await.expect("index instances"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_are_fetched_again_on_schedule_and_old_posts_expire() {
    let world = World::with(refreshing()).await;
    let home = instance(true).await;
    world.subscribe(&home).await;
    let post = home.public_create("indexed while alice agrees");
    world.receive(&home, &post, &home.user()).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&post)).is_some());
    // Alice opts out on her server; no Update reaches the relay. The scheduled refresh notices.
    home.set_user_fields(json!({ "indexable": false }));
    eventually("the refreshed author to withdraw the post", || {
        world.sink.committed(&note_id(&post)).is_none()
    })
    .await;
    assert!(world.sink.calls().contains(&Call::Profile {
        id: home.user(),
        posts_allowed: false
    }));
    assert!(
        world.sink.calls().contains(&Call::Expire),
        "retention is applied on the sweep"
    );
}

/// An inbox on loopback that accepts every delivery; its URL and the activities it received.
async fn recording_inbox() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the inbox");
    let addr = listener.local_addr().expect("inbox address");
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let seen = seen.clone();
        async move {
            if let Ok(activity) = serde_json::from_slice(&body) {
                seen.lock().unwrap().push(activity);
            }
            axum::http::StatusCode::ACCEPTED
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/inbox"), received)
}

/// Waits until `check` on the store holds.
async fn until_store<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The topics' withdrawal (`Undo` of their `Announce`) of `object` in the log, if any.
async fn withdrawal_of(store: &Store, object: &str) -> Option<plaza::topics::carry::Carry> {
    store
        .read_log(0, 10_000)
        .await
        .expect("read the log")
        .into_iter()
        .filter_map(|entry| entry.carry)
        .find(|carry| {
            carry.kind == plaza::topics::carry::CarryKind::Withdraw && carry.object == object
        })
        .map(|carry| (*carry).clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_who_opts_out_between_updates_has_their_topic_carries_withdrawn_on_refresh() {
    use plaza::federation::delivery::{Backoff, Engine};
    use plaza::store::topics::TopicFollower;
    use plaza::topics::admission::TopicSettings;
    use plaza::topics::{Topic, TopicKind, Topics};

    let world = World::with(refreshing()).await;
    let engine = Engine::new(
        world.store.clone(),
        http(),
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        plaza::cluster::ownership::Ownership::alone(),
    );
    let topic_settings = TopicSettings {
        max_topics: 10,
        kinds: TopicKind::ALL.to_vec(),
        blocked_tags: Vec::new(),
    };
    let topics = Topics::start(
        world.store.clone(),
        engine,
        "http://127.0.0.1:9",
        topic_settings,
    )
    .await
    .expect("topics");
    world.indexer.carry_for(topics.clone());
    // Someone follows #coop.
    let coop = Topic::tag("coop").expect("tag");
    plaza::topics::keys::key_for(&world.store, &coop, 10)
        .await
        .expect("topic key");
    let (inbox, received) = recording_inbox().await;
    let follower = TopicFollower {
        actor_id: format!("{inbox}#actor"),
        inbox: inbox.clone(),
        style: Style::Mastodon,
        follow_id: format!("{inbox}#follow"),
        authority: plaza::ap::authority_of(&inbox).unwrap_or_default(),
    };
    world
        .store
        .follow_topic(&coop, follower, 100, 100)
        .await
        .expect("follow");
    topics.changed().await.expect("topics reloaded");

    // Alice agrees to be found and posts about #coop: the topic carries it to its follower.
    let home = instance(true).await;
    world.subscribe(&home).await;
    let mut post = home.public_create("the #coop bakery opens");
    post["object"]["tag"] = json!([{ "type": "Hashtag", "name": "#coop" }]);
    world.receive(&home, &post, &home.user()).await;
    let id = note_id(&post);
    until_store("the topic to carry the post", || async {
        world
            .store
            .carried_by(&id)
            .await
            .expect("carried_by")
            .is_some()
    })
    .await;
    let (carried, announced_seq) = world
        .store
        .carried_by(&id)
        .await
        .expect("carried_by")
        .expect("carried");
    assert_eq!(carried, vec![coop.key()]);
    let announced = |received: &[Value]| {
        received
            .iter()
            .find(|a| a["type"] == "Announce" && a["object"] == id.as_str())
            .cloned()
    };
    eventually("the follower to get the topic's Announce", || {
        announced(&received.lock().unwrap()).is_some()
    })
    .await;

    // Alice opts out on her server and no Update reaches the relay: only the scheduled refresh of
    // authors finds out, and it must take her post out of the topics as well as out of the index.
    home.set_user_fields(json!({ "indexable": false }));
    until_store("the topics to withdraw the post", || async {
        withdrawal_of(&world.store, &id).await.is_some()
    })
    .await;
    let withdrawal = withdrawal_of(&world.store, &id).await.expect("withdrawal");
    assert_eq!(withdrawal.topics, vec![coop.key()]);
    assert_eq!(withdrawal.announced_seq, Some(announced_seq));
    assert_eq!(
        world.store.carried_by(&id).await.expect("carried_by"),
        None,
        "no longer carried"
    );
    assert!(world.sink.calls().contains(&Call::Profile {
        id: home.user(),
        posts_allowed: false
    }));
    // The follower gets the Undo of the very Announce it got.
    eventually("the follower to get the Undo", || {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "Undo" && a["object"]["object"] == id.as_str())
    })
    .await;
    let received = received.lock().unwrap().clone();
    let announce = announced(&received).expect("the Announce");
    let undo = received
        .iter()
        .find(|a| a["type"] == "Undo")
        .expect("the Undo");
    assert_eq!(undo["object"]["id"], announce["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_answering_404_twice_in_a_row_is_removed() {
    let world = World::with(Settings {
        refresh_retry: Duration::from_millis(300),
        ..refreshing()
    })
    .await;
    let home = instance(true).await;
    world.subscribe(&home).await;
    let post = home.public_create("indexed until alice is gone");
    world.receive(&home, &post, &home.user()).await;
    world.settled().await;
    assert!(world.sink.committed(&note_id(&post)).is_some());
    let alice = Instance::path_of(&home.user());
    let fetched_before = home.fetches_of(&alice);
    home.answer_status(&alice, 404);
    eventually("alice removed", || {
        world.sink.calls().contains(&Call::RemoveActor(home.user()))
    })
    .await;
    assert!(
        home.fetches_of(&alice) - fetched_before >= 2,
        "removed after one 404"
    );
}

/// The relay running inside the test process, so the test can hand it an index and look into it.
struct InProcess {
    relay: Relay,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<plaza::Result<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    async fn start(index: Arc<dyn IndexSink>) -> InProcess {
        Self::start_with(|_| index).await
    }

    /// Starts the relay with the index `open` gives for its configuration.
    async fn start_with(
        open: impl FnOnce(&plaza::config::Config) -> Arc<dyn IndexSink>,
    ) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let port = listener.local_addr().expect("address").port();
        let base = format!("http://127.0.0.1:{port}");
        let config = plaza::config::Config {
            public_url: base.clone(),
            listen: format!("127.0.0.1:{port}"),
            data_dir: dir.path().join("data"),
            allow_private_networks: true,
            retry_initial_ms: 100,
            retry_max_secs: 1,
            ..plaza::config::Config::default()
        };
        let data_dir = config.data_dir.clone();
        let index = open(&config);
        let state = plaza::state::AppState::build_with_index(config, Some(index))
            .await
            .expect("relay state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(plaza::app::run(listener, state, async {
            let _ = stopped.await;
        }));
        InProcess {
            relay: Relay::in_process(&base, port, data_dir),
            stop: Some(stop),
            server,
            _dir: dir,
        }
    }

    /// Shuts the relay down gracefully (the indexer commits on the way out).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server)
            .await
            .expect("server task")
            .expect("relay stopped cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_accepted_by_the_inbox_reaches_the_index() {
    let sink = Arc::new(Recorder::default());
    let running = InProcess::start(sink.clone()).await;
    let relay = &running.relay;
    let home = Instance::start(Flavor::Mastodon, relay).await;
    home.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    home.subscribe(relay).await;
    let create = home.public_create("a cooperative bakery opens on Main Street");
    let (status, body) = home.post_as_user(&create).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    let id = note_id(&create);
    eventually("the post in the index", || sink.committed(&id).is_some()).await;
    assert!(sink.calls().iter().any(|c| matches!(c,
        Call::AddPost { id: i, instance, author, indexed: true, .. }
            if *i == id && *instance == home.authority() && *author == home.user())));
    let text = relay.metrics().await;
    for line in [
        "plaza_index_documents_total{kind=\"post\"} 1",
        "plaza_indexer_lag_entries 0",
        "plaza_index_fetches_total{outcome=\"ok\"}",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    running.stop().await;
}

/// Searches the index for posts matching `q`; their ids.
fn search(index: &plaza_index::Index, q: &str) -> Vec<String> {
    index
        .search_posts(&plaza_index::SearchRequest::new(q))
        .expect("search")
        .hits
        .into_iter()
        .map(|hit| hit.post.uri)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_searchable_after_its_202_and_gone_after_its_delete() {
    // How soon is measured by `cargo bench --bench load` (accept→searchable, delete→gone), not here.
    let mut opened: Option<Arc<plaza_index::Index>> = None;
    let running = InProcess::start_with(|config| {
        let index =
            plaza::discovery::index_sink::open(config).expect("index opens in DATA_DIR/index");
        opened = Some(index.clone());
        index
    })
    .await;
    let index = opened.expect("index");
    let relay = &running.relay;
    let (home, other, stranger) = (
        Instance::start(Flavor::Mastodon, relay).await,
        Instance::start(Flavor::Mastodon, relay).await,
        Instance::start(Flavor::Mastodon, relay).await,
    );
    for instance in [&home, &other, &stranger] {
        instance.set_user_fields(json!({ "indexable": true, "discoverable": true }));
    }
    home.subscribe(relay).await;
    other.subscribe(relay).await;

    // A boost by a member of a post from an instance that is not subscribed: relayed, never indexed.
    let elsewhere = stranger.public_create("xylophone recital tonight");
    stranger.host_object(elsewhere["object"].clone());
    let boost = json!({ "id": format!("{}/statuses/boost-1/activity", other.user()),
        "type": "Announce", "actor": other.user(), "object": note_id(&elsewhere), "to": [PUBLIC],
        "cc": [format!("{}/followers", other.user())] });
    let (status, body) = other.post_as_user(&boost).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");

    let create = home.public_create("a cooperative bakery opens on Main Street");
    let id = note_id(&create);
    let (status, body) = home.post_as_user(&create).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    eventually("the post searchable", || {
        search(&index, "bakery").contains(&id)
    })
    .await;
    eventually("the boost relayed to the other member", || {
        home.got_object(&note_id(&elsewhere))
    })
    .await;
    assert!(
        search(&index, "xylophone").is_empty(),
        "a post of an instance that is not subscribed is not indexed"
    );

    let delete = json!({ "id": format!("{id}#delete"), "type": "Delete", "actor": home.user(),
        "object": { "id": id, "type": "Tombstone" }, "to": [PUBLIC] });
    let (status, body) = home.post_as_user(&delete).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    eventually("the deleted post gone from search", || {
        !search(&index, "bakery").contains(&id)
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_binary_indexes_into_its_data_dir_unless_told_not_to() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", "index-stats-token")]).await;
    let text = relay.metrics().await;
    assert!(text.contains("plaza_indexer_lag_entries 0"), "{text}");
    assert!(
        relay.data_dir.join("index").join("meta.json").exists(),
        "the index lives in DATA_DIR/index"
    );
    let stats = |relay: &Relay| {
        let relay_base = relay.base.clone();
        async move {
            let stats: Value = reqwest::Client::new()
                .get(format!("{relay_base}/api/v1/admin/stats"))
                .bearer_auth("index-stats-token")
                .send()
                .await
                .expect("stats")
                .json()
                .await
                .expect("stats JSON");
            stats["index"].clone()
        }
    };
    let index = stats(&relay).await;
    assert_eq!(
        (index["lag"].as_u64(), index["documents"].as_u64()),
        (Some(0), Some(0))
    );
    let off = Relay::start_with(&[
        ("PLAZA_INDEX_ENABLED", "false"),
        ("PLAZA_ADMIN_TOKEN", "index-stats-token"),
    ])
    .await;
    assert_eq!(stats(&off).await, json!({ "documents": null, "lag": null }));
    assert!(!off.metrics().await.contains("plaza_indexer"));
    assert!(!off.data_dir.join("index").exists());
}
