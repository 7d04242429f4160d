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
//!    `D/batches/<batch>.sd-jwt` (synced once) or, with
//!    [`OutputFormat::Jsonl`], as the JSON Lines archive's own lines, each
//!    with a blank slot for its anchor proof, to
//!    `OUT/.credentials.<batch>.jsonl.tmp` (synced once; [`Pending`]); and the
//!    anchor entry over their Merkle root saved, before it is submitted.
//!    Each Merkle leaf is a credential's issuer-signed JWT (up to its first
//!    `~`), which every presentation of it carries.
//! 3. `done`: anchored and sealed; one file per credential written into
//!    `OUT/` (or, with [`OutputFormat::Jsonl`], the anchor proofs written
//!    into their slots and the file synced and renamed to
//!    `OUT/credentials.jsonl`, [`crate::archive`]), then `manifest.json`, a
//!    [`vouch_core::manifest::Manifest`] with each credential's
//!    [`vouch_core::AnchorProof`].
//!
//! The batch archive, or the JSON Lines archive, stays: it is the issuer's
//! record of what it issued.
//!
//! Rerunning the same command finds the batch by the hash of its template
//! and input: `done` reports where the credentials are; `allocated` signs
//! again with the same indexes; `signed` submits the saved entry unless the
//! registry already has it, then finishes.
//!
//! The parts, each re-exported here:
//! - `directory`: `issuer.json`, the keystore, the state store, the
//!   registry handle; [`init`] and [`Issuer::open`].
//! - `journal`: [`Batch`] and its [`Stage`], the batch archive,
//!   [`batch_id`].
//! - `lists`: status lists: index allocation, Status List Tokens,
//!   [`Issuer::set_status`], [`status_of_credential`].
//! - `batch`: [`Issuer::issue`] as its phases (start, sign, anchor, write).
//! - `output`: the credential files, QR codes and manifest;
//!   [`check_manifest`].
//! - `slots`: the JSON Lines archive written while signing, its anchor
//!   proofs filled in after.

mod batch;
mod directory;
mod journal;
mod lists;
mod output;
mod slots;

use std::path::{Path, PathBuf};

use vouch_core::anchor::AnchorError;
use vouch_core::chain::{EntryError, RuleError};
use vouch_core::log::{ProofError, TreeError};
use vouch_core::manifest::ManifestError;
use vouch_core::status_list::StatusListError;
use vouch_core::vc::IssueError;
use vouch_registry::node::NodeError;

use crate::keystore;
use crate::registry::RegistryError;

pub use batch::{BatchReport, BatchRows, OutputFormat, OutputOptions, Progress, Quiet};
pub use directory::{init, InitReport, Issuer, IssuerConfig};
pub use journal::{batch_id, Batch, Pending, Stage};
pub use lists::{status_of_credential, CredentialError, LIST_FILL, LIST_SIZE};
pub use output::{check_manifest, credential_id, qr_png, ManifestCheckError, QrPngError, MANIFEST};

