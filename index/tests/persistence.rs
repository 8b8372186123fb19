//! What survives: reopening, rebuilding from stored sources, and the background commit that makes a
//! handed-over post searchable without anyone calling `commit`.

mod support;

use std::time::{Duration, Instant};

use plaza_index::{DirectoryRequest, Index, IndexConfig, InstanceRecord, SearchRequest, reindex};
use serde_json::{Value, json};
use support::*;

fn config() -> IndexConfig {
    IndexConfig {
        writer_memory_bytes: 15_000_000,
        ..IndexConfig::default()
    }
}

fn fill(index: &Index) {
    let alice = actor("a.example", "alice");
    let quiet = with(actor("a.example", "quiet"), "indexable", json!(false));
    for n in 0..5 {
        let post = note(
            &alice,
            n,
            &format!("sourdough loaf {n}"),
            "2024-01-01T00:00:00Z",
        );
        index.add_post(&post, &alice, "a.example").expect("add");
    }
    // Allowed by its own searchableBy, although its author is not indexable.
    let own = with(
        note(&quiet, 9, "sourdough starter", "2024-01-02T00:00:00Z"),
        "searchableBy",
        json!([PUBLIC]),
    );
    assert!(
        index
            .add_post(&own, &quiet, "a.example")
            .expect("add")
            .allowed()
    );
    index
        .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
        .expect("instance");
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = Index::open(dir.path(), config()).expect("open");
        fill(&index);
        // No explicit commit: dropping the index commits what is pending.
    }
    let index = Index::open(dir.path(), config()).expect("reopen");
    assert_eq!(numbers(&index, "sourdough"), [0, 1, 2, 3, 4, 9]);
    assert_eq!(index.counts().expect("counts").instances, 1);
}

#[test]
fn a_post_written_again_replaces_the_one_before_also_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = actor("a.example", "alice");
    {
        let index = Index::open(dir.path(), config()).expect("open");
        add_note(&index, &alice, 1, "sourdough loaf");
        add_note(&index, &alice, 2, "rye bread");
        // Edited in the same session, before any commit.
        add_note(&index, &alice, 2, "rye bread, seeded");
        index
            .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
            .expect("instance");
    }
    // The index holds ids it did not write in this process: an edit must still replace.
    let index = Index::open(dir.path(), config()).expect("reopen");
    add_note(&index, &alice, 1, "sourdough starter");
    add_note(&index, &alice, 3, "spelt");
    // The instance, written in the first session, twice again.
    for _ in 0..2 {
        index
            .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
            .expect("instance");
    }
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "sourdough"), [1]);
    assert!(numbers(&index, "loaf").is_empty());
    assert_eq!(numbers(&index, "rye"), [2]);
    assert_eq!(numbers(&index, "seeded"), [2]);
    let counts = index.counts().expect("counts");
    assert_eq!((counts.posts, counts.actors, counts.instances), (3, 1, 1));
}

#[test]
fn posts_are_found_by_account_id_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop({
        let index = Index::open(dir.path(), config()).expect("open");
        fill(&index);
        index
    });
    let index = Index::open(dir.path(), config()).expect("reopen");
    let by = |actor: &str| {
        let page = index
            .search_posts(&SearchRequest {
                account: Some(plaza_index::account_id(actor)),
                ..SearchRequest::new("sourdough")
            })
            .expect("search");
        let mut uris: Vec<String> = page.hits.into_iter().map(|h| h.post.uri).collect();
        uris.sort();
        uris
    };
    let alice = by("https://a.example/users/alice");
    assert_eq!(alice.len(), 5);
    assert!(
        alice
            .iter()
            .all(|u| u.starts_with("https://a.example/users/alice/"))
    );
    // An author whose actor document is not listed still has an id that finds their post.
    assert_eq!(
        by("https://a.example/users/quiet"),
        ["https://a.example/users/quiet/statuses/9"]
    );
    assert!(by("https://a.example/users/nobody").is_empty());
}

#[test]
fn reindex_rebuilds_from_stored_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    {
        let index = Index::open(&path, config()).expect("open");
        fill(&index);
        index.commit().expect("commit");
    }
    let mut calls = Vec::new();
    let report = reindex(&path, config(), &mut |done, total| {
        calls.push((done, total))
    })
    .expect("reindex");
    assert_eq!((report.posts, report.instances, report.dropped), (6, 1, 0));
    assert_eq!(report.actors, 2);
    assert_eq!(calls.last(), Some(&(9, 9)));
    let index = Index::open(&path, config()).expect("reopen");
    assert_eq!(numbers(&index, "sourdough"), [0, 1, 2, 3, 4, 9]);
    let listed = index
        .directory(&DirectoryRequest::default())
        .expect("directory");
    assert_eq!(listed.hits.len(), 2);
    assert!(!path.with_file_name("index.rebuild").exists());
    assert!(!path.with_file_name("index.old").exists());
}

#[test]
fn reindex_of_an_unreadable_index_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = reindex(dir.path(), config(), &mut |_, _| {}).expect_err("no index");
    assert!(matches!(err, plaza_index::Error::Corrupt { .. }), "{err}");
}

