//! The store's tests: the log, the subscribers, migrations and the discovery state, through the facade.

use axum::body::Bytes;
use rusqlite::Connection;

use crate::store::db::params;

use super::*;
use crate::store::test_db::TestDb;

fn entry(origin: &str, n: u32) -> NewEntry {
    NewEntry {
        origin: origin.into(),
        target: None,
        kind: "Create".into(),
        mastodon_body: Bytes::from(format!("{{\"n\":{n}}}")),
        litepub_body: Bytes::from(format!("{{\"announce\":{n}}}")),
        signer: None,
        original: None,
    }
}

fn subscriber(authority: &str) -> Subscriber {
    Subscriber {
        authority: authority.into(),
        actor_id: format!("https://{authority}/actor"),
        inbox: format!("https://{authority}/inbox"),
        style: Style::Mastodon,
        cursor: 0,
        skipped: 0,
        created_at: 0,
        follow_id: format!("https://{authority}/follows/1"),
    }
}

#[tokio::test]
async fn the_log_is_checkpointed_outside_the_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let autocheckpoint: i64 = open_writer(&path)
        .unwrap()
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(autocheckpoint, 0, "commits never checkpoint themselves");
    let store = Store::open(&path).unwrap();
    let big = |n: u32| NewEntry {
        mastodon_body: Bytes::from(vec![b'x'; 64 * 1024]),
        ..entry("a.example", n)
    };
    for n in 0..80 {
        store
            .append_unless_seen(big(n), vec![format!("id-{n}")])
            .await
            .unwrap();
    }
    // About 5 MB committed, past the 1,000 pages at which SQLite would checkpoint by itself. With
    // that off, only the checkpoint thread moves the log into the database file.
    let db_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db_size() < 5_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint thread did not copy the log into the database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn the_subscriber_mirror_follows_commit_order(db: TestDb) {
    let store = db.open().await;
    for round in 0..30 {
        // A Follow racing an Undo (or an admin removal) of the same instance.
        let (a, b) = (store.clone(), store.clone());
        let follow = tokio::spawn(async move {
            a.subscribe(subscriber("b.example"), "{}".into(), vec![])
                .await
                .unwrap()
        });
        let undo = tokio::spawn(async move { b.unsubscribe("b.example").await.unwrap() });
        follow.await.unwrap();
        undo.await.unwrap();
        let stored = store.subscribers().await.unwrap();
        assert_eq!(
            store.subscriber("b.example").is_some(),
            stored.iter().any(|s| s.authority == "b.example"),
            "round {round}: memory and database disagree"
        );
        assert_eq!(store.subscriber_count(), stored.len());
    }
}

async fn appends_are_durable_deduplicated_and_in_order(db: TestDb) {
    {
        let store = db.open().await;
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .append_unless_seen(entry("a.example", n), vec![format!("id-{n}")])
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_some());
        }
        assert_eq!(
            store
                .append_unless_seen(entry("a.example", 7), vec!["id-7".into()])
                .await
                .unwrap(),
            None
        );
        let seqs: Vec<u64> = store
            .tail()
            .after(0, 100)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=50).collect::<Vec<_>>(),
            "the tail sees commits in sequence order"
        );
    }
    let reopened = db.open().await;
    assert_eq!(reopened.head().await.unwrap(), 50);
    let log = reopened.read_log(48, 10).await.unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![49, 50]);
    assert_eq!(
        log[0].digest_for(Style::Mastodon),
        crate::httpsig::digest_header(&log[0].mastodon_body)
    );
    assert_eq!(
        reopened
            .append_unless_seen(entry("a.example", 1), vec!["id-1".into()])
            .await
            .unwrap(),
        None
    );
}

