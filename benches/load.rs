//! The whole relay under load: the real `plaza` binary (release build) against simulated instances on
//! loopback, printing one table of figures.
//!
//! Run: `cargo bench --bench load` (options: `cargo bench --bench load -- --help`).
//!
//! Phases, each against a relay with a fresh data directory:
//! 1. the signing bound: RSA-2048 signatures per second on all cores, measured here, now;
//! 2. inbound: pre-signed public Creates POSTed by one subscribed origin (no other subscriber, so nothing
//!    to fan out): accepted (verified and durable) activities per second, the relay's CPU per activity
//!    (and its index threads' part), and the index threads' CPU per post until every post is indexed;
//! 3. fan-out, all healthy: N subscribers (default 200), each an HTTP server on its own loopback address
//!    that verifies the relay's signature and digest on every request (the RSA check itself after
//!    answering, on one thread at the lowest priority: see `SignatureChecks`); bursts of posts (3 by default,
//!    the one with the median ratio reported) give delivered requests per second and their ratio to the
//!    signing bound, then posts at a steady rate give the latency from inbox accept to delivery;
//! 4. the same with 10% of the subscribers dead (connection refused) and 5% slow (answer after 5 s):
//!    the healthy subscribers' figures next to those of phase 3.
//!
//! Every expected delivery is checked to have arrived, and duplicates are counted.
//!
//! The origin's posts are public and their author opted in to search (`indexable`), so the relay's
//! indexer, which follows the log, indexes every one of them, bursts included: the delivery ratio is
//! measured with the indexer at work (`PLAZA_INDEX_ENABLED=false cargo bench --bench load` for the
//! comparison). Four posts in five declare their language (`contentMap`, as Mastodon sends it), the
//! fifth is left for the indexer to detect. Each post carries a word of its own; in the latency phase (never during a burst) each
//! post is searched for from its 202 on, giving accept→searchable p50/p99; then some of those posts are
//! deleted one at a time and searched for until gone, giving delete (202)→gone p50/p99.
//!
//! `--database [URL|local]` runs the same phases with the relay on PostgreSQL (`local`: a throwaway
//! cluster of this process's own, as the tests start it), `--nodes N` on N relay processes sharing that
//! database (node K pinned to core K when the machine has N cores; posts spread over the nodes; measured
//! once the nodes hold every subscriber's lease), and `--compare-backends` SQLite, PostgreSQL on one
//! node and on N nodes one after the other, side by side.
//!
//! The relay runs with its per-IP connection cap and read limit off (every simulated instance shares
//! loopback, and one origin sends everything) and with no per-instance inbox limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use plaza::httpsig::{self, PrivateKey, PublicKey, SignedRequest};
use serde_json::{Value, json};

#[path = "load/fasp.rs"]
mod fasp;
#[path = "../tests/e2e/support/postgres.rs"]
mod postgres;
#[path = "load/topics.rs"]
mod topics;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
/// Where the origin's posting author lives on its instance.
const AUTHOR_PATH: &str = "/users/baker";

/// The load generator shares the relay's cores; glibc malloc was a sixth of its CPU under perf.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    subscribers: usize,
    posts: usize,
    bursts: usize,
    inbound: usize,
    steady_secs: u64,
    /// How long the relay rests after its last subscriber's Accept before its idle RSS is read.
    settle_secs: u64,
    faults: bool,
    /// How long the simulated subscribers sleep between taking their sockets' events during a burst
    /// (see [`Pacer`]).
    batch: Duration,
    /// Where to write a system-wide `perf` profile of the all-healthy burst.
    perf: Option<String>,
    /// Run only the FASP data_sharing phase.
    fasp: bool,
    /// Run only the topic feeds phases.
    topics: bool,
    /// `--quick` was given (the topic phases scale their topics and followers down too).
    quick: bool,
    /// `--database`: run on PostgreSQL, `local` (a throwaway cluster of the benchmark's own) or a URL.
    database: Option<String>,
    /// `--nodes N`: relay nodes sharing that database.
    nodes: usize,
    /// `--compare-backends`: SQLite, PostgreSQL on one node and on `nodes` nodes, side by side.
    compare: bool,
    /// `--new-index-node`: after the inbound phase on PostgreSQL, time a new node building its index.
    new_index_node: bool,
}

fn parse_options() -> Options {
    let mut o = Options {
        subscribers: 200,
        posts: 200,
        bursts: 3,
        inbound: 20_000,
        steady_secs: 8,
        settle_secs: 1,
        faults: true,
        batch: Pacer::BATCH,
        perf: None,
        fasp: false,
        topics: false,
        quick: false,
        database: None,
        nodes: 1,
        compare: false,
        new_index_node: false,
    };
    let mut nodes_given = false;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--subscribers" => o.subscribers = number("--subscribers"),
            "--posts" => o.posts = number("--posts"),
            "--bursts" => o.bursts = number("--bursts").max(1),
            "--inbound" => o.inbound = number("--inbound"),
            "--steady-secs" => o.steady_secs = number("--steady-secs") as u64,
            "--settle-secs" => o.settle_secs = number("--settle-secs") as u64,
            "--no-faults" => o.faults = false,
            "--batch-ms" => o.batch = Duration::from_millis(number("--batch-ms") as u64),
            "--fasp" => o.fasp = true,
            "--topics" => o.topics = true,
            "--quick" => {
                o.quick = true;
                // The regression guard: a small run of every phase, under two minutes.
                o.subscribers = 50;
                o.posts = 100;
                o.bursts = 1;
                o.inbound = 3_000;
                o.steady_secs = 3;
                o.faults = false;
            }
            "--perf" => o.perf = Some(args.next().expect("--perf needs a file name")),
            "--database" => {
                let url = args.next_if(|v| !v.starts_with("--"));
                o.database = Some(url.unwrap_or_else(|| "local".into()));
            }
            "--nodes" => {
                o.nodes = number("--nodes").max(1);
                nodes_given = true;
            }
            "--compare-backends" => o.compare = true,
            "--new-index-node" => o.new_index_node = true,
            "--bench" => {}
            "--help" | "-h" => {
                println!(
                    "cargo bench --bench load -- [--subscribers N (200)] [--posts N per burst (200)] \
                     [--bursts N (3)] \
                     [--inbound N (20000)] [--steady-secs S (8)] [--settle-secs S (1)] [--no-faults] [--batch-ms MS (2)] [--perf FILE] [--fasp] [--topics] [--quick] \
                     [--database [URL|local]] [--nodes N (1)] [--compare-backends] [--new-index-node]\n\n\
                     --settle-secs S  how long the relay rests once every subscriber got its Accept before \
                     its idle RSS is read: longer than the relay's idle timeouts (fetch connections 10 s, \
                     delivery connections 60 s) to see what a subscriber costs at rest\n\
                     --batch-ms MS  during bursts the simulated subscribers take their sockets' events \
                     every MS ms, as a busy server's event loop does, instead of waking for every request \
                     on the relay's cores (0: wake for every request)\n\
                     --quick  the regression guard: 50 subscribers, one burst of 100 posts, 3000 inbound, \
                     3 s steady, no faults (options after it override)\n\
                     --fasp  only the FASP data_sharing phase: announcements accepted/s from one server \
                     (--inbound N announcements, 2000 is plenty) and fetch→searchable p50/p99 (--posts N samples)\n\
                     --topics  only the topic feeds phases: 1,000 topics (with --quick: 200), 2,000 followers \
                     (400) on 300 inboxes (60); matching µs per post, topic deliveries/s against the signing \
                     bound, the relay's fan-out ratio with topics on and off (--subscribers, --posts, --bursts)\n\
                     --perf FILE  record a system-wide perf profile (cpu-clock, call graphs) of the \
                     all-healthy burst: relay and load generator together\n\
                     --database [URL|local]  the relay on PostgreSQL instead of SQLite: `local` (or no value) \
                     starts a throwaway cluster of the benchmark's own (initdb and postgres on a Unix socket, \
                     fsync off, as the tests start it) with a fresh database per relay; a postgres:// URL uses \
                     that database, in which the benchmark creates a schema of its own per relay (the role \
                     needs CREATE there) and drops it afterwards\n\
                     --nodes N  N relay nodes on that database (same public URL, one data directory each), \
                     node K pinned to core K with taskset when the machine has at least N cores (the load \
                     generator then on the cores left); posts go to the nodes in turn; measured once every \
                     subscriber's lease is held\n\
                     --compare-backends  SQLite, then PostgreSQL on one node, then on --nodes nodes (default 2), \
                     inbound and the healthy fan-out of each (no faults), all placed the same way, with a \
                     summary side by side (--database URL to use a given server; local by default)\n\
                     --new-index-node  with --database: after the inbound phase, start one more node with \
                     an index and time it building its index from the shared log (entries/s, its CPU per entry)"
                );
                std::process::exit(0);
            }
            other => panic!("unknown option {other}; see --help"),
        }
    }
    if o.new_index_node && o.database.is_none() {
        panic!("--new-index-node needs --database (a new node reads the log from PostgreSQL)");
    }
    if nodes_given && o.database.is_none() && !o.compare {
        panic!("--nodes needs --database (several nodes share one PostgreSQL database)");
    }
    if o.compare {
        if o.database.is_none() {
            o.database = Some("local".into());
        }
        if !nodes_given {
            o.nodes = 2;
        }
    }
    o
}

// ------------------------------------------------------------------------------------------------

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Where the relay runs: its store and its nodes.
#[derive(Clone)]
struct Deployment {
    /// `None`: SQLite in the data directory; `Some("local")`: a throwaway PostgreSQL cluster of this
    /// process's own; `Some(url)`: that PostgreSQL database.
    database: Option<String>,
    /// Relay processes sharing the database (1 on SQLite).
    nodes: usize,
    /// Node K pinned to core K (`taskset -c K`), the load generator on the cores left.
    pin: bool,
}

impl Deployment {
    /// The relay as it always ran here: SQLite, one process, nothing pinned.
    const SQLITE: Deployment = Deployment {
        database: None,
        nodes: 1,
        pin: false,
    };

