//! A throwaway PostgreSQL cluster for the tests of the store's PostgreSQL backend: a real server, not a mock,
//! so the SQL, the types and the transactions the backend relies on are checked against PostgreSQL itself.
//!
//! The first [`cluster`] call in a test process runs `initdb` into a directory of its own under the
//! temporary directory and starts `postgres` on a Unix socket there (no TCP listener at all), durability
//! switched off for speed. Each test takes a fresh empty database with [`Cluster::new_database`]. The
//! server runs as `nobody` when the tests run as root (`initdb` refuses root), dies with the thread that
//! started it (so with the test process, even on a panic or an abort), is stopped and its directory removed
//! when the process exits normally, and a later run removes directories left behind by dead processes.
//!
//! The server binaries come from `PLAZA_TEST_PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package).
//!
//! Self-contained (std and `libc` only) so that the library's unit tests can include it with `#[path]`.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The database role of the tests: `initdb`'s superuser, whatever OS user runs the server.
const ROLE: &str = "plaza";
/// The server's port: with no TCP listener it only names the socket file (`.s.PGSQL.5432`).
const PORT: u16 = 5432;
/// The directory name's prefix under the temporary directory; the test process's pid follows it.
const DIR_PREFIX: &str = "plaza-pg-";
/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The running cluster of this test process, started by [`cluster`].
pub struct Cluster {
    /// The directory of the server binaries (`initdb`, `postgres`, `createdb`, `pg_isready`).
    bin: PathBuf,
    /// The cluster's own directory: the socket, `data/` and the logs.
    dir: PathBuf,
    /// The user and group the server and its tools run as, when the tests run as root.
    run_as: Option<(libc::uid_t, libc::gid_t)>,
    /// The postmaster's process id.
    pid: libc::pid_t,
    /// Set by the thread that spawned the server once the server has exited.
    exited: Arc<AtomicBool>,
    /// Set once [`Cluster::stop`] ran.
    stopped: AtomicBool,
    /// Numbers the databases of [`Cluster::new_database`].
    next_database: AtomicU32,
    /// The server's major version (`data/PG_VERSION`).
    major_version: u32,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster of this test process, started on the first call; panics, with the server log's tail, if it
/// cannot start.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let cluster = Cluster::start().unwrap_or_else(|e| panic!("test PostgreSQL cluster: {e}"));
        // SAFETY: `stop_at_exit` is an `extern "C" fn()` that never unwinds (it catches panics).
        unsafe { libc::atexit(stop_at_exit) };
        cluster
    })
}

/// Stops the cluster when the test process exits normally (statics are never dropped).
extern "C" fn stop_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(cluster) = CLUSTER.get() {
            cluster.stop();
        }
    });
}

impl Cluster {
    /// Creates a fresh empty database with a name of its own and returns its connection string, a
    /// `postgres://` URL that `tokio_postgres::Config::from_str` accepts: the socket directory as the
    /// percent-encoded host, `postgres://plaza@%2Ftmp%2Fplaza-pg-1234:5432/plaza_t1234_0`.
    pub fn new_database(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("plaza_t{}_{n}", std::process::id());
        let mut createdb = self.client("createdb");
        if self.major_version >= 15 {
            // Copying template1's files takes 50 ms, against 250 ms for 15's default of writing them to the
            // WAL block by block.
            createdb.args(["--strategy", "file_copy"]);
        }
        let output = createdb
            .arg(&name)
            .output()
            .unwrap_or_else(|e| panic!("test PostgreSQL cluster: cannot run createdb: {e}"));
        assert!(
            output.status.success(),
            "test PostgreSQL cluster: createdb {name} failed ({}): {}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            self.log_tail()
        );
        format!(
            "postgres://{ROLE}@{}:{PORT}/{name}",
            percent_encode(&self.socket_dir())
        )
    }

