//! Every way something leaves the index, and what stays.

mod support;

use plaza_index::{DirectoryRequest, InstanceRecord, SearchRequest, Verdict};
use serde_json::json;
use support::*;
use time::OffsetDateTime;

fn directory_accts(index: &plaza_index::Index) -> Vec<String> {
    let page = index
        .directory(&DirectoryRequest::default())
        .expect("directory");
    let mut accts: Vec<String> = page.hits.into_iter().map(|h| h.account.acct).collect();
    accts.sort();
    accts
}

#[test]
fn delete_of_a_post() {
    let index = index();
    let alice = actor("a.example", "alice");
    add_note(&index, &alice, 1, "jam");
    add_note(&index, &alice, 2, "jam");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [1, 2]);
    index
        .delete_post("https://a.example/users/alice/statuses/1")
        .expect("delete");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [2]);
}

#[test]
fn delete_of_an_actor_takes_posts_and_profile() {
    let index = index();
    let alice = actor("a.example", "alice");
    let bob = actor("a.example", "bob");
    index.upsert_actor(&alice).expect("actor");
    add_note(&index, &alice, 1, "jam");
    add_note(&index, &bob, 2, "jam");
    index.commit().expect("commit");
    assert_eq!(
        directory_accts(&index),
        ["alice@a.example", "bob@a.example"]
    );
    index
        .delete_actor("https://a.example/users/alice")
        .expect("delete");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [2]);
    assert_eq!(directory_accts(&index), ["bob@a.example"]);
    assert!(
        index
            .account("https://a.example/users/alice")
            .expect("lookup")
            .is_none()
    );
}

#[test]
fn update_that_edits_text_replaces() {
    let index = index();
    let alice = actor("a.example", "alice");
    let first = note(&alice, 1, "strawberry jam", "2024-01-01T00:00:00Z");
    index.add_post(&first, &alice, "a.example").expect("add");
    index.commit().expect("commit");
    let update = json!({"type": "Update", "actor": alice["id"],
        "object": with(first, "content", json!("apricot jam"))});
    index
        .add_post(&update, &alice, "a.example")
        .expect("update");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "strawberry"), Vec::<u32>::new());
    assert_eq!(numbers(&index, "apricot"), [1]);
    assert_eq!(index.counts().expect("counts").posts, 1);
}

#[test]
fn update_that_narrows_audience_removes() {
    let index = index();
    let alice = actor("a.example", "alice");
    let post = note(&alice, 1, "jam", "2024-01-01T00:00:00Z");
    index.add_post(&post, &alice, "a.example").expect("add");
    index.commit().expect("commit");
    let followers_only = with(
        post,
        "to",
        json!(["https://a.example/users/alice/followers"]),
    );
    assert_eq!(
        index
            .add_post(&followers_only, &alice, "a.example")
            .expect("update"),
        Verdict::NotPublic
    );
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), Vec::<u32>::new());
}

#[test]
fn actor_turning_indexable_off_removes_posts_but_not_self_consented_ones() {
    let index = index();
    let alice = actor("a.example", "alice");
    let by_actor = note(&alice, 1, "jam", "2024-01-01T00:00:00Z");
    let by_object = with(
        note(&alice, 2, "jam", "2024-01-01T00:00:00Z"),
        "searchableBy",
        json!([PUBLIC]),
    );
    index.add_post(&by_actor, &alice, "a.example").expect("add");
    index
        .add_post(&by_object, &alice, "a.example")
        .expect("add");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [1, 2]);
    let outcome = index
        .upsert_actor(&with(alice, "indexable", json!(false)))
        .expect("update");
    assert_eq!(outcome.posts, Verdict::NotIndexable);
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [2]);
}

#[test]
fn actor_turning_discoverable_off_leaves_the_directory() {
    let index = index();
    let alice = actor("a.example", "alice");
    index.upsert_actor(&alice).expect("actor");
    index.commit().expect("commit");
    assert_eq!(directory_accts(&index), ["alice@a.example"]);
    let outcome = index
        .upsert_actor(&with(alice, "discoverable", json!(false)))
        .expect("update");
    assert_eq!(outcome.listed, Verdict::NotDiscoverable);
    index.commit().expect("commit");
    assert!(directory_accts(&index).is_empty());
    // Still an indexable author: kept for rendering its posts, not listed.
    assert!(
        index
            .account("https://a.example/users/alice")
            .expect("lookup")
            .is_some()
    );
}

