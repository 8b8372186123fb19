//! Accepting connections: the HTTP/1.1 server loop, with the limits `axum::serve` cannot set.
//!
//! A client that trickles its request headers (slowloris) would otherwise hold a connection and its task
//! for as long as it likes, and one address could open thousands of them. Here hyper's HTTP/1.1 server
//! runs with a timer, so a request's headers (and an idle keep-alive connection's next request) must
//! arrive within `header_read_timeout_ms`; the header section is capped at `max_header_bytes` (431
//! above it); and each client IP may hold at most `max_connections_per_ip` connections at once — the
//! next one is closed as soon as it is accepted. Behind a reverse proxy every connection comes from the
//! proxy's address: raise the cap there or set it to 0 (off) and limit at the proxy.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::Result;

/// How long open connections may take to finish after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The limits of each connection (see `config/plaza.toml`); the per-IP cap is [`PerIpConnections`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed for a request's header section to arrive.
    pub header_read_timeout: Duration,
    /// Largest header section (request line and headers) accepted, in bytes.
    pub max_header_bytes: usize,
}

/// Open connections per client IP, with a cap, and how many were refused (for `/metrics`).
#[derive(Clone)]
pub struct PerIpConnections {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
    refused: Arc<AtomicU64>,
}

/// One open connection counted against its IP; dropping it frees the place.
pub struct ConnectionSlot {
    owner: PerIpConnections,
    ip: IpAddr,
}

impl PerIpConnections {
    /// A counter allowing `max` connections per IP (0: unlimited).
    pub fn new(max: usize) -> Self {
        PerIpConnections {
            open: Arc::new(Mutex::new(HashMap::new())),
            max,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A place for a new connection from `ip`, or `None` when `ip` already holds `max`.
    pub fn acquire(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if self.max != 0 && *count >= self.max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            owner: self.clone(),
            ip,
        })
    }

    /// Connections refused so far because their address was at the cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections `ip` holds now.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish (for at
/// most a few seconds). Each connection takes a place in `per_ip` for its lifetime.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    per_ip: PerIpConnections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_ip.acquire(peer.ip()) else {
            tracing::debug!(%peer, max = per_ip.max, "too many connections from this address: closed");
            drop(stream);
            continue;
        };
        // The peer address travels with each request (per-IP limits, logs), as axum's own server does.
        let service = router.clone().layer(Extension(ConnectInfo(peer)));
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after the shutdown grace period");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_counts_and_frees() {
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let per_ip = PerIpConnections::new(2);
        let first = per_ip.acquire(a).expect("1st");
        let second = per_ip.acquire(a).expect("2nd");
        assert!(per_ip.acquire(a).is_none(), "3rd from the same address");
        assert_eq!(per_ip.refused(), 1);
        let other = per_ip
            .acquire(b)
            .expect("another address has its own count");
        assert_eq!((per_ip.open(a), per_ip.open(b)), (2, 1));
        drop(first);
        let third = per_ip.acquire(a).expect("a place was freed");
        drop((second, third, other));
        assert_eq!((per_ip.open(a), per_ip.open(b)), (0, 0));
        assert!(
            per_ip.open.lock().expect("lock").is_empty(),
            "no entry left"
        );

        let unlimited = PerIpConnections::new(0);
        let slots: Vec<_> = (0..100).filter_map(|_| unlimited.acquire(a)).collect();
        assert_eq!(slots.len(), 100);
    }
}