    /// `nodes` nodes on `database` (or SQLite), pinned when the machine has a core for each.
    fn new(database: Option<String>, nodes: usize) -> Deployment {
        Deployment {
            database,
            nodes,
            pin: cores() >= nodes,
        }
    }

    /// Cores the relay's nodes have: one each when pinned, else the machine's.
    fn relay_cores(&self) -> usize {
        if self.pin { self.nodes } else { cores() }
    }

    /// "SQLite" or "PostgreSQL, N node(s)", and where they run.
    fn describe(&self) -> String {
        let store = match &self.database {
            None => "SQLite".to_string(),
            Some(db) if db == "local" => {
                "PostgreSQL (throwaway local cluster, fsync off)".to_string()
            }
            Some(_) => "PostgreSQL (the given database)".to_string(),
        };
        let nodes = if self.nodes == 1 {
            "1 node".to_string()
        } else {
            format!("{} nodes", self.nodes)
        };
        let placement = match (self.pin, cores()) {
            (false, c) if self.nodes > c => format!(
                "not pinned: {} nodes need {} cores and the machine has {c}",
                self.nodes, self.nodes
            ),
            (false, _) => "not pinned".to_string(),
            (true, c) if c > self.nodes => format!(
                "node K pinned to core K (taskset), load generator on cores {}-{} (PostgreSQL not pinned)",
                self.nodes,
                c - 1
            ),
            (true, _) => "node K pinned to core K (taskset); no core left for the load generator, \
                          which shares them (PostgreSQL not pinned)"
                .to_string(),
        };
        format!("{store}, {nodes}, {placement}")
    }
}

/// The machine's cores: those this process could use when it started (`available_parallelism`
/// follows the affinity [`set_affinity`] narrows; `main` asks before anything is narrowed).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Restricts the calling thread (the load generator's runtime, and the threads it starts from now on)
/// to `cpus`; all cores when empty.
fn set_affinity(cpus: &[usize]) {
    let all: Vec<usize> = (0..cores()).collect();
    let cpus = if cpus.is_empty() { &all[..] } else { cpus };
    // SAFETY: `set` is a plain bit mask, zeroed then filled; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Starts the throwaway PostgreSQL cluster (`--database local`) while this process may use every core:
/// the server's processes inherit the affinity of the thread that starts them, so it is not confined to
/// the load generator's cores (it runs wherever the scheduler puts it, in every deployment alike).
fn start_local_cluster(database: &Option<String>) {
    if database.as_deref() == Some("local") {
        set_affinity(&[]);
        postgres::cluster();
    }
}

/// Puts the load generator on the cores the deployment leaves it (all of them when it leaves none).
fn place_generator(d: &Deployment) {
    let left: Vec<usize> = if d.pin {
        (d.nodes..cores()).collect()
    } else {
        Vec::new()
    };
    set_affinity(&left);
}

/// A fresh, empty place for one relay's state on PostgreSQL: the URL to give the relay, and the
/// schema to drop afterwards (for a given database).
async fn fresh_database(database: &str) -> (String, Option<(String, String)>) {
    if database == "local" {
        return (postgres::cluster().new_database(), None);
    }
    static NEXT_SCHEMA: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "plaza_bench_{}_{}",
        std::process::id(),
        NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .expect("connect to --database");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("CREATE SCHEMA in --database (the role needs CREATE on the database)");
    drop(client);
    let _ = connection.await;
    let separator = if database.contains('?') { '&' } else { '?' };
    let url = format!("{database}{separator}options=-c%20search_path%3D{schema}");
    (url, Some((database.to_string(), schema)))
}

/// Drops a schema [`fresh_database`] made, from a thread of its own (called from `Drop`, inside the
/// benchmark's runtime).
fn drop_schema(database: String, schema: String) {
    let name = schema.clone();
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&database, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
        })
    })
    .join();
    if !matches!(dropped, Ok(Ok(()))) {
        eprintln!("could not drop schema {name} of --database: drop it by hand");
    }
}

struct RelayProcess {
    /// The relay's public URL: node 0's address (every node serves it).
    base: String,
    /// Node 0.
    child: Child,
    _dir: tempfile::TempDir,
    /// Nodes 1.. (none on SQLite), with their data directories.
    others: Vec<(Child, tempfile::TempDir)>,
    /// Each node's own address, node 0 first: inbox POSTs go to them in turn.
    node_bases: Vec<String>,
    deployment: Deployment,
    /// A schema made for this relay in a given database, dropped once the nodes stopped.
    schema: Option<(String, String)>,
    /// The nodes' `database_url` (PostgreSQL), for a node started later.
    database_url: Option<String>,
}

impl RelayProcess {
    /// [`RelayProcess::start`] with extra `PLAZA_*` settings.
    async fn start_with(env: &[(&str, &str)]) -> RelayProcess {
        Self::deploy(env, &Deployment::SQLITE).await
    }

    /// The relay as `deployment` says, with extra `PLAZA_*` settings.
    async fn deploy(env: &[(&str, &str)], deployment: &Deployment) -> RelayProcess {
        let (database_url, schema) = match &deployment.database {
            Some(database) => {
                let (url, schema) = fresh_database(database).await;
                (Some(url), schema)
            }
            None => (None, None),
        };
        let ports: Vec<u16> = (0..deployment.nodes)
            .map(|_| free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)))
            .collect();
        let base = format!("http://127.0.0.1:{}", ports[0]);
        let mut started = Vec::new();
        for (k, port) in ports.iter().enumerate() {
            let mut node_env: Vec<(String, String)> = Vec::new();
            if let Some(url) = &database_url {
                node_env.push(("PLAZA_DATABASE_URL".into(), url.clone()));
                node_env.push(("PLAZA_NODE_ID".into(), format!("bench-{k}")));
            }
            let pin = deployment.pin.then_some(k);
            let (child, dir) = spawn_node(&base, *port, pin, env, &node_env).await;
            started.push((child, dir));
        }
        let mut started = started.into_iter();
        let (child, dir) = started.next().expect("node 0");
        RelayProcess {
            base,
            child,
            _dir: dir,
            others: started.collect(),
            node_bases: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            deployment: deployment.clone(),
            schema,
            database_url,
        }
    }

    /// Starts one more node with an index of its own (PostgreSQL only), lets it build its index from
    /// the shared log, and prints how long that took against `like`, an index that is complete: the
    /// same posts indexed. Stops the node afterwards.
    async fn time_a_new_index_node(&self, client: &reqwest::Client, like: &IndexProgress) {
        let Some(url) = &self.database_url else {
            return;
        };
        let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let node_env = vec![
            ("PLAZA_DATABASE_URL".to_string(), url.clone()),
            ("PLAZA_NODE_ID".to_string(), "bench-new-index".to_string()),
        ];
        let started = Instant::now();
        let (mut child, _dir) = spawn_node(&self.base, port, None, &[], &node_env).await;
        let base = format!("http://127.0.0.1:{port}");
        let built = until_indexed(client, &base, like.posts, Duration::from_secs(600)).await;
        let cpu = cpu_secs_of(&format!("/proc/{}/stat", child.id()));
        interrupt_and_wait(&mut child);
        match built {
            Some(p) => println!(
                "index: a new node built its index from the log: {:.0} log entries, {:.0} posts in {:.1} s \
                 from its start ({:.0} entries/s), {:.0} µs of its CPU per entry (start-up included)",
                p.entries,
                p.posts,
                started.elapsed().as_secs_f64(),
                p.entries / started.elapsed().as_secs_f64(),
                cpu * 1e6 / p.entries.max(1.0),
            ),
            None => println!("index: a new node did not build its index within 600 s"),
        }
    }

    /// The pids of every node.
    fn pids(&self) -> Vec<u32> {
        std::iter::once(self.child.id())
            .chain(self.others.iter().map(|(c, _)| c.id()))
            .collect()
    }

    /// The share of the machine's signing bound the relay's cores have (1 unless pinned to fewer).
    fn bound_scale(&self) -> f64 {
        self.deployment.relay_cores() as f64 / cores() as f64
    }

    /// Sends the `i`-th of `posts` to node `i mod N` (signed for the public URL: the Host header says
    /// it, as a load balancer passes it on).
    fn spread(&self, posts: &mut [Prepared]) {
        if self.node_bases.len() < 2 {
            return;
        }
        let authority = self.base.trim_start_matches("http://").to_string();
        let host = axum::http::HeaderValue::from_str(&authority).expect("host");
        for (i, p) in posts.iter_mut().enumerate() {
            let node = &self.node_bases[i % self.node_bases.len()];
            if *node != self.base {
                p.url = p.url.replacen(&self.base, node, 1);
                p.headers.push((axum::http::header::HOST, host.clone()));
            }
        }
    }

    /// On PostgreSQL, waits until the nodes hold `subscribers` subscriber leases between them, each at
    /// least one; the leases per node.
    async fn until_leases(&self, subscribers: usize) -> Vec<u64> {
        if self.deployment.database.is_none() {
            return Vec::new();
        }
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut counts = Vec::new();
            for node in &self.node_bases {
                let health: Value = match client.get(format!("{node}/healthz/node")).send().await {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                counts.push(health["leases"]["subscriber"].as_u64().unwrap_or(0));
            }
            if counts.iter().sum::<u64>() == subscribers as u64 && counts.iter().all(|c| *c > 0) {
                return counts;
            }
            if Instant::now() > deadline {
                eprintln!("subscriber leases not spread after 90 s: {counts:?} (measuring anyway)");
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// CPU seconds (user + system) the relay has used so far, from /proc (Linux).
    fn cpu_secs(&self) -> f64 {
        self.pids()
            .iter()
            .map(|pid| cpu_secs_of(&format!("/proc/{pid}/stat")))
            .sum()
    }

    /// CPU seconds of the relay's index threads (see [`INDEX_THREADS`]), summed over its nodes.
    fn index_cpu_secs(&self) -> f64 {
        self.pids()
            .iter()
            .map(|pid| threads_cpu_secs(*pid, INDEX_THREADS))
            .sum()
    }

    /// Peak resident set size of the relay, from /proc (Linux).
    fn peak_rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmHWM:")
    }

    /// Resident set size of the relay now, from /proc (Linux).
    fn rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmRSS:")
    }

    /// A figure of the relay's /proc status in MB (`field`: `VmHWM:`, `VmRSS:`), summed over its nodes.
    fn memory_mb(&self, field: &str) -> Option<f64> {
        self.pids()
            .iter()
            .map(|pid| memory_mb_of(&format!("/proc/{pid}/status"), field))
            .sum()
    }
}

