//! Test support (feature `testkit`): a node, its witnesses or any router
//! served on a free loopback port, stopped when dropped. The one helper
//! the registry's, the issuer's and the end-to-end tests and benches use to
//! start servers.
//!
//! ```no_run
//! # async fn example(dir: &std::path::Path) -> Result<(), vouch_registry::testkit::TestkitError> {
//! use vouch_registry::testkit::LoopbackNode;
//! let net = LoopbackNode::start(dir, &["w1", "w2"], 2).await?;
//! let client = net.server.client();
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::NodeClient;
use crate::node::{Node, NodeConfig, NodeError};
use crate::serve::{ServeError, ServeLimits, ServeOptions};
use crate::witness::{Witness, WitnessError};

/// The origin of the nodes [`LoopbackNode::start`] creates.
pub const ORIGIN: &str = "test.example/registry";

/// Why a test server or node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// Binding the loopback port failed.
    #[error("loopback listener: {0}")]
    Io(#[from] std::io::Error),
    /// The node could not be created or opened.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A witness could not be created or pinned.
    #[error(transparent)]
    Witness(#[from] WitnessError),
    /// The authority key written by `init` could not be read.
    #[error("{}: {source}", path.display())]
    AuthorityKey {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A listener on `127.0.0.1`, on a port the system picked.
///
/// # Errors
/// When binding fails.
pub async fn loopback() -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0)).await
}

/// A loopback port free at the time of the call, for a server started in
/// another process (the binary under test): bound, read and released.
///
/// # Errors
/// When binding fails.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// A server on loopback. Dropping it stops it at once (no last seal, no
/// grace); [`TestServer::stop`] stops it the way Ctrl-C stops the binary.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    fn spawn<F>(addr: SocketAddr, serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = Result<(), ServeError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(rx));
        Self {
            addr,
            url: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client for it.
    ///
    /// # Panics
    /// When the HTTP client cannot be built (no TLS is involved, so only a
    /// broken test environment does that).
    pub fn client(&self) -> NodeClient {
        #[allow(clippy::expect_used)]
        NodeClient::new(&self.url).expect("an HTTP client for a loopback URL")
    }

    /// Tells the server to stop accepting, let requests in flight finish
    /// and, for a node, seal the entries left, as the binary does on
    /// Ctrl-C; [`TestServer::stop`] waits for it.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // The server may have stopped already; then there is no one to tell.
            let _ = tx.send(());
        }
    }

    /// [`TestServer::shutdown`], then waits until the server has stopped.
    ///
    /// # Errors
    /// What the server returned; a server task that panicked is reported
    /// as [`ServeError::Io`].
    pub async fn stop(mut self) -> Result<(), ServeError> {
        self.shutdown();
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `node`'s API (relay included) on a free loopback port through
/// [`crate::serve()`], sealing blocks only when asked (`POST /v1/seal` or
/// [`Node::seal`]).
///
/// # Errors
/// When binding fails.
pub async fn serve_node(node: Arc<Node>) -> std::io::Result<TestServer> {
    serve_node_with(
        node,
        ServeOptions {
            block_interval: None,
            ..ServeOptions::default()
        },
    )
    .await
}

/// [`serve_node`] under `options`.
///
/// # Errors
/// When binding fails.
pub async fn serve_node_with(
    node: Arc<Node>,
    options: ServeOptions,
) -> std::io::Result<TestServer> {
    let listener = loopback().await?;
    let addr = listener.local_addr()?;
    Ok(TestServer::spawn(addr, move |rx| async move {
        crate::serve(node, listener, options, async {
            let _ = rx.await;
        })
        .await
    }))
}

/// Serves any `router` (a fake or tampering node, a proxy) on a free
/// loopback port through [`crate::serve_router`] under `limits`.
///
/// # Errors
/// When binding fails.
pub async fn serve_router(
    router: axum::Router,
    limits: ServeLimits,
) -> std::io::Result<TestServer> {
    let listener = loopback().await?;
    let addr = listener.local_addr()?;
    Ok(TestServer::spawn(addr, move |rx| async move {
        crate::serve_router(listener, router, limits, async {
            let _ = rx.await;
        })
        .await
        .map_err(ServeError::Io)
    }))
}

/// Creates a node in `dir` (origin [`ORIGIN`]) that accepts `witnesses`
/// and needs `need` of them; returns its genesis authority's key. Keys come
/// from a fixed seed: tests are repeatable.
///
/// # Errors
/// [`TestkitError`] when the node cannot be created.
pub fn init_node(
    dir: &Path,
    witnesses: Vec<String>,
    need: usize,
) -> Result<SigningKey, TestkitError> {
    let config = NodeConfig {
        origin: ORIGIN.into(),
        witnesses,
        need,
    };
    Node::init(dir, config, crate::now(), &mut StdRng::seed_from_u64(7))?;
    let path = dir.join("authority.key");
    crate::keys::read(&path).map_err(|source| TestkitError::AuthorityKey { path, source })
}

/// A node served on loopback, with its genesis authority and witnesses.
pub struct LoopbackNode {
    /// The node (in this process).
    pub node: Arc<Node>,
    /// Its server.
    pub server: TestServer,
    /// Its genesis authority's key (accredits issuers).
    pub authority: SigningKey,
    /// Its witnesses, each pinned to the node, in the order named.
    pub witnesses: Vec<Witness>,
}

impl LoopbackNode {
    /// Creates witnesses `dir/<name>` for each of `witnesses` and a node in
    /// `dir/node` that needs `need` of their cosignatures, and serves it
    /// (see [`serve_node`]).
    ///
    /// # Errors
    /// [`TestkitError`] when a directory cannot be set up or the port
    /// cannot be bound.
    pub async fn start(dir: &Path, witnesses: &[&str], need: usize) -> Result<Self, TestkitError> {
        let mut ws = Vec::with_capacity(witnesses.len());
        for (i, name) in witnesses.iter().enumerate() {
            ws.push(Witness::open(
                &dir.join(name),
                Some(name),
                &mut StdRng::seed_from_u64(i as u64 + 1),
            )?);
        }
        let node_dir = dir.join("node");
        let authority = init_node(&node_dir, ws.iter().map(Witness::vkey).collect(), need)?;
        let node = Arc::new(Node::open(&node_dir)?);
        for w in &mut ws {
            w.pin_node(&node.vkey())?;
        }
        let server = serve_node(node.clone()).await?;
        Ok(Self {
            node,
            server,
            authority,
            witnesses: ws,
        })
    }

    /// A client for the node's API.
    pub fn client(&self) -> NodeClient {
        self.server.client()
    }
}
