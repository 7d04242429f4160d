//! vouch-verifier: checks presentations the way HR, an admissions office
//! or a claims desk needs, offline against its own replica of the chain.
//!
//! - [`input`]: what a verifier is handed (QR image, `VCH1:` text, relay
//!   link, SD-JWT, presentation file), parsed and bounded at the edge.
//! - [`qr`]: QR codes in PNG/JPEG images (rxing), image bombs refused.
//! - [`relay`]: relay links, fetched once and decrypted (JWE `dir` +
//!   `A256GCM`): `vouch_registry::relay_link`, shared with the wallet.
//! - [`policy`]: the policy file (TOML).
//! - [`nonce`]: presentation requests issued, nonces single-use.
//! - [`verifier`]: a verifier's directory, sync, requests, the check.
//! - [`batch`]: the signatures of concurrent checks, verified as one
//!   batch.
//! - [`report`]: a checked presentation as text.
//! - [`service`]: the HTTP API and the web page (axum).
//! - [`service_lock`]: a running service's claim on its directory, so a
//!   CLI there fails at once, naming it.
//!
//! Presentation requests themselves (`VCHR1:` text) live in
//! [`vouch_core::presentation_request`], since the wallet reads them too.

pub mod batch;
pub mod input;
pub mod nonce;
pub mod policy;
pub mod pool;
pub mod report;
pub mod service;
pub mod service_lock;
pub mod verifier;

pub use vouch_core::scan as qr;
pub use vouch_registry::relay_link as relay;

pub use batch::{BatchConfig, BatchStats, SignatureBatcher};
pub use input::{Input, InputError, Presented, Source};
pub use policy::{PolicyError, PolicyFile};
pub use pool::{CheckPool, Pending, PoolError, PoolStats, Slot};
pub use verifier::{
    Ask, Checked, Checker, Headline, NodePin, Verifier, VerifierConfig, VerifierError,
};

/// Unix seconds now.
pub fn now() -> i64 {
    vouch_registry::now()
}
