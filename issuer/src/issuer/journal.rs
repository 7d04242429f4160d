//! The batch journal: each batch's stage, saved before the step it names
//! takes effect, and the batch archive of signed credentials.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{io, Issuer, IssuerError};
use crate::template::Template;

/// A stage of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Status indexes allocated.
    Allocated,
    /// Credentials written (pending) and the anchor entry saved.
    Signed,
    /// Anchored, files in place, manifest written.
    Done,
}

/// A batch in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// Hash of template and input.
    pub id: String,
    /// Template name.
    pub template: String,
    /// Output directory.
    pub out: PathBuf,
    /// Row numbers issued, in order.
    pub rows: Vec<usize>,
    /// Status list id.
    pub list: String,
    /// Status index of each row.
    pub indexes: Vec<u64>,
    /// Where it got to.
    pub stage: Stage,
    /// The anchor entry (canonical bytes), once signed.
    pub anchor_entry: Option<String>,
    /// Merkle root of the credentials, hex.
    pub root: Option<String>,
}

impl Issuer {
    /// A batch from the journal.
    ///
    /// # Errors
    /// [`IssuerError::State`] or [`IssuerError::StateRecord`].
    pub fn batch(&self, id: &str) -> Result<Option<Batch>, IssuerError> {
        self.get_json(&format!("batch/{id}"))
    }

    /// Records `batch` in the journal, durably, before the step its stage
    /// names takes effect.
    pub(super) fn save_batch(&self, batch: &Batch) -> Result<(), IssuerError> {
        self.put_json(&format!("batch/{}", batch.id), batch)?;
        self.flush()
    }

    /// The batch archive of batch `id`: `D/batches/<id>.sd-jwt`.
    pub(super) fn archive_path(&self, id: &str) -> PathBuf {
        self.dir.join("batches").join(format!("{id}.sd-jwt"))
    }
}

/// Crash injection for tests: with `VOUCH_FAILPOINT=<name>` in the
/// environment, the process dies here as if killed (exit status 137).
pub(super) fn failpoint(name: &str) {
    if std::env::var("VOUCH_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::exit(137);
    }
}

/// The batch id: a hash of the template and the input bytes.
pub fn batch_id(template: &Template, input: &[u8], skip_invalid: bool) -> String {
    let t = serde_json::to_vec(template).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"vouch-batch/v1\n");
    h.update((t.len() as u64).to_be_bytes());
    h.update(&t);
    h.update([u8::from(skip_invalid)]);
    h.update(input);
    hex::encode(&h.finalize()[..8])
}

/// The batch archive being written: one credential per line, into a
/// temporary file that [`PendingWriter::finish`] syncs and renames into
/// place.
pub(super) struct PendingWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl PendingWriter {
    /// Starts the archive at `path`.
    pub(super) fn create(path: &Path) -> Result<Self, IssuerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        Ok(Self {
            path: path.to_owned(),
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            tmp,
        })
    }

    /// Appends one credential.
    pub(super) fn push(&mut self, credential: &str) -> Result<(), IssuerError> {
        use std::io::Write as _;
        self.file
            .write_all(credential.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(io(&self.tmp))
    }

    /// Syncs the archive and renames it into place.
    pub(super) fn finish(self) -> Result<(), IssuerError> {
        let Self { path, tmp, file } = self;
        let file = file.into_inner().map_err(|e| IssuerError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&tmp))?;
        replace(&tmp, &path)
    }
}

/// Renames `tmp` to `path` and syncs the directory, so the rename survives
/// a crash.
pub(super) fn replace(tmp: &Path, path: &Path) -> Result<(), IssuerError> {
    std::fs::rename(tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// The credentials of the batch archive, one at a time.
pub(super) fn pending_lines(
    path: &Path,
) -> Result<impl Iterator<Item = Result<String, IssuerError>> + '_, IssuerError> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).map_err(io(path))?;
    Ok(std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .map(move |l| l.map_err(io(path))))
}
