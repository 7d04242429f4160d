//! An issuer directory and the batch pipeline.
//!
//! `D/issuer.json` (name, DID, registry), `D/issuer.keystore` (the key,
//! encrypted), `D/state/` (sled: status lists, index allocations, the batch
//! journal) and, for the embedded default, `D/registry/` (a chain node).
//!
//! A batch goes through stages recorded in the journal before each step
//! takes effect, so an interrupted run resumes:
//! 1. `allocated`: status indexes chosen (at random, never twice) and saved.
//! 2. `signed`: the credentials written, one per line, to the batch archive
//!    `D/batches/<batch>.sd-jwt` (synced once), and the anchor entry over
//!    their Merkle root saved, before it is submitted. Each Merkle leaf is a
//!    credential's issuer-signed JWT (up to its first `~`), which every
//!    presentation of it carries.
//! 3. `done`: anchored and sealed; one file per credential written into
//!    `OUT/`, then `manifest.json` with each credential's
//!    [`AnchorProof`].
//!
//! The archive stays: it is the issuer's record of what it issued.
//!
//! Rerunning the same command finds the batch by the hash of its template
//! and input: `done` reports where the credentials are; `allocated` signs
//! again with the same indexes; `signed` submits the saved entry unless the
//! registry already has it, then finishes.

mod batch;
mod directory;
mod journal;
mod lists;
mod output;

use std::path::{Path, PathBuf};

use crate::keystore;
use crate::registry::RegistryError;

pub use batch::{BatchReport, Progress, Quiet};
pub use directory::{init, InitReport, Issuer, IssuerConfig};
pub use journal::{batch_id, Batch, Stage};
pub use lists::{status_of_credential, LIST_FILL, LIST_SIZE};
pub use output::{check_manifest, credential_id, qr_png};

/// Why an issuer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// File problems.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The keystore.
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The issuer's own state store.
    #[error("issuer state: {0}")]
    State(String),
    /// Anything else, explained.
    #[error("{0}")]
    Other(String),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn state_err(e: impl std::fmt::Display) -> IssuerError {
    IssuerError::State(e.to_string())
}