async fn a_refollow_stores_nothing_but_its_follow_id(db: TestDb) {
    let store = db.open().await;
    let accept = || NewEntry {
        target: Some("b.example".into()),
        ..entry("relay.example", 1)
    };
    store
        .subscribe(subscriber("b.example"), "{}".into(), vec![accept()])
        .await
        .unwrap();
    store.advance_cursor("b.example", 1, 0, None).await.unwrap();
    let head = store.head().await.unwrap();
    let refollow = Subscriber {
        follow_id: "https://b.example/follows/2".into(),
        ..subscriber("b.example")
    };
    let (state, stored) = store
        .subscribe(refollow, "{}".into(), vec![accept()])
        .await
        .unwrap();
    assert_eq!(state, Subscribed::Unchanged);
    assert_eq!(store.head().await.unwrap(), head, "no Accept entry stored");
    assert_eq!(stored.cursor, 1, "the cursor stays where it was");
    assert_eq!(
        store.subscriber("b.example").unwrap().follow_id,
        "https://b.example/follows/2",
        "the newest Follow is the one its Undo will name"
    );
    // A new inbox is a real change: replies are stored and the caller restarts the worker.
    let moved = Subscriber {
        inbox: "https://b.example/new-inbox".into(),
        ..subscriber("b.example")
    };
    let (state, _) = store
        .subscribe(moved, "{}".into(), vec![accept()])
        .await
        .unwrap();
    assert_eq!(state, Subscribed::Again);
    assert_eq!(store.head().await.unwrap(), head + 1);
}

async fn a_block_refuses_follows_until_lifted_and_survives_a_restart(db: TestDb) {
    use crate::moderation::audit::NewAudit;
    use crate::moderation::blocks::{Block, BlockKind};
    let audit = |action| NewAudit {
        admin: "admin".into(),
        action,
        target: "example.org".into(),
        detail: serde_json::Value::Null,
    };
    let store = db.open().await;
    let block = Block::new(BlockKind::Domain, "example.org", "spam").unwrap();
    store
        .add_blocks(vec![block], vec![], audit("block"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .subscribe(subscriber("social.example.org:8443"), "{}".into(), vec![])
            .await,
        Err(Error::InstanceBlocked(_))
    ));
    assert!(store.subscriber("social.example.org:8443").is_none());
    drop(store);
    let store = db.open().await;
    let kept = store.blocks().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, "spam");
    assert!(kept[0].created_at > 0);
    assert!(
        store
            .remove_block(BlockKind::Domain, "example.org", audit("unblock"))
            .await
            .unwrap()
    );
    store
        .subscribe(subscriber("social.example.org:8443"), "{}".into(), vec![])
        .await
        .unwrap();
    assert!(store.subscriber("social.example.org:8443").is_some());
}

#[tokio::test]
async fn an_older_database_gets_follow_ids_from_its_stored_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE subscribers (authority TEXT PRIMARY KEY, actor_id TEXT NOT NULL,
                inbox TEXT NOT NULL, style TEXT NOT NULL, follow TEXT NOT NULL,
                cursor INTEGER NOT NULL, skipped INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
             INSERT INTO subscribers VALUES ('b.example', 'https://b.example/actor', 'https://b.example/inbox',
                'mastodon', '{\"id\":\"https://b.example/f/7\",\"type\":\"Follow\"}', 0, 0, 1);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.subscriber("b.example").unwrap().follow_id,
        "https://b.example/f/7"
    );
}

async fn subscriptions_start_at_the_head_and_survive_a_restart(db: TestDb) {
    let store = db.open().await;
    store.append(entry("x.example", 1)).await.unwrap();
    let accept = NewEntry {
        target: Some("b.example".into()),
        ..entry("relay.example", 2)
    };
    let (state, stored) = store
        .subscribe(subscriber("b.example"), "{}".into(), vec![accept])
        .await
        .unwrap();
    assert_eq!(state, Subscribed::New);
    assert_eq!(
        stored.cursor, 1,
        "history before the subscription is not delivered"
    );
    let (again, _) = store
        .subscribe(subscriber("b.example"), "{}".into(), vec![])
        .await
        .unwrap();
    assert_eq!(again, Subscribed::Unchanged);
    store.advance_cursor("b.example", 2, 0, None).await.unwrap();
    assert_eq!(store.subscriber("b.example").unwrap().cursor, 2);
    let log = store.read_log(1, 10).await.unwrap();
    assert!(log[0].is_for("b.example") && !log[0].is_for("c.example"));
    drop(store);
    let reopened = db.open().await;
    assert_eq!(reopened.subscriber("b.example").unwrap().cursor, 2);
    assert!(reopened.unsubscribe("b.example").await.unwrap());
    assert!(reopened.subscriber("b.example").is_none());
    assert_eq!(reopened.subscriber_count(), 0);
}