#[test]
fn handed_over_posts_become_searchable_without_a_commit_call() {
    let index = Index::in_memory(IndexConfig {
        commit_interval: Duration::from_millis(100),
        ..config()
    })
    .expect("index");
    let alice = actor("a.example", "alice");
    add_note(&index, &alice, 1, "fresh rolls");
    let started = Instant::now();
    while index
        .search_posts(&SearchRequest::new("rolls"))
        .expect("search")
        .hits
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never became searchable"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    index
        .delete_post("https://a.example/users/alice/statuses/1")
        .expect("delete");
    while !index
        .search_posts(&SearchRequest::new("rolls"))
        .expect("search")
        .hits
        .is_empty()
    {
        assert!(started.elapsed() < Duration::from_secs(5), "never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(index.pending(), 0);
}

#[test]
fn a_full_batch_commits_at_once() {
    let index = Index::in_memory(IndexConfig {
        commit_interval: Duration::from_secs(3600),
        commit_docs: 2,
        ..config()
    })
    .expect("index");
    let alice = actor("a.example", "alice");
    // The first post also writes its author: two new documents (no delete: neither id was held)
    // reach the batch size.
    add_note(&index, &alice, 1, "bagel");
    assert_eq!(numbers(&index, "bagel"), [1]);
    assert_eq!(index.pending(), 0);
}

/// Writes an index the way schema version 1 did (the fields of its day, no `account`), holding
/// `actors`, their `posts` (from `host`) and the instance `host`.
fn write_version_1_index(dir: &std::path::Path, host: &str, actors: &[Value], posts: &[Value]) {
    use tantivy::schema::{FAST, INDEXED, STORED, STRING, Schema, TEXT};
    use tantivy::{TantivyDocument, doc};
    let mut b = Schema::builder();
    let kind = b.add_text_field("kind", STRING);
    let id = b.add_text_field("id", STRING | STORED);
    let key = b.add_u64_field("key", INDEXED | FAST | STORED);
    let source = b.add_bytes_field("source", STORED);
    let data = b.add_text_field("data", STORED);
    let instance = b.add_text_field("instance", STRING | FAST);
    let text = b.add_text_field("text", TEXT);
    let author = b.add_text_field("author", STRING | FAST | STORED);
    let handle = b.add_text_field("handle", STRING);
    let schema = b.build();
    std::fs::create_dir_all(dir).expect("mkdir");
    let index = tantivy::Index::create_in_dir(dir, schema).expect("create v1");
    let mut writer = index.writer::<TantivyDocument>(15_000_000).expect("writer");
    for (n, actor) in actors.iter().enumerate() {
        let actor_id = actor["id"].as_str().expect("id");
        writer
            .add_document(doc!(
                kind => "actor", id => actor_id, key => n as u64, author => actor_id,
                source => serde_json::to_vec(actor).expect("json"), data => "{}",
                instance => host, handle => format!("{}@{host}", actor["preferredUsername"].as_str().unwrap_or("")),
            ))
            .expect("actor");
    }
    for (n, post) in posts.iter().enumerate() {
        let post_id = post["id"].as_str().expect("id");
        writer
            .add_document(doc!(
                kind => "post", id => post_id, key => 1000 + n as u64,
                author => post["attributedTo"].as_str().expect("author"),
                source => serde_json::to_vec(&json!({ "instance": host, "object": post })).expect("json"),
                data => "{}", instance => host, text => post["content"].as_str().unwrap_or(""),
            ))
            .expect("post");
    }
    let record = InstanceRecord::new(host, None, None, None);
    writer
        .add_document(doc!(
            kind => "instance", id => host, key => 7u64, instance => host,
            source => serde_json::to_vec(&record).expect("json"),
        ))
        .expect("instance");
    writer.commit().expect("commit v1");
    std::fs::write(dir.join("plaza-schema-version"), "1").expect("version file");
}

#[test]
fn an_index_of_schema_version_1_asks_for_reindex_and_reindex_upgrades_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    let alice = actor("a.example", "alice");
    let quiet = with(actor("a.example", "quiet"), "indexable", json!(false));
    let posts = vec![
        note(
            &alice,
            1,
            "<p>sourdough from version one</p>",
            "2024-01-01T00:00:00Z",
        ),
        note(
            &alice,
            2,
            "<p>rye from version one</p>",
            "2024-01-02T00:00:00Z",
        ),
        // Its author withdrew consent in the stored actor: the rebuild drops it.
        note(
            &quiet,
            3,
            "<p>sourdough nobody may find</p>",
            "2024-01-03T00:00:00Z",
        ),
    ];
    write_version_1_index(&path, "a.example", &[alice.clone(), quiet], &posts);

    let refused = Index::open(&path, config()).expect_err("a version 1 index is not opened as is");
    assert!(
        matches!(refused, plaza_index::Error::SchemaMismatch { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("plaza reindex"), "{refused}");

    let report = reindex(&path, config(), &mut |_, _| {}).expect("reindex a version 1 index");
    assert_eq!((report.posts, report.instances), (2, 1), "{report:?}");
    assert_eq!(
        report.dropped, 1,
        "the non-consenting author's post: {report:?}"
    );

    let index = Index::open(&path, config()).expect("the rebuilt index opens");
    assert_eq!(numbers(&index, "sourdough"), [1]);
    assert_eq!(numbers(&index, "rye"), [2]);
    // What version 2 added works on the rebuilt documents: posts found by account id.
    let by_alice = index
        .search_posts(&SearchRequest {
            account: Some(plaza_index::account_id("https://a.example/users/alice")),
            ..SearchRequest::new("version")
        })
        .expect("search by account");
    assert_eq!(by_alice.hits.len(), 2);
    assert_eq!(index.counts().expect("counts").instances, 1);
}
