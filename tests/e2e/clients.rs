//! Real Mastodon client libraries against the relay: Mastodon.py (Python) and masto.js (the library
//! behind Elk), installed from their registries at pinned versions by `.ci/run` into `target/clients`
//! (`tests/clients/requirements.txt`, `tests/clients/package-lock.json`). Each runs what an app does
//! first (tests/clients/: read the instance, search, page through a hashtag timeline, open a status,
//! read the public timeline, then Explore: the status's author by handle and by id, their statuses
//! page by page, the profile directory, the hashtag with its week of history) against a relay whose
//! index holds a consenting author's posts, and prints what it saw; the test checks it. Without the libraries installed the test fails and says how to
//! install them: it never passes silently.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Flavor, Instance, PATIENCE, Relay};

/// The hashtag of four of the author's five posts.
const TAG: &str = "coop";

/// Where `.ci/run` installs the client libraries (`PLAZA_TEST_CLIENTS` overrides it).
fn clients_dir() -> PathBuf {
    std::env::var_os("PLAZA_TEST_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients"))
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The author's posts, oldest first, a second apart and just now (so that the hashtag's seven days of
/// history count them, on one day): (text, hashtags, published).
fn posts() -> Vec<(String, Vec<&'static str>, String)> {
    let now = time::OffsetDateTime::now_utc();
    (0..5i64)
        .map(|n| {
            let tags = if n == 2 { vec![] } else { vec![TAG] };
            let published = (now - time::Duration::seconds(5 - n))
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format");
            (
                format!("sourdough loaf number {n} from the co-op ovens"),
                tags,
                published,
            )
        })
        .collect()
}

/// A relay with one subscribed instance whose Organization consents to search and has posted
/// [`posts`]; returns the posts' ids, oldest first. The per-IP limit stays at its default, as a client
/// meets it.
async fn world() -> (Relay, Arc<Instance>, Vec<String>) {
    let relay = Relay::start().await;
    let coop = Instance::start(Flavor::Mastodon, &relay).await;
    coop.set_user_fields(json!({
        "type": "Organization",
        "name": "The Bakery Co-op",
        "indexable": true,
        "discoverable": true,
        "published": "2024-03-01T12:00:00Z",
    }));
    coop.subscribe(&relay).await;
    let mut ids = Vec::new();
    for (text, tags, published) in posts() {
        let mut create = coop.public_create(&text);
        create["object"]["published"] = json!(published);
        create["object"]["tag"] = tags
            .iter()
            .map(|t| json!({ "type": "Hashtag", "name": format!("#{t}"), "href": format!("{}/tags/{t}", coop.base) }))
            .collect();
        let (status, body) = coop.post_as_user(&create).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(create["object"]["id"].as_str().expect("id").to_string());
    }
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let url = format!("{}/api/v1/timelines/public?limit=40", relay.base);
        let indexed = match client.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => r.json::<Value>().await.ok(),
            _ => None,
        };
        if indexed.and_then(|v| v.as_array().map(Vec::len)) == Some(ids.len()) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the posts were not indexed; log: {}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (relay, coop, ids)
}