async fn entries_keep_what_was_received_once(db: TestDb) {
    let store = db.open().await;
    let verbatim = NewEntry {
        signer: Some("https://a.example/users/alice".into()),
        ..entry("a.example", 1)
    };
    let announced = NewEntry {
        signer: Some("https://a.example/actor".into()),
        original: Some(Bytes::from_static(b"{\"as\":\"received\"}")),
        ..entry("a.example", 2)
    };
    store.append(verbatim).await.unwrap();
    store.append(announced).await.unwrap();
    store.append(entry("relay.example", 3)).await.unwrap();
    let from_tail = store.tail().after(0, 10).unwrap();
    drop(store);
    let reopened = db.open().await;
    let from_disk = reopened.read_log(0, 10).await.unwrap();
    for log in [
        from_tail.iter().map(|e| (**e).clone()).collect::<Vec<_>>(),
        from_disk,
    ] {
        let (body, signer) = log[0].received().unwrap();
        assert_eq!(
            (&body[..], signer),
            (&b"{\"n\":1}"[..], "https://a.example/users/alice"),
            "the delivered body is the original"
        );
        let (body, signer) = log[1].received().unwrap();
        assert_eq!(
            (&body[..], signer),
            (&b"{\"as\":\"received\"}"[..], "https://a.example/actor")
        );
        assert!(log[2].received().is_none(), "the relay's own entries");
    }
}

#[tokio::test]
async fn an_older_log_gains_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, target TEXT,
             kind TEXT NOT NULL, received_ms INTEGER NOT NULL, mastodon_body BLOB NOT NULL,
             litepub_body BLOB NOT NULL);
             INSERT INTO log (origin, kind, received_ms, mastodon_body, litepub_body)
             VALUES ('a.example', 'Create', 1, x'7b7d', x'7b7d');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let old = store.read_log(0, 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert!(old[0].received().is_none());
    store.append(entry("a.example", 2)).await.unwrap();
    assert_eq!(store.read_log(0, 10).await.unwrap().len(), 2);
}

async fn named_cursors_and_index_instances_survive_a_reopen(db: TestDb) {
    {
        let store = db.open().await;
        assert_eq!(store.cursor("indexer").await.unwrap(), None);
        store.set_cursor("indexer", 7).await.unwrap();
        store.set_cursor("indexer", 5).await.unwrap();
        store
            .mark_index_instance("", "a.example", 100)
            .await
            .unwrap();
        store
            .mark_index_instance("", "b.example", 100)
            .await
            .unwrap();
        store
            .mark_index_instance("", "a.example", 200)
            .await
            .unwrap();
        store.forget_index_instance("", "b.example").await.unwrap();
        // Another node's index, with instances of its own.
        store
            .mark_index_instance("node-2", "c.example", 300)
            .await
            .unwrap();
    }
    let store = db.open().await;
    assert_eq!(
        store.cursor("indexer").await.unwrap(),
        Some(7),
        "a cursor never moves backward"
    );
    assert_eq!(
        store.index_instances("node-2").await.unwrap(),
        vec![("c.example".to_string(), 300)]
    );
    assert!(store.index_instances("node-1").await.unwrap().is_empty());
    store
        .forget_index_instance("node-2", "c.example")
        .await
        .unwrap();
    assert_eq!(
        store.index_instances("").await.unwrap(),
        vec![("a.example".to_string(), 200)]
    );
    assert_eq!(store.cursor("other").await.unwrap(), None);
}

async fn cursors_advanced_together_move_forward_only_and_stay_forgotten(db: TestDb) {
    use crate::store::topics::inbox_cursor_name;
    let store = db.open().await;
    let name = |host: &str| inbox_cursor_name(&format!("https://{host}/inbox"));
    for (host, seq) in [("a.example", 10), ("b.example", 20), ("c.example", 30)] {
        store.set_cursor(&name(host), seq).await.unwrap();
    }
    // c.example is forgotten (nobody follows a topic from it any more) before the position noted
    // for it is written.
    store
        .forget_topic_inbox("https://c.example/inbox")
        .await
        .unwrap();
    let commits = store.timings().commits;
    let positions = vec![
        (name("a.example"), 15),
        (name("b.example"), 12),
        (name("c.example"), 40),
        (name("d.example"), 50),
    ];
    store.advance_cursors(positions).await.unwrap();
    assert_eq!(store.timings().commits - commits, 1, "one commit for all");
    assert_eq!(store.cursor(&name("a.example")).await.unwrap(), Some(15));
    assert_eq!(
        store.cursor(&name("b.example")).await.unwrap(),
        Some(20),
        "never backward"
    );
    assert_eq!(
        store.cursor(&name("c.example")).await.unwrap(),
        None,
        "a forgotten cursor stays forgotten"
    );
    assert_eq!(
        store.cursor(&name("d.example")).await.unwrap(),
        None,
        "none is made"
    );
    store.advance_cursors(Vec::new()).await.unwrap();
    assert_eq!(
        store.timings().commits - commits,
        1,
        "nothing to write: no commit"
    );
}

