//! `plaza store …`: operations on the store itself, with the relay stopped. `plaza store copy` moves
//! a relay's SQLite store (and its key) into PostgreSQL; the work is the library's
//! (`plaza::store::copy`), this draws its progress on stderr and prints the summary.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use plaza::store::copy::{self, Progress};

/// Rows between two progress lines of one table.
const PROGRESS_EVERY: u64 = 10_000;

/// The store's subcommands.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy a stopped relay's state from its SQLite store into an empty PostgreSQL database, then
    /// start the relay with database_url set to it.
    ///
    /// Every table is copied in one transaction (a failed copy leaves the database empty), the
    /// sequences continue after the copied entries, and the data directory's key becomes the relay's
    /// key in the database. A database that already holds rows is refused.
    Copy {
        /// Where the state is: sqlite:DATA_DIR (the relay's data_dir, holding plaza.db).
        #[arg(long, value_name = "sqlite:DATA_DIR")]
        from: String,
        /// The empty PostgreSQL database: postgres://user:password@host/plaza.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs one store subcommand.
pub async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Copy { from, to } => store_copy(&from, &to).await,
    }
}

/// `plaza store copy --from sqlite:DATA_DIR --to postgres://…`.
async fn store_copy(from: &str, to: &str) -> anyhow::Result<()> {
    let Some(data_dir) = from.strip_prefix("sqlite:").map(PathBuf::from) else {
        if from.starts_with("postgres") {
            bail!(
                "--from {from:?}: copying from PostgreSQL is not supported, only from sqlite:DATA_DIR"
            );
        }
        bail!("--from {from:?}: expected sqlite:DATA_DIR, the relay's data directory");
    };
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to {to:?}: expected a postgres:// URL");
    }
    let key = plaza::federation::keyfile::read_pem(&data_dir)?;
    let had_key = key.is_some();
    let mut shown = 0;
    let copied = copy::sqlite_to_postgres(
        &data_dir.join(plaza::state::DB_FILE),
        to,
        key,
        move |p: Progress<'_>| {
            if p.done {
                eprintln!("{}: {} rows copied", p.table, p.rows);
                shown = 0;
            } else if p.rows >= shown + PROGRESS_EVERY {
                eprintln!("{}: {} rows so far", p.table, p.rows);
                shown = p.rows;
            }
        },
    )
    .await
    .context("copying the store")?;
    let log_seq = copied
        .sequences
        .iter()
        .find(|(table, _, _)| table == "log")
        .map_or(0, |(_, _, last)| *last);
    println!(
        "copied {} rows in {} tables into PostgreSQL; the log continues after seq {log_seq}; {}",
        copied.rows(),
        copied.tables.len(),
        if had_key {
            "the relay key is now in the database"
        } else {
            "no key file in the data directory: the relay makes its key at first start"
        }
    );
    Ok(())
}
