//! The throwaway PostgreSQL cluster of `support/postgres.rs` that the store's PostgreSQL backend is tested
//! against: its databases are separate, its URLs connect, and the server is the test's own child, on a
//! Unix socket only, never running as root.

use std::collections::HashSet;
use std::fs;
use std::str::FromStr;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::support::postgres;

/// A connection to `url`, its connection future driven by a task of its own.
async fn connect(url: &str) -> Client {
    let config = Config::from_str(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("PostgreSQL connection: {e}");
        }
    });
    client
}

/// The value of a field (`Uid:`, `PPid:`) of `/proc/{pid}/status`.
fn proc_status(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} for {pid}"));
    line[field.len()..].trim().to_string()
}

/// The socket inodes of the TCP sockets listening on this machine (`/proc/net/tcp` and `tcp6`).
fn tcp_listening_inodes() -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // `st` 0A is LISTEN; the tenth column is the inode.
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    inodes
}

/// The socket inodes among a process's open files.
fn socket_inodes(pid: u32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn databases_are_separate_and_empty() {
    let cluster = postgres::cluster();
    let first_url = cluster.new_database();
    let second_url = cluster.new_database();
    assert_ne!(first_url, second_url);
    for url in [&first_url, &second_url] {
        assert!(url.starts_with("postgres://"), "{url}");
    }

    let first = connect(&first_url).await;
    let second = connect(&second_url).await;
    first
        .batch_execute("CREATE TABLE entries (id bigint PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    first
        .execute("INSERT INTO entries VALUES ($1, $2)", &[&1i64, &"hello"])
        .await
        .unwrap();
    let body: String = first
        .query_one("SELECT body FROM entries WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, "hello");

    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'entries'";
    let in_first: i64 = first.query_one(tables, &[]).await.unwrap().get(0);
    let in_second: i64 = second.query_one(tables, &[]).await.unwrap().get(0);
    assert_eq!((in_first, in_second), (1, 0));
    let error = second
        .query("SELECT * FROM entries", &[])
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
        "{error}"
    );
    let database: String = second
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        second_url.ends_with(&format!("/{database}")),
        "{database} in {second_url}"
    );
}

#[tokio::test]
async fn urls_name_the_socket_directory_in_either_form() {
    let url = postgres::cluster().new_database();
    // The form the harness returns: the socket directory percent-encoded as the host.
    let config = Config::from_str(&url).unwrap();
    let [Host::Unix(dir)] = config.get_hosts() else {
        panic!("not one Unix socket host: {url}")
    };
    assert!(
        dir.join(".s.PGSQL.5432").exists(),
        "no socket in {}",
        dir.display()
    );
    assert!(url.contains("@%2F"), "{url}");
    let client = connect(&url).await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // The other form: no host in the authority, the directory and port as parameters.
    let other = format!(
        "postgres://{}@/{}?host={}&port={}",
        config.get_user().unwrap(),
        config.get_dbname().unwrap(),
        dir.display(),
        config.get_ports()[0]
    );
    let client = connect(&other).await;
    let database: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(Some(database.as_str()), config.get_dbname());
}

#[tokio::test]
async fn the_server_is_our_unprivileged_child_on_a_socket_only() {
    let client = connect(&postgres::cluster().new_database()).await;
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper, pg_backend_pid(), current_setting('listen_addresses') \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    let (user, superuser, backend, listen): (String, bool, i32, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (user.as_str(), superuser),
        ("plaza", true),
        "initdb's superuser"
    );
    assert_eq!(listen, "");

    // The backend's parent is the postmaster, whose parent is this test process.
    let postmaster: u32 = proc_status(backend as u32, "PPid:").parse().unwrap();
    assert_eq!(
        proc_status(postmaster, "PPid:"),
        std::process::id().to_string()
    );

    // Real, effective, saved and filesystem user ids: never root; ours when we are not root.
    // SAFETY: geteuid has no preconditions.
    let our_uid = unsafe { libc::geteuid() };
    for pid in [postmaster, backend as u32] {
        let uids: Vec<u32> = proc_status(pid, "Uid:")
            .split_whitespace()
            .map(|uid| uid.parse().unwrap())
            .collect();
        assert_eq!(uids.len(), 4);
        for uid in uids {
            if our_uid == 0 {
                assert_ne!(uid, 0, "the server of a root test runs as root");
            } else {
                assert_eq!(uid, our_uid);
            }
        }
    }

    // None of the postmaster's sockets listens on TCP.
    let sockets = socket_inodes(postmaster);
    assert!(!sockets.is_empty(), "the postmaster holds no socket");
    let listening = tcp_listening_inodes();
    assert!(
        sockets.iter().all(|inode| !listening.contains(inode)),
        "the postmaster listens on TCP"
    );
}