async fn authors_due_for_a_refresh_are_listed_oldest_first_across_a_reopen(db: TestDb) {
    {
        let store = db.open().await;
        store
            .note_author("node-2", "https://a.example/users/old", 10)
            .await
            .unwrap();
        store
            .note_author("", "https://a.example/users/new", 300)
            .await
            .unwrap();
        store
            .note_author("", "https://a.example/users/old", 100)
            .await
            .unwrap();
        store
            .note_author("", "https://a.example/users/mid", 200)
            .await
            .unwrap();
        store
            .note_author("", "https://a.example/users/gone", 50)
            .await
            .unwrap();
        store
            .forget_author("", "https://a.example/users/gone")
            .await
            .unwrap();
    }
    let store = db.open().await;
    assert_eq!(
        store.stale_authors("", 250, 10).await.unwrap(),
        vec!["https://a.example/users/old", "https://a.example/users/mid"],
        "a relay alone sees its own authors, not a node's"
    );
    assert_eq!(store.stale_authors("", 250, 1).await.unwrap().len(), 1);
    // Each node refreshes the authors of its own index.
    assert_eq!(
        store.stale_authors("node-2", 250, 10).await.unwrap(),
        vec!["https://a.example/users/old"]
    );
    assert!(
        store
            .stale_authors("node-3", 250, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .note_author("", "https://a.example/users/old", 400)
        .await
        .unwrap();
    assert_eq!(
        store.stale_authors("", 250, 10).await.unwrap(),
        vec!["https://a.example/users/mid"]
    );
}

async fn a_read_holding_its_connection_does_not_block_another(db: TestDb) {
    let store = db.open().await;
    let (started, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    // The first read holds its connection until the second read has run (or gives up after a while,
    // which is what happened with a single reader connection behind a lock).
    let slow = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .read(move |_conn| {
                    let _ = started.send(());
                    Ok(go_rx
                        .recv_timeout(std::time::Duration::from_secs(10))
                        .is_ok())
                })
                .await
        }
    });
    started_rx.await.unwrap();
    let head = store
        .read(move |conn| {
            let head = head_seq(conn)?;
            let _ = go.send(());
            Ok(head)
        })
        .await
        .unwrap();
    assert_eq!(head, 0);
    assert!(
        slow.await.unwrap().unwrap(),
        "the second read ran while the first held its connection"
    );
}

async fn a_panicking_read_gives_its_connection_back(db: TestDb) {
    let store = db.open().await;
    for _ in 0..read_pool::READERS + 1 {
        let failed = store
            .read(|_conn| -> Result<()> { panic!("a bug in a read") })
            .await;
        assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
    }
    for _ in 0..read_pool::READERS + 1 {
        assert_eq!(store.head().await.unwrap(), 0);
    }
}