/// Why an issuer operation (init, open, issue, set a status) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A file or directory could not be read or written.
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
    /// The issuer's state store (`D/state`) failed.
    #[error("issuer state: {source}")]
    State {
        /// Cause.
        #[from]
        source: sled::Error,
    },
    /// A record in the state store is not what this version wrote.
    #[error("issuer state record {key}: {source}")]
    StateRecord {
        /// The record's key.
        key: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// A status list in the state store cannot be read or changed.
    #[error("status list {list}: {source}")]
    StatusList {
        /// The list's name.
        list: String,
        /// Cause.
        source: StatusListError,
    },

    /// `init` into a directory that holds an issuer.
    #[error("{} already holds an issuer", dir.display())]
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
    },
    /// `init` with an empty name.
    #[error("the issuer name (--name) is empty")]
    EmptyName,
    /// The embedded registry could not be created.
    #[error("embedded registry in {}: {source}", dir.display())]
    EmbeddedRegistry {
        /// Its directory.
        dir: PathBuf,
        /// Cause.
        source: NodeError,
    },
    /// `issuer.json` is not an issuer configuration.
    #[error("{}: not an issuer configuration: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// `issuer.json` and the keystore belong to different issuers.
    #[error("issuer.json names {config}, but the keystore holds the key of {keystore}")]
    KeyMismatch {
        /// The DID in `issuer.json`.
        config: String,
        /// The keystore key's DID.
        keystore: String,
    },
    /// The status base in `issuer.json` makes no valid list URI.
    #[error("status base {base:?} in issuer.json: {source}")]
    StatusBase {
        /// The base URL.
        base: String,
        /// Cause.
        source: RuleError,
    },

    /// More rows than one status list may take.
    #[error("a batch may hold at most {LIST_FILL} credentials, not {count}")]
    BatchTooLarge {
        /// Rows given.
        count: u64,
    },
    /// A rerun of a batch with another output directory.
    #[error("batch {batch} was started with --out {}; rerun with that directory", out.display())]
    OtherOut {
        /// The batch id.
        batch: String,
        /// The directory it was started with.
        out: PathBuf,
    },
    /// A new batch's output directory already holds another batch's
    /// output (its manifest, archive or pending lines).
    #[error("{} already holds another batch's {found}; give this batch a directory of its own", out.display())]
    OutInUse {
        /// The output directory.
        out: PathBuf,
        /// What it holds.
        found: String,
    },
    /// A rerun of a batch with other rows.
    #[error("batch {batch} was started with other rows (was --skip-invalid changed?)")]
    OtherRows {
        /// The batch id.
        batch: String,
    },
    /// The journal names a status list the state store lacks.
    #[error("the journal names status list {list}, which the issuer state does not hold")]
    MissingList {
        /// The list's name.
        list: String,
    },
    /// A row's credential could not be signed.
    #[error("row {row}: the credential could not be issued: {source}")]
    Sign {
        /// The row.
        row: usize,
        /// Cause.
        source: IssueError,
    },
    /// A worker thread panicked.
    #[error("a {work} thread stopped unexpectedly")]
    Panicked {
        /// What it was doing.
        work: &'static str,
    },
    /// `--qr` for a credential too large for one QR code.
    #[error(
        "--qr: the credential of row {row} does not fit one QR code ({source}); issue without --qr"
    )]
    Qr {
        /// The row.
        row: usize,
        /// Cause.
        source: output::QrPngError,
    },
    /// Signing produced another number of credentials than the batch has
    /// rows (the input changed while it was read).
    #[error("{found} credentials signed for a batch of {want} rows; the input changed")]
    RowCount {
        /// Credentials signed.
        found: usize,
        /// Rows in the batch.
        want: usize,
    },
    /// A row that was valid when the batch was checked is not when it is
    /// read again to be signed (the input changed).
    #[error("row {row} was valid when the batch was checked, but not when read again: {source}")]
    InputChanged {
        /// The row.
        row: usize,
        /// What is wrong with it now.
        source: crate::input::RowProblem,
    },
    /// The batch archive holds another number of credentials.
    #[error("the batch archive {} holds {found} credentials, not {want}", path.display())]
    ArchiveCount {
        /// The archive.
        path: PathBuf,
        /// Credentials found.
        found: usize,
        /// Credentials in the batch.
        want: usize,
    },
    /// A pending line of a JSON Lines batch that is not one.
    #[error("{}: line {line}: not a pending archive line: {source}", path.display())]
    PendingLine {
        /// The pending file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Cause.
        source: serde_json::Error,
    },
    /// A line of a pending file longer than any the batch writes.
    #[error("{}: line {line} is longer than {max} bytes", path.display())]
    PendingLong {
        /// The pending file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The longest line a batch writes there, its `\n` included.
        max: usize,
    },
    /// A pending file with more lines than its batch has rows.
    #[error("{} holds more lines than the batch's {rows} rows", path.display())]
    PendingExtra {
        /// The pending file.
        path: PathBuf,
        /// Rows in the batch.
        rows: usize,
    },
    /// An anchor proof wider than the slot its line keeps for it.
    #[error("row {row}: its anchor proof is wider than the {width} bytes its line keeps for it")]
    Slot {
        /// The row.
        row: u64,
        /// The slot's width.
        width: usize,
    },
    /// The batch archive no longer matches the saved anchor.
    #[error(
        "the batch archive {} does not match the saved anchor; it was changed",
        path.display()
    )]
    ArchiveChanged {
        /// The archive.
        path: PathBuf,
    },
    /// A signed batch without its anchor entry in the journal.
    #[error("batch {batch} is signed but the journal holds no anchor entry for it")]
    NoAnchorEntry {
        /// The batch id.
        batch: String,
    },
    /// The journal's anchor entry is not a chain entry.
    #[error("batch {batch}: the journal's anchor entry: {source}")]
    JournalEntry {
        /// The batch id.
        batch: String,
        /// Cause.
        source: EntryError,
    },
    /// The batch's Merkle tree could not be built.
    #[error("the batch's Merkle tree: {source}")]
    Tree {
        /// Cause.
        #[from]
        source: TreeError,
    },
    /// A credential's anchor proof could not be made.
    #[error("row {row}: anchor proof: {source}")]
    AnchorProof {
        /// The row.
        row: usize,
        /// Cause.
        source: AnchorError,
    },
    /// The registry's inclusion proof of the anchor entry does not check.
    #[error("the registry's inclusion proof of entry {index}: {source}")]
    RegistryProof {
        /// The anchor entry's index.
        index: u64,
        /// Cause.
        source: ProofError,
    },
    /// A manifest that cannot be made or read.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Cause.
        source: ManifestError,
    },

    /// A status list URI that is not one.
    #[error("{uri}: {source}")]
    ListUri {
        /// The URI.
        uri: String,
        /// Cause.
        source: RuleError,
    },
    /// A status list of another issuer, or none.
    #[error("{uri} is not one of this issuer's status lists")]
    UnknownList {
        /// The URI.
        uri: String,
    },
    /// A status index no credential was given.
    #[error("status index {idx} of list {list} was never given to a credential")]
    UnusedIndex {
        /// The index.
        idx: u64,
        /// The list's name.
        list: String,
    },
    /// Reinstating or suspending a revoked credential.
    #[error("status index {idx} is revoked; revocation is final")]
    RevocationFinal {
        /// The index.
        idx: u64,
    },
    /// Setting the status a credential already has.
    #[error("status index {idx} already has that status ({status})")]
    SameStatus {
        /// The index.
        idx: u64,
        /// The status.
        status: &'static str,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_owned(),
        source,
    }
}
