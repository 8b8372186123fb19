//! The end-to-end test world: the real `plaza` binary on a random loopback port, and simulated fediverse
//! instances, each an axum server on its own loopback address (127.0.0.x) with its own RSA keys.
//!
//! The instances sign like the servers they imitate (Mastodon: cavage `rsa-sha256` with
//! `(request-target)` last; GoToSocial: `hs2019`, keyId without fragment whose URL serves a stub of the
//! actor holding the key; Pleroma: LitePub relay actor, `content-length` signed) and verify every request the
//! relay sends them against the relay actor's published key. Their signing and verifying use the
//! pure-Rust `rsa` crate and a signature parser written here, independent of the relay's own code, so a
//! bug on one side is not mirrored on the other.
//!
//! Requests from the relay are checked as draft-cavage or RFC 9421, whichever they carry; an instance can
//! be told to accept only RFC 9421 (401 to draft-cavage) and records the scheme of every request, and
//! it can sign its own requests with RFC 9421.

#![allow(dead_code)]

pub mod postgres;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// How long any wait in the tests lasts at most.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` until it is true or [`PATIENCE`] runs out.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GETs `url` and reads its body as JSON; panics, naming the URL, when the request fails or the body is
/// not JSON.
pub async fn get_json(url: impl reqwest::IntoUrl + std::fmt::Display) -> Value {
    let shown = url.to_string();
    let response = send_get(url).await;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {shown}: body: {e}"));
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        let body = String::from_utf8_lossy(&body);
        panic!("GET {shown}: {status}, body not JSON ({e}): {body}")
    })
}

/// GETs `url`: the status and the body as JSON, `Null` when there is no JSON to read (an error page, a
/// node not ready yet); panics, naming the URL, only when the request fails.
pub async fn get_status_json(
    url: impl reqwest::IntoUrl + std::fmt::Display,
) -> (StatusCode, Value) {
    let response = send_get(url).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GETs `url` and reads its body as text; panics, naming the URL, when the request fails.
pub async fn get_text(url: impl reqwest::IntoUrl + std::fmt::Display) -> String {
    let shown = url.to_string();
    send_get(url)
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {shown}: body: {e}"))
}

/// Sends a GET to `url`; panics, naming the URL, when it fails.
async fn send_get(url: impl reqwest::IntoUrl + std::fmt::Display) -> reqwest::Response {
    let shown = url.to_string();
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {shown}: {e}"))
}

/// A port free on `ip` right now.
pub fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

static NEXT_HOST: AtomicU8 = AtomicU8::new(2);

/// A loopback address of its own for each simulated instance.
pub fn next_loopback() -> IpAddr {
    let n = NEXT_HOST.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) + 1, (n % 250) + 2))
}

// ------------------------------------------------------------------------------------------------
// The relay process
// ------------------------------------------------------------------------------------------------

/// Which store the relays a test starts keep their state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the relay's data directory (the default).
    Sqlite,
    /// A fresh database of the tests' own PostgreSQL cluster ([`postgres::cluster`]).
    Postgres,
}

tokio::task_local! {
    /// The backend of the relays started inside [`on_both_backends!`]'s PostgreSQL twins; SQLite
    /// elsewhere.
    pub static BACKEND: Backend;
}

/// Runs each named test, an `async fn()` of the module it is invoked in, twice: its relays on SQLite
/// (`on_sqlite::name`) and on PostgreSQL (`on_postgres::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name().await
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::BACKEND
                        .scope($crate::support::Backend::Postgres, super::$name())
                        .await
                }
            )+
        }
    };
}

