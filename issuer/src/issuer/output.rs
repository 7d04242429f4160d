//! What a batch leaves in `OUT/`: one file per credential (and its QR code),
//! and `manifest.json` ([`Manifest`]); and the check of a finished batch.

use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;
use vouch_core::envelope::{self, EnvelopeError};
use vouch_core::log::BatchTree;
use vouch_core::manifest::{
    BatchInfo, CheckError, Manifest, ManifestEntry, ManifestError, SealedAnchor, MAX_MANIFEST_BYTES,
};
use vouch_core::sd_jwt::{self, KeyBinding, SdJwtError, VerifyOptions};
use vouch_core::status_list::StatusRef;
use vouch_core::{AnchorProof, CheckName, SdJwt, VerifyError};
use vouch_registry::now;

use crate::archive::{self, ArchiveError, ArchiveLineRef};

use super::batch::{Anchored, Ledger, OutputFormat, Run};
use super::journal::{failpoint, pending_lines, replace, Batch, Pending};
use super::lists::ListMeta;
use super::slots::{self, Slots};
use super::{io, Issuer, IssuerError};

pub use vouch_core::manifest::credential_id;

/// The manifest's file name in the output directory.
pub const MANIFEST: &str = vouch_core::manifest::FILE_NAME;

/// Why a finished batch does not check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestCheckError {
    /// The manifest or a credential file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The manifest is refused.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Cause.
        source: ManifestError,
    },
    /// A credential file is not an SD-JWT.
    #[error("{}: not an SD-JWT credential: {source}", path.display())]
    NotSdJwt {
        /// The credential file.
        path: PathBuf,
        /// Cause.
        source: SdJwtError,
    },
    /// A credential could not be verified at all.
    #[error("{}: {source}", path.display())]
    Unverifiable {
        /// The credential file.
        path: PathBuf,
        /// Cause.
        source: VerifyError,
    },
    /// A credential fails a check.
    #[error("{}: does not verify: {check:?} failed: {why}", path.display())]
    Invalid {
        /// The credential file.
        path: PathBuf,
        /// The failed check.
        check: CheckName,
        /// Why it failed.
        why: String,
    },
    /// A credential of another issuer than the manifest's.
    #[error("{}: issued by {found}, not by the manifest's issuer {issuer}", path.display())]
    OtherIssuer {
        /// The credential file.
        path: PathBuf,
        /// Its `iss`.
        found: String,
        /// The manifest's issuer.
        issuer: String,
    },
    /// A credential whose status reference is not the one the manifest
    /// lists.
    #[error("{}: its status reference is not the one the manifest lists", path.display())]
    Status {
        /// The credential file.
        path: PathBuf,
    },
    /// An anchor proof or the anchor entry does not check.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The JSON Lines archive cannot be read.
    #[error("{}: {source}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Cause.
        source: ArchiveError,
    },
    /// The JSON Lines archive ends before the manifest's entries do.
    #[error("{}: no line for the manifest's {file}", path.display())]
    ArchiveShort {
        /// The archive.
        path: PathBuf,
        /// The manifest entry's file name.
        file: String,
    },
    /// The JSON Lines archive has lines after the manifest's last entry.
    #[error("{}: more lines than the manifest's {entries} entries", path.display())]
    ArchiveLong {
        /// The archive.
        path: PathBuf,
        /// How many entries the manifest lists.
        entries: usize,
    },
    /// An archive line that says another thing than its manifest entry.
    #[error("{}: the line of {file} differs from its manifest entry", path.display())]
    ArchiveEntry {
        /// The archive.
        path: PathBuf,
        /// The manifest entry's file name.
        file: String,
    },
}

/// The file name of row `row`'s credential, whose id is `id`.
pub(super) fn file_name(row: usize, id: &str) -> String {
    format!("{row:06}-{id}.sd-jwt")
}

/// The PNG file name beside a credential file.
pub(super) fn qr_name(name: &str) -> String {
    format!("{}.png", name.trim_end_matches(".sd-jwt"))
}