async fn a_failed_commit_fails_the_check_until_a_write_succeeds(db: TestDb) {
    let store = db.open().await;
    store.check().await.expect("a new store is healthy");
    // A deferred foreign key is checked at COMMIT: the commit fails the way one fails on a full disk,
    // and every write in the batch is refused.
    store
        .write(|conn, _| {
            conn.execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let refused = store
        .write(|conn, _| {
            conn.execute("INSERT INTO child (p) VALUES (7)", params![])?;
            Ok(())
        })
        .await
        .expect_err("the commit fails");
    assert_eq!(
        refused.status(),
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    );
    let degraded = store.check().await.expect_err("the store cannot write");
    assert_eq!(
        degraded.status(),
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        degraded
            .to_string()
            .to_lowercase()
            .contains("foreign key constraint"),
        "{degraded}"
    );
    store.append(entry("a.example", 1)).await.unwrap();
    store.check().await.expect("a write went through");
}

/// Follows the log from 0 until `done` is set and the log is read to its end, checking that sequence
/// numbers only grow; returns every number read. `through_tail`: by [`reader::LogReader`] (this store's
/// tail, then the database), else by `read_log` alone. The tail knows nothing of the other node's
/// commits after its own last one (waking readers for those is left to a notification between nodes),
/// so the last step reads the database from where the reader got to.
async fn follow_log(
    store: Store,
    through_tail: bool,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<u64> {
    let mut reader = reader::LogReader::new(store.clone(), 0, 50);
    let mut read: Vec<u64> = Vec::new();
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let cursor = read.last().copied().unwrap_or(0);
        let seqs: Vec<u64> = if through_tail && !finished {
            reader
                .next()
                .await
                .unwrap()
                .entries
                .iter()
                .map(|e| e.seq)
                .collect()
        } else {
            store
                .read_log(cursor, 50)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        for seq in &seqs {
            assert!(
                *seq > read.last().copied().unwrap_or(0),
                "{seq} read after {read:?}"
            );
            read.push(*seq);
        }
        if seqs.is_empty() {
            if finished {
                return read;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

async fn two_nodes_append_each_id_once_and_readers_skip_nothing(db: TestDb) {
    const PER_NODE: u32 = 300;
    // Two stores on one database: two nodes of one relay.
    let nodes = [db.open().await, db.open().await];
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let followers = [
        tokio::spawn(follow_log(nodes[0].clone(), false, done.clone())),
        tokio::spawn(follow_log(nodes[1].clone(), true, done.clone())),
    ];
    // Node n appends its own ids and, every third, one the other node also appends (a retry that
    // landed on the other node).
    let mut appends = Vec::new();
    for i in 0..PER_NODE {
        for (n, store) in nodes.iter().enumerate() {
            let store = store.clone();
            let id = if i % 3 == 0 {
                format!("https://a.example/shared/{i}")
            } else {
                format!("https://a.example/{n}/{i}")
            };
            appends.push(tokio::spawn(async move {
                let appended = store
                    .append_unless_seen(entry("a.example", i), vec![id.clone()])
                    .await;
                (id, appended.expect("no append fails"))
            }));
        }
    }
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    for append in appends {
        let (id, seq) = append.await.unwrap();
        let seqs = by_id.entry(id).or_default();
        seqs.extend(seq);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let distinct = PER_NODE as usize * 2 - PER_NODE.div_ceil(3) as usize;
    assert_eq!(by_id.len(), distinct);
    for (id, seqs) in &by_id {
        assert_eq!(seqs.len(), 1, "{id} appended {seqs:?}");
    }
    let mut appended: Vec<u64> = by_id.values().flatten().copied().collect();
    appended.sort_unstable();
    appended.dedup();
    assert_eq!(appended.len(), distinct, "sequence numbers are unique");
    let logged: Vec<u64> = nodes[0]
        .read_log(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(logged, appended, "the log holds every append once");
    for follower in followers {
        assert_eq!(
            follower.await.unwrap(),
            logged,
            "a reader following the log while it grew read all of it: no gap filled behind it"
        );
    }
}

async fn an_activity_sent_to_two_nodes_at_once_is_appended_once(db: TestDb) {
    let nodes = [db.open().await, db.open().await];
    for round in 0..40 {
        let id = format!("https://a.example/activities/{round}");
        let sent: Vec<_> = nodes
            .iter()
            .map(|store| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    store
                        .append_unless_seen(entry("a.example", round), vec![id])
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for sent in sent {
            outcomes.push(sent.await.unwrap().expect("neither fails"));
        }
        assert_eq!(
            outcomes.iter().filter(|o| o.is_some()).count(),
            1,
            "round {round}: {outcomes:?}"
        );
    }
    // A duplicate by one of its ids records none of the others.
    let [a, b] = &nodes;
    let dup = a
        .append_unless_seen(
            entry("a.example", 99),
            vec![
                "https://a.example/new".into(),
                "https://a.example/activities/0".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(dup, None);
    assert!(
        b.append_unless_seen(entry("a.example", 99), vec!["https://a.example/new".into()])
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_writer_connection_the_server_ended_is_replaced() {
    let db = TestDb::postgres();
    let TestDb::Postgres(url) = &db else {
        unreachable!()
    };
    let store = db.open().await;
    let append = |n: u32| store.append_unless_seen(entry("a.example", n), vec![format!("id-{n}")]);
    for n in 0..3 {
        append(n).await.unwrap();
    }
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let ended = admin
        .query(&format!("SELECT pg_terminate_backend(pid) {others}"), &[])
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the store's connections were ended");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while admin
        .query_one(&format!("SELECT COUNT(*) {others}"), &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the backends did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The write that finds the connection broken may be refused, as a 503 the sender retries; the
    // next goes through on a new connection.
    match append(3).await {
        Ok(seq) => assert!(seq.is_some()),
        Err(e) => {
            assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
            assert!(append(3).await.unwrap().is_some(), "the retry is accepted");
        }
    }
    assert!(append(4).await.unwrap().is_some());
    let timeout = store
        .write(|conn, _| {
            conn.query_row("SHOW idle_in_transaction_session_timeout", params![], |r| {
                r.get::<String>(0)
            })
        })
        .await
        .unwrap();
    assert_eq!(
        timeout, "30s",
        "a new writer connection is set up as the first was"
    );
    // Reads: the pool drops the connections it finds closed; one it did not yet find closed fails as
    // Unavailable too.
    let log = match store.read_log(0, 10).await {
        Err(Error::Unavailable(_)) => store.read_log(0, 10).await,
        read => read,
    }
    .unwrap();
    let bodies: Vec<&[u8]> = log.iter().map(|e| &e.mastodon_body[..]).collect();
    assert_eq!(
        bodies[..3],
        [b"{\"n\":0}", b"{\"n\":1}", b"{\"n\":2}"].map(|b| &b[..])
    );
    assert_eq!(
        log.len(),
        5,
        "what was committed before is intact, the rest appended once"
    );
    store.check().await.expect("healthy again");
}

async fn a_node_reads_the_other_nodes_entries_between_its_own(db: TestDb) {
    let [a, b] = [db.open().await, db.open().await];
    for (store, n) in [(&a, 0), (&a, 1), (&b, 2), (&b, 3), (&a, 4), (&a, 5)] {
        store.append(entry("a.example", n)).await.unwrap();
    }
    // A's tail holds 1, 2, 5 and 6; 3 and 4 are B's, in the database only.
    let mut reader = reader::LogReader::new(a.clone(), 0, 10);
    let mut read = Vec::new();
    while read.len() < 6 {
        let batch = reader.next().await.unwrap();
        assert!(!batch.entries.is_empty(), "stuck after {read:?}");
        assert_eq!(batch.pruned, 0);
        read.extend(batch.entries.iter().map(|e| e.seq));
    }
    assert_eq!(read, (1..=6).collect::<Vec<_>>());
}

/// Waits up to five seconds for `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_node_hears_of_the_other_nodes_commits() {
    use crate::store::notices::Notice;
    let db = TestDb::postgres();
    let [a, b] = [db.open().await, db.open().await];
    let mut heard = b.notices();
    for (store, n) in [(&a, 0), (&a, 1), (&b, 2), (&a, 3), (&b, 4), (&b, 5)] {
        store.append(entry("a.example", n)).await.unwrap();
    }
    // Both tails hold every entry, the other node's too: their workers read memory, not the database.
    for node in [&a, &b] {
        eventually("the tail reaches the head", || node.tail().head() == 6).await;
        let held: Vec<u64> = node
            .tail()
            .after(0, 100)
            .expect("complete from the start")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(held, (1..=6).collect::<Vec<_>>());
    }
    // A subscription made on one node is in the other's mirror, and its relay is told.
    a.subscribe(subscriber("c.example"), "{}".into(), vec![])
        .await
        .unwrap();
    eventually("b mirrors the new subscriber", || {
        b.subscriber("c.example").is_some()
    })
    .await;
    let next_change = |heard: &mut tokio::sync::broadcast::Receiver<Notice>| {
        let mut got = None;
        while let Ok(notice) = heard.try_recv() {
            if notice != Notice::Resync {
                got = Some(notice);
                break;
            }
        }
        got
    };
    // (The mirror is refreshed before the notice is passed on: wait for it.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let change = loop {
        if let Some(change) = next_change(&mut heard) {
            break change;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notice of the subscriber"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(change, Notice::Subscriber("c.example".into()));
    a.unsubscribe("c.example").await.unwrap();
    eventually("b forgets it", || b.subscriber("c.example").is_none()).await;
    // Moderation changes are passed on to the relay, which reloads its rules.
    use crate::moderation::audit::NewAudit;
    use crate::moderation::blocks::{Block, BlockKind};
    let audit = |target: &str| NewAudit {
        admin: "admin".into(),
        action: "block",
        target: target.into(),
        detail: serde_json::Value::Null,
    };
    let block = |domain: &str| Block::new(BlockKind::Domain, domain, "spam").unwrap();
    a.add_blocks(vec![block("spam.example")], vec![], audit("spam.example"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Vec::new();
    while !got.contains(&Notice::Moderation) {
        assert!(std::time::Instant::now() < deadline, "heard {got:?}");
        got.extend(next_change(&mut heard));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A node's own changes are not handed back to it (its relay applied them already).
    b.add_blocks(vec![block("more.example")], vec![], audit("more.example"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(next_change(&mut heard), None);
}

async fn a_run_of_carries_is_appended_in_order_in_one_commit(db: TestDb) {
    use crate::topics::carry::Carry;
    let store = db.open().await;
    let post = |n: u32| format!("https://x.example/posts/{n}");
    let carry = |n: u32| CarryAppend {
        origin: "x.example".into(),
        carry: Carry::announced(&post(n)).to(vec!["tag:coop".into()]),
        body: Bytes::new(),
        dedup_id: format!("carry {}", post(n)),
    };
    // Five posts, the third twice (a retried Create in the same indexer batch).
    let run: Vec<CarryAppend> = [0, 1, 2, 2, 3, 4].into_iter().map(carry).collect();
    let commits = store.timings().commits;
    let seqs = store.append_carries(run).await.unwrap();
    assert_eq!(
        store.timings().commits - commits,
        1,
        "one commit for the run"
    );
    assert_eq!(seqs.len(), 6);
    assert_eq!(seqs[3], None, "the repeat is deduplicated");
    let appended: Vec<u64> = seqs.iter().flatten().copied().collect();
    assert_eq!(appended.len(), 5);
    assert!(appended.windows(2).all(|w| w[0] < w[1]), "{appended:?}");
    let log = store.read_log(0, 10).await.unwrap();
    let objects: Vec<String> = log
        .iter()
        .filter_map(|e| e.carry.as_ref().map(|c| c.object.clone()))
        .collect();
    assert_eq!(objects, (0..5).map(post).collect::<Vec<_>>(), "in order");
    for n in 0..5 {
        let (topics, _) = store.carried_by(&post(n)).await.unwrap().expect("recorded");
        assert_eq!(topics, vec!["tag:coop".to_string()]);
    }
}

crate::on_both_backends!(
    a_run_of_carries_is_appended_in_order_in_one_commit,
    the_subscriber_mirror_follows_commit_order,
    appends_are_durable_deduplicated_and_in_order,
    a_refollow_stores_nothing_but_its_follow_id,
    a_block_refuses_follows_until_lifted_and_survives_a_restart,
    subscriptions_start_at_the_head_and_survive_a_restart,
    entries_keep_what_was_received_once,
    named_cursors_and_index_instances_survive_a_reopen,
    cursors_advanced_together_move_forward_only_and_stay_forgotten,
    authors_due_for_a_refresh_are_listed_oldest_first_across_a_reopen,
    a_read_holding_its_connection_does_not_block_another,
    a_panicking_read_gives_its_connection_back,
    a_failed_commit_fails_the_check_until_a_write_succeeds,
    two_nodes_append_each_id_once_and_readers_skip_nothing,
    an_activity_sent_to_two_nodes_at_once_is_appended_once,
    a_node_reads_the_other_nodes_entries_between_its_own,
);

#[test]
fn sqlite_connections_are_durable_and_keep_statement_journals_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("t.db")).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let number = |name: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    };
    // 2: FULL, every commit synced; 2: MEMORY for temp_store.
    assert_eq!(number("synchronous"), 2);
    assert_eq!(number("temp_store"), 2);
}
