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

/// Writes the batch archive (one credential per line) and syncs it.
pub(super) fn write_pending(path: &Path, creds: &[String]) -> Result<(), IssuerError> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io(&tmp))?);
    for c in creds {
        f.write_all(c.as_bytes()).map_err(io(&tmp))?;
        f.write_all(b"\n").map_err(io(&tmp))?;
    }
    let f = f.into_inner().map_err(|e| IssuerError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Reads the batch archive.
pub(super) fn read_pending(path: &Path, n: usize) -> Result<Vec<String>, IssuerError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let creds: Vec<String> = text.lines().map(str::to_owned).collect();
    if creds.len() != n {
        return Err(IssuerError::ArchiveCount {
            path: path.to_owned(),
            found: creds.len(),
            want: n,
        });
    }
    Ok(creds)
}