/// Why a credential could not be drawn as a QR code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrPngError {
    /// The `VCH1:` envelope could not be made.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The envelope does not fit one QR code, or the image is too large.
    #[error(transparent)]
    Qr(#[from] vouch_core::qr::QrError),
}

/// A credential as a `VCH1:` QR code PNG (error correction M), for handing
/// it over to a wallet's camera.
///
/// # Errors
/// [`QrPngError`], e.g. when it does not fit one QR code.
pub fn qr_png(credential: &str) -> Result<Vec<u8>, QrPngError> {
    let env = envelope::encode(credential)?;
    let code = vouch_core::qr::qr_code(&env, vouch_core::qr::EcLevel::M)?;
    Ok(vouch_core::qr::png(&code, 4, 4)?)
}

impl Issuer {
    /// Phase 4: the credentials into place, then the manifest: files read
    /// again from the pending file; the JSON Lines archive by writing each
    /// anchor proof into its line's slot (or, for a batch signed for files,
    /// made from the batch archive). The pending file is on disk already,
    /// so the files need no sync of their own: a rerun rewrites them.
    /// Returns the manifest's path and the JSON Lines archive's, if one
    /// was written.
    pub(super) fn write_output(
        &self,
        run: &Run<'_>,
        batch: &Batch,
        list: &ListMeta,
        ledger: &Ledger,
        tree: &BatchTree,
        anchored: &Anchored,
    ) -> Result<(PathBuf, Option<PathBuf>), IssuerError> {
        let out = run.out;
        std::fs::create_dir_all(out).map_err(io(out))?;
        run.progress.start("writing", batch.rows.len() as u64);
        let path = out.join(MANIFEST);
        let info = BatchInfo {
            issuer: self.key.did().clone(),
            issuer_name: self.config.name.clone(),
            template: run.template.name.clone(),
            vct: run.template.vct.clone(),
            batch: batch.id.clone(),
        };
        let anchor = SealedAnchor {
            entry: anchored.entry.clone(),
            entry_index: anchored.index,
            block_height: anchored.block.height,
            tree_size: anchored.block.size,
            tree_root: anchored.block.root,
            inclusion_proof: anchored.proof.clone(),
        };
        let root = tree.root();
        let manifest = |entries| {
            Manifest::new(info.clone(), root, anchor.clone(), entries).map_err(|source| {
                IssuerError::Manifest {
                    path: path.clone(),
                    source,
                }
            })
        };
        // The manifest's text is made and synced; renamed into place last.
        let tmp = out.join(".manifest.json.tmp");
        let write_manifest = |manifest: &Manifest| {
            std::fs::write(&tmp, manifest.to_json())
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .map_err(io(&tmp))
        };
        let archive = if (run.format, batch.pending, run.qr)
            == (OutputFormat::Jsonl, Pending::Lines, false)
        {
            // The entries and their proofs made on every core; then the
            // proofs go into their slots (mostly waiting on system calls
            // and the disk) on one thread, a copy of each beside the
            // entries, while the manifest is made and written on another.
            // The archive is renamed into place once both are done.
            let entries = manifest_entries(run, batch, list, ledger, tree, anchored)?;
            let proofs: Vec<(u64, AnchorProof)> = entries
                .iter()
                .map(|e| (e.row, e.anchor_proof.clone()))
                .collect();
            let (pending, text) = std::thread::scope(|s| {
                let archive = s.spawn(|| fill_slots(run, batch, ledger, &proofs));
                let text = manifest(entries).and_then(|m| write_manifest(&m));
                let archive = archive
                    .join()
                    .map_err(|_| IssuerError::Panicked { work: "slots" })
                    .and_then(|r| r);
                (archive, text)
            });
            // A panic of the slots' thread is the error to report, before
            // whatever the manifest said.
            if let Err(e @ IssuerError::Panicked { .. }) = pending {
                return Err(e);
            }
            text?;
            let archive = out.join(crate::archive::FILE_NAME);
            replace(&pending?, &archive)?;
            Some(archive)
        } else {
            let manifest = manifest(manifest_entries(run, batch, list, ledger, tree, anchored)?)?;
            let entries = manifest.entries();
            let archive = self.write_credentials(run, batch, ledger, entries)?;
            write_manifest(&manifest)?;
            archive
        };
        failpoint("after-output");
        replace(&tmp, &path)?;
        run.progress.finish();
        Ok((path, archive))
    }