/// A figure of a /proc status file in MB (`field`: `VmHWM:`, `VmRSS:`).
fn memory_mb_of(path: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        interrupt_and_wait(&mut self.child);
        for (child, _) in &mut self.others {
            interrupt_and_wait(child);
        }
        if let Some((database, schema)) = self.schema.take() {
            drop_schema(database, schema);
        }
    }
}

/// Starts one relay process serving `public` on `port` with a fresh data directory (pinned to core
/// `pin` with taskset), and waits until it answers.
async fn spawn_node(
    public: &str,
    port: u16,
    pin: Option<usize>,
    env: &[(&str, &str)],
    node_env: &[(String, String)],
) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    // PLAZA_LOAD_WRAP runs the relay under a profiler, e.g. "perf record -e cpu-clock -g -o perf.data --".
    let mut wrap: Vec<String> = match pin {
        Some(core) => vec!["taskset".into(), "-c".into(), core.to_string()],
        None => Vec::new(),
    };
    wrap.extend(
        std::env::var("PLAZA_LOAD_WRAP")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string),
    );
    let mut command = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_plaza"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_plaza")),
    };
    let child = command
        .env("PLAZA_PUBLIC_URL", public)
        .env("PLAZA_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLAZA_DATA_DIR", dir.path().join("data"))
        .env("PLAZA_ALLOW_PRIVATE_NETWORKS", "true")
        .env("PLAZA_RETRY_INITIAL_MS", "500")
        .env("PLAZA_RETRY_MAX_SECS", "5")
        // One origin sends everything here: per-instance inbox limits would measure themselves.
        .env("PLAZA_INBOUND_RATE_PER_INSTANCE", "0")
        // Everything (origin, load generator, search polls) comes from 127.0.0.1 or 127.0.1.x:
        // per-IP connection caps and read limits would throttle the simulation, not the relay.
        .env("PLAZA_MAX_CONNECTIONS_PER_IP", "0")
        .env("PLAZA_CLIENT_IP_RATE", "0")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .envs(node_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start plaza (cargo bench builds it)");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while !client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "relay did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, dir)
}

/// A system-wide `perf record` running while it lives (the burst), stopped with SIGINT so it writes.
struct Profiler(Child);

impl Profiler {
    fn start(file: &str) -> Profiler {
        let child = Command::new("perf")
            .args([
                "record",
                "-a",
                "-g",
                "-e",
                "cpu-clock",
                "-F",
                "1999",
                "-o",
                file,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start perf (is it installed?)");
        // perf needs a moment to open its buffers on every CPU.
        std::thread::sleep(Duration::from_millis(500));
        Profiler(child)
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        interrupt_and_wait(&mut self.0);
    }
}

/// SIGINT (so a profiler can write its data), then SIGKILL after 10 s.
fn interrupt_and_wait(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ------------------------------------------------------------------------------------------------

/// Name prefixes of the relay's threads that do the indexing: the indexer's own pool
/// (`src/discovery/pool.rs`), its commit thread, and tantivy's indexing, merging and store threads.
const INDEX_THREADS: &[&str] = &[
    "plaza-indexer",
    "plaza-index-co",
    "thrd-tantivy",
    "merge_thread",
    "docstore",
    "segment_update",
];

/// CPU seconds of a process's threads whose name starts with one of `prefixes` (threads that ended
/// are not counted: the relay's index threads live as long as the index).
fn threads_cpu_secs(pid: u32, prefixes: &[&str]) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| prefixes.iter().any(|p| name.starts_with(p)))
        })
        .map(|task| cpu_secs_of(&task.path().join("stat").to_string_lossy()))
        .sum()
}

/// utime + stime of a process from its /proc stat file, in seconds (clock ticks of 1/100 s).
fn cpu_secs_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Healthy,
    Slow,
    Dead,
}

/// What all simulated subscribers record.
#[derive(Default)]
struct Record {
    /// (subscriber index, post number) → arrival times.
    arrivals: Mutex<HashMap<(usize, u64), Vec<Instant>>>,
    accepts: AtomicU64,
    refused: AtomicU64,
    /// First arrivals at healthy subscribers, so waiting does not scan `arrivals`.
    first_arrivals: AtomicU64,
    /// Posts that reached a subscriber taken down before any was sent (must stay 0).
    dead_arrivals: AtomicU64,
    /// The relay's public keys by key id: its own actor's, and each topic actor's.
    keys: Mutex<HashMap<String, PublicKey>>,
    /// Each delivery's signature, checked after the answer (see [`SignatureChecks`]).
    checks: SignatureChecks,
}

/// The simulated instances' RSA checks. An instance answers once everything but the signature itself
/// holds (the signed headers, the digest of the body, the clock window, the relay's key), and hands the
/// signature to this one thread at the lowest priority. The instances stand for other machines: checked
/// on the spot, their ~17 µs per delivery competed with the relay for the two cores the fan-out figures
/// measure. Every signature is still checked, a failed one counts as refused, and [`Self::settle`]
/// waits for the backlog before a burst's figures are read.
struct SignatureChecks {
    queue: Mutex<std::sync::mpsc::Sender<(httpsig::Claim, PublicKey)>>,
    state: Arc<CheckState>,
}

#[derive(Default)]
struct CheckState {
    queued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// The name of the checking thread, to read its CPU time in `/proc`.
const CHECK_THREAD: &str = "sig-checks";

impl Default for SignatureChecks {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<(httpsig::Claim, PublicKey)>();
        let state = Arc::new(CheckState::default());
        let counts = state.clone();
        std::thread::Builder::new()
            .name(CHECK_THREAD.into())
            .spawn(move || {
                run_only_when_idle();
                for (claim, key) in rx {
                    if claim.verify(&key).is_err() {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    counts.done.fetch_add(1, Ordering::Release);
                }
            })
            .expect("the signature-checking thread");
        SignatureChecks {
            queue: Mutex::new(tx),
            state,
        }
    }
}

/// Puts the calling thread in Linux's idle scheduling class: it runs only on a core nothing else
/// wants, below even nice 19 (which still takes about 1.5% of a core from each busy thread). Nice 19
/// where that class is refused.
fn run_only_when_idle() {
    plaza_index::priority::lower_this_thread(19);
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: changes the calling thread's own policy (`0` names it); `param` is only read.
        let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    }
}

impl Record {
    /// Requests refused: on the spot (no valid claim, unknown key) or by a signature check, once every
    /// check handed over has been made.
    async fn refused(&self) -> u64 {
        self.checks.settle().await;
        self.refused.load(Ordering::Relaxed) + self.checks.failed()
    }
}

impl SignatureChecks {
    fn check_later(&self, claim: httpsig::Claim, key: PublicKey) {
        self.state.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.queue.lock().unwrap().send((claim, key));
    }

    /// Waits until every signature handed over so far has been checked.
    async fn settle(&self) {
        let queued = self.state.queued.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.state.done.load(Ordering::Acquire) < queued {
            assert!(
                Instant::now() < deadline,
                "the signature checks did not finish within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Signatures checked and found wrong.
    fn failed(&self) -> u64 {
        self.state.failed.load(Ordering::Relaxed)
    }

    /// CPU seconds the checks have used.
    fn cpu_secs() -> f64 {
        threads_cpu_secs(std::process::id(), &[CHECK_THREAD])
    }
}

#[derive(Clone)]
struct Sub {
    index: usize,
    base: String,
    authority: String,
    behaviour: Behaviour,
    pem: String,
    relay_base: String,
    record: Arc<Record>,
    http: reqwest::Client,
}

struct SubHandle {
    sub: Sub,
    key: PrivateKey,
    /// Set to true to take the instance down: it stops accepting and drops its open connections.
    down: tokio::sync::watch::Sender<bool>,
}

impl SubHandle {
    fn take_down(&self) {
        let _ = self.down.send(true);
    }
}

/// The relay's key `key_id` names (the relay actor's or a topic actor's), fetched once for all the
/// simulated instances; `None` for a key that is not the relay's.
async fn relay_key(sub: &Sub, key_id: &str) -> Option<PublicKey> {
    if let Some(key) = sub.record.keys.lock().unwrap().get(key_id) {
        return Some(key.clone());
    }
    let actor_url = key_id.split('#').next().unwrap_or_default();
    if !actor_url.starts_with(&format!("{}/", sub.relay_base)) {
        return None;
    }
    let actor: Value = sub
        .http
        .get(actor_url)
        .header("accept", "application/activity+json")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let key = PublicKey::from_pem(actor["publicKey"]["publicKeyPem"].as_str()?).ok()?;
    sub.record
        .keys
        .lock()
        .unwrap()
        .insert(key_id.to_string(), key.clone());
    Some(key)
}

/// What a simulated inbox reads of a delivered activity: its type and its object's id. Everything else
/// is skipped unparsed (no `Value` tree per request: the instances share the relay's cores).
#[derive(Default, serde::Deserialize)]
struct Delivered<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    object: Option<ObjectRef>,
}

/// An activity's `object`: its id, or the object itself, of which only the id is read.
#[derive(Default)]
struct ObjectRef(String);

impl ObjectRef {
    fn id(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for ObjectRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ObjectRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an id or an object")
            }
            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<ObjectRef, E> {
                Ok(ObjectRef(id.to_owned()))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<ObjectRef, M::Error> {
                #[derive(serde::Deserialize)]
                struct Object {
                    #[serde(default)]
                    id: String,
                }
                let object = <Object as serde::Deserialize>::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ObjectRef(object.id))
            }
        }
        d.deserialize_any(Visitor)
    }
}