#[test]
fn bio_veto_removes_the_profile_and_posts_but_not_self_consented_ones() {
    let index = index();
    let alice = actor("a.example", "alice");
    let by_object = with(
        note(&alice, 1, "jam", "2024-01-01T00:00:00Z"),
        "searchableBy",
        json!([PUBLIC]),
    );
    index
        .add_post(&by_object, &alice, "a.example")
        .expect("add");
    add_note(&index, &alice, 2, "jam");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [1, 2]);
    let vetoed = with(
        alice,
        "summary",
        json!(
            "<p>baker <a href=\"https://a.example/tags/nobot\" class=\"mention hashtag\">#<span>nobot</span></a></p>"
        ),
    );
    let outcome = index.upsert_actor(&vetoed).expect("update");
    assert_eq!(outcome.listed, Verdict::BioVeto);
    assert_eq!(outcome.posts, Verdict::BioVeto);
    index.commit().expect("commit");
    // The post that carried its own searchableBy: Public keeps its consent.
    assert_eq!(numbers(&index, "jam"), [1]);
    assert!(directory_accts(&index).is_empty());
    assert!(
        index
            .account("https://a.example/users/alice")
            .expect("lookup")
            .is_none()
    );
    // And a new one is accepted from the vetoed author, a plain one is not.
    let consented = with(
        note(&vetoed, 3, "jam", "2024-01-02T00:00:00Z"),
        "searchableBy",
        json!([PUBLIC]),
    );
    assert!(
        index
            .add_post(&consented, &vetoed, "a.example")
            .expect("add")
            .allowed()
    );
    let plain = note(&vetoed, 4, "jam", "2024-01-02T00:00:00Z");
    assert_eq!(
        index.add_post(&plain, &vetoed, "a.example").expect("add"),
        Verdict::BioVeto
    );
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [1, 3]);
    assert!(directory_accts(&index).is_empty(), "still not listed");
}

#[test]
fn opting_out_of_everything_keeps_self_consented_posts() {
    let index = index();
    let alice = actor("a.example", "alice");
    let by_object = with(
        note(&alice, 1, "jam", "2024-01-01T00:00:00Z"),
        "searchableBy",
        json!([PUBLIC]),
    );
    index
        .add_post(&by_object, &alice, "a.example")
        .expect("add");
    add_note(&index, &alice, 2, "jam");
    index.commit().expect("commit");
    let gone = with(
        with(alice, "indexable", json!(false)),
        "discoverable",
        json!(false),
    );
    let outcome = index.upsert_actor(&gone).expect("update");
    assert_eq!(outcome.posts, Verdict::NotIndexable);
    assert_eq!(outcome.listed, Verdict::NotDiscoverable);
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [1]);
    assert!(directory_accts(&index).is_empty());
}

#[test]
fn an_instance_leaving_takes_its_documents() {
    let index = index();
    let alice = actor("a.example", "alice");
    let bob = actor("b.example", "bob");
    add_note(&index, &alice, 1, "jam");
    add_note(&index, &bob, 2, "jam");
    index
        .upsert_instance(&InstanceRecord::new("a.example", None, None, None))
        .expect("instance");
    index.commit().expect("commit");
    assert_eq!(index.counts().expect("counts").instances, 1);
    index.delete_instance_docs("A.example").expect("purge");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [2]);
    assert_eq!(directory_accts(&index), ["bob@b.example"]);
    assert_eq!(index.counts().expect("counts").instances, 0);
}

#[test]
fn retention_purges_old_posts() {
    let index = index();
    let alice = actor("a.example", "alice");
    index
        .add_post(
            &note(&alice, 1, "jam", "2020-01-01T00:00:00Z"),
            &alice,
            "a.example",
        )
        .expect("add");
    index
        .add_post(
            &note(&alice, 2, "jam", "2024-06-01T00:00:00Z"),
            &alice,
            "a.example",
        )
        .expect("add");
    index.commit().expect("commit");
    let cutoff = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    index.purge_older_than(cutoff).expect("purge");
    index.commit().expect("commit");
    assert_eq!(numbers(&index, "jam"), [2]);
    // Actors are not posts: the directory keeps alice.
    assert_eq!(directory_accts(&index), ["alice@a.example"]);
}

#[test]
fn refused_posts_never_enter() {
    let index = index();
    let quiet = with(actor("a.example", "quiet"), "indexable", json!(null));
    let verdict = index
        .add_post(
            &note(&quiet, 1, "jam", "2024-01-01T00:00:00Z"),
            &quiet,
            "a.example",
        )
        .expect("add");
    assert_eq!(verdict, Verdict::NotIndexable);
    index.commit().expect("commit");
    assert_eq!(index.counts().expect("counts").posts, 0);
    assert!(
        index
            .search_posts(&SearchRequest::new("jam"))
            .expect("search")
            .hits
            .is_empty()
    );
}

#[test]
fn an_authors_changed_bio_is_read_again_for_their_next_post() {
    let index = index();
    let alice = actor("a.example", "alice");
    let first = note(&alice, 1, "jam", "2026-11-01T10:00:00Z");
    assert_eq!(
        index.add_post(&first, &alice, "a.example").expect("add"),
        Verdict::Allowed
    );
    // The same author document again: the kept verdict answers.
    let second = note(&alice, 2, "jam", "2026-11-01T11:00:00Z");
    assert_eq!(
        index.add_post(&second, &alice, "a.example").expect("add"),
        Verdict::Allowed
    );
    // A veto in the bio is a new document: read again, and it refuses.
    let vetoed = with(alice.clone(), "summary", json!("<p>please #nobot</p>"));
    let third = note(&vetoed, 3, "jam", "2026-11-01T12:00:00Z");
    assert_eq!(
        index.add_post(&third, &vetoed, "a.example").expect("add"),
        Verdict::BioVeto
    );
}