    /// The credentials into place, as [`Issuer::write_output`] says; the
    /// JSON Lines archive's path, if one was written.
    fn write_credentials(
        &self,
        run: &Run<'_>,
        batch: &Batch,
        ledger: &Ledger,
        entries: &[ManifestEntry],
    ) -> Result<Option<PathBuf>, IssuerError> {
        Ok(match (run.format, batch.pending) {
            (OutputFormat::Files, Pending::Credentials) => {
                let pending = self.archive_path(&batch.id);
                let lines = pending_lines(&pending, batch.rows.len())?;
                write_files(run, &pending, lines, entries)?;
                None
            }
            (OutputFormat::Files, Pending::Lines) => {
                let pending = slots::pending_path(run.out, &batch.id);
                let lines = pending_credentials(&pending, batch)?;
                write_files(run, &pending, lines, entries)?;
                None
            }
            (OutputFormat::Jsonl, Pending::Credentials) => {
                Some(write_jsonl(run, &self.archive_path(&batch.id), entries)?)
            }
            (OutputFormat::Jsonl, Pending::Lines) => {
                let pending = slots::pending_path(run.out, &batch.id);
                if run.qr {
                    write_qr(
                        run,
                        &pending,
                        pending_credentials(&pending, batch)?,
                        entries,
                    )?;
                }
                let path = run.out.join(crate::archive::FILE_NAME);
                let layout = Slots::for_batch(batch.rows.len() as u64);
                slots::fill(&pending, &path, layout, &ledger.slots, entries)?;
                Some(path)
            }
        })
    }
}

/// The anchor proof of the credential at `leaf` of the batch (from `row`).
fn anchor_proof(
    tree: &BatchTree,
    anchored: &Anchored,
    leaf: u64,
    row: usize,
) -> Result<AnchorProof, IssuerError> {
    let path = tree
        .audit_path(leaf)
        .ok_or(vouch_core::log::TreeError::IndexesNotInTree)?;
    AnchorProof::new(anchored.index, leaf, tree.size(), path)
        .map_err(|source| IssuerError::AnchorProof { row, source })
}

/// The pending lines of a batch signed as such, each credential's anchor
/// proof (`proofs`, with its row, in batch order) written into its slot
/// ([`slots::fill_with`]), synced; their path.
fn fill_slots(
    run: &Run<'_>,
    batch: &Batch,
    ledger: &Ledger,
    proofs: &[(u64, AnchorProof)],
) -> Result<PathBuf, IssuerError> {
    let pending = slots::pending_path(run.out, &batch.id);
    let layout = Slots::for_batch(batch.rows.len() as u64);
    let proofs = proofs.iter().map(|(row, proof)| Ok((*row, proof)));
    slots::fill_with(&pending, layout, &ledger.slots, batch.rows.len(), proofs)?;
    Ok(pending)
}

