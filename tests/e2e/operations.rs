//! Operating the relay: the container health check command and machine-readable logs.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn plaza_health(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plaza"))
        .args(["health", "--url", url])
        .output()
        .expect("run plaza health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_command_reports_a_running_relay_and_a_stopped_one() {
    let mut relay = Relay::start().await;
    let base = relay.base.clone();
    let up = tokio::task::spawn_blocking({
        let base = base.clone();
        move || plaza_health(&base)
    })
    .await
    .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("is healthy"));

    relay.kill();
    let down = tokio::task::spawn_blocking(move || plaza_health(&base))
        .await
        .unwrap();
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_writes_one_object_per_line() {
    let relay = Relay::start_with(&[("PLAZA_LOG_FORMAT", "json")]).await;
    let log = relay.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
    }
    assert!(log.contains("\"listening\""), "{log}");
}

/// `GET /healthz`: status and body.
async fn healthz(relay: &Relay) -> (reqwest::StatusCode, String) {
    let response = reqwest::get(format!("{}/healthz", relay.base))
        .await
        .expect("healthz");
    (response.status(), response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_the_store_cannot_take_inbox_writes() {
    let relay = Relay::start().await;
    let instance = Instance::start(Flavor::Mastodon, &relay).await;
    instance.subscribe(&relay).await;
    assert_eq!(healthz(&relay).await.0, reqwest::StatusCode::OK);

    // Another process holds the database's write lock: the relay's writer cannot begin a transaction
    // (after its busy timeout), as when the disk is full, and refuses the inbox's writes.
    let db = rusqlite::Connection::open(relay.data_dir.join("plaza.db")).expect("open the store");
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let (status, body) = instance
        .post_as_user(&instance.public_create("while the store is locked"))
        .await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = healthz(&relay).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("the store cannot write") && body.contains("locked"),
        "{body}"
    );
    let check = tokio::task::spawn_blocking({
        let base = relay.base.clone();
        move || plaza_health(&base)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        !check.status.success() && stderr.contains("the store cannot write"),
        "the container health check fails with the reason: {stderr}"
    );

    db.execute_batch("ROLLBACK").expect("release the lock");
    // No inbox write comes (a relay out of a load balancer's rotation gets none): the health check's
    // own probe write shows the store recovered.
    let started = std::time::Instant::now();
    while healthz(&relay).await.0 != reqwest::StatusCode::OK {
        assert!(
            started.elapsed() < PATIENCE,
            "healthz never recovered; log: {}",
            relay.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, body) = instance
        .post_as_user(&instance.public_create("after the lock"))
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        healthz(&relay).await,
        (reqwest::StatusCode::OK, "ok".into())
    );
}

/// Runs `plaza migrate` with the store in `data_dir`, or in PostgreSQL at `database_url`.
fn migrate(data_dir: &std::path::Path, database_url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plaza"));
    command.arg("migrate").env("PLAZA_DATA_DIR", data_dir);
    if let Some(url) = database_url {
        command.env("PLAZA_DATABASE_URL", url);
    }
    command.output().expect("run plaza migrate")
}

/// `plaza migrate` makes the schema on an empty database, changes nothing the second time, and
/// refuses a database that a newer release wrote (on both backends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_schema_once_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres::cluster().new_database();
    for database_url in [None, Some(url.as_str())] {
        let backend = if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        for run in 0..2 {
            let out = migrate(dir.path(), database_url);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "run {run} on {backend}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                stdout.trim(),
                format!("store on {backend}: schema version 2, up to date"),
            );
        }
        // The previous release's database (version 1: no nodes nor leases) is brought up to date.
        let previous = "DROP TABLE leases; DROP TABLE nodes; DELETE FROM schema_version; \
                        INSERT INTO schema_version (version, applied_at) VALUES (1, 0)";
        let version_rows = match database_url {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.batch_execute(previous).await.unwrap();
                let out = migrate(dir.path(), database_url);
                assert!(out.status.success(), "{backend}: from version 1");
                client
                    .batch_execute("SELECT COUNT(*) FROM leases; SELECT COUNT(*) FROM nodes")
                    .await
                    .expect("the tables of version 2");
                client
                    .query_one("SELECT COUNT(*) FROM schema_version", &[])
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
            }
            None => {
                let db =
                    rusqlite::Connection::open(dir.path().join(plaza::state::DB_FILE)).unwrap();
                db.execute_batch(previous).unwrap();
                let out = migrate(dir.path(), database_url);
                assert!(out.status.success(), "{backend}: from version 1");
                db.execute_batch("SELECT COUNT(*) FROM leases; SELECT COUNT(*) FROM nodes")
                    .expect("the tables of version 2");
                db.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
                    .unwrap()
            }
        };
        assert_eq!(
            String::from_utf8_lossy(&migrate(dir.path(), database_url).stdout).trim(),
            format!("store on {backend}: schema version 2, up to date"),
        );
        assert_eq!(version_rows, 2, "{backend}: versions 1 and 2 recorded");
        // A release from the future was here.
        match database_url {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client
                    .execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)",
                        &[],
                    )
                    .await
                    .unwrap();
            }
            None => {
                rusqlite::Connection::open(dir.path().join(plaza::state::DB_FILE))
                    .unwrap()
                    .execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)",
                        [],
                    )
                    .unwrap();
            }
        }
        let out = migrate(dir.path(), database_url);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{backend}: a newer schema was used");
        assert!(
            stderr.contains("schema is version 99, newer than this release's (2)"),
            "{backend}: {stderr}"
        );
    }
}

