//! Wiring, at the top of the crate: builds the [`AppState`] from the configuration, hands it to the
//! routes, and runs the HTTP server and the background tasks until shutdown. Nothing imports this
//! module but the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::cluster::relay_work::{self, RelayWork};
use crate::config::Config;
use crate::state::AppState;
use crate::web::{routes, server};
use crate::{Error, Result};

/// Binds the configured address, prints where it listens, and serves until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = config.listen_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let state = AppState::build(config).await?;
    run(listener, state, shutdown).await
}

/// Serves `state` on `listener` until `shutdown` resolves: the HTTP server, the indexer (which commits
/// what it holds on the way out), and this node's part of the work ([`crate::cluster`]: the delivery
/// workers, the pruner, FASP sharing; among several nodes, the leases are given back on the way out
/// so the others take over at once).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    spawn_forgetting(state.clone());
    // Every node with an index feeds its own from the log.
    let indexing = state.indexer.as_ref().map(|indexer| indexer.start());
    let work = RelayWork::new(state.clone());
    let mut background = tokio::task::JoinSet::new();
    background.spawn(state.cluster.clone().run(work.clone()));
    background.spawn(relay_work::follow_changes(state.clone()));
    crate::federation::admission::learn_missing_software(state.clone());
    let router = routes::router(state.clone());
    println!("plaza listening on http://{local} as {}", state.base);
    tracing::info!(%local, base = %state.base, "listening");
    let limits = server::ConnectionLimits {
        header_read_timeout: Duration::from_millis(state.config.header_read_timeout_ms),
        max_header_bytes: state.config.max_header_bytes,
    };
    server::serve(
        listener,
        router,
        limits,
        state.connections.clone(),
        shutdown,
    )
    .await?;
    background.abort_all();
    state.cluster.leave(work.as_ref()).await;
    state.engine.stop_all();
    if let Err(e) = state.topics.delivery.save_cursors().await {
        tracing::error!(error = %e, "saving the topic follower inboxes' cursors");
    }
    work.shutdown();
    drop(indexing);
    if let Some(indexer) = &state.indexer
        && let Err(e) = indexer.commit().await
    {
        tracing::error!(error = %e, "final index commit");
    }
    Ok(())
}

/// Once an hour, lets go of what this node remembers of idle instances and clients (rate limiter
/// buckets, resolver entries), so memory stays bounded.
fn spawn_forgetting(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            state.limiter.forget_idle();
            state.client_limiter.forget_idle();
            state.resolver.forget_idle();
        }
    });
}
