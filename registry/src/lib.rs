//! vouch-registry: the revocation chain.
//!
//! - [`store`]: the chain in one sled `Db`.
//! - [`node`]: sequencing entries under the rules, sealing blocks, keeping
//!   cosignatures.
//! - [`api`]: the node's HTTP API (axum).
//! - [`client`]: an HTTP client for that API.
//! - [`relay`]: the relay's own store, with a quota, a rate limit and expiry.
//! - [`rate`]: the per-client rate limit of the relay and the write routes.
//! - [`serve()`]: serving a router with a header-read timeout and a
//!   connection cap.
//! - [`replica`]: sync from a node, verify everything, answer
//!   `accredited` and `status` offline.
//! - [`witness`]: check each new checkpoint and cosign it.

pub mod api;
pub mod client;
pub mod keys;
pub mod node;
pub mod rate;
pub mod relay;
pub mod replica;
pub mod serve;
pub mod store;
pub mod witness;

pub use serve::{serve, ServeLimits};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An error and its causes on one line, each cause once (messages here
/// often include their cause's text already). For the binaries.
pub fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
