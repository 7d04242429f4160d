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

/// Bytes written between two syncs started on a [`Writeback`]'s thread.
const WRITEBACK_EVERY: u64 = 64 << 20;

/// Syncs a file being written on a thread of its own, each time
/// [`WRITEBACK_EVERY`] more bytes are written, so that the sync that ends
/// the file ([`Writeback::finish`]) waits for the disk to take its last
/// part only, not all of it (a batch archive is hundreds of megabytes). The
/// syncs on the thread are only a head start: what is durable is decided by
/// the last one, and the thread's first error is the one reported (on
/// Linux a failed sync reports its error once, to whichever sync of the
/// file comes first, so it must not be dropped): by the next
/// [`Writeback::wrote`], or else by `finish`. Dropped unfinished (a batch
/// that failed), it waits for the sync under way and logs its error.
pub(super) struct Writeback {
    path: PathBuf,
    /// Asks the thread for a sync; `None` once the thread stopped.
    ask: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// Bytes written up to the last sync asked for.
    asked_at: u64,
}

impl Writeback {
    /// Starts the thread that syncs `file` (a handle on the file at `path`).
    pub(super) fn start(file: &std::fs::File, path: &Path) -> Result<Self, IssuerError> {
        Self::start_with(file, path, std::fs::File::sync_data)
    }

    /// [`Writeback::start`] with the thread's sync made by `sync`.
    fn start_with(
        file: &std::fs::File,
        path: &Path,
        mut sync: impl FnMut(&std::fs::File) -> std::io::Result<()> + Send + 'static,
    ) -> Result<Self, IssuerError> {
        let file = file.try_clone().map_err(io(path))?;
        let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                for () in asked {
                    sync(&file)?;
                }
                Ok(())
            })
            .map_err(io(path))?;
        Ok(Self {
            path: path.to_owned(),
            ask: Some(ask),
            thread: Some(thread),
            asked_at: 0,
        })
    }

    /// `written` bytes of the file are written: asks for a sync when
    /// [`WRITEBACK_EVERY`] more are since the last one asked for (not
    /// waiting for it; a sync still running takes the new bytes with it
    /// or the next one does).
    ///
    /// # Errors
    /// The error that stopped an earlier sync.
    pub(super) fn wrote(&mut self, written: u64) -> Result<(), IssuerError> {
        if written.saturating_sub(self.asked_at) < WRITEBACK_EVERY {
            return Ok(());
        }
        self.asked_at = written;
        match self.ask.as_ref().map(|ask| ask.try_send(())) {
            Some(Err(std::sync::mpsc::TrySendError::Disconnected(()))) => self.join(),
            // Sent, or a sync already asked for takes these bytes too.
            _ => Ok(()),
        }
    }

    /// Waits for the thread's syncs, then syncs `file` (everything written
    /// to it); the first error of either.
    pub(super) fn finish(mut self, file: &std::fs::File) -> Result<(), IssuerError> {
        self.join()?;
        file.sync_all().map_err(io(&self.path))
    }

    /// Stops the thread once its syncs are made; its error.
    fn join(&mut self) -> Result<(), IssuerError> {
        self.ask = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result.map_err(io(&self.path)),
            Some(Err(_)) => Err(IssuerError::Panicked { work: "writeback" }),
            None => Ok(()),
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            tracing::warn!("{e}");
        }
    }
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
    /// Syncs what is written so far, on a thread of its own.
    writeback: Writeback,
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
        let writeback = Writeback::start(&file, tmp).inspect_err(|_| {
            let _ = std::fs::remove_file(tmp);
        })?;
        Ok(Self {
            path: path.to_owned(),
            writeback,
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
        // What left the buffer is the kernel's to write back.
        let passed = self.written - self.file.buffer().len() as u64;
        self.writeback.wrote(passed)
    }

    /// Syncs the file and renames it into place (the directory synced
    /// either way); returns the slots' offsets.
    pub(super) fn finish(self) -> Result<Vec<u64>, IssuerError> {
        let Self {
            path,
            tmp,
            file,
            writeback,
            slots,
            ..
        } = self;
        let file = file.into_inner().map_err(|e| IssuerError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        writeback.finish(&file)?;
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

    /// Syncs asked for on the way, then the last one: the file's bytes
    /// are there, and an error of a sync on the way is reported though
    /// every later sync succeeds: by the next `wrote`, or by `finish`.
    #[test]
    fn a_writeback_syncs_on_the_way_and_reports_a_failed_sync() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        // A sync that fails the `fail`-th time it is made (from 1; never
        // for 0), and the count of those made.
        let syncs = |fail: usize| {
            let made = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&made);
            let sync = move |file: &std::fs::File| {
                if counted.fetch_add(1, Ordering::SeqCst) + 1 == fail {
                    return Err(std::io::Error::other("the disk refused"));
                }
                file.sync_data()
            };
            (made, sync)
        };

        let mut file = std::fs::File::create(&path).unwrap();
        let (made, sync) = syncs(0);
        let mut writeback = Writeback::start_with(&file, &path, sync).unwrap();
        for i in 1..=4u64 {
            std::io::Write::write_all(&mut file, b"line\n").unwrap();
            // As if WRITEBACK_EVERY bytes more had gone each time.
            writeback.wrote(i * WRITEBACK_EVERY).unwrap();
        }
        writeback.finish(&file).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"line\n".repeat(4));
        assert!(made.load(Ordering::SeqCst) >= 1, "no sync on the way");

        // The first sync on the way fails: `finish` says so.
        let (made, sync) = syncs(1);
        let mut writeback = Writeback::start_with(&file, &path, sync).unwrap();
        writeback.wrote(WRITEBACK_EVERY).unwrap();
        let e = writeback.finish(&file).unwrap_err();
        assert!(
            matches!(&e, IssuerError::Io { path: p, source } if p == &path
                && source.to_string() == "the disk refused"),
            "{e:?}"
        );
        assert_eq!(made.load(Ordering::SeqCst), 1);

        // Or the next `wrote` does, once the thread has stopped on it.
        let (made, sync) = syncs(1);
        let mut writeback = Writeback::start_with(&file, &path, sync).unwrap();
        writeback.wrote(WRITEBACK_EVERY).unwrap();
        while made.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let mut step = 2;
        let e = loop {
            // The thread ends just after its failed sync.
            match writeback.wrote(step * WRITEBACK_EVERY) {
                Err(e) => break e,
                Ok(()) => step += 1,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(
            matches!(&e, IssuerError::Io { source, .. } if source.to_string() == "the disk refused"),
            "{e:?}"
        );
        // Reported once: `finish` then makes the last sync, which holds.
        writeback.finish(&file).unwrap();
    }

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
