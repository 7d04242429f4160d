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
    /// Where the signed credentials wait for the anchor (journals of
    /// earlier versions: the batch archive).
    #[serde(default)]
    pub pending: Pending,
}

/// Where a batch's signed credentials wait while it is anchored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pending {
    /// The batch archive `D/batches/<batch>.sd-jwt`, one credential a line
    /// (for one file per credential).
    #[default]
    Credentials,
    /// `OUT/.credentials.<batch>.jsonl.tmp`: the JSON Lines archive's own lines,
    /// each with a blank slot its anchor proof is written into once the
    /// batch is anchored, then renamed into place.
    Lines,
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

/// The pending credentials being written, one a line, into a temporary
/// file that [`PendingWriter::finish`] syncs (and, for the batch archive,
/// renames into place). Each line is a credential ([`Pending::Credentials`])
/// or an archive line with a blank anchor proof slot ([`Pending::Lines`]),
/// whose offsets in the file it keeps.
pub(super) struct PendingWriter {
    /// Where the file is once synced: for [`Pending::Lines`], `tmp` itself.
    path: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    /// Bytes written so far.
    written: u64,
    /// Offset of each line's slot in the file.
    slots: Vec<u64>,
}

impl PendingWriter {
    /// Starts the batch archive at `path`, written to `path` with the
    /// extension `tmp`.
    pub(super) fn create(path: &Path) -> Result<Self, IssuerError> {
        Self::start(path, &path.with_extension("tmp"))
    }

    /// Starts the pending lines at `tmp` (emptied first), which stays their
    /// name once synced.
    pub(super) fn lines(tmp: &Path) -> Result<Self, IssuerError> {
        Self::start(tmp, tmp)
    }

    fn start(path: &Path, tmp: &Path) -> Result<Self, IssuerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let file = std::fs::File::create(tmp).map_err(io(tmp))?;
        Ok(Self {
            path: path.to_owned(),
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            tmp: tmp.to_owned(),
            written: 0,
            slots: Vec::new(),
        })
    }

    /// Appends lines (each with its `\n`); `slots` are where their anchor
    /// proof slots start in them, for [`Pending::Lines`].
    pub(super) fn push(&mut self, lines: &[u8], slots: &[usize]) -> Result<(), IssuerError> {
        use std::io::Write as _;
        // Chunks of lines larger than the buffer go past it, uncopied.
        self.file.write_all(lines).map_err(io(&self.tmp))?;
        let written = self.written;
        self.slots
            .extend(slots.iter().map(|&slot| written + slot as u64));
        self.written += lines.len() as u64;
        Ok(())
    }

    /// Syncs the file and renames it into place (the directory synced
    /// either way); returns the slots' offsets.
    pub(super) fn finish(self) -> Result<Vec<u64>, IssuerError> {
        let Self {
            path,
            tmp,
            file,
            slots,
            ..
        } = self;
        let file = file.into_inner().map_err(|e| IssuerError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&tmp))?;
        if path == tmp {
            sync_parent(&path)?;
        } else {
            replace(&tmp, &path)?;
        }
        Ok(slots)
    }

    /// The file being written, for removing it after a failure.
    pub(super) fn tmp(&self) -> &Path {
        &self.tmp
    }
}

/// Renames `tmp` to `path` and syncs the directory, so the rename survives
/// a crash.
pub(super) fn replace(tmp: &Path, path: &Path) -> Result<(), IssuerError> {
    std::fs::rename(tmp, path).map_err(io(path))?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, so its entry survives a crash.
fn sync_parent(path: &Path) -> Result<(), IssuerError> {
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// The credentials of the batch archive at `path` of a batch of `rows`
/// rows, one at a time: each line read up to the longest credential
/// ([`vouch_core::sd_jwt::MAX_SD_JWT_BYTES`]), and no more lines than
/// `rows`.
///
/// # Errors
/// [`IssuerError::Io`] when it cannot be opened; each item
/// [`IssuerError::Io`] (also for a line not UTF-8),
/// [`IssuerError::PendingLong`] or [`IssuerError::PendingExtra`].
pub(super) fn pending_lines(
    path: &Path,
    rows: usize,
) -> Result<impl Iterator<Item = Result<String, IssuerError>> + '_, IssuerError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let max = vouch_core::sd_jwt::MAX_SD_JWT_BYTES + 1;
    let (mut number, mut failed) = (0usize, false);
    Ok(std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut bytes = Vec::new();
        let next = match next_line(&mut reader, &mut bytes, path, number + 1, max, rows) {
            Ok(false) => return None,
            Ok(true) => {
                number += 1;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                String::from_utf8(bytes)
                    .map_err(|e| io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
            }
            Err(e) => Err(e),
        };
        failed = next.is_err();
        Some(next)
    }))
}

/// Reads line `number` (1-based) of the pending file at `path` into `bytes`
/// (emptied first; its `\n` kept, if it has one); `false` at the end.
///
/// # Errors
/// [`IssuerError::Io`]; [`IssuerError::PendingLong`] for a line of more than
/// `max` bytes (without reading further); [`IssuerError::PendingExtra`] for
/// a line past `rows`.
pub(super) fn next_line(
    reader: &mut impl std::io::BufRead,
    bytes: &mut Vec<u8>,
    path: &Path,
    number: usize,
    max: usize,
    rows: usize,
) -> Result<bool, IssuerError> {
    use std::io::{BufRead as _, Read as _};
    bytes.clear();
    let read = reader
        .take(max as u64)
        .read_until(b'\n', bytes)
        .map_err(io(path))?;
    if read == 0 {
        return Ok(false);
    }
    if number > rows {
        return Err(IssuerError::PendingExtra {
            path: path.to_owned(),
            rows,
        });
    }
    if read == max && !bytes.ends_with(b"\n") {
        return Err(IssuerError::PendingLong {
            path: path.to_owned(),
            line: number,
            max,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The batch archive's lines read back; a line longer than any
    /// credential, or one more than the batch's rows, is refused.
    #[test]
    fn the_batch_archive_is_read_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sd-jwt");
        std::fs::write(&path, "a.b.c~\nd.e.f~\n").unwrap();
        let read: Vec<String> = pending_lines(&path, 2)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read, ["a.b.c~", "d.e.f~"]);
        let read: Vec<_> = pending_lines(&path, 1).unwrap().collect();
        assert_eq!(read.len(), 2);
        assert!(
            matches!(read[1], Err(IssuerError::PendingExtra { rows: 1, .. })),
            "{:?}",
            read[1]
        );

        let max = vouch_core::sd_jwt::MAX_SD_JWT_BYTES + 1;
        let mut long = b"a.b.c~\n".to_vec();
        long.resize(long.len() + max + 10, b'x');
        std::fs::write(&path, &long).unwrap();
        let read: Vec<_> = pending_lines(&path, 2).unwrap().collect();
        assert_eq!(read.len(), 2);
        assert!(
            matches!(read[1], Err(IssuerError::PendingLong { line: 2, max: m, .. }) if m == max),
            "{:?}",
            read[1]
        );
        // Not UTF-8.
        std::fs::write(&path, b"a.b\xff\n").unwrap();
        let read: Vec<_> = pending_lines(&path, 2).unwrap().collect();
        assert!(
            matches!(read[..], [Err(IssuerError::Io { .. })]),
            "{read:?}"
        );
    }
}