    /// Starts a cluster: the binaries found, stale directories removed, `initdb`, the server and the wait
    /// until it accepts connections.
    fn start() -> Result<Cluster, String> {
        let bin = find_bindir();
        let tmp = std::env::temp_dir();
        remove_stale_dirs(&tmp);
        let dir = tmp.join(format!("{DIR_PREFIX}{}", std::process::id()));
        if dir.exists() {
            // Left by an earlier process with the same pid.
            fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
        let run_as = server_user()?;
        if let Some((uid, gid)) = run_as {
            let path = CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| format!("{} contains a NUL byte", dir.display()))?;
            // SAFETY: `path` is a NUL-terminated string that outlives the call.
            if unsafe { libc::chown(path.as_ptr(), uid, gid) } != 0 {
                return Err(format!(
                    "cannot chown {}: {}",
                    dir.display(),
                    std::io::Error::last_os_error()
                ));
            }
        }
        let mut cluster = Cluster {
            bin,
            dir,
            run_as,
            pid: 0,
            exited: Arc::new(AtomicBool::new(false)),
            stopped: AtomicBool::new(false),
            next_database: AtomicU32::new(0),
            major_version: 0,
        };
        cluster.initdb()?;
        let version_file = cluster.dir.join("data/PG_VERSION");
        cluster.major_version = fs::read_to_string(&version_file)
            .ok()
            .and_then(|version| version.trim().parse().ok())
            .ok_or_else(|| format!("no major version in {}", version_file.display()))?;
        cluster.spawn_server()?;
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// Runs `initdb` into `data/`, its output in `initdb.log`.
    fn initdb(&self) -> Result<(), String> {
        let log_path = self.dir.join("initdb.log");
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let status = self
            .command("initdb")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-U",
                ROLE,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdout(log)
            .stderr(err)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.join("initdb").display()))?;
        if !status.success() {
            return Err(format!("initdb failed ({status}):\n{}", tail(&log_path)));
        }
        Ok(())
    }

    /// Starts `postgres` from a thread of its own that lives as long as the server: the parent-death signal
    /// (see [`Cluster::command`]) follows the thread that forked, so the server dies with the test process
    /// however it ends, and not with the test's thread that happened to start it.
    fn spawn_server(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("server.log");
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-k", &self.socket_dir(), "-p", &PORT.to_string()])
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ])
            .args([
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=32MB",
            ])
            .stdout(log)
            .stderr(err);
        let (sender, receiver) = mpsc::channel();
        let exited = Arc::clone(&self.exited);
        thread::Builder::new()
            .name("postgres".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let _ = sender.send(Ok(child.id() as libc::pid_t));
                    // Blocks for as long as the server runs, keeping this thread (its parent) alive.
                    let _ = child.wait();
                    exited.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = sender.send(Err(e));
                }
            })
            .map_err(|e| format!("cannot start the server's thread: {e}"))?;
        self.pid = receiver
            .recv()
            .map_err(|_| "the server's thread ended".to_string())?
            .map_err(|e| format!("cannot run {}: {e}", self.bin.join("postgres").display()))?;
        Ok(())
    }

    /// Polls `pg_isready` every 50 ms until the server accepts connections.
    fn wait_ready(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let ready = self
                .client("pg_isready")
                .args(["-q", "-d", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| {
                    format!("cannot run {}: {e}", self.bin.join("pg_isready").display())
                })?;
            if ready.success() {
                return Ok(());
            }
            if self.exited.load(Ordering::SeqCst) {
                return Err(format!(
                    "the server exited while starting; server log:\n{}",
                    self.log_tail()
                ));
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the server did not accept connections within {START_TIMEOUT:?}; server log:\n{}",
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (immediate shutdown: nothing needs to survive it) and removes the directory; once.
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.pid > 0 {
            if !self.exited.load(Ordering::SeqCst) {
                // SAFETY: signals the postmaster this cluster started; its thread reaps it, so the pid is
                // still ours until `exited` is set.
                unsafe { libc::kill(self.pid, libc::SIGQUIT) };
            }
            let start = Instant::now();
            while !self.exited.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
                thread::sleep(Duration::from_millis(10));
            }
            if !self.exited.load(Ordering::SeqCst) {
                // SAFETY: as above; not reaped yet.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// A command for one of the server binaries: run in the cluster's directory, as the server's user,
    /// without the environment's libpq settings (`PGHOST`, `PGDATA`…), stdin closed, killed (SIGKILL) when
    /// the thread that spawns it ends.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.dir).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"PG") {
                command.env_remove(key);
            }
        }
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
        // calls (prctl, getppid); std runs it after switching user, which would clear the signal.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The test process may have died before the signal was armed.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the test process is gone"));
                }
                Ok(())
            });
        }
        command
    }

    /// Client tool `program` (createdb, pg_isready) aimed at this cluster's socket as its superuser.
    fn client(&self, program: &str) -> Command {
        let mut command = self.command(program);
        command.args([
            "-h",
            &self.socket_dir(),
            "-p",
            &PORT.to_string(),
            "-U",
            ROLE,
        ]);
        command
    }

    /// The directory holding the server's socket: the cluster's directory.
    fn socket_dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        tail(&self.dir.join("server.log"))
    }
}

impl Drop for Cluster {
    /// Stops the server; the process's cluster is a static and never dropped, hence also [`stop_at_exit`].
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory of the server binaries: `PLAZA_TEST_PG_BIN`, else `pg_config --bindir` if it holds
/// `initdb`, else the highest-numbered `/usr/lib/postgresql/*/bin` holding `initdb`.
fn find_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLAZA_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "PLAZA_TEST_PG_BIN={}: no initdb there",
            dir.display()
        );
        return dir;
    }
    if let Ok(output) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found: install Debian's `postgresql` package (.ci/run does) or set \
             PLAZA_TEST_PG_BIN"
        ),
    }
}

/// The user and group to run the server as: `nobody` when running as root (`initdb` refuses root), else
/// none (the current user).
fn server_user() -> Result<Option<(libc::uid_t, libc::gid_t)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("nobody").expect("no NUL byte");
    // SAFETY: `passwd` is plain data, valid when zeroed.
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the strings getpwnam_r writes go to `buffer`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err("running as root, and there is no user `nobody` to run PostgreSQL as (initdb refuses root)".into());
    }
    Ok(Some((passwd.pw_uid, passwd.pw_gid)))
}

/// Removes the `plaza-pg-{pid}` directories of processes that no longer run, left by runs that did not end
/// normally.
fn remove_stale_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The last 30 lines of a log file.
fn tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Percent-encodes everything but unreserved characters, for a socket directory as a URL's host.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
