//! Serving a node's API ([`serve`]: the API, its relay, a block every few
//! seconds, a clean stop), and any router ([`serve_router`]), on a TCP
//! listener with the limits a public service needs against hostile clients.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires
//! and a client trickling its headers keeps a connection (and a task) open
//! forever, and it accepts without limit. [`serve_router`] drives each connection
//! with hyper's HTTP/1 server directly: a header-read timeout (which also
//! closes idle kept-alive connections), a cap on open connections (beyond
//! it, new connections wait in the kernel's backlog until one closes), a
//! cap on a connection's age, the client's address as
//! [`axum::extract::ConnectInfo`], and graceful shutdown with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::api::WriteLimits;
use crate::node::{Node, NodeError};
use crate::relay::{Relay, RelayError, RelayLimits};
use crate::store::StoreError;

/// Connection limits for [`serve_router`] (and [`serve`]).
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Longest a client may take to send a request's headers (each request
    /// on a kept-alive connection included) before the connection is closed.
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a connection may stay open, whatever it is doing: bounds a
    /// client that reads its replies too slowly, which no other limit
    /// catches. Kept-alive clients simply reconnect.
    pub max_connection_age: Duration,
    /// Longest shutdown waits for open connections to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connection_age: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes,
/// then stops accepting and waits (at most
/// [`ServeLimits::shutdown_grace`]) for open connections to finish.
///
/// Handlers can read the client's address with
/// `axum::extract::ConnectInfo<SocketAddr>`.
///
/// # Errors
/// Only when `limits.max_connections` is 0; accept errors (e.g. out of file
/// descriptors) are logged and retried after a pause.
pub async fn serve_router<F>(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    if limits.max_connections == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "max_connections must be at least 1",
        ));
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // A permit first: beyond the cap, connections wait unaccepted.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed; stop if it somehow is.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        let age = limits.max_connection_age;
        tokio::spawn(async move {
            match tokio::time::timeout(age, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("connection from {addr}: {e}"),
                Err(_) => tracing::debug!("connection from {addr} closed after {age:?}"),
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                "connections still open {:?} after shutdown began; closing them",
                limits.shutdown_grace
            );
        }
    }
    Ok(())
}

/// How old the last block may grow before [`serve`] seals a heartbeat, by
/// default: well inside a verifier's default bound on its replica's age
/// (an hour), with room for witnesses to cosign and replicas to sync.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(60);

/// How [`serve`] runs a node.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connection limits.
    pub limits: ServeLimits,
    /// Seal a block this often when there are new entries (and sweep the
    /// relay's expired items); `None`: only when asked (`POST /v1/seal`).
    pub block_interval: Option<Duration>,
    /// Seal a heartbeat block (no new entries, a new time) when the last
    /// block is this old, so replicas of a quiet chain stay fresh
    /// ([`Node::heartbeat`]); checked every `block_interval`, so `None`
    /// there means no heartbeats either. `None`: never.
    pub heartbeat: Option<Duration>,
    /// The relay's bounds (its store is `<node dir>/relay`).
    pub relay: RelayLimits,
    /// The per-client limit on the write routes.
    pub writes: WriteLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            limits: ServeLimits::default(),
            block_interval: Some(Duration::from_secs(5)),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            relay: RelayLimits::default(),
            writes: WriteLimits::default(),
        }
    }
}

/// Why [`serve`] could not serve, or could not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The relay's store could not be opened.
    #[error("opening the relay store: {0}")]
    Relay(#[source] RelayError),
    /// The node's store failed (clearing old relay items, the last flush).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The last seal at shutdown failed.
    #[error("sealing the last block: {0}")]
    Seal(#[source] NodeError),
    /// The limits are unusable (`max_connections` of 0).
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `node`'s API (with its relay in `<node dir>/relay`) on `listener`
/// under `options` until `shutdown` completes; meanwhile seals a block
/// every [`ServeOptions::block_interval`] when there are new entries, and a
/// heartbeat block when none was sealed for [`ServeOptions::heartbeat`]. At
/// shutdown it seals the entries left and flushes the store.
///
/// # Errors
/// [`ServeError`] when the relay cannot be opened, the limits are unusable,
/// or the last seal or flush fails.
pub async fn serve<F>(
    node: Arc<Node>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    // Relay items used to live in the chain's own `Db`; drop any left there.
    let legacy = node.store().open_tree("relay")?;
    if !legacy.is_empty() {
        tracing::info!(
            "removing {} relay items from the chain's store",
            legacy.len()
        );
        legacy.clear().map_err(StoreError::from)?;
    }
    let relay = Arc::new(
        Relay::open(&node.dir().join("relay"), options.relay.clone()).map_err(ServeError::Relay)?,
    );
    let app = crate::api::app_with_limits(node.clone(), relay.clone(), options.writes.clone());
    let ticker = options
        .block_interval
        .map(|every| tokio::spawn(seal_every(node.clone(), relay, every, options.heartbeat)));
    let served = serve_router(listener, app, options.limits, shutdown).await;
    if let Some(t) = ticker {
        t.abort();
    }
    served?;
    let n = node.clone();
    match tokio::task::spawn_blocking(move || n.seal(crate::now())).await {
        Ok(sealed) => {
            sealed.map_err(ServeError::Seal)?;
        }
        Err(e) => tracing::error!("last seal task: {e}"),
    }
    node.store().flush()?;
    Ok(())
}

/// Seals a block every `every` when there are new entries, or a heartbeat
/// when the last block is `heartbeat` old, and sweeps the relay's expired
/// items, until aborted.
async fn seal_every(
    node: Arc<Node>,
    relay: Arc<Relay>,
    every: Duration,
    heartbeat: Option<Duration>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    loop {
        tick.tick().await;
        let n = node.clone();
        let sealed = tokio::task::spawn_blocking(move || {
            let now = crate::now();
            match n.seal(now) {
                Ok(None) => match heartbeat {
                    Some(h) => n
                        .heartbeat(now, h.as_secs().max(1))
                        .map(|b| b.map(|_| "heartbeat ")),
                    None => Ok(None),
                },
                sealed => sealed.map(|b| b.map(|_| "")),
            }
        });
        match sealed.await {
            Ok(Ok(Some(kind))) => tracing::info!("sealed {kind}block {}", node.head().height),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!("sealing failed: {e}"),
            Err(e) => tracing::error!("sealer task: {e}"),
        }
        let r = relay.clone();
        match tokio::task::spawn_blocking(move || r.sweep(crate::now())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!("relay: {n} expired items removed"),
            Ok(Err(e)) => tracing::error!("relay sweep: {e}"),
            Err(e) => tracing::error!("relay sweep task: {e}"),
        }
    }
}
