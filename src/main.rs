//! The `plaza` command: runs the relay (`plaza serve`, the default).

use std::path::PathBuf;

use anyhow::Context as _;

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
}

fn main() -> std::process::ExitCode {
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config =
        plaza::config::Config::load(cli.config.as_deref()).context("loading the configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => plaza::app::serve(config, shutdown_signal())
            .await
            .context("running the relay")?,
    }
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