/// Runs one client script and reads what it printed.
async fn run_client(name: &str, mut command: tokio::process::Command, relay: &Relay) -> Value {
    command
        .args([relay.base.as_str(), "sourdough", TAG])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish in 90 s; relay log: {}", relay.log()))
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// What every client must have seen: `ids` are the posts oldest first.
fn check_client(seen: &Value, relay: &Relay, coop: &Instance, ids: &[String]) {
    let name = seen["client"].as_str().unwrap_or("client");
    let host = relay.base.trim_start_matches("http://");
    assert_eq!(seen["instance_domain"], host, "{name}: {seen}");
    assert_eq!(seen["api_version"], 2, "{name}: {seen}");
    assert!(
        seen["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("4.3.0")),
        "{name}: {seen}"
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found = strings(&seen["search"]);
    found.sort();
    let mut all = ids.to_vec();
    all.sort();
    assert_eq!(found, all, "{name}: the search finds every post: {seen}");
    // The hashtag timeline, newest first, two per page, the untagged post left out.
    let tagged: Vec<String> = ids
        .iter()
        .enumerate()
        .rev()
        .filter(|(n, _)| *n != 2)
        .map(|(_, id)| id.clone())
        .collect();
    let pages = seen["tag_pages"].as_array().expect("tag_pages");
    assert_eq!(
        strings(&pages[0]),
        tagged[..2],
        "{name}: first page: {seen}"
    );
    assert_eq!(
        strings(&pages[1]),
        tagged[2..],
        "{name}: second page: {seen}"
    );
    assert!(
        pages[2..].iter().all(|p| strings(p).is_empty()),
        "{name}: nothing after the last page: {seen}"
    );
    if !seen["tag_back"].is_null() {
        assert_eq!(
            strings(&seen["tag_back"]),
            tagged[..2],
            "{name}: the previous page: {seen}"
        );
    }
    assert_eq!(seen["status"], tagged[0].as_str(), "{name}: {seen}");
    assert_eq!(
        seen["status_account"],
        format!("alice@{}", coop.authority()),
        "{name}: {seen}"
    );
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        strings(&seen["public"]),
        newest_first,
        "{name}: public timeline: {seen}"
    );

    // Explore: the author by handle and by id (the id is the hash of the actor id), their statuses
    // two per page to the end, the ones with the hashtag, the directory, the hashtag's week.
    let acct = format!("alice@{}", coop.authority());
    let id = plaza_index::account_id(&coop.user()).to_string();
    assert_eq!(
        seen["lookup"],
        json!({ "id": id, "acct": acct, "display_name": "The Bakery Co-op" }),
        "{name}: {seen}"
    );
    assert_eq!(
        seen["account_by_id"],
        json!({ "id": id, "acct": acct }),
        "{name}: {seen}"
    );
    let pages = seen["account_pages"].as_array().expect("account_pages");
    assert_eq!(strings(&pages[0]), newest_first[..2], "{name}: {seen}");
    assert_eq!(strings(&pages[1]), newest_first[2..4], "{name}: {seen}");
    let rest: Vec<String> = pages[2..].iter().flat_map(&strings).collect();
    assert_eq!(rest, newest_first[4..], "{name}: the last page: {seen}");
    assert_eq!(strings(&seen["account_tagged"]), tagged, "{name}: {seen}");
    assert_eq!(strings(&seen["directory"]), [acct], "{name}: {seen}");
    assert_eq!(
        seen["tag"],
        json!({ "name": TAG, "following": false, "days": 7, "uses": 4, "accounts": 1 }),
        "{name}: four posts by one account this week: {seen}"
    );
}

fn missing(what: &str, path: &Path) -> ! {
    panic!(
        "{what} is not installed at {}: run `bash .ci/run` once (it installs the pinned client \
         libraries into target/clients: Mastodon.py in a Python venv, masto.js with npm; Debian \
         packages python3-venv and npm), or point PLAZA_TEST_CLIENTS at such a directory",
        path.display()
    )
}

#[tokio::test]
async fn mastodon_py_reads_the_relay() {
    let python = clients_dir().join("venv/bin/python");
    if !python.exists() {
        missing("Mastodon.py", &python);
    }
    let (relay, coop, ids) = world().await;
    let mut command = tokio::process::Command::new(&python);
    command.arg(scripts_dir().join("mastodon_py.py"));
    let seen = run_client("Mastodon.py", command, &relay).await;
    check_client(&seen, &relay, &coop, &ids);
}

#[tokio::test]
async fn masto_js_reads_the_relay() {
    let modules = clients_dir().join("npm/node_modules");
    if !modules.join("masto/package.json").exists() {
        missing("masto.js", &modules);
    }
    let (relay, coop, ids) = world().await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(scripts_dir().join("masto.cjs"))
        .env("NODE_PATH", &modules);
    let seen = run_client("masto.js", command, &relay).await;
    check_client(&seen, &relay, &coop, &ids);
}
