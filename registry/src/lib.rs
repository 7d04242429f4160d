//! vouch-registry: the revocation chain.
//!
//! Always built (what a wallet or verifier needs, without a server):
//! - [`replica`]: sync from a [`ChainSource`], verify everything, answer
//!   `accredited` and `status` offline, give a [`vouch_core::view::ChainView`]
//!   (also shared across threads while syncing: [`replica::SharedView`]).
//! - [`source`]: the [`ChainSource`] trait, implemented by the in-process
//!   [`node::Node`] and the HTTP [`client::NodeClient`].
//! - [`client`]: an HTTP client for a node's API (relay included).
//! - [`wire`]: the API's typed bodies and limits, shared by server and client.
//! - [`trust`]: what a replica trusts (`trust.json`), and the policy of a
//!   node's, witness's or replica's directory.
//! - [`store`]: the chain in one sled `Db`.
//! - [`node`]: sequencing entries under the rules, sealing blocks, keeping
//!   cosignatures.
//! - [`witness`]: check each new checkpoint and cosign it.
//!
//! With the `server` feature (on by default):
//! - `api`: the node's HTTP API (axum).
//! - `serve()`: a node's API on a listener, sealing blocks, until shutdown;
//!   `serve_router`: any router with a header-read timeout and a
//!   connection cap.
//! - `relay`: the relay's own store, with a quota, a rate limit and expiry.
//! - [`relay_link`]: relay links `https://…/p/<id>#<key>`: the JWE a
//!   wallet seals and uploads, a verifier fetches once and opens.
//! - `rate`: the per-client rate limit of the relay and the write routes.
//!
//! With the `testkit` feature (for tests and benches): `testkit`, a node
//! (and witnesses) served on loopback that stops when dropped.

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "cli")]
pub mod cli_support;
pub mod client;
pub mod keys;
pub mod node;
#[cfg(feature = "server")]
pub mod rate;
#[cfg(feature = "server")]
pub mod relay;
pub mod relay_link;
pub mod replica;
#[cfg(feature = "server")]
pub mod serve;
pub mod source;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trust;
pub mod wire;
pub mod witness;

#[cfg(feature = "server")]
pub use serve::{serve, serve_router, ServeError, ServeLimits, ServeOptions};
pub use source::{ChainSource, CosignTarget, SourceError};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An error and its causes on one line, each cause once (messages here
/// often include their cause's text already). For the binaries (their
/// `anyhow::Error`).
pub fn report(e: &impl AsRef<dyn std::error::Error + Send + Sync + 'static>) -> String {
    let mut out = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