async fn sub_handler(
    sub: Arc<Sub>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    if method == Method::GET {
        // The instance actor (it subscribes) and its people, among them the author of the posts
        // (AUTHOR_PATH), who opted in to search (`indexable`) so the relay's indexer indexes them. All
        // sign with the instance's one key.
        let (kind, name) = match uri.path() {
            "/actor" => ("Application", "instance"),
            path => match path.strip_prefix("/users/") {
                Some(name) if !name.is_empty() && !name.contains('/') => ("Person", name),
                _ => return Ok(status(StatusCode::NOT_FOUND)),
            },
        };
        let id = format!("{}{}", sub.base, uri.path());
        let actor = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
                         { "toot": "http://joinmastodon.org/ns#", "indexable": "toot:indexable",
                           "discoverable": "toot:discoverable" }],
            "id": id, "type": kind, "preferredUsername": name,
            "indexable": true, "discoverable": true,
            "inbox": format!("{}/inbox", sub.base),
            "endpoints": { "sharedInbox": format!("{}/inbox", sub.base) },
            "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": sub.pem }
        });
        let mut response = hyper::Response::new(Full::new(Bytes::from(actor.to_string())));
        response.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/activity+json"),
        );
        return Ok(response);
    }
    // Verify as an inbox does: signature over the listed headers, digest, date window; the RSA check
    // itself after answering (`SignatureChecks`).
    let request = SignedRequest {
        method: &method,
        path_and_query: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        authority: &sub.authority,
        scheme: "http",
        headers: &headers,
        body: &body,
    };
    let claim = httpsig::extract_claim(&request, SystemTime::now()).ok();
    let key = match &claim {
        Some(claim) => relay_key(&sub, &claim.key_id).await,
        None => None,
    };
    match (claim, key) {
        (Some(claim), Some(key)) => sub.record.checks.check_later(claim, key),
        _ => {
            sub.record.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(status(StatusCode::UNAUTHORIZED));
        }
    }
    let arrived = Instant::now();
    let parsed: Delivered = serde_json::from_slice(&body).unwrap_or_default();
    match parsed.kind.as_deref() {
        Some("Accept") => {
            sub.record.accepts.fetch_add(1, Ordering::Relaxed);
        }
        Some("Announce") | Some("Create") => {
            let object = parsed.object.as_ref().map_or("", ObjectRef::id);
            if let Some(n) = object
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
            {
                let mut arrivals = sub.record.arrivals.lock().unwrap();
                let times = arrivals.entry((sub.index, n)).or_default();
                times.push(arrived);
                if times.len() == 1 && sub.behaviour == Behaviour::Healthy {
                    sub.record.first_arrivals.fetch_add(1, Ordering::Relaxed);
                }
                if sub.behaviour == Behaviour::Dead {
                    sub.record.dead_arrivals.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        _ => {}
    }
    if sub.behaviour == Behaviour::Slow {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(status(StatusCode::ACCEPTED))
}

fn status(code: StatusCode) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// Serves one simulated instance with hyper (no router: every path is the inbox or the actor) until it
/// is taken down, which also drops its open connections, as a crashed server's would be.
async fn serve(
    listener: tokio::net::TcpListener,
    sub: Arc<Sub>,
    mut down: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = down.wait_for(|d| *d) => return,
        };
        let _ = stream.set_nodelay(true);
        let (sub, mut down) = (sub.clone(), down.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |r| sub_handler(sub.clone(), r));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = down.wait_for(|d| *d) => {}
            }
        });
    }
}

static NEXT_IP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A loopback address of its own for each simulated instance (127.0.1.1 onwards).
fn next_loopback() -> IpAddr {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (n / 250) as u8,
        1 + (n % 250) as u8,
    ))
}

async fn start_subscriber(
    index: usize,
    behaviour: Behaviour,
    relay: &RelayProcess,
    record: Arc<Record>,
    http: reqwest::Client,
) -> SubHandle {
    let key = PrivateKey::generate().expect("key");
    start_subscriber_with(index, behaviour, relay, record, http, key).await
}

/// [`start_subscriber`] signing with `key` (simulated instances may share keys: making hundreds costs
/// seconds of CPU).
async fn start_subscriber_with(
    index: usize,
    behaviour: Behaviour,
    relay: &RelayProcess,
    record: Arc<Record>,
    http: reqwest::Client,
    key: PrivateKey,
) -> SubHandle {
    let ip = next_loopback();
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let sub = Sub {
        index,
        base: format!("http://{addr}"),
        authority: addr.to_string(),
        behaviour,
        pem: key.public_key_pem().to_string(),
        relay_base: relay.base.clone(),
        record,
        http,
    };
    let (down, down_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(serve(listener, Arc::new(sub.clone()), down_rx));
    SubHandle { sub, key, down }
}

/// A signed POST to one of the relay's inboxes, ready to send.
struct Prepared {
    url: String,
    headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    body: Bytes,
}

/// `activity` signed with `key` for a POST to `inbox` (the relay's, or a topic's).
fn prepare(key: &PrivateKey, key_id: &str, inbox: &str, activity: &Value) -> Prepared {
    let body = serde_json::to_vec(activity).expect("json");
    let url = url::Url::parse(inbox).expect("url");
    let headers = httpsig::sign_request(
        key,
        key_id,
        &Method::POST,
        &url,
        Some("application/activity+json"),
        Some(&body),
        SystemTime::now(),
    )
    .expect("sign");
    Prepared {
        url: inbox.to_string(),
        headers,
        body: Bytes::from(body),
    }
}

async fn subscribe(sub: &SubHandle, relay: &str) {
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/follow/{}", sub.sub.base, sub.sub.index),
        "type": "Follow",
        "actor": format!("{}/actor", sub.sub.base),
        "object": PUBLIC
    });
    let p = prepare(
        &sub.key,
        &format!("{}/actor#main-key", sub.sub.base),
        &format!("{relay}/inbox"),
        &follow,
    );
    let status = Poster::default().send(&p).await;
    assert_eq!(status, Ok(StatusCode::ACCEPTED), "subscription refused");
}

/// The origin instance: a subscriber that posts.
struct Origin {
    handle: SubHandle,
}

impl Origin {
    /// Starts the origin instance and subscribes it to the relay.
    async fn start(
        index: usize,
        relay: &RelayProcess,
        record: &Arc<Record>,
        client: &reqwest::Client,
    ) -> Arc<Origin> {
        let handle = start_subscriber(
            index,
            Behaviour::Healthy,
            relay,
            record.clone(),
            client.clone(),
        )
        .await;
        subscribe(&handle, &relay.base).await;
        Arc::new(Origin { handle })
    }

    /// The `Create` of post `n`. Four posts in five declare their language in `contentMap`, as
    /// Mastodon and GoToSocial send it; the fifth carries none, as from Misskey or Pleroma, and the
    /// indexer detects it (the mix of the search and topic benchmarks).
    fn create(&self, n: u64, relay: &str) -> Prepared {
        let word = probe_word(n);
        self.create_note(n, relay, |note| {
            let content = format!(
                "<p>A co-op bakery in the valley is hiring two bakers. Worker-owned, \
                 fair wages, bread for the neighbourhood. #coop #cooperative #jobs</p><p>{word}</p>"
            );
            if n % 5 != 4 {
                note["contentMap"] = json!({ "en": content });
            }
            note["content"] = json!(content);
        })
    }

    /// Public post `n` by the origin's author, without content.
    fn note(&self, n: u64) -> Value {
        let actor = format!("{}{AUTHOR_PATH}", self.handle.sub.base);
        json!({
            "id": format!("{}/statuses/{n}", self.handle.sub.base), "type": "Note", "attributedTo": actor,
            "to": [PUBLIC], "cc": [format!("{actor}/followers")], "published": "2026-11-26T10:00:00Z"
        })
    }

    /// The signed `Create` of public post `n` by the origin's author, its Note completed by `fill`
    /// (content, tags, language).
    fn create_note(&self, n: u64, relay: &str, fill: impl FnOnce(&mut Value)) -> Prepared {
        let base = &self.handle.sub.base;
        let actor = format!("{base}{AUTHOR_PATH}");
        let note = format!("{base}/statuses/{n}");
        let mut object = self.note(n);
        fill(&mut object);
        let create = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": format!("{note}/activity"),
            "type": "Create",
            "actor": actor,
            "to": [PUBLIC],
            "cc": [format!("{actor}/followers")],
            "object": object
        });
        prepare(
            &self.handle.key,
            &format!("{actor}#main-key"),
            &format!("{relay}/inbox"),
            &create,
        )
    }

    /// The `Delete` of post `n` (its Tombstone), signed.
    fn delete(&self, n: u64, relay: &str) -> Prepared {
        let base = &self.handle.sub.base;
        let actor = format!("{base}{AUTHOR_PATH}");
        let note = format!("{base}/statuses/{n}");
        let delete = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{note}#delete"),
            "type": "Delete",
            "actor": actor,
            "to": [PUBLIC],
            "object": { "id": note, "type": "Tombstone" }
        });
        prepare(
            &self.handle.key,
            &format!("{actor}#main-key"),
            &format!("{relay}/inbox"),
            &delete,
        )
    }

    /// Signs posts `from..to` on all cores.
    fn presign(&self, range: std::ops::Range<u64>, relay: &str) -> Vec<Prepared> {
        self.presign_with(range, |n| self.create(n, relay))
    }

    /// The requests `make` prepares for posts `from..to`, made on all cores.
    fn presign_with(
        &self,
        range: std::ops::Range<u64>,
        make: impl Fn(u64) -> Prepared + Sync,
    ) -> Vec<Prepared> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2) as u64;
        let chunk = (range.end - range.start).div_ceil(threads);
        let make = &make;
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    let start = range.start + t * chunk;
                    let end = (start + chunk).min(range.end);
                    s.spawn(move || (start..end).map(make).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().expect("presign"))
                .collect()
        })
    }
}

