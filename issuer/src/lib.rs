//! vouch-issuer: issue credentials in batches from CSV, anchor them on the
//! revocation chain, revoke them.
//!
//! - [`keystore`]: the issuer key, encrypted under a passphrase.
//! - [`template`]: credential templates as data.
//! - [`input`]: CSV rows checked against a template.

pub mod input;
pub mod keystore;
pub mod template;
