//! vouch-issuer: issue credentials in batches from CSV, anchor them on the
//! revocation chain, revoke them.
//!
//! - [`keystore`]: the issuer key, encrypted under a passphrase.
//! - [`template`]: credential templates as data.
//! - [`input`]: CSV rows checked against a template.
//! - [`issuer`]: the issuer directory and the batch pipeline (allocate,
//!   sign, anchor, write), resumable after a crash; revocation.
//! - [`registry`]: the embedded registry or a remote one.
//! - [`archive`]: the JSON Lines output of a batch (`--output-format jsonl`).

pub mod archive;
pub mod input;
pub mod issuer;
pub mod keystore;
pub mod registry;
pub mod template;