/// Makes the load generator take its sockets' events in batches during a burst.
///
/// The simulated subscribers stand in for servers on other machines, but here they share the relay's two
/// cores. Left alone, this process sleeps in epoll and every request the relay writes wakes it, preempting
/// a relay thread in the middle of a signature (a reschedule IPI and two context switches per delivery,
/// paid by both processes: 64% of the bound instead of 72% in one measurement). Sleeping between
/// batches, as a busy server's event loop effectively does, keeps the machine's cost of the simulation
/// close to the work it must do (HTTP and one signature check per request). Every batch has a fixed
/// cost (the sleep's timer, two context switches, an `epoll_wait`, a relay thread preempted), shared
/// by the requests that arrived meanwhile: on a machine signing ~2,500/s, 1 ms batches left the
/// generator 42–59 µs of CPU per delivery and 2 ms batches 36–43 µs (twelve alternated runs, see
/// docs/performance.md). A batch adds at most its length to a delivery's round trip, which 200
/// workers delivering in parallel absorb. The latency phase runs without it.
struct Pacer {
    running: Arc<AtomicBool>,
    /// `None` without batching: the runtime then wakes for every request.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Pacer {
    /// The default batch (`--batch-ms`).
    const BATCH: Duration = Duration::from_millis(2);

    /// Sleeps `batch` between polls until stopped; a zero `batch` leaves the runtime alone.
    fn start(batch: Duration) -> Pacer {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let task = (!batch.is_zero()).then(|| {
            tokio::spawn(async move {
                while flag.load(Ordering::Relaxed) {
                    // Blocks this (current-thread) runtime on purpose; yielding then lets it poll
                    // every socket that became ready meanwhile in one go.
                    std::thread::sleep(batch);
                    tokio::task::yield_now().await;
                }
            })
        });
        Pacer { running, task }
    }