/// A TCP load balancer on a loopback port in front of several relay nodes: each connection goes to a
/// node picked at random, or to the next one when that one does not answer (a dead node), as a
/// balancer with health checks would.
pub struct Balancer {
    /// `http://127.0.0.1:PORT`, the relay's public URL.
    pub base: String,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// A balancer with no node behind it yet.
    pub async fn start() -> Balancer {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the balancer");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let known = backends.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut order = known.lock().unwrap().clone();
                if order.is_empty() {
                    continue;
                }
                let first = fastrand::usize(..order.len());
                order.rotate_left(first);
                tokio::spawn(async move {
                    for backend in order {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer {
            base,
            backends,
            task,
        }
    }

    /// Puts a node behind the balancer.
    pub fn add(&self, node: SocketAddr) {
        self.backends.lock().unwrap().push(node);
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real relay binary, killed on drop.
pub struct Relay {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    extra_env: Vec<(String, String)>,
}

impl Relay {
    /// Starts a relay with a fresh data directory.
    pub async fn start() -> Relay {
        Self::start_with(&[]).await
    }

    /// Starts a relay with extra `PLAZA_*` settings.
    pub async fn start_with(env: &[(&str, &str)]) -> Relay {
        let mut extra: Vec<(String, String)> = Vec::new();
        if BACKEND.try_with(|b| *b) == Ok(Backend::Postgres) {
            let url = postgres::cluster().new_database();
            extra.push(("PLAZA_DATABASE_URL".into(), url));
        }
        let relay = Relay::spawn_with(env, extra).await;
        if let Some(url) = relay.database_url() {
            // The relay made its schema in that database: its state is there, not in a SQLite file.
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect to the relay's database");
            tokio::spawn(connection);
            let versions: i64 = client
                .query_one("SELECT COUNT(*) FROM schema_version", &[])
                .await
                .expect("the relay's schema in its PostgreSQL database")
                .get(0);
            assert_eq!(
                versions, 1,
                "the relay did not migrate its PostgreSQL database"
            );
            assert!(
                !relay.data_dir.join(plaza::state::DB_FILE).exists(),
                "a relay on PostgreSQL made a SQLite store too"
            );
        }
        relay
    }

    /// Starts one node of a relay that several nodes serve: its own port and data directory, the
    /// relay's public URL (a [`Balancer`]'s) and PostgreSQL database, and `node_id`.
    pub async fn start_node(
        public_url: &str,
        database_url: &str,
        node_id: &str,
        env: &[(&str, &str)],
    ) -> Relay {
        let extra = [
            ("PLAZA_PUBLIC_URL", public_url),
            ("PLAZA_DATABASE_URL", database_url),
            ("PLAZA_NODE_ID", node_id),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        Relay::spawn_with(env, extra.into()).await
    }

    /// A relay process on a free loopback port with a fresh data directory, its settings `env` then
    /// `extra`, up and answering.
    async fn spawn_with(env: &[(&str, &str)], extra: Vec<(String, String)>) -> Relay {
        let tmp = tempfile::tempdir().expect("tempdir");
        let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(extra)
            .collect();
        let mut relay = Relay {
            base: format!("http://127.0.0.1:{port}"),
            port,
            data_dir: tmp.path().join("data"),
            _tmp: Some(tmp),
            child: None,
            extra_env,
        };
        relay.spawn().await;
        relay
    }

    /// The node's own address (behind a balancer, `base` is the node's, not the relay's).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// What `/healthz/node` says of this node: its id, leases and lag.
    pub async fn node_health(&self) -> Value {
        get_json(format!("{}/healthz/node", self.base)).await
    }

    /// Describes a relay the test runs inside its own process (`plaza::app::run`): nothing to start or
    /// kill, the same helpers to talk to it.
    pub fn in_process(base: &str, port: u16, data_dir: PathBuf) -> Relay {
        Relay {
            base: base.to_string(),
            port,
            data_dir,
            _tmp: None,
            child: None,
            extra_env: Vec::new(),
        }
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_plaza"))
            .arg("serve")
            .env("PLAZA_PUBLIC_URL", &self.base)
            .env("PLAZA_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLAZA_DATA_DIR", &self.data_dir)
            .env("PLAZA_ALLOW_PRIVATE_NETWORKS", "true")
            .env("PLAZA_RETRY_INITIAL_MS", "100")
            .env("PLAZA_RETRY_MAX_SECS", "1")
            .env("RUST_LOG", "plaza=debug,info")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start plaza");
        self.child = Some(child);
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "relay did not come up; log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The PostgreSQL database the relay keeps its state in; `None` for SQLite in its data directory.
    pub fn database_url(&self) -> Option<&str> {
        self.extra_env
            .iter()
            .find(|(k, _)| k == "PLAZA_DATABASE_URL")
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or replaces) a `PLAZA_*` setting for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_string(), value.to_string()));
    }

    /// Kills the process (SIGKILL: no graceful shutdown) and starts it again on the same data.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Starts the process again on the same data after [`Relay::kill`].
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Runs another `plaza` command (e.g. `reindex`) with this relay's configuration; its output.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_plaza"))
            .args(args)
            .env("PLAZA_PUBLIC_URL", &self.base)
            .env("PLAZA_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLAZA_DATA_DIR", &self.data_dir)
            .env("PLAZA_ALLOW_PRIVATE_NETWORKS", "true")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run plaza")
    }

    /// Stops the process the way a service manager does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    pub fn actor_id(&self) -> String {
        format!("{}/actor", self.base)
    }

    pub fn inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    /// A request to the admin API at `path` (under `/api/v1/admin`), with `token` as bearer when given.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request =
            reqwest::Client::new().request(method, format!("{}/api/v1/admin{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("admin request")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        get_text(format!("{}/metrics", self.base)).await
    }

    /// The value of an unlabelled series of `/metrics` (`None` when absent).
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let text = self.metrics().await;
        text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Waits until `/metrics` shows `name` at `value` or more.
    pub async fn until_metric_at_least(&self, name: &str, value: u64) {
        let start = Instant::now();
        while self.metric(name).await.is_none_or(|v| v < value) {
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {name} >= {value}; metrics: {}",
                self.metrics().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/metrics` shows `name` at 0: for `plaza_indexer_lag_entries`, the indexer has handed
    /// every log entry to the index; for `plaza_subscriber_lag_entries`, every subscriber's persisted
    /// delivery cursor has reached the log head. An absence check made after it cannot pass merely
    /// because the work it checks has not happened yet.
    pub async fn until_caught_up(&self, lag_metric: &str) {
        let start = Instant::now();
        while self.metric(lag_metric).await != Some(0) {
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {lag_metric} 0; metrics: {}",
                self.metrics().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The admin API's subscriber list.
    pub async fn admin_subscribers(&self, token: &str) -> Vec<Value> {
        let list: Value = self
            .admin(reqwest::Method::GET, "/subscribers", Some(token))
            .await
            .json()
            .await
            .expect("subscriber list");
        list["subscribers"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- relay log ----\n{}", self.log());
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Keys and signatures (independent of the relay's implementation)
// ------------------------------------------------------------------------------------------------

/// An RSA key pair of a simulated actor.
#[derive(Clone)]
pub struct Keys {
    signing: SigningKey<Sha256>,
    pub public_pem: String,
}

impl Keys {
    pub fn generate() -> Keys {
        // Generated with aws-lc (fast), used through the independent `rsa` crate.
        let pair = plaza::httpsig::PrivateKey::generate().expect("keygen");
        let signing = SigningKey::<Sha256>::from_pkcs8_pem(&pair.to_pkcs8_pem().expect("pem"))
            .expect("pkcs8");
        Keys {
            signing,
            public_pem: pair.public_key_pem().to_string(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.signing.sign(message).to_vec())
    }
}

/// How an instance signs its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mastodon,
    GoToSocial,
    Pleroma,
    /// A server built on Fedify before 2.3 (Hollo and others): its instance actor is an `Application`
    /// at a sentinel identifier, `/users/__instance__`, and it signs with RFC 9421 first.
    Fedify,
}

/// Builds the headers of a signed POST the way `flavor` does.
pub fn signed_post_headers(
    flavor: Flavor,
    keys: &Keys,
    key_id: &str,
    url: &str,
    body: &[u8],
    date: SystemTime,
) -> Vec<(String, String)> {
    let url = url::Url::parse(url).expect("url");
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let target = format!("post {}", url.path());
    let date = httpdate::fmt_http_date(date);
    let digest = format!("SHA-256={}", B64.encode(Sha256::digest(body)));
    let content_type = "application/activity+json".to_string();
    let length = body.len().to_string();
    let (names, algorithm): (&[&str], &str) = match flavor {
        Flavor::Mastodon => (
            &["host", "date", "digest", "content-type", "(request-target)"],
            "rsa-sha256",
        ),
        Flavor::GoToSocial => (&["(request-target)", "host", "date", "digest"], "hs2019"),
        Flavor::Fedify => (
            &["(request-target)", "host", "date", "digest"],
            "rsa-sha256",
        ),
        Flavor::Pleroma => (
            &[
                "(request-target)",
                "content-length",
                "date",
                "digest",
                "host",
            ],
            "rsa-sha256",
        ),
    };
    let value = |name: &str| -> String {
        match name {
            "(request-target)" => target.clone(),
            "host" => host.clone(),
            "date" => date.clone(),
            "digest" => digest.clone(),
            "content-type" => content_type.clone(),
            "content-length" => length.clone(),
            other => panic!("unknown header {other}"),
        }
    };
    let signing_string: Vec<String> = names.iter().map(|n| format!("{n}: {}", value(n))).collect();
    let signature = keys.sign(signing_string.join("\n").as_bytes());
    let header = format!(
        "keyId=\"{key_id}\",algorithm=\"{algorithm}\",headers=\"{}\",signature=\"{signature}\"",
        names.join(" ")
    );
    vec![
        ("Host".into(), host),
        ("Date".into(), date),
        ("Digest".into(), digest),
        ("Content-Type".into(), content_type),
        ("Signature".into(), header),
    ]
}

/// Builds the headers of a POST signed with RFC 9421 the way Fedify and Mastodon 4.5 do: `@method`,
/// `@target-uri`, `content-digest` (RFC 9530) and `content-type`, `created`, `keyid`, `rsa-v1_5-sha256`.
pub fn signed_post_headers_rfc9421(
    keys: &Keys,
    key_id: &str,
    url: &str,
    body: &[u8],
    date: SystemTime,
) -> Vec<(String, String)> {
    let created = date
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let digest = format!("sha-256=:{}:", B64.encode(Sha256::digest(body)));
    let content_type = "application/activity+json";
    let params = format!(
        "(\"@method\" \"@target-uri\" \"content-digest\" \"content-type\");created={created};keyid=\"{key_id}\";alg=\"rsa-v1_5-sha256\""
    );
    let base = format!(
        "\"@method\": POST\n\"@target-uri\": {url}\n\"content-digest\": {digest}\n\"content-type\": {content_type}\n\"@signature-params\": {params}"
    );
    let signature = keys.sign(base.as_bytes());
    vec![
        ("Content-Digest".into(), digest),
        ("Content-Type".into(), content_type.into()),
        ("Signature-Input".into(), format!("sig1={params}")),
        ("Signature".into(), format!("sig1=:{signature}:")),
    ]
}

/// Parses `k="v",k2="v2"` (the draft-cavage Signature header).
fn signature_params(header: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for part in header.split("\",") {
        if let Some((k, v)) = part.split_once('=') {
            out.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Simulated instances
// ------------------------------------------------------------------------------------------------

/// A request the relay sent to an instance, after verification.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub activity: Value,
    /// The keyId that signed the request: the relay actor's, or a topic actor's.
    pub key_id: String,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    refused: Vec<String>,
    objects: HashMap<String, Value>,
    /// The relay's keys fetched so far (its actor's and its topics'), by keyId.
    relay_keys: HashMap<String, VerifyingKey<Sha256>>,
    /// Properties added to alice's actor document (consent flags, bio…).
    user_fields: serde_json::Map<String, Value>,
    /// Every path the relay GET here, in order.
    fetched: Vec<String>,
    /// Bodies served as they are (content type, bytes), by path: documents that are not JSON.
    raw: HashMap<String, (String, Vec<u8>)>,
    /// Answer 401 to draft-cavage signatures, as a server that retired them would.
    rfc9421_only: bool,
    /// The signature scheme of every POST from the relay, in order ("cavage" or "rfc9421").
    attempts: Vec<&'static str>,
    /// A shared inbox to publish instead of this instance's own.
    shared_inbox: Option<String>,
    /// Statuses answered to GETs of these paths instead of their documents.
    statuses: HashMap<String, u16>,
    /// Answer 401 to unsigned (or badly signed) GETs of hosted objects, as a Mastodon in secure mode
    /// (authorized fetch) does.
    signed_fetches: bool,
}

/// A fake fediverse server.
pub struct Instance {
    pub flavor: Flavor,
    pub addr: SocketAddr,
    pub base: String,
    pub instance_keys: Keys,
    pub user_keys: Keys,
    relay_base: String,
    inner: Arc<Mutex<Inner>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counter: AtomicUsize,
}

#[derive(Clone)]
struct Shared {
    flavor: Flavor,
    base: String,
    relay_base: String,
    instance_pem: String,
    user_pem: String,
    inner: Arc<Mutex<Inner>>,
}

impl Instance {
    /// Starts an instance of `flavor` that knows the relay at `relay`.
    pub async fn start(flavor: Flavor, relay: &Relay) -> Arc<Instance> {
        Self::start_for(flavor, &relay.base).await
    }

    /// Starts an instance of `flavor` that knows a relay (in this process or not) at `relay_base`.
    pub async fn start_for(flavor: Flavor, relay_base: &str) -> Arc<Instance> {
        let ip = next_loopback();
        let port = free_port(ip);
        let addr = SocketAddr::new(ip, port);
        let instance = Arc::new(Instance {
            flavor,
            addr,
            base: format!("http://{addr}"),
            instance_keys: Keys::generate(),
            user_keys: Keys::generate(),
            relay_base: relay_base.to_string(),
            inner: Arc::new(Mutex::new(Inner::default())),
            server: Mutex::new(None),
            counter: AtomicUsize::new(0),
        });
        instance.up().await;
        instance
    }

    /// (Re)starts listening.
    pub async fn up(&self) {
        let shared = Shared {
            flavor: self.flavor,
            base: self.base.clone(),
            relay_base: self.relay_base.clone(),
            instance_pem: self.instance_keys.public_pem.clone(),
            user_pem: self.user_keys.public_pem.clone(),
            inner: self.inner.clone(),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = {
            let start = Instant::now();
            loop {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(e) if start.elapsed() < PATIENCE => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("bind {}: {e}", self.addr),
                }
            }
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().unwrap() = Some(task);
    }

    /// Stops listening: connections are refused until [`Instance::up`].
    pub async fn down(&self) {
        let task = self.server.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// The authority the relay knows this instance by.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The actor that subscribes to relays.
    pub fn instance_actor(&self) -> String {
        match self.flavor {
            Flavor::Mastodon => format!("{}/actor", self.base),
            Flavor::GoToSocial => format!("{}/users/{}", self.base, self.addr.ip()),
            Flavor::Pleroma => format!("{}/relay", self.base),
            Flavor::Fedify => format!("{}/users/__instance__", self.base),
        }
    }

    pub fn instance_key_id(&self) -> String {
        match self.flavor {
            Flavor::GoToSocial => format!("{}/main-key", self.instance_actor()),
            _ => format!("{}#main-key", self.instance_actor()),
        }
    }

    pub fn user(&self) -> String {
        format!("{}/users/alice", self.base)
    }

    pub fn user_key_id(&self) -> String {
        match self.flavor {
            Flavor::GoToSocial => format!("{}/main-key", self.user()),
            _ => format!("{}#main-key", self.user()),
        }
    }

    /// From now on, accept only RFC 9421 signatures: draft-cavage ones get 401.
    /// From now on, GETs of hosted objects ([`Instance::host_object`]) must be signed by the relay
    /// (draft-cavage or RFC 9421), as on a Mastodon in secure mode; refusals are listed in
    /// [`Instance::refused`].
    pub fn require_signed_fetches(&self) {
        self.inner.lock().unwrap().signed_fetches = true;
    }

    pub fn accept_only_rfc9421(&self) {
        self.inner.lock().unwrap().rfc9421_only = true;
    }

    /// The signature scheme of every POST the relay made here, in order ("cavage" or "rfc9421").
    pub fn attempts(&self) -> Vec<&'static str> {
        self.inner.lock().unwrap().attempts.clone()
    }

    /// Publishes `url` as the shared inbox of this instance's actors.
    pub fn name_shared_inbox(&self, url: &str) {
        self.inner.lock().unwrap().shared_inbox = Some(url.to_string());
    }

    /// Everything the relay delivered here so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Requests from the relay that failed verification here.
    pub fn refused(&self) -> Vec<String> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// Activities of `kind` received so far.
    pub fn received_of(&self, kind: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .map(|r| r.activity)
            .filter(|a| a["type"] == kind)
            .collect()
    }

    /// Whether an activity announcing or carrying `object_id` arrived.
    pub fn got_object(&self, object_id: &str) -> bool {
        self.received()
            .iter()
            .any(|r| mentions(&r.activity, object_id))
    }

    /// How many deliveries mention `id`.
    pub fn count_mentions(&self, id: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| mentions(&r.activity, id))
            .count()
    }

    /// Publishes an object at a path of this instance (for fetches by the relay).
    pub fn host_object(&self, object: Value) {
        let id = object["id"].as_str().expect("object id").to_string();
        let path = url::Url::parse(&id).expect("id").path().to_string();
        self.inner.lock().unwrap().objects.insert(path, object);
    }

    /// Serves `document` at `path` of this instance (documents without an id, such as NodeInfo).
    pub fn host_at(&self, path: &str, document: Value) {
        self.inner
            .lock()
            .unwrap()
            .objects
            .insert(path.to_string(), document);
    }

    /// Sets properties of alice's actor document (e.g. `indexable`, `discoverable`, `summary`).
    pub fn set_user_fields(&self, fields: Value) {
        if let Value::Object(map) = fields {
            self.inner.lock().unwrap().user_fields.extend(map);
        }
    }

    /// Serves `body` with `content_type` at `path`, as it is (HTML error pages, oversized documents).
    pub fn host_raw(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .raw
            .insert(path.to_string(), (content_type.to_string(), body));
    }

    /// Answers GETs of `path` with `status` (and no document) from now on.
    pub fn answer_status(&self, path: &str, status: u16) {
        self.inner
            .lock()
            .unwrap()
            .statuses
            .insert(path.to_string(), status);
    }

    /// Serves `path` as usual again (after [`Instance::answer_status`]).
    pub fn clear_status(&self, path: &str) {
        self.inner.lock().unwrap().statuses.remove(path);
    }

    /// How many times the relay fetched `path` here.
    pub fn fetches_of(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .fetched
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// The path of a URL of this instance.
    pub fn path_of(url: &str) -> String {
        url::Url::parse(url).expect("url").path().to_string()
    }

    /// A fresh number for ids.
    pub fn next(&self) -> usize {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Signs `activity` with `keys`/`key_id` the way this instance's software does and POSTs it to the relay.
    pub async fn post_as(
        &self,
        keys: &Keys,
        key_id: &str,
        activity: &Value,
    ) -> (StatusCode, String) {
        self.post_to("/inbox", keys, key_id, activity).await
    }

    /// Signs `activity` with `keys`/`key_id` the way this instance's software does and POSTs it to
    /// `path` on the relay (a topic's inbox, `/topics/tag/coop/inbox`).
    pub async fn post_to(
        &self,
        path: &str,
        keys: &Keys,
        key_id: &str,
        activity: &Value,
    ) -> (StatusCode, String) {
        let body = serde_json::to_vec(activity).expect("json");
        let url = format!("{}{path}", self.relay_base);
        let headers = match self.flavor {
            Flavor::Fedify => {
                signed_post_headers_rfc9421(keys, key_id, &url, &body, SystemTime::now())
            }
            flavor => signed_post_headers(flavor, keys, key_id, &url, &body, SystemTime::now()),
        };
        post_raw_to(&url, headers, body).await
    }

    /// Signs `activity` as the instance actor with RFC 9421 and POSTs it to the relay.
    pub async fn post_rfc9421_as_instance(&self, activity: &Value) -> (StatusCode, String) {
        let body = serde_json::to_vec(activity).expect("json");
        let headers = signed_post_headers_rfc9421(
            &self.instance_keys,
            &self.instance_key_id(),
            &format!("{}/inbox", self.relay_base),
            &body,
            SystemTime::now(),
        );
        post_raw(&self.relay_base, headers, body).await
    }

    /// POSTs an activity signed by the instance actor.
    pub async fn post_as_instance(&self, activity: &Value) -> (StatusCode, String) {
        self.post_as(&self.instance_keys, &self.instance_key_id(), activity)
            .await
    }

    /// POSTs an activity signed by alice.
    pub async fn post_as_user(&self, activity: &Value) -> (StatusCode, String) {
        self.post_as(&self.user_keys, &self.user_key_id(), activity)
            .await
    }

    /// The Follow this instance sends to subscribe.
    pub fn follow_activity(&self, relay: &Relay) -> Value {
        let n = self.next();
        match self.flavor {
            Flavor::Pleroma => json!({
                "@context": ["https://www.w3.org/ns/activitystreams", format!("{}/schemas/litepub-0.1.jsonld", self.base)],
                "id": format!("{}/activities/follow-{n}", self.base),
                "type": "Follow",
                "actor": self.instance_actor(),
                "object": relay.actor_id(),
                "to": [relay.actor_id()],
                "cc": [],
                "state": "pending"
            }),
            _ => json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{}/activities/follow-relay/{n}", self.base),
                "type": "Follow",
                "actor": self.instance_actor(),
                "object": PUBLIC
            }),
        }
    }

    /// Subscribes to the relay and waits for the Accept (and, for Pleroma, the relay's Follow back).
    pub async fn subscribe(&self, relay: &Relay) -> Value {
        let follow = self.follow_activity(relay);
        let (status, body) = self.post_as_instance(&follow).await;
        assert_eq!(status, StatusCode::ACCEPTED, "follow refused: {body}");
        let id = follow["id"].as_str().unwrap().to_string();
        eventually("the Accept of the Follow", || {
            self.received_of("Accept")
                .iter()
                .any(|a| a["object"]["id"] == id.as_str())
        })
        .await;
        follow
    }

    /// A public Note by alice, wrapped in a Create.
    pub fn public_create(&self, text: &str) -> Value {
        self.create_with(
            text,
            json!([PUBLIC]),
            json!([format!("{}/followers", self.user())]),
        )
    }

    pub fn create_with(&self, text: &str, to: Value, cc: Value) -> Value {
        let n = self.next();
        let note_id = format!("{}/statuses/{n}", self.user());
        json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": format!("{note_id}/activity"),
            "type": "Create",
            "actor": self.user(),
            "published": "2026-11-26T10:00:00Z",
            "to": to.clone(),
            "cc": cc.clone(),
            "object": {
                "id": note_id,
                "type": "Note",
                "attributedTo": self.user(),
                "content": format!("<p>{text}</p>"),
                "to": to,
                "cc": cc
            }
        })
    }
}

/// Follows the topic at `topic_path` (`/topics/tag/coop`) from `follower`: its instance actor, or its
/// user with `as_user`, sends a Follow of `object` (Public, or the topic actor) to the topic's inbox;
/// waits for the topic's Accept, which must come signed by the topic's own key. The Follow.
pub async fn follow_topic(
    follower: &Instance,
    relay: &Relay,
    topic_path: &str,
    object: &str,
    as_user: bool,
) -> Value {
    let (actor, keys, key_id) = if as_user {
        (follower.user(), &follower.user_keys, follower.user_key_id())
    } else {
        (
            follower.instance_actor(),
            &follower.instance_keys,
            follower.instance_key_id(),
        )
    };
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/follows/topic-{}", follower.base, follower.next()),
        "type": "Follow",
        "actor": actor,
        "object": object,
    });
    let (status, body) = follower
        .post_to(&format!("{topic_path}/inbox"), keys, &key_id, &follow)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let topic = format!("{}{topic_path}", relay.base);
    let id = follow["id"].clone();
    eventually("the topic's Accept", || {
        follower
            .received()
            .iter()
            .any(|r| r.activity["type"] == "Accept" && r.activity["object"]["id"] == id)
    })
    .await;
    let accept = follower
        .received()
        .into_iter()
        .find(|r| r.activity["type"] == "Accept" && r.activity["object"]["id"] == id)
        .expect("accept");
    assert_eq!(accept.activity["actor"], topic.as_str());
    assert_eq!(
        accept.key_id,
        format!("{topic}#main-key"),
        "signed by the topic"
    );
    follow
}

/// The Announces of `object` `follower` received, by any actor.
pub fn announces_of(follower: &Instance, object: &str) -> Vec<Received> {
    follower
        .received()
        .into_iter()
        .filter(|r| r.activity["type"] == "Announce" && r.activity["object"] == object)
        .collect()
}

/// Starts one instance per flavor in `flavors` and subscribes each to `relay`.
pub async fn subscribed_instances(relay: &Relay, flavors: &[Flavor]) -> Vec<Arc<Instance>> {
    let mut out = Vec::new();
    for &flavor in flavors {
        let instance = Instance::start(flavor, relay).await;
        instance.subscribe(relay).await;
        out.push(instance);
    }
    out
}

/// Whether `activity` is about `id` (as its id, its object id or its object).
pub fn mentions(activity: &Value, id: &str) -> bool {
    activity["id"] == id || activity["object"] == id || activity["object"]["id"] == id
}

/// POSTs a body with the given headers to the relay's inbox.
pub async fn post_raw(
    relay_base: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    post_raw_to(&format!("{relay_base}/inbox"), headers, body).await
}

/// POSTs a body with the given headers to `url`.
pub async fn post_raw_to(
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("host") {
            continue; // reqwest sets Host from the URL, which is what was signed
        }
        request = request.header(name, value);
    }
    let response = request.send().await.expect("post to relay");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    (status, response.text().await.unwrap_or_default())
}

fn actor_document(shared: &Shared, id: &str, kind: &str, pem: &str, key_id: &str) -> Value {
    let mut actor = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": kind,
        "preferredUsername": id.rsplit('/').next().unwrap_or("x"),
        "inbox": format!("{id}/inbox"),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "publicKey": { "id": key_id, "owner": id, "publicKeyPem": pem }
    });
    if shared.flavor != Flavor::GoToSocial {
        actor["endpoints"] = json!({ "sharedInbox": format!("{}/inbox", shared.base) });
    }
    if let Some(inbox) = shared.inner.lock().unwrap().shared_inbox.clone() {
        actor["endpoints"] = json!({ "sharedInbox": inbox });
    }
    actor
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if method == Method::POST {
        let rfc9421 = headers.contains_key("signature-input");
        let refuse_cavage = {
            let mut inner = shared.inner.lock().unwrap();
            inner
                .attempts
                .push(if rfc9421 { "rfc9421" } else { "cavage" });
            inner.rfc9421_only && !rfc9421
        };
        if refuse_cavage {
            return (
                StatusCode::UNAUTHORIZED,
                "only RFC 9421 signatures are accepted",
            )
                .into_response();
        }
        return match verify_from_relay(&shared, &method, &uri, &headers, &body).await {
            Ok((activity, key_id)) => {
                shared.inner.lock().unwrap().received.push(Received {
                    path,
                    activity,
                    key_id,
                });
                StatusCode::ACCEPTED.into_response()
            }
            Err(reason) => {
                shared.inner.lock().unwrap().refused.push(reason.clone());
                (StatusCode::UNAUTHORIZED, reason).into_response()
            }
        };
    }
    shared.inner.lock().unwrap().fetched.push(path.clone());
    if let Some(status) = shared.inner.lock().unwrap().statuses.get(&path).copied() {
        return StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    if let Some((content_type, body)) = shared.inner.lock().unwrap().raw.get(&path).cloned() {
        return ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response();
    }
    let json_response = |v: Value| {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/activity+json",
            )],
            v.to_string(),
        )
            .into_response()
    };
    let instance_actor = match shared.flavor {
        Flavor::Mastodon => format!("{}/actor", shared.base),
        Flavor::GoToSocial => {
            let host = url::Url::parse(&shared.base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            format!("{}/users/{host}", shared.base)
        }
        Flavor::Pleroma => format!("{}/relay", shared.base),
        Flavor::Fedify => format!("{}/users/__instance__", shared.base),
    };
    let user = format!("{}/users/alice", shared.base);
    let key_suffix = if shared.flavor == Flavor::GoToSocial {
        "/main-key"
    } else {
        "#main-key"
    };
    let url = format!("{}{}", shared.base, path);
    if url == instance_actor {
        return json_response(actor_document(
            &shared,
            &instance_actor,
            "Application",
            &shared.instance_pem,
            &format!("{instance_actor}{key_suffix}"),
        ));
    }
    if url == user {
        let mut doc = actor_document(
            &shared,
            &user,
            "Person",
            &shared.user_pem,
            &format!("{user}{key_suffix}"),
        );
        let fields = shared.inner.lock().unwrap().user_fields.clone();
        if let Value::Object(map) = &mut doc {
            map.extend(fields);
        }
        return json_response(doc);
    }
    if shared.flavor == Flavor::GoToSocial {
        for (owner, pem, kind) in [
            (&instance_actor, &shared.instance_pem, "Application"),
            (&user, &shared.user_pem, "Person"),
        ] {
            if url == format!("{owner}/main-key") {
                // GoToSocial serves a stub of the actor at the key URL: `id` is the actor, not the URL
                // fetched, and `publicKey` holds the key with its owner (as in the shared fixture
                // gotosocial-publickey-stub.json).
                return json_response(json!({
                    "@context": ["https://w3id.org/security/v1", "https://www.w3.org/ns/activitystreams"],
                    "id": owner,
                    "preferredUsername": owner.rsplit('/').next().unwrap_or("x"),
                    "publicKey": { "id": url, "owner": owner, "publicKeyPem": pem },
                    "type": kind
                }));
            }
        }
    }
    let (object, signed_fetches) = {
        let inner = shared.inner.lock().unwrap();
        (inner.objects.get(&path).cloned(), inner.signed_fetches)
    };
    if let Some(object) = object {
        if signed_fetches
            && let Err(reason) = verify_from_relay(&shared, &method, &uri, &headers, &body).await
        {
            shared
                .inner
                .lock()
                .unwrap()
                .refused
                .push(format!("GET {path}: {reason}"));
            return (StatusCode::UNAUTHORIZED, reason).into_response();
        }
        return json_response(object);
    }
    // The built-in NodeInfo, unless a test hosts its own document at that path (above).
    if let Some(document) = nodeinfo(&shared, &path) {
        return json_response(document);
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The value of header `name` as text, if present and visible ASCII.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The instance's NodeInfo: the links document and a 2.0 document naming its software.
fn nodeinfo(shared: &Shared, path: &str) -> Option<Value> {
    let software = match shared.flavor {
        Flavor::Mastodon => "mastodon",
        Flavor::GoToSocial => "gotosocial",
        Flavor::Pleroma => "pleroma",
        Flavor::Fedify => "hollo",
    };
    match path {
        "/.well-known/nodeinfo" => Some(json!({ "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
            "href": format!("{}/nodeinfo/2.0", shared.base)
        }]})),
        "/nodeinfo/2.0" => Some(json!({
            "version": "2.0",
            "software": { "name": software, "version": "1.0.0" },
            "protocols": ["activitypub"],
            "usage": { "users": { "total": 1 } },
            "openRegistrations": false,
            "metadata": {}
        })),
        _ => None,
    }
}

/// Checks a request from the relay the way Mastodon does: signature over the listed headers with the
/// key of the relay actor or of one of its topic actors, digest of the body, fresh date. Returns the
/// body and the keyId.
async fn verify_from_relay(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, String), String> {
    let header = |name: &str| header_text(headers, name);
    if headers.contains_key("signature-input") {
        return verify_rfc9421_from_relay(shared, method, uri, headers, body).await;
    }
    let signature = header("signature").ok_or("unsigned")?;
    let params = signature_params(&signature);
    let key_id = params.get("keyId").ok_or("no keyId")?;
    check_relay_key_id(shared, key_id)?;
    if params.get("algorithm").map(String::as_str) != Some("rsa-sha256") {
        return Err("relay must sign with rsa-sha256".into());
    }
    let names: Vec<&str> = params
        .get("headers")
        .ok_or("no headers")?
        .split(' ')
        .collect();
    // A fetch (GET) has no body, so no digest; everything else must sign one.
    let fetch = method == Method::GET;
    let required: &[&str] = if fetch {
        &["(request-target)", "host", "date"]
    } else {
        &["(request-target)", "host", "date", "digest"]
    };
    for required in required {
        if !names.contains(required) {
            return Err(format!("{required} not signed"));
        }
    }
    let mut lines = Vec::new();
    for name in &names {
        let value = match *name {
            "(request-target)" => format!("{} {}", method.as_str().to_lowercase(), uri.path()),
            other => header(other).ok_or(format!("signed header {other} missing"))?,
        };
        lines.push(format!("{name}: {value}"));
    }
    let digest = format!("SHA-256={}", B64.encode(Sha256::digest(body)));
    if !fetch && header("digest").as_deref() != Some(digest.as_str()) {
        return Err("digest mismatch".into());
    }
    let date =
        httpdate::parse_http_date(&header("date").ok_or("no date")?).map_err(|e| e.to_string())?;
    let age = SystemTime::now().duration_since(date).unwrap_or_default();
    if age > Duration::from_secs(300) {
        return Err("stale date".into());
    }
    let key = relay_key(shared, key_id).await?;
    let raw = B64
        .decode(params.get("signature").ok_or("no signature")?)
        .map_err(|e| e.to_string())?;
    let sig = Signature::try_from(raw.as_slice()).map_err(|e| e.to_string())?;
    key.verify(lines.join("\n").as_bytes(), &sig)
        .map_err(|_| "bad signature".to_string())?;
    signed_body(fetch, body, key_id)
}

/// What a verified request carried: its body (nothing for a GET) and the keyId that signed it.
fn signed_body(fetch: bool, body: &[u8], key_id: &str) -> Result<(Value, String), String> {
    if fetch {
        return Ok((Value::Null, key_id.to_string()));
    }
    serde_json::from_slice(body)
        .map(|v| (v, key_id.to_string()))
        .map_err(|e| format!("body is not JSON: {e}"))
}

/// Only the relay signs here: its actor's key, or a topic actor's (`{relay}/topics/…#main-key`).
fn check_relay_key_id(shared: &Shared, key_id: &str) -> Result<(), String> {
    let relay_actor = format!("{}/actor#main-key", shared.relay_base);
    let topic = key_id.starts_with(&format!("{}/topics/", shared.relay_base))
        && key_id.ends_with("#main-key");
    if key_id == relay_actor || topic {
        Ok(())
    } else {
        Err(format!("unexpected keyId {key_id}"))
    }
}

/// The key at `key_id` (the relay's or a topic's), fetched from its actor document once.
async fn relay_key(shared: &Shared, key_id: &str) -> Result<VerifyingKey<Sha256>, String> {
    if let Some(key) = shared.inner.lock().unwrap().relay_keys.get(key_id).cloned() {
        return Ok(key);
    }
    let owner = key_id.split('#').next().unwrap_or(key_id);
    let actor: Value = reqwest::Client::new()
        .get(owner)
        .header("accept", "application/activity+json")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if actor["publicKey"]["id"] != key_id {
        return Err(format!("{owner} does not publish {key_id}"));
    }
    let pem = actor["publicKey"]["publicKeyPem"]
        .as_str()
        .ok_or("relay actor has no key")?;
    let key = VerifyingKey::<Sha256>::from_public_key_pem(pem).map_err(|e| e.to_string())?;
    shared
        .inner
        .lock()
        .unwrap()
        .relay_keys
        .insert(key_id.to_string(), key.clone());
    Ok(key)
}

/// Checks an RFC 9421 request from the relay as Mastodon 4.5 does: `@method`, `@target-uri` and
/// `content-digest` signed, `created` fresh, the relay's keyid, `rsa-v1_5-sha256`, the digest of the body,
/// and the signature over the rebuilt signature base.
async fn verify_rfc9421_from_relay(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, String), String> {
    let header = |name: &str| header_text(headers, name);
    let input = header("signature-input").ok_or("no Signature-Input")?;
    let (label, params_raw) = input
        .split_once('=')
        .ok_or("Signature-Input without label")?;
    let list_end = params_raw.find(')').ok_or("no inner list")?;
    let components: Vec<String> = params_raw
        .get(1..list_end)
        .ok_or("no inner list")?
        .split_whitespace()
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    let mut params = HashMap::new();
    for param in params_raw[list_end + 1..]
        .split(';')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = param.split_once('=').ok_or("bad parameter")?;
        params.insert(k.to_string(), v.trim_matches('"').to_string());
    }
    let fetch = method == Method::GET;
    let required: &[&str] = if fetch {
        &["@method", "@target-uri"]
    } else {
        &["@method", "@target-uri", "content-digest"]
    };
    for required in required {
        if !components.iter().any(|c| c == required) {
            return Err(format!("{required} not signed"));
        }
    }
    let key_id = params.get("keyid").cloned().unwrap_or_default();
    check_relay_key_id(shared, &key_id)?;
    if params.get("alg").map(String::as_str) != Some("rsa-v1_5-sha256") {
        return Err("relay must sign with rsa-v1_5-sha256".into());
    }
    let created: u64 = params
        .get("created")
        .and_then(|c| c.parse().ok())
        .ok_or("no created")?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now.abs_diff(created) > 300 {
        return Err("stale created".into());
    }
    let digest = format!("sha-256=:{}:", B64.encode(Sha256::digest(body)));
    if !fetch && header("content-digest").as_deref() != Some(digest.as_str()) {
        return Err("content-digest mismatch".into());
    }
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut base = String::new();
    for component in &components {
        let value = match component.as_str() {
            "@method" => method.as_str().to_string(),
            "@target-uri" => format!("{}{target}", shared.base),
            other if other.starts_with('@') => return Err(format!("unexpected {other}")),
            other => header(other).ok_or(format!("signed header {other} missing"))?,
        };
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params_raw}"));
    let signature = header("signature").ok_or("no Signature")?;
    let encoded = signature
        .strip_prefix(&format!("{label}=:"))
        .and_then(|s| s.strip_suffix(':'))
        .ok_or("Signature is not this label's byte sequence")?;
    let raw = B64.decode(encoded).map_err(|e| e.to_string())?;
    let sig = Signature::try_from(raw.as_slice()).map_err(|e| e.to_string())?;
    let key = relay_key(shared, &key_id).await?;
    key.verify(base.as_bytes(), &sig)
        .map_err(|_| "bad RFC 9421 signature".to_string())?;
    signed_body(fetch, body, &key_id)
}
