//! Wiring, at the top of the crate: builds the [`AppState`] from the configuration, hands it to the
//! routes, and runs the HTTP server and the background tasks until shutdown. Nothing imports this
//! module but the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

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

/// Serves `state` on `listener` until `shutdown` resolves: the HTTP server, the pruner, the delivery
/// workers and the indexer (which commits what it holds on the way out).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    spawn_pruner(state.clone());
    let indexing = state.indexer.as_ref().map(|indexer| indexer.start());
    let sharing = spawn_sharing(&state);
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
    state.engine.stop_all();
    drop(indexing);
    drop(sharing);
    if let Some(indexer) = &state.indexer
        && let Err(e) = indexer.commit().await
    {
        tracing::error!(error = %e, "final index commit");
    }
    Ok(())
}

/// FASP `data_sharing`: what is missing of the subscriptions of servers that activated it (a restart
/// may have cut their retries short), the paced backfill continuations, and (with an index) the share
/// worker.
fn spawn_sharing(state: &Arc<AppState>) -> tokio::task::JoinSet<()> {
    use crate::fasp::capabilities::DATA_SHARING;
    for registration in state.fasp.registry.list() {
        let id = &registration.server.server_id;
        if state
            .fasp
            .registry
            .is_active(id, DATA_SHARING.id, DATA_SHARING.major)
        {
            crate::fasp::subscriptions::spawn_subscribe(state.clone(), registration);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::fasp::subscriptions::continuations(state.clone()));
    if let Some(indexer) = &state.indexer {
        tasks.spawn(crate::fasp::share_worker::run(
            state.clone(),
            indexer.clone(),
        ));
    }
    tasks
}

/// Deletes log entries past the retention window once an hour (and once at start).
fn spawn_pruner(state: Arc<AppState>) {
    let max_age_ms = (state.config.retention_hours as i64).saturating_mul(3_600_000);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            state.limiter.forget_idle();
            state.client_limiter.forget_idle();
            state.resolver.forget_idle();
            match state.store.prune(max_age_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned log entries past retention"),
                Err(e) => tracing::error!(error = %e, "pruning the log"),
            }
        }
    });
}