    async fn stop(self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// Signatures per second on all cores with the relay's kind of key, over `secs` seconds.
fn signing_bound(secs: f64) -> f64 {
    signing_bound_and_cost(secs).0
}

/// [`signing_bound`], and the CPU time one signature took (µs): unlike the rate, the cost hardly
/// moves when other jobs take the cores.
fn signing_bound_and_cost(secs: f64) -> (f64, f64) {
    let cpu_before = cpu_secs_of("/proc/self/stat");
    // The machine's cores, not those this process is confined to now (the bound is the machine's).
    let threads = cores();
    let key = PrivateKey::generate().expect("key");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (key, stop, count) = (key.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                // On every core, even when the load generator is confined to the cores the relay left.
                set_affinity(&[]);
                let message = b"(request-target): post /inbox\nhost: b.example\ndate: Thu, 26 Nov 2026 10:00:00 GMT";
                while !stop.load(Ordering::Relaxed) {
                    key.sign_rsa_sha256(message).expect("sign");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("signer");
    }
    let signatures = count.load(Ordering::Relaxed) as f64;
    let cpu = cpu_secs_of("/proc/self/stat") - cpu_before;
    (
        signatures / start.elapsed().as_secs_f64(),
        cpu * 1e6 / signatures.max(1.0),
    )
}

/// POSTs `posts`, `concurrency` at a time, each poster task over connections of its own (a
/// [`Poster`]): which were accepted (index, when) and what the others got.
async fn post_all(posts: Vec<Prepared>, concurrency: usize) -> (Vec<(u64, Instant)>, Vec<String>) {
    let posts = Arc::new(posts);
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(Mutex::new(Vec::with_capacity(posts.len())));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (posts, next, refused, accepted) = (
                posts.clone(),
                next.clone(),
                refused.clone(),
                accepted.clone(),
            );
            tokio::spawn(async move {
                let mut poster = Poster::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(p) = posts.get(i) else { break };
                    match poster.send(p).await {
                        Ok(StatusCode::ACCEPTED) => {
                            accepted.lock().unwrap().push((i as u64, Instant::now()));
                        }
                        Ok(status) => refused.lock().unwrap().push(status.to_string()),
                        Err(e) => refused.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("poster");
    }
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let refused = std::mem::take(&mut *refused.lock().unwrap());
    (accepted, refused)
}

/// A simulated instance's keep-alive HTTP/1.1 connections, one per relay node, driven with hyper's
/// client connection directly: every signed POST to an inbox goes through one (bursts, the steady
/// phase, deletes, subscriptions, topic follows). The simulated instances stand in for servers on
/// other machines, so on the relay's cores they should cost what sending a prepared request must (a
/// write and a read on a socket) and no more: with reqwest (its pool, URL parsing, header map), the
/// inbound phase measured ~20 µs of this process's CPU per POST beside the relay's ~170 µs.
#[derive(Default)]
struct Poster {
    connections: HashMap<String, hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Poster {
    /// POSTs `p`: the relay's answer, or what kept the request from getting one. A connection the
    /// relay closed between two requests is replaced once.
    async fn send(&mut self, p: &Prepared) -> Result<StatusCode, String> {
        let uri: hyper::Uri = p
            .url
            .parse()
            .map_err(|e| format!("bad url {}: {e}", p.url))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("no authority in {}", p.url))?
            .to_string();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut last_error = String::new();
        for _ in 0..2 {
            let mut sender = match self.connections.remove(&authority) {
                Some(sender) if !sender.is_closed() => sender,
                _ => connect(&authority).await?,
            };
            if let Err(e) = sender.ready().await {
                last_error = format!("connection closed: {e}");
                continue;
            }
            let mut request = hyper::Request::new(Full::new(p.body.clone()));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = path.parse().map_err(|e| format!("bad path {path}: {e}"))?;
            let headers = request.headers_mut();
            for (name, value) in &p.headers {
                headers.insert(name, value.clone());
            }
            if !headers.contains_key(axum::http::header::HOST) {
                let host = axum::http::HeaderValue::from_str(&authority)
                    .map_err(|e| format!("bad host {authority}: {e}"))?;
                headers.insert(axum::http::header::HOST, host);
            }
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    // Read the answer to its end so the connection can carry the next request.
                    let read = response.into_body().collect().await;
                    if read.is_ok() {
                        self.connections.insert(authority, sender);
                    }
                    return Ok(status);
                }
                Err(e) => last_error = format!("no answer: {e}"),
            }
        }
        Err(last_error)
    }
}

/// A new HTTP/1.1 connection to `authority` (host:port on loopback), its driver on a task of its own.
async fn connect(
    authority: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {authority}: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A word found in post `n` and in no other: `zx` and `n` in letters, ending in `q` so no stemmer
/// changes it.
fn probe_word(n: u64) -> String {
    let mut word = String::from("zx");
    let mut rest = n;
    loop {
        word.push((b'a' + (rest % 26) as u8) as char);
        rest /= 26;
        if rest == 0 {
            break;
        }
    }
    word.push('q');
    word
}

/// The relay's `/metrics` at `base` as text (empty when it does not answer).
async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A sample's value in Prometheus text: `series` is a metric's name with its labels as printed
/// (`plaza_index_documents_total{kind="post"}`), or a bare name for its first sample.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(series).is_some_and(|rest| {
                rest.starts_with(' ') || (!series.contains('{') && rest.starts_with('{'))
            })
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Prints the store's group commits and reads over the inbound phase (node 0's, from `/metrics`):
/// where an activity's time goes between the inbox and the database.
async fn print_store_figures(client: &reqwest::Client, relay: &RelayProcess, activities: usize) {
    let text = metrics_text(client, &relay.base).await;
    let backend = if relay.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let value = |name: &str| metric(&text, &format!("{name}{{backend=\"{backend}\"}}"));
    let (Some(commits), Some(commit_s), Some(reads), Some(read_s)) = (
        value("plaza_store_commits_total"),
        value("plaza_store_commit_seconds_total"),
        value("plaza_store_reads_total"),
        value("plaza_store_read_seconds_total"),
    ) else {
        return;
    };
    let per_node = activities as f64 / relay.node_bases.len() as f64;
    println!(
        "store ({backend}, node 0): {commits:.0} group commits, {:.1} activities and {:.2} ms each; \
         {reads:.0} reads, {:.1} per activity, {:.0} µs each",
        per_node / commits.max(1.0),
        commit_s * 1e3 / commits.max(1.0),
        reads / per_node.max(1.0),
        read_s * 1e6 / reads.max(1.0),
    );
}

/// How far a node's indexer got: log entries read and posts handed to its index.
struct IndexProgress {
    entries: f64,
    posts: f64,
}

/// Polls the node at `base` until its indexer has read the whole log (lag 0) and handed its index
/// `posts` posts or more; what it then read, or `None` after `limit`.
async fn until_indexed(
    client: &reqwest::Client,
    base: &str,
    posts: f64,
    limit: Duration,
) -> Option<IndexProgress> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let text = metrics_text(client, base).await;
        let lag = metric(&text, "plaza_indexer_lag_entries");
        let progress = IndexProgress {
            entries: metric(&text, "plaza_indexer_entries_total").unwrap_or(0.0),
            posts: metric(&text, "plaza_index_documents_total{kind=\"post\"}").unwrap_or(0.0),
        };
        if lag == Some(0.0) && progress.posts >= posts {
            return Some(progress);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Whether the relay answers searches (503 when `index_enabled = false`).
async fn search_enabled(client: &reqwest::Client, relay: &str) -> bool {
    client
        .get(format!("{relay}/api/plaza/v1/search?q=bakery"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Posts deleted in the latency phase to time delete→gone.
const DELETE_SAMPLES: usize = 20;

/// Polls the relay's search API every 10 ms until post `n` is among the results for its probe word
/// (`wanted`), or no longer is (`!wanted`); the time from `accepted` (the 202 of its Create or Delete) to that
/// answer, in ms, or `None` after 30 s.
async fn until_searchable(
    client: reqwest::Client,
    relay: String,
    n: u64,
    accepted: Instant,
    wanted: bool,
) -> Option<f64> {
    let word = probe_word(n);
    let deadline = accepted + Duration::from_secs(30);
    while Instant::now() < deadline {
        let found = match client
            .get(format!("{relay}/api/plaza/v1/search?q={word}"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.is_ok_and(|page| {
                // This post, not another: with no exact hit the search also finds words one
                // letter apart, and probe words are (`zxaq` for post 0, `zxaeq` for post 104).
                page["posts"].as_array().is_some_and(|posts| {
                    posts.iter().any(|p| {
                        p["uri"]
                            .as_str()
                            .is_some_and(|uri| uri.ends_with(&format!("/statuses/{n}")))
                    })
                })
            }),
            _ => false,
        };
        if found == wanted {
            return Some(accepted.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What one fan-out run measured.
struct FanOut {
    /// The burst with the median ratio of delivered requests to the signing bound.
    median: Burst,
    /// Every burst's ratio, lowest first.
    shares: Vec<f64>,
    /// Deliveries expected over all bursts, and how many of them did not arrive.
    expected: usize,
    missing: usize,
    duplicates: usize,
    p50_ms: f64,
    p99_ms: f64,
    steady_posts_per_sec: f64,
    /// Accept (202) → found by the search API, for the latency phase's posts; `None` with the index off.
    searchable: Option<Searchable>,
    /// Delete accepted (202) → no longer found, for some of those posts; `None` with the index off.
    gone: Option<Searchable>,
    rss_mb: f64,
    /// The relay's RSS right after it started, and once every subscriber got its Accept (idle).
    start_rss_mb: f64,
    subscribed_rss_mb: f64,
    /// This process's peak RSS (the simulated subscribers and the origin), apart from the relay's.
    generator_rss_mb: f64,
    refused_signatures: u64,
    dead_arrivals: u64,
    /// Subscriber leases per node once they were spread (empty on SQLite).
    leases: Vec<u64>,
}

/// How soon accepted posts became searchable (or deleted ones unsearchable).
struct Searchable {
    p50_ms: f64,
    p99_ms: f64,
    sampled: usize,
    /// Posts not found (or still found) after 30 s.
    missing: usize,
}

impl Searchable {
    /// The figures of `found` (ms each, `None` for a post that timed out).
    fn of(found: &[Option<f64>]) -> Searchable {
        let mut times: Vec<f64> = found.iter().flatten().copied().collect();
        times.sort_by(|a, b| a.total_cmp(b));
        Searchable {
            p50_ms: percentile(&times, 0.50),
            p99_ms: percentile(&times, 0.99),
            sampled: found.len(),
            missing: found.len() - times.len(),
        }
    }
}

/// What one burst measured.
struct Burst {
    /// CPU time per delivery: the relay, and this process while the burst ran (subscribers answering,
    /// origin posting), and the subscribers' signature checks (most of them after the burst).
    relay_cpu_us: f64,
    load_cpu_us: f64,
    check_cpu_us: f64,
    /// The signing bound measured right before and right after the burst; the higher one counts.
    bound: f64,
    /// One signature's CPU time in those measurements (µs; the lower of the two).
    signature_us: f64,
    deliveries_per_sec: f64,
    expected: usize,
    delivered: usize,
}

impl Burst {
    fn share(&self) -> f64 {
        self.deliveries_per_sec / self.bound
    }
}

/// A relay with its subscribers, ready for bursts.
struct Fleet<'a> {
    relay: &'a RelayProcess,
    record: &'a Arc<Record>,
    origin: &'a Arc<Origin>,
    healthy: &'a [usize],
    /// The simulated subscribers' event batch during bursts ([`Pacer`]).
    batch: Duration,
}

impl Fleet<'_> {
    /// Posts `posts` all at once; throughput runs from the first send to the last delivery to a
    /// healthy subscriber. The machine's signing rate is measured right before and right after, since
    /// a shared machine's capacity drifts; the higher of the two is the bound the burst is compared with.
    async fn burst(&self, posts: std::ops::Range<u64>, profile: Option<&str>) -> Burst {
        let (relay, record) = (self.relay, self.record);
        let mut prepared = self.origin.presign(posts.clone(), &relay.base);
        relay.spread(&mut prepared);
        let (bound_before, signature_before) =
            tokio::task::spawn_blocking(|| signing_bound_and_cost(2.0))
                .await
                .expect("bound");
        eprintln!(
            "burst: {} posts to {} subscribers",
            posts.end - posts.start,
            self.healthy.len()
        );
        let arrivals_before = record.first_arrivals.load(Ordering::Relaxed) as usize;
        let (relay_cpu0, own_cpu0) = (relay.cpu_secs(), cpu_secs_of("/proc/self/stat"));
        let check_cpu0 = SignatureChecks::cpu_secs();
        let profiler = profile.map(Profiler::start);
        let pacer = Pacer::start(self.batch);
        let start = Instant::now();
        let (accepted, refused) = post_all(prepared, 16).await;
        assert!(
            refused.is_empty(),
            "the relay refused burst posts: {refused:?}"
        );
        let expected = accepted.len() * self.healthy.len();
        // Wait on the counter: scanning the arrivals would steal CPU from the relay being measured.
        let deadline = Instant::now() + Duration::from_secs(120);
        while (record.first_arrivals.load(Ordering::Relaxed) as usize) < arrivals_before + expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (relay_cpu1, own_cpu1) = (relay.cpu_secs(), cpu_secs_of("/proc/self/stat"));
        pacer.stop().await;
        drop(profiler);
        record.checks.settle().await;
        let check_cpu = SignatureChecks::cpu_secs() - check_cpu0;
        let (delivered, last) = {
            let arrivals = record.arrivals.lock().unwrap();
            let firsts: Vec<Instant> = self
                .healthy
                .iter()
                .flat_map(|s| posts.clone().map(move |n| (*s, n)))
                .filter_map(|key| arrivals.get(&key).and_then(|t| t.first().copied()))
                .collect();
            (firsts.len(), firsts.into_iter().max().unwrap_or(start))
        };
        let (bound_after, signature_after) =
            tokio::task::spawn_blocking(|| signing_bound_and_cost(2.0))
                .await
                .expect("bound");
        Burst {
            relay_cpu_us: (relay_cpu1 - relay_cpu0) * 1e6 / delivered.max(1) as f64,
            load_cpu_us: (own_cpu1 - own_cpu0) * 1e6 / delivered.max(1) as f64,
            check_cpu_us: check_cpu * 1e6 / delivered.max(1) as f64,
            // The relay's share of the machine's bound: all of it, unless its nodes are pinned to fewer
            // cores than the machine has.
            bound: bound_before.max(bound_after) * relay.bound_scale(),
            signature_us: signature_before.min(signature_after),
            deliveries_per_sec: delivered as f64 / (last - start).as_secs_f64(),
            expected,
            delivered,
        }
    }
}

async fn fan_out(o: &Options, faults: bool, deployment: &Deployment) -> FanOut {
    let relay = RelayProcess::deploy(&[], deployment).await;
    let start_rss_mb = relay.rss_mb().unwrap_or(f64::NAN);
    let record = Arc::new(Record::default());
    // Room for every burst's arrivals, so that the map does not grow (rehashing all of it) mid-burst.
    record
        .arrivals
        .lock()
        .unwrap()
        .reserve(o.subscribers * o.bursts * o.posts);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let dead = if faults { o.subscribers / 10 } else { 0 };
    let slow = if faults { o.subscribers / 20 } else { 0 };
    let mut subs = Vec::new();
    for i in 0..o.subscribers {
        let behaviour = if i < dead {
            Behaviour::Dead
        } else if i < dead + slow {
            Behaviour::Slow
        } else {
            Behaviour::Healthy
        };
        subs.push(start_subscriber(i, behaviour, &relay, record.clone(), client.clone()).await);
    }
    let origin = Origin::start(usize::MAX, &relay, &record, &client).await;
    for sub in &subs {
        subscribe(sub, &relay.base).await;
    }
    let wait_start = Instant::now();
    while record.accepts.load(Ordering::Relaxed) < (o.subscribers + 1) as u64 {
        assert!(
            wait_start.elapsed() < Duration::from_secs(60),
            "not every subscriber got its Accept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // On PostgreSQL: every subscriber (the origin too) leased by a node.
    let leases = relay.until_leases(o.subscribers + 1).await;
    // Every subscriber's worker has delivered its Accept and waits: what a subscriber costs at rest
    // (after `--settle-secs`, so that connections idle longer than the relay keeps them are gone).
    tokio::time::sleep(Duration::from_secs(o.settle_secs.max(1))).await;
    let subscribed_rss_mb = relay.rss_mb().unwrap_or(f64::NAN);
    for sub in &subs {
        if sub.sub.behaviour == Behaviour::Dead {
            sub.take_down();
        }
    }
    let healthy: Vec<usize> = subs
        .iter()
        .filter(|s| s.sub.behaviour == Behaviour::Healthy)
        .map(|s| s.sub.index)
        .collect();

    // Wait on the counter (scanning the arrivals here would steal CPU from the relay being measured).
    let wait_for = |target: usize, limit: Duration| {
        let record = record.clone();
        async move {
            let deadline = Instant::now() + limit;
            while (record.first_arrivals.load(Ordering::Relaxed) as usize) < target
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let fleet = Fleet {
        relay: &relay,
        record: &record,
        origin: &origin,
        healthy: &healthy,
        batch: o.batch,
    };
    let mut bursts = Vec::with_capacity(o.bursts);
    for b in 0..o.bursts as u64 {
        let posts = b * o.posts as u64..(b + 1) * o.posts as u64;
        let profile = o.perf.as_deref().filter(|_| b == 0 && !faults);
        let burst = fleet.burst(posts, profile).await;
        // Each burst in the order it ran (the table reports the median one).
        eprintln!(
            "burst {}: {:.0} deliveries/s, {:.0}% of the bound ({:.0}/s); relay {:.0} µs per delivery beyond its signature",
            b + 1,
            burst.deliveries_per_sec,
            100.0 * burst.share(),
            burst.bound,
            burst.relay_cpu_us - burst.signature_us
        );
        bursts.push(burst);
    }
    // The burst with the median ratio to its bound stands for the run.
    bursts.sort_by(|x, y| x.share().total_cmp(&y.share()));
    let shares: Vec<f64> = bursts.iter().map(Burst::share).collect();
    let median = bursts.swap_remove(bursts.len() / 2);
    let bound = median.bound;

    // Steady rate: about a third of the signing bound in deliveries, for the latency figures.
    let rate = (bound / 3.0 / healthy.len().max(1) as f64).max(1.0);
    let steady_count = (rate * o.steady_secs as f64).ceil() as u64;
    let first = (o.bursts * o.posts) as u64;
    let mut steady = origin.presign(first..first + steady_count, &relay.base);
    relay.spread(&mut steady);
    let mut accepted_at: HashMap<u64, Instant> = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    // Every post of this phase is also searched for (never during the bursts: the polls would take
    // CPU from the fan-out being measured).
    let search = search_enabled(&client, &relay.base).await;
    let mut polls = Vec::new();
    let steady_arrivals_before = record.first_arrivals.load(Ordering::Relaxed) as usize;
    let steady_start = Instant::now();
    let mut poster = Poster::default();
    for (i, p) in steady.iter().enumerate() {
        let due = steady_start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        // Deliveries may arrive before the 202 does: latency counts from when the POST was sent.
        let sent = Instant::now();
        if poster.send(p).await == Ok(StatusCode::ACCEPTED) {
            let n = first + i as u64;
            accepted_at.insert(n, sent);
            if search {
                let poll =
                    until_searchable(client.clone(), relay.base.clone(), n, Instant::now(), true);
                polls.push((n, tokio::spawn(poll)));
            }
        }
    }
    let steady_posts_per_sec = accepted_at.len() as f64 / steady_start.elapsed().as_secs_f64();
    let steady_expected = accepted_at.len() * healthy.len();
    wait_for(
        steady_arrivals_before + steady_expected,
        Duration::from_secs(60),
    )
    .await;
    let mut found = Vec::new();
    let mut findable = Vec::new();
    for (n, poll) in polls {
        let ms = poll.await.expect("search poll");
        if ms.is_some() {
            findable.push(n);
        }
        found.push(ms);
    }
    let searchable = search.then(|| Searchable::of(&found));
    // Deletes, one at a time, of posts that were found: delete (202) → no longer found.
    let mut removed = Vec::new();
    for n in findable.into_iter().take(DELETE_SAMPLES) {
        let delete = origin.delete(n, &relay.base);
        let sent = Instant::now();
        if poster.send(&delete).await == Ok(StatusCode::ACCEPTED) {
            removed
                .push(until_searchable(client.clone(), relay.base.clone(), n, sent, false).await);
        }
    }
    let gone = search.then(|| Searchable::of(&removed));
    let mut latencies: Vec<f64> = Vec::new();
    let mut duplicates = 0;
    {
        let arrivals = record.arrivals.lock().unwrap();
        for ((s, n), times) in arrivals.iter() {
            if healthy.contains(s) {
                duplicates += times.len() - 1;
            }
            if let (true, Some(t0)) = (healthy.contains(s), accepted_at.get(n)) {
                latencies.push(times[0].saturating_duration_since(*t0).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let rss_mb = relay.peak_rss_mb().unwrap_or(f64::NAN);
    for sub in subs {
        sub.take_down();
    }
    let expected: usize = bursts.iter().chain([&median]).map(|b| b.expected).sum();
    let delivered: usize = bursts.iter().chain([&median]).map(|b| b.delivered).sum();
    FanOut {
        median,
        shares,
        expected,
        missing: expected - delivered,
        duplicates,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        steady_posts_per_sec,
        searchable,
        gone,
        rss_mb,
        start_rss_mb,
        subscribed_rss_mb,
        generator_rss_mb: memory_mb_of("/proc/self/status", "VmHWM:").unwrap_or(f64::NAN),
        refused_signatures: record.refused().await,
        dead_arrivals: record.dead_arrivals.load(Ordering::Relaxed),
        leases,
    }
}

/// What the inbound phase measured.
struct Inbound {
    /// Accepted activities per second of wall time.
    rate: f64,
    refused: usize,
    /// The relay's peak RSS (MB).
    rss_mb: f64,
    /// The relay's CPU per accepted activity while the POSTs came (µs), and the index threads' part.
    relay_cpu_us: f64,
    index_cpu_us_posting: f64,
    /// The index threads' CPU per post from the first POST until every post was indexed (µs).
    index_cpu_us_per_post: Option<f64>,
    /// This process's CPU per accepted activity while it POSTed them (µs): the origin's share of the cores.
    generator_cpu_us: f64,
}

async fn inbound(o: &Options, deployment: &Deployment) -> Inbound {
    let relay = RelayProcess::deploy(&[], deployment).await;
    let record = Arc::new(Record::default());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .expect("client");
    let origin = Origin::start(usize::MAX - 1, &relay, &record, &client).await;
    let mut posts = origin.presign(0..o.inbound as u64, &relay.base);
    relay.spread(&mut posts);
    let (cpu_before, index_before) = (relay.cpu_secs(), relay.index_cpu_secs());
    let own_before = cpu_secs_of("/proc/self/stat");
    let start = Instant::now();
    let (accepted, refused) = post_all(posts, 64).await;
    let posting = start.elapsed().as_secs_f64();
    let rate = accepted.len() as f64 / posting;
    let per_activity = |secs: f64| secs * 1e6 / accepted.len().max(1) as f64;
    let generator_cpu_us = per_activity(cpu_secs_of("/proc/self/stat") - own_before);
    let relay_cpu_us = per_activity(relay.cpu_secs() - cpu_before);
    let index_cpu_us_posting = per_activity(relay.index_cpu_secs() - index_before);
    let mut index_cpu_us_per_post = None;
    print_store_figures(&client, &relay, accepted.len()).await;
    if search_enabled(&client, &relay.base).await {
        // The indexer runs behind the inbox (at a lower priority): how long until it caught up.
        let indexed = until_indexed(
            &client,
            &relay.base,
            accepted.len() as f64,
            Duration::from_secs(300),
        )
        .await;
        match &indexed {
            Some(p) => {
                let per_post = per_activity(relay.index_cpu_secs() - index_before);
                index_cpu_us_per_post = Some(per_post);
                println!(
                    "index: node 0 had indexed every accepted post {:.1} s after the first POST \
                     ({:.1} s after the last; {:.0} posts/s over the whole run); its index threads \
                     used {per_post:.0} µs of CPU per post",
                    start.elapsed().as_secs_f64(),
                    start.elapsed().as_secs_f64() - posting,
                    p.posts / start.elapsed().as_secs_f64(),
                )
            }
            None => println!(
                "index: node 0 had not indexed every accepted post 300 s after the first POST"
            ),
        }
        if let (Some(p), true) = (&indexed, o.new_index_node) {
            relay.time_a_new_index_node(&client, p).await;
        }
    }
    Inbound {
        rate,
        refused: refused.len(),
        rss_mb: relay.peak_rss_mb().unwrap_or(f64::NAN),
        relay_cpu_us,
        index_cpu_us_posting,
        index_cpu_us_per_post,
        generator_cpu_us,
    }
}

fn main() {
    let o = parse_options();
    cores();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if o.fasp {
        runtime.block_on(fasp::run(o.inbound, o.posts));
        return;
    }
    if o.topics {
        runtime.block_on(topics::run(&o));
        return;
    }
    if o.compare {
        runtime.block_on(compare_backends(&o));
        return;
    }
    let deployment = match &o.database {
        None => Deployment::SQLITE,
        Some(database) => Deployment::new(Some(database.clone()), o.nodes),
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "Plaza load benchmark: {cores} cores, {} subscribers, {} bursts of {} posts",
        o.subscribers, o.bursts, o.posts
    );
    println!(
        "relay settings: max_connections_per_ip = 0 and client_ip_rate = 0 (per-IP caps and read limits off: \
         every simulated instance shares loopback), inbound_rate_per_instance = 0, index_enabled = {}",
        std::env::var("PLAZA_INDEX_ENABLED").unwrap_or_else(|_| "true (default)".into())
    );
    let bound = signing_bound(3.0);
    println!("signing bound measured: {bound:.0} signatures/s");
    // The bound of the cores the relay has (the machine's, unless its nodes are pinned to fewer).
    let relay_bound = bound * deployment.relay_cores() as f64 / cores.max(1) as f64;
    if deployment.database.is_some() {
        println!("relay: {}", deployment.describe());
        println!(
            "signing bound of the relay's {} cores: {relay_bound:.0} signatures/s",
            deployment.relay_cores()
        );
    }
    start_local_cluster(&deployment.database);
    place_generator(&deployment);
    runtime.block_on(async {
        let measured_inbound = if o.inbound > 0 { Some(inbound(&o, &deployment).await) } else { None };
        // With `--inbound 0` the inbound figures read "not measured" rather than NaN.
        let inbound_figure = |f: &dyn Fn(&Inbound) -> String| measured_inbound.as_ref().map_or_else(|| "not measured".to_string(), f);
        println!("inbound measured: {}", inbound_figure(&|i| format!("{:.0}/s", i.rate)));
        let healthy = fan_out(&o, false, &deployment).await;
        println!("fan-out (healthy) measured");
        let faulty = if o.faults { Some(fan_out(&o, true, &deployment).await) } else { None };

        println!();
        println!("| figure | all healthy | 10% dead + 5% slow |");
        println!("|---|---|---|");
        let both = |name: &str, f: &dyn Fn(&FanOut) -> String| {
            let faulty = faulty.as_ref().map(f).unwrap_or_else(|| "-".into());
            println!("| {name} | {} | {faulty} |", f(&healthy));
        };
        println!("| signing bound at start, RSA-2048, {cores} cores | {bound:.0} signatures/s | |");
        println!(
            "| inbound accepted (verified, durable), {} posts | {} | |",
            o.inbound,
            inbound_figure(&|i| format!("{:.0} activities/s ({} refused)", i.rate, i.refused))
        );
        if let Some(i) = &measured_inbound {
            // One signature's CPU time on this machine, as the fan-out's "by CPU" figures use it.
            let signature_us = 1e6 * cores.max(1) as f64 / bound;
            println!(
                "| … relay CPU per inbound activity while posting (the index threads' part); by CPU, the inbound the relay would take with the cores to itself | {:.0} µs ({:.0} µs); {:.2}× the bound | |",
                i.relay_cpu_us,
                i.index_cpu_us_posting,
                signature_us / i.relay_cpu_us
            );
            if let Some(per_post) = i.index_cpu_us_per_post {
                println!("| … the index threads' CPU per post, until every post was indexed | {per_post:.0} µs | |");
            }
            println!("| … the origin's CPU per POST (this process, on the same cores) | {:.0} µs | |", i.generator_cpu_us);
        }
        both("delivered requests/s (median burst, healthy subscribers)", &|f| format!("{:.0}", f.median.deliveries_per_sec));
        both("signing bound around that burst (higher of before/after)", &|f| format!("{:.0}/s", f.median.bound));
        both("… delivered as share of that bound (every burst)", &|f| {
            let all: Vec<String> = f.shares.iter().map(|r| format!("{:.0}", 100.0 * r)).collect();
            format!("{:.0}% ({}%)", 100.0 * f.median.share(), all.join(", "))
        });
        both(
            "CPU per delivery in that burst: relay / load generator while it ran / the subscribers' signature checks, mostly after it (µs)",
            &|f| {
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    f.median.relay_cpu_us, f.median.load_cpu_us, f.median.check_cpu_us
                )
            },
        );
        both(
            "… the relay's CPU per delivery beyond its signature (one signature's CPU, µs); the share of the bound the relay would deliver by its own CPU",
            &|f| {
                let m = &f.median;
                format!(
                    "{:.0} µs ({:.0}); {:.0}%",
                    m.relay_cpu_us - m.signature_us,
                    m.signature_us,
                    100.0 * m.signature_us / m.relay_cpu_us
                )
            },
        );
        both("expected deliveries / missing / duplicates", &|f| {
            format!("{} / {} / {}", f.expected, f.missing, f.duplicates)
        });
        both("steady rate (posts/s)", &|f| format!("{:.1}", f.steady_posts_per_sec));
        both("latency inbox POST→delivery p50 (ms)", &|f| format!("{:.1}", f.p50_ms));
        both("latency inbox POST→delivery p99 (ms)", &|f| format!("{:.1}", f.p99_ms));
        both("accept (202)→searchable p50 / p99 (ms), posts sampled / not found in 30 s", &|f| {
            match &f.searchable {
                Some(s) => format!("{:.0} / {:.0} ({} / {})", s.p50_ms, s.p99_ms, s.sampled, s.missing),
                None => "index off".into(),
            }
        });
        both("delete (202)→gone from search p50 / p99 (ms), posts sampled / still found in 30 s", &|f| {
            match &f.gone {
                Some(s) => format!("{:.0} / {:.0} ({} / {})", s.p50_ms, s.p99_ms, s.sampled, s.missing),
                None => "index off".into(),
            }
        });
        both("relay peak RSS (MB)", &|f| format!("{:.0}", f.rss_mb));
        both(
            "relay RSS at start / all subscribed, idle (MB)",
            &|f| format!("{:.0} / {:.0}", f.start_rss_mb, f.subscribed_rss_mb),
        );
        both(
            "relay memory per subscriber beyond the start: idle / peak (KB)",
            &|f| {
                let per = |mb: f64| (mb - f.start_rss_mb) * 1024.0 / o.subscribers as f64;
                format!("{:.0} / {:.0}", per(f.subscribed_rss_mb), per(f.rss_mb))
            },
        );
        both("load generator peak RSS, this process, not the relay's (MB)", &|f| {
            format!("{:.0}", f.generator_rss_mb)
        });
        both("deliveries failing verification", &|f| f.refused_signatures.to_string());
        both("posts reaching dead subscribers", &|f| f.dead_arrivals.to_string());
        println!("| relay peak RSS in the inbound run (MB) | {} | |", inbound_figure(&|i| format!("{:.0}", i.rss_mb)));
        if deployment.database.is_some() {
            both("subscriber leases per node when measured", &|f| format!("{:?}", f.leases));
        }
        if let Some(f) = &faulty {
            println!();
            println!("healthy p99 with faults / all healthy: {:.2}x", f.p99_ms / healthy.p99_ms);
        }
        println!();
        if deployment.database.is_some() {
            println!("deployment: {}", deployment.describe());
        }
        println!(
            "summary: inbound {}, fan-out {:.0}% of {}, POST→delivery p99 {:.1} ms, {} missing, {} duplicates",
            inbound_figure(&|i| format!("{:.2}x the signing bound", i.rate / relay_bound)),
            100.0 * healthy.median.share(),
            if measured_inbound.is_some() { "it" } else { "the signing bound" },
            healthy.p99_ms,
            healthy.missing + faulty.as_ref().map_or(0, |f| f.missing),
            healthy.duplicates + faulty.as_ref().map_or(0, |f| f.duplicates),
        );
    });
}

/// One deployment's figures in `--compare-backends`.
struct Compared {
    deployment: Deployment,
    /// The signing bound of the relay's cores, measured at the start of its run.
    bound: f64,
    inbound: f64,
    fan_out: FanOut,
}

/// `--compare-backends`: SQLite, PostgreSQL on one node, PostgreSQL on `--nodes` nodes, one after the
/// other with the same placement rules (inbound, then the healthy fan-out of each), and their figures
/// side by side.
async fn compare_backends(o: &Options) {
    let database = o.database.clone();
    start_local_cluster(&database);
    let one = Deployment::new(database.clone(), 1);
    let mut runs = vec![
        // SQLite placed as PostgreSQL's one node is, so that only the store differs.
        Deployment {
            database: None,
            ..one.clone()
        },
        one,
    ];
    if o.nodes > 1 {
        runs.push(Deployment::new(database, o.nodes));
    }
    println!(
        "Plaza load benchmark, backends compared: {} cores, {} subscribers, {} bursts of {} posts, {} inbound",
        cores(),
        o.subscribers,
        o.bursts,
        o.posts,
        o.inbound
    );
    let mut results = Vec::new();
    for deployment in runs {
        println!("run: {}", deployment.describe());
        set_affinity(&[]);
        let machine = tokio::task::spawn_blocking(|| signing_bound(3.0))
            .await
            .expect("bound");
        let bound = machine * deployment.relay_cores() as f64 / cores() as f64;
        println!(
            "signing bound measured: {machine:.0} signatures/s, {bound:.0}/s for the relay's {} core(s)",
            deployment.relay_cores()
        );
        place_generator(&deployment);
        let inbound = if o.inbound > 0 {
            inbound(o, &deployment).await.rate
        } else {
            f64::NAN
        };
        println!("inbound measured: {inbound:.0}/s");
        let fan_out = fan_out(o, false, &deployment).await;
        set_affinity(&[]);
        results.push(Compared {
            deployment,
            bound,
            inbound,
            fan_out,
        });
    }
    println!();
    println!(
        "| run | relay's bound at start | inbound activities/s (× bound) | deliveries/s, median burst | \
         share of the bound (every burst) | CPU per delivery relay / generator (µs) | missing / duplicates | \
         POST→delivery p99 | leases per node |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let f = &r.fan_out;
        let shares: Vec<String> = f
            .shares
            .iter()
            .map(|s| format!("{:.0}", 100.0 * s))
            .collect();
        println!(
            "| {} | {:.0}/s | {:.0} ({:.2}×) | {:.0} | {:.0}% ({}%) | {:.0} / {:.0} | {} / {} | {:.1} ms | {:?} |",
            r.deployment.describe(),
            r.bound,
            r.inbound,
            r.inbound / r.bound,
            f.median.deliveries_per_sec,
            100.0 * f.median.share(),
            shares.join(", "),
            f.median.relay_cpu_us,
            f.median.load_cpu_us,
            f.missing,
            f.duplicates,
            f.p99_ms,
            f.leases
        );
    }
    println!();
    let share = |r: &Compared| r.fan_out.median.share();
    if let [sqlite, pg, rest @ ..] = &results[..] {
        println!(
            "summary: delivery ratio, one node: PostgreSQL {:.0}% of the bound, SQLite {:.0}% (PostgreSQL/SQLite {:.2})",
            100.0 * share(pg),
            100.0 * share(sqlite),
            share(pg) / share(sqlite)
        );
        println!(
            "summary: inbound, one node: PostgreSQL {:.0}/s ({:.2}× the bound), SQLite {:.0}/s ({:.2}×) \
             (PostgreSQL/SQLite {:.2})",
            pg.inbound,
            pg.inbound / pg.bound,
            sqlite.inbound,
            sqlite.inbound / sqlite.bound,
            pg.inbound / sqlite.inbound
        );
        if let Some(many) = rest.first() {
            println!(
                "summary: PostgreSQL, {} nodes vs 1: deliveries/s {:.0} vs {:.0} ({:.2}×), {:.0}% vs {:.0}% of \
                 their cores' bound; inbound {:.0}/s vs {:.0}/s ({:.2}×)",
                many.deployment.nodes,
                many.fan_out.median.deliveries_per_sec,
                pg.fan_out.median.deliveries_per_sec,
                many.fan_out.median.deliveries_per_sec / pg.fan_out.median.deliveries_per_sec,
                100.0 * share(many),
                100.0 * share(pg),
                many.inbound,
                pg.inbound,
                many.inbound / pg.inbound
            );
        }
        let missing: usize = results.iter().map(|r| r.fan_out.missing).sum();
        let duplicates: usize = results.iter().map(|r| r.fan_out.duplicates).sum();
        println!(
            "summary: machine {} cores; {missing} missing, {duplicates} duplicates over all runs",
            cores()
        );
    }
}
