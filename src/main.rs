//! The `plaza` command: runs the relay (`plaza serve`, the default), checks its health and curates it
//! (`plaza admin …`).

use std::path::PathBuf;

use anyhow::Context as _;

mod cli;

/// mimalloc: the relay allocates many short-lived buffers per request (headers, bodies, futures); in the
/// load benchmark glibc malloc/free took several percent of the relay's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Plaza: an ActivityPub relay with a built-in discovery index.
///
/// Configuration is read from config/plaza.toml (or --config FILE); every key there can be overridden
/// by an environment variable PLAZA_<KEY>, e.g. PLAZA_PUBLIC_URL, PLAZA_LISTEN, PLAZA_DATA_DIR,
/// PLAZA_ALLOW_PRIVATE_NETWORKS. Log verbosity follows RUST_LOG (default: info).
#[derive(Parser)]
#[command(name = "plaza", version, about, long_about)]
struct Cli {
    /// Configuration file (default: config/plaza.toml when it exists, else built-in defaults).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay: serve the actor, inbox, WebFinger and NodeInfo, and deliver to subscribers.
    ///
    /// Instances subscribe by pasting PUBLIC_URL/inbox (Mastodon, Misskey, GoToSocial) or
    /// PUBLIC_URL/actor (Pleroma, Akkoma) into their relay settings. All state lives in data_dir.
    Serve,
    /// Check that a relay answers on its health endpoint (exit 0) or not (exit 1); the container
    /// image's HEALTHCHECK runs this.
    ///
    /// Without --url it asks the address the configuration listens on (an unspecified address such as
    /// 0.0.0.0 is asked on loopback).
    Health {
        /// Base URL of the relay to check, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Search a running relay (its Mastodon-compatible /api/v2/search) and print a table.
    ///
    /// QUERY uses the relay's query language: words, "phrases", -exclude, #tag, from:user@host,
    /// instance:host, language:xx, before:/after:/during: dates, has:media, is:reply, type:organization.
    /// Without --url it asks the address the configuration listens on.
    Search {
        /// What to look for.
        query: String,
        /// Base URL of the relay, e.g. https://relay.example.org.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Only this kind of result.
        #[arg(long = "type", value_name = "TYPE", value_parser = plaza::search_cli::TYPES)]
        kind: Option<String>,
        /// Results per kind (the API allows at most 40).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=40))]
        limit: u16,
        /// Print the relay's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Curate a running relay through its admin API: subscribers, approvals, blocks, limits, stats,
    /// topics.
    ///
    /// Needs the relay's admin token (--token, PLAZA_ADMIN_TOKEN or admin_token in the configuration).
    Admin(cli::admin::AdminArgs),
    /// Rebuild the search index (DATA_DIR/index) from the documents it stores, with a progress bar.
    ///
    /// Needs no network: every indexed document keeps its source. Run it with the relay stopped (it
    /// refuses while a relay holds the index), after an upgrade that changes the index's schema or
    /// when the relay reports the index unreadable.
    Reindex,
    /// Create the store's tables or bring them up to this release's schema, then exit.
    ///
    /// `plaza serve` does the same at start; run it alone before an upgrade's rollout, or to check
    /// that `database_url` is reachable. Prints the backend and the schema version.
    Migrate,
    /// Work on the store of a stopped relay: `plaza store copy` moves it from SQLite to PostgreSQL.
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
}

fn main() -> std::process::ExitCode {
    plaza::allocator::tune();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("plaza: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line an admin can act on, with the chain of causes; no backtrace.
            eprintln!("plaza: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging()?;
    let config =
        plaza::config::Config::load(cli.config.as_deref()).context("loading the configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => plaza::app::serve(config, shutdown_signal())
            .await
            .context("running the relay")?,
        Command::Health { url } => health(&config, url).await?,
        Command::Search {
            query,
            url,
            kind,
            limit,
            json,
        } => search(&config, url, &query, kind.as_deref(), limit.into(), json).await?,
        Command::Admin(args) => cli::admin::run(&config, args).await?,
        Command::Reindex => reindex(&config)?,
        Command::Migrate => {
            let store = plaza::state::open_store(&config)
                .await
                .context("opening the store")?;
            let version = store.schema_version().await?;
            let backend = if store.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            };
            println!("store on {backend}: schema version {version}, up to date");
        }
        Command::Store(command) => cli::store::run(command).await?,
    }
    Ok(())
}

/// Logs go to stderr, filtered by RUST_LOG (default `info`), as text or, with
/// `PLAZA_LOG_FORMAT=json`, as one JSON object per line for log collectors.
fn init_logging() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("PLAZA_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        Ok("text") | Ok("") | Err(_) => builder.init(),
        Ok(other) => anyhow::bail!("PLAZA_LOG_FORMAT {other:?}: expected text or json"),
    }
    Ok(())
}

/// The relay to talk to: `--url`, else the address the configuration listens on.
fn relay_base(config: &plaza::config::Config, url: Option<String>) -> anyhow::Result<String> {
    Ok(match url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => cli::local_base(config)?,
    })
}

/// `plaza health`: GET /healthz with a short timeout; fails with the reason when it is not 2xx.
async fn health(config: &plaza::config::Config, url: Option<String>) -> anyhow::Result<()> {
    let base = relay_base(config, url)?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .with_context(|| format!("{base} does not answer"))?;
    let status = response.status();
    if !status.is_success() {
        // The reason (a store that cannot write, …) goes where Docker keeps health check output.
        let reason = response.text().await.unwrap_or_default();
        anyhow::bail!("{base}/healthz answered {status}: {}", reason.trim());
    }
    println!("{base} is healthy");
    // Which node answered, its leases and its lag (a relay older than the cluster has no such page).
    if let Ok(node) = client.get(format!("{base}/healthz/node")).send().await
        && node.status().is_success()
        && let Ok(node) = node.json::<serde_json::Value>().await
    {
        let count = |kind: &str| node["leases"][kind].as_u64().unwrap_or(0);
        println!(
            "node {} ({}): {} subscriber leases, {} topic inbox leases, jobs {}; delivery lag {} entries; live nodes {}",
            node["node"].as_str().unwrap_or("?"),
            node["backend"].as_str().unwrap_or("?"),
            count("subscriber"),
            count("topic_inbox"),
            node["jobs"],
            node["lag"],
            node["nodes"],
        );
    }
    Ok(())
}

/// `plaza search`: GET /api/v2/search and print the answer as a table or as JSON.
async fn search(
    config: &plaza::config::Config,
    url: Option<String>,
    query: &str,
    kind: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let base = relay_base(config, url)?;
    let address = plaza::search_cli::request_url(&base, query, kind, limit);
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?
        .get(&address)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .with_context(|| format!("{base} does not answer"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{address} did not answer with JSON ({status})"))?;
    if !status.is_success() {
        let reason = body
            .get("error")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no reason given");
        anyhow::bail!("the relay refused the search ({status}): {reason}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", plaza::search_cli::render_table(&body));
    }
    Ok(())
}

/// `plaza reindex`: the library rebuilds, this draws its progress on stderr.
fn reindex(config: &plaza::config::Config) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} documents ({per_sec}, {eta} left)",
        )?
        .progress_chars("=> "),
    );
    bar.set_message("reindexing");
    let started = std::time::Instant::now();
    // A bar on a terminal; one line per thousand documents in logs and pipes.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = plaza::reindex::reindex(config, &mut |done, total| {
        if terminal {
            bar.set_length(total);
            bar.set_position(done);
        } else {
            eprintln!("reindexing: {done}/{total} documents");
        }
    });
    bar.finish_and_clear();
    let report = report.context("rebuilding the search index")?;
    println!(
        "reindexed {} posts, {} actors, {} instances in {:.1} s ({} documents left out: no consent or unreadable)",
        report.posts,
        report.actors,
        report.instances,
        started.elapsed().as_secs_f64(),
        report.dropped
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