/// The manifest's entries: each credential's row, holder, id, file name,
/// status and anchor proof, the proofs made on every core.
fn manifest_entries(
    run: &Run<'_>,
    batch: &Batch,
    list: &ListMeta,
    ledger: &Ledger,
    tree: &BatchTree,
    anchored: &Anchored,
) -> Result<Vec<ManifestEntry>, IssuerError> {
    let n = batch.rows.len();
    let entry = |i: usize| -> Result<ManifestEntry, IssuerError> {
        let row = batch.rows[i];
        let anchor_proof = anchor_proof(tree, anchored, i as u64, row)?;
        let id = &ledger.ids[i];
        let file = file_name(row, id);
        Ok(ManifestEntry {
            row: row as u64,
            holder: ledger.holders[i].clone(),
            credential_id: id.clone(),
            qr: run.qr.then(|| qr_name(&file)),
            file,
            status: StatusRef {
                idx: batch.indexes[i],
                uri: list.uri.clone(),
            },
            anchor_proof,
        })
    };
    if ledger.ids.len() != n
        || ledger.holders.len() != n
        || batch.indexes.len() != n
        || tree.size() != n as u64
    {
        let found = [
            ledger.ids.len(),
            ledger.holders.len(),
            batch.indexes.len(),
            tree.size() as usize,
        ];
        return Err(IssuerError::RowCount {
            found: found.into_iter().find(|&l| l != n).unwrap_or(n),
            want: n,
        });
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = n.div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<ManifestEntry>, IssuerError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|first| {
                let entry = &entry;
                s.spawn(move || (first..n.min(first + per)).map(entry).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| IssuerError::Panicked { work: "proof" })
                    .and_then(|r| r)
            })
            .collect()
    });
    let mut entries = Vec::with_capacity(n);
    for part in parts {
        entries.extend(part?);
    }
    Ok(entries)
}

/// The credentials of a batch's pending lines ([`Pending::Lines`]), one at
/// a time.
fn pending_credentials<'p>(
    pending: &'p Path,
    batch: &Batch,
) -> Result<impl Iterator<Item = Result<String, IssuerError>> + 'p, IssuerError> {
    let layout = Slots::for_batch(batch.rows.len() as u64);
    Ok(slots::read_pending(pending, layout, batch.rows.len())?
        .map(|line| line.map(|(line, _)| line.sd_jwt)))
}

/// Writes the QR code of each credential (`credentials`, read from
/// `pending`) that its entry names.
fn write_qr(
    run: &Run<'_>,
    pending: &Path,
    credentials: impl Iterator<Item = Result<String, IssuerError>>,
    entries: &[ManifestEntry],
) -> Result<(), IssuerError> {
    let mut read = 0;
    for (cred, entry) in credentials.zip(entries) {
        let cred = cred?;
        read += 1;
        if let Some(name) = &entry.qr {
            let image = qr_png(&cred).map_err(|source| IssuerError::Qr {
                row: entry.row as usize,
                source,
            })?;
            let to = run.out.join(name);
            std::fs::write(&to, image).map_err(io(&to))?;
        }
    }
    all_read(pending, read, entries.len())?;
    Ok(())
}

/// Whether all `want` credentials were read from `pending`.
fn all_read(pending: &Path, found: usize, want: usize) -> Result<(), IssuerError> {
    if found == want {
        Ok(())
    } else {
        Err(IssuerError::ArchiveCount {
            path: pending.to_owned(),
            found,
            want,
        })
    }
}

/// Writes one file per credential (and its QR code with `--qr`) on two
/// threads (creating files is mostly waiting on the file system), reading
/// the credentials (`credentials`, from `pending`) as they are written.
fn write_files(
    run: &Run<'_>,
    pending: &Path,
    credentials: impl Iterator<Item = Result<String, IssuerError>>,
    entries: &[ManifestEntry],
) -> Result<(), IssuerError> {
    const THREADS: usize = 2;
    let (out, qr, progress) = (run.out, run.qr, run.progress);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, String)>(256);
    let rx = std::sync::Mutex::new(rx);
    let mut read = 0;
    let mut result = Ok(());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let rx = &rx;
                s.spawn(move || loop {
                    // Poisoned only if another writer panicked mid-recv.
                    let next = rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    let Ok((i, cred)) = next else {
                        return Ok::<(), IssuerError>(());
                    };
                    let entry = &entries[i];
                    let to = out.join(&entry.file);
                    std::fs::write(&to, &cred).map_err(io(&to))?;
                    if let (true, Some(name)) = (qr, &entry.qr) {
                        let image = qr_png(&cred).map_err(|source| IssuerError::Qr {
                            row: entry.row as usize,
                            source,
                        })?;
                        let to = out.join(name);
                        std::fs::write(&to, image).map_err(io(&to))?;
                    }
                    progress.step();
                })
            })
            .collect();
        result = (|| {
            for line in credentials {
                let line = line?;
                if read == entries.len() || tx.send((read, line)).is_err() {
                    break;
                }
                read += 1;
            }
            Ok(())
        })();
        drop(tx);
        for h in handles {
            let joined = h
                .join()
                .map_err(|_| IssuerError::Panicked { work: "writer" })
                .and_then(|r| r);
            if result.is_ok() {
                result = joined;
            }
        }
    });
    result?;
    all_read(pending, read, entries.len())?;
    Ok(())
}