/// The relay actor's published key.
async fn actor_key(relay: &Relay) -> String {
    let actor: Value = reqwest::Client::new()
        .get(relay.actor_id())
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("actor")
        .json()
        .await
        .expect("actor JSON");
    actor["publicKey"]["publicKeyPem"]
        .as_str()
        .expect("publicKeyPem")
        .to_string()
}

/// The subscribed instances the admin API lists.
async fn subscribed(relay: &Relay, token: &str) -> Vec<String> {
    let mut list: Vec<String> = relay
        .admin_subscribers(token)
        .await
        .iter()
        .filter_map(|s| s["instance"].as_str().map(str::to_string))
        .collect();
    list.sort();
    list
}

/// `plaza store copy` moves a relay from SQLite to PostgreSQL: started again on the database, it has
/// its subscribers, signs with the same key, still knows what it saw, and its log continues after
/// the copied entries without delivering them again. A database that holds rows is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_relay_from_sqlite_to_postgres() {
    const TOKEN: &str = "copy-token-5e1a";
    let mut relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    assert_eq!(relay.database_url(), None);
    let [mastodon, pleroma] =
        &subscribed_instances(&relay, &[Flavor::Mastodon, Flavor::Pleroma]).await[..]
    else {
        unreachable!()
    };
    let before = mastodon.public_create("before the move");
    let before_note = before["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = mastodon.post_as_user(&before).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    crate::relay::flush(mastodon, &[pleroma]).await;
    let key = actor_key(&relay).await;
    let subscribers = subscribed(&relay, TOKEN).await;
    assert_eq!(subscribers.len(), 2);
    relay.kill();
    let sqlite_head: i64 = rusqlite::Connection::open(relay.data_dir.join(plaza::state::DB_FILE))
        .unwrap()
        .query_row("SELECT MAX(seq) FROM log", [], |r| r.get(0))
        .unwrap();

    let url = postgres::cluster().new_database();
    let from = format!("sqlite:{}", relay.data_dir.display());
    let copy = |relay: &Relay| relay.command(&["store", "copy", "--from", &from, "--to", &url]);
    let out = copy(&relay);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("subscribers: 2 rows copied"), "{stderr}");
    assert!(
        stdout.contains(&format!("the log continues after seq {sqlite_head}"))
            && stdout.contains("the relay key is now in the database"),
        "{stdout}"
    );
    let again = copy(&relay);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "copied twice");
    assert!(
        stderr.contains("the PostgreSQL database is not empty"),
        "{stderr}"
    );

    relay.set_env("PLAZA_DATABASE_URL", &url);
    relay.start_again().await;
    assert_eq!(subscribed(&relay, TOKEN).await, subscribers);
    assert_eq!(actor_key(&relay).await, key, "the relay signs as before");
    let (status, body) = mastodon.post_as_user(&before).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("duplicate"), "seen before the move: {body}");

    let after = mastodon.public_create("after the move");
    let after_note = after["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = mastodon.post_as_user(&after).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    crate::relay::flush(mastodon, &[pleroma]).await;
    assert_eq!(pleroma.count_mentions(&after_note), 1);
    assert_eq!(
        pleroma.count_mentions(&before_note),
        1,
        "not delivered again"
    );
    assert!(pleroma.refused().is_empty(), "{:?}", pleroma.refused());

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let seqs: Vec<i64> = client
        .query(
            "SELECT seq FROM log WHERE seq > $1 ORDER BY seq",
            &[&sqlite_head],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        seqs.first(),
        Some(&(sqlite_head + 1)),
        "the log continues after the copied entries: {seqs:?}"
    );
}