/// Writes the JSON Lines archive (and the QR codes with `--qr`) from the
/// batch archive: to a temporary file, synced, then renamed into place.
fn write_jsonl(
    run: &Run<'_>,
    pending: &Path,
    entries: &[ManifestEntry],
) -> Result<PathBuf, IssuerError> {
    use std::io::Write as _;
    let path = run.out.join(crate::archive::FILE_NAME);
    // Named by the batch, as its pending lines are (but not theirs, nor
    // the one name earlier versions gave all batches' pending lines).
    let tmp = run.out.join(format!(
        ".{}.{}.tmp",
        crate::archive::FILE_NAME,
        run.batch_id
    ));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut read = 0;
    for line in pending_lines(pending, entries.len())? {
        let cred = line?;
        let Some(entry) = entries.get(read) else {
            read += 1;
            break;
        };
        read += 1;
        let record = ArchiveLineRef {
            row: entry.row,
            credential_id: &entry.credential_id,
            file: &entry.file,
            holder: entry.holder.as_str(),
            sd_jwt: &cred,
            anchor_proof: &entry.anchor_proof,
        };
        serde_json::to_writer(&mut w, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(io(&tmp))?;
        if let (true, Some(name)) = (run.qr, &entry.qr) {
            let image = qr_png(&cred).map_err(|source| IssuerError::Qr {
                row: entry.row as usize,
                source,
            })?;
            let to = run.out.join(name);
            std::fs::write(&to, image).map_err(io(&to))?;
        }
        run.progress.step();
    }
    all_read(pending, read, entries.len())?;
    let file = w.into_inner().map_err(|e| IssuerError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io(&tmp))?;
    replace(&tmp, &path)?;
    Ok(path)
}

/// Reads a manifest's text, at most [`MAX_MANIFEST_BYTES`] and one byte
/// (so [`Manifest::from_json`] refuses a longer one without reading it all).
fn manifest_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Reads the manifest of a finished batch.
pub(super) fn read_manifest(path: &Path) -> Result<Manifest, IssuerError> {
    let text = manifest_text(path).map_err(io(path))?;
    Manifest::from_json(&text).map_err(|source| IssuerError::Manifest {
        path: path.to_owned(),
        source,
    })
}

/// Checks a finished batch in `out`: its manifest parses (each anchor
/// proof names the batch's anchor entry, its own place in the batch and the
/// batch size); each credential (or, unless `all`, the first) verifies as
/// the manifest issuer's, with the status the manifest lists, and its
/// anchor proof leads from its issuer-signed JWT to the batch root; and the
/// anchor entry is signed by the issuer and in the sealed tree. Used by
/// tests, and by `issue` as its one-line check. Returns how many
/// credentials were checked.
///
/// # Errors
/// [`ManifestCheckError`] naming the file, and the credential, that does
/// not check.
pub fn check_manifest(out: &Path, all: bool) -> Result<usize, ManifestCheckError> {
    let path = out.join(MANIFEST);
    let text = manifest_text(&path).map_err(|source| ManifestCheckError::Io {
        path: path.clone(),
        source,
    })?;
    let manifest = Manifest::from_json(&text)
        .map_err(|source| ManifestCheckError::Manifest { path, source })?;
    let issuer = manifest.batch().issuer.as_str();
    let options = VerifyOptions::new(now(), KeyBinding::Optional);
    let take = if all { manifest.entries().len() } else { 1 };
    // With the JSON Lines output, line n is entry n; otherwise each entry
    // names its file.
    let archive_path = out.join(archive::FILE_NAME);
    let mut lines = if archive_path.is_file() {
        Some(
            archive::read(&archive_path).map_err(|source| ManifestCheckError::Archive {
                path: archive_path.clone(),
                source,
            })?,
        )
    } else {
        None
    };
    for entry in manifest.entries().iter().take(take) {
        let (path, text) = match lines.as_mut() {
            Some(lines) => {
                let path = archive_path.clone();
                let line = lines
                    .next()
                    .ok_or_else(|| ManifestCheckError::ArchiveShort {
                        path: path.clone(),
                        file: entry.file.clone(),
                    })?
                    .map_err(|source| ManifestCheckError::Archive {
                        path: path.clone(),
                        source,
                    })?;
                if line.file != entry.file
                    || line.credential_id != entry.credential_id
                    || line.row != entry.row
                    || line.holder != entry.holder.as_str()
                    || line.anchor_proof != entry.anchor_proof
                {
                    return Err(ManifestCheckError::ArchiveEntry {
                        path,
                        file: entry.file.clone(),
                    });
                }
                (path, line.sd_jwt)
            }
            None => {
                let path = out.join(&entry.file);
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ManifestCheckError::Io {
                        path: path.clone(),
                        source,
                    })?;
                (path, text)
            }
        };
        let sd = SdJwt::parse(&text).map_err(|source| ManifestCheckError::NotSdJwt {
            path: path.clone(),
            source,
        })?;
        let verdict = sd_jwt::verify_parsed(&sd, &options).map_err(|source| {
            ManifestCheckError::Unverifiable {
                path: path.clone(),
                source,
            }
        })?;
        if let Some(failed) = verdict.first_failure() {
            return Err(ManifestCheckError::Invalid {
                path,
                check: failed.name,
                why: match &failed.outcome {
                    vouch_core::Outcome::Fail(why) => why.clone(),
                    other => format!("{other:?}"),
                },
            });
        }
        let payload = sd.payload();
        let iss = payload.get("iss").and_then(Value::as_str);
        if iss != Some(issuer) {
            return Err(ManifestCheckError::OtherIssuer {
                path,
                found: iss.unwrap_or("nobody").chars().take(200).collect(),
                issuer: issuer.to_owned(),
            });
        }
        let status = payload
            .get("status")
            .and_then(|s| s.get("status_list"))
            .and_then(|s| StatusRef::deserialize(s).ok());
        if status.as_ref() != Some(&entry.status) {
            return Err(ManifestCheckError::Status { path });
        }
        manifest.check_entry(entry, &text)?;
    }
    // Every line was read against an entry: one more is not in the batch.
    if let Some(lines) = lines.as_mut().filter(|_| all) {
        if lines.next().is_some() {
            return Err(ManifestCheckError::ArchiveLong {
                path: archive_path,
                entries: manifest.entries().len(),
            });
        }
    }
    manifest.check_anchor()?;
    Ok(take)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_or_broken_manifest_names_the_file() {
        let dir = std::env::temp_dir().join(format!("vouch-issuer-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(MANIFEST);
        let e = check_manifest(&dir, true).unwrap_err();
        assert!(matches!(e, ManifestCheckError::Io { .. }));
        assert!(
            e.to_string().starts_with(&format!("{}: ", path.display())),
            "{e}"
        );
        std::fs::write(&path, r#"{"issuer": 1}"#).unwrap();
        let e = check_manifest(&dir, true).unwrap_err();
        assert!(matches!(
            e,
            ManifestCheckError::Manifest {
                source: ManifestError::Json { .. },
                ..
            }
        ));
        assert!(
            e.to_string().starts_with(&format!(
                "{}: manifest: not the manifest JSON: invalid type",
                path.display()
            )),
            "{e}"
        );
        assert!(e.to_string().contains("line 1 column"), "{e}");
        assert!(matches!(
            read_manifest(&path),
            Err(IssuerError::Manifest { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
