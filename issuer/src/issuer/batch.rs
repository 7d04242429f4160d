//! A batch: sign every row, anchor the batch's Merkle root on the chain,
//! then write the credentials and the manifest.
//!
//! The rows stream through: signer threads (one per core) take the next
//! chunk of rows (or of CSV records, which they check and sign straight
//! from the cells, [`vouch_core::vc::issue_claims`]: no claim tree is
//! built), sign them, and hand them back in order to the thread that
//! appends them to the batch archive (or, for the JSON Lines output, to
//! the archive's own lines, [`super::slots`]); only each credential's leaf
//! hash, id and holder stay in memory. Writing files reads the batch
//! archive again; the JSON Lines archive only gets its anchor proofs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rand::SeedableRng as _;
use vouch_core::anchor;
use vouch_core::chain::{Action, Entry};
use vouch_core::jws::PublicKey;
use vouch_core::log::{self, record_hash, BatchTree, Block, Hash};
use vouch_core::manifest::credential_id;
use vouch_core::sd_jwt::IssueBuffers;
use vouch_core::status_list::StatusRef;
use vouch_core::vc::{self, ClaimsRequest, CredentialRequest, IssuePlan};
use vouch_core::DidKey;
use vouch_registry::now;

use super::journal::{failpoint, pending_lines, Batch, Pending, PendingWriter, Stage};
use super::lists::ListMeta;
use super::output::{file_name, qr_png, read_manifest};
use super::slots::{self, Slots};
use super::{Issuer, IssuerError};
use crate::input::{CsvRows, Record, Row, CHUNK};
use crate::template::{CsvTemplate as _, Template};

/// What a finished batch produced.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// Batch id.
    pub id: String,
    /// Credentials issued.
    pub issued: usize,
    /// Where they are.
    pub out: PathBuf,
    /// The manifest.
    pub manifest: PathBuf,
    /// The JSON Lines archive of the credentials, when that was the output
    /// format ([`crate::archive`]).
    pub archive: Option<PathBuf>,
    /// The anchor's entry index and block height.
    pub anchor_index: u64,
    /// Block height that seals the anchor.
    pub block_height: u64,
    /// Whether this run only found a batch already done.
    pub already_done: bool,
    /// Whether this run resumed an interrupted batch.
    pub resumed: bool,
}

/// Progress callbacks (the CLI draws bars; tests ignore them).
pub trait Progress: Sync {
    /// A phase starts with `total` steps.
    fn start(&self, phase: &str, total: u64);
    /// One step done.
    fn step(&self);
    /// The phase ended.
    fn finish(&self);
}

/// No progress display.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn step(&self) {}
    fn finish(&self) {}
}

/// How a batch's credentials are written into the output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// One `.sd-jwt` file per credential.
    #[default]
    Files,
    /// One JSON Lines file of all of them ([`crate::archive`]).
    Jsonl,
}

/// Where a batch's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum BatchRows<'a> {
    /// Rows read and checked already ([`crate::input::parse`]), in order.
    Rows(&'a [Row]),
    /// A CSV read again while signing, one chunk at a time; `valid` holds
    /// the numbers of the rows to issue, ascending ([`crate::input::scan`]).
    Csv {
        /// The CSV, its header checked.
        csv: &'a CsvRows<'a>,
        /// The rows to issue.
        valid: &'a [usize],
    },
}

impl BatchRows<'_> {
    /// The numbers of the rows to issue, in order.
    fn numbers(&self) -> Vec<usize> {
        match self {
            BatchRows::Rows(rows) => rows.iter().map(|r| r.number).collect(),
            BatchRows::Csv { valid, .. } => valid.to_vec(),
        }
    }
}

/// Where and how a batch writes its output.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// The output directory.
    pub out: PathBuf,
    /// Also a QR code PNG per credential.
    pub qr: bool,
    /// Files or one JSON Lines archive.
    pub format: OutputFormat,
}

/// One call of [`Issuer::issue_batch`]: what it was asked to do.
pub(super) struct Run<'a> {
    pub(super) template: &'a Template,
    pub(super) batch_id: &'a str,
    pub(super) rows: BatchRows<'a>,
    pub(super) out: &'a Path,
    pub(super) qr: bool,
    pub(super) format: OutputFormat,
    pub(super) progress: &'a dyn Progress,
}

/// Where a run starts.
enum Start {
    /// The batch was finished by an earlier run.
    Done(BatchReport),
    /// The batch to carry on with, and whether an earlier run began it.
    Carry(Batch, bool),
}

/// The batch's anchor entry, on the chain and sealed.
pub(super) struct Anchored {
    /// The entry as submitted.
    pub(super) entry: Entry,
    /// Its index in the chain's log.
    pub(super) index: u64,
    /// The block that sealed it.
    pub(super) block: Block,
    /// Its inclusion proof in that block's tree.
    pub(super) proof: Vec<Hash>,
}

/// What the batch keeps in memory of each credential, in batch order,
/// once the batch archive holds the credentials themselves.
#[derive(Default)]
pub(super) struct Ledger {
    /// Merkle leaf hash of each credential's issuer-signed JWT.
    pub(super) leaves: Vec<Hash>,
    /// [`credential_id`] of each.
    pub(super) ids: Vec<String>,
    /// Each holder.
    pub(super) holders: Vec<DidKey>,
    /// For [`Pending::Lines`], the offset of each line's anchor proof slot
    /// in the pending file.
    pub(super) slots: Vec<u64>,
}

/// A chunk of signed credentials on its way to the pending file, in row
/// order: their lines in one buffer (the writer hands it back to be
/// filled again, [`Spare`]), so no line is a buffer of its own.
#[derive(Default)]
struct Signed {
    /// Their lines there, one after the other, each with its `\n`.
    lines: Vec<u8>,
    /// Where each line's anchor proof slot starts in `lines`, for
    /// [`Pending::Lines`].
    slots: Vec<usize>,
    leaves: Vec<Hash>,
    ids: Vec<String>,
    holders: Vec<DidKey>,
}

impl Signed {
    /// An empty chunk of room for `n` credentials, its lines written into
    /// `lines` (emptied).
    fn new(mut lines: Vec<u8>, n: usize) -> Self {
        lines.clear();
        Self {
            lines,
            slots: Vec::with_capacity(n),
            leaves: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            holders: Vec::with_capacity(n),
        }
    }
}

/// Line buffers the writer has emptied, for the signers to fill again.
#[derive(Default)]
struct Spare(Mutex<Vec<Vec<u8>>>);

impl Spare {
    fn take(&self) -> Vec<u8> {
        // A buffer list is never left half-changed: a poisoned one is fine.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, lines: Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(lines);
    }
}

/// Where a batch's signed credentials wait: [`Pending`].
pub(super) fn pending_form(format: OutputFormat) -> Pending {
    match format {
        OutputFormat::Files => Pending::Credentials,
        OutputFormat::Jsonl => Pending::Lines,
    }
}

impl Issuer {
    /// Issues a batch: rows already validated against `template`, one file
    /// per credential. Its phases (`start`, `sign`, `anchor`,
    /// `write_output`) are each recorded in the journal before they take
    /// effect, so a rerun with the same arguments resumes where this one
    /// stopped. [`Issuer::issue_batch`] with [`BatchRows::Rows`].
    ///
    /// # Errors
    /// [`IssuerError`]; the journal says how far it got and a rerun resumes.
    pub async fn issue(
        &self,
        template: &Template,
        batch_id: &str,
        rows: &[Row],
        out: &Path,
        qr: bool,
        progress: &dyn Progress,
    ) -> Result<BatchReport, IssuerError> {
        let options = OutputOptions {
            out: out.to_owned(),
            qr,
            format: OutputFormat::Files,
        };
        self.issue_batch(
            template,
            batch_id,
            BatchRows::Rows(rows),
            &options,
            progress,
        )
        .await
    }

    /// Issues a batch from `rows` (checked rows, or a CSV read on the fly)
    /// into `options.out`, as files or one JSON Lines archive; resumable
    /// as [`Issuer::issue`].
    ///
    /// # Errors
    /// [`IssuerError`]; the journal says how far it got and a rerun resumes.
    pub async fn issue_batch<'a>(
        &self,
        template: &'a Template,
        batch_id: &'a str,
        rows: BatchRows<'a>,
        options: &'a OutputOptions,
        progress: &'a dyn Progress,
    ) -> Result<BatchReport, IssuerError> {
        let run = Run {
            template,
            batch_id,
            rows,
            out: &options.out,
            qr: options.qr,
            format: options.format,
            progress,
        };
        let (mut batch, resumed) = match self.start(&run)? {
            Start::Done(report) => return Ok(report),
            Start::Carry(batch, resumed) => (batch, resumed),
        };
        let list: ListMeta = self
            .get_json(&format!("list/{}", batch.list))?
            .ok_or_else(|| IssuerError::MissingList {
                list: batch.list.clone(),
            })?;
        self.registry
            .ensure_accredited(&self.config.did, &self.config.name, &template.kind)
            .await?;
        let (ledger, tree) = if batch.stage == Stage::Allocated {
            // Signed afresh: in this run's form, whatever an interrupted
            // run chose.
            batch.pending = pending_form(run.format);
            self.sign(&run, &mut batch, &list).await?
        } else {
            self.reread(&run, &batch)?
        };
        let root = tree.root();
        if batch.root.as_deref() != Some(hex::encode(root.0).as_str()) {
            return Err(IssuerError::ArchiveChanged {
                path: self.pending_path(&run, &batch),
            });
        }
        let anchored = self.anchor(&run, &mut batch, &list).await?;
        let (manifest, archive) =
            self.write_output(&run, &batch, &list, &ledger, &tree, &anchored)?;
        batch.stage = Stage::Done;
        self.save_batch(&batch)?;
        if batch.pending == Pending::Lines && run.format == OutputFormat::Files {
            // Signed for JSON Lines, finished as files (a rerun with the
            // other format): the files are the record now.
            let _ = std::fs::remove_file(slots::pending_path(run.out, batch_id));
        }
        Ok(BatchReport {
            id: batch_id.to_owned(),
            issued: ledger.ids.len(),
            out: run.out.to_owned(),
            manifest,
            archive,
            anchor_index: anchored.index,
            block_height: anchored.block.height,
            already_done: false,
            resumed,
        })
    }

    /// Phase 1: finds the batch in the journal, or allocates its status
    /// indexes and records it as `allocated`.
    fn start(&self, run: &Run<'_>) -> Result<Start, IssuerError> {
        let numbers = run.rows.numbers();
        match self.batch(run.batch_id)? {
            Some(b) if b.stage == Stage::Done => {
                let path = b.out.join(super::output::MANIFEST);
                let manifest = read_manifest(&path)?;
                let archive = b.out.join(crate::archive::FILE_NAME);
                Ok(Start::Done(BatchReport {
                    id: b.id,
                    issued: b.rows.len(),
                    archive: archive.is_file().then_some(archive),
                    out: b.out,
                    manifest: path,
                    anchor_index: manifest.anchor().entry_index,
                    block_height: manifest.anchor().block_height,
                    already_done: true,
                    resumed: false,
                }))
            }
            Some(b) if b.out != run.out => Err(IssuerError::OtherOut {
                batch: run.batch_id.to_owned(),
                out: b.out,
            }),
            Some(b) if b.rows != numbers => Err(IssuerError::OtherRows {
                batch: run.batch_id.to_owned(),
            }),
            Some(b) => Ok(Start::Carry(b, true)),
            None => {
                refuse_used_out(run.out)?;
                let (list, indexes) = self.allocate(numbers.len())?;
                let b = Batch {
                    id: run.batch_id.to_owned(),
                    template: run.template.name.clone(),
                    out: run.out.to_owned(),
                    rows: numbers,
                    list: list.id,
                    indexes,
                    stage: Stage::Allocated,
                    anchor_entry: None,
                    root: None,
                    pending: pending_form(run.format),
                };
                self.save_batch(&b)?;
                Ok(Start::Carry(b, false))
            }
        }
    }

    /// Phase 2: signs every row into the batch archive (synced once), signs
    /// the anchor entry over the batch root and records the batch as
    /// `signed`. With `--qr`, refuses before anything is anchored when a
    /// credential does not fit one QR code; a rerun without `--qr` resumes
    /// this batch with the same status indexes. Returns the batch's tree
    /// with its ledger (made once, for the root and then the proofs).
    async fn sign(
        &self,
        run: &Run<'_>,
        batch: &mut Batch,
        list: &ListMeta,
    ) -> Result<(Ledger, BatchTree), IssuerError> {
        let ledger = self.sign_all(run, batch, list)?;
        let tree = batch_tree(&ledger.leaves);
        let root = tree.root();
        let entry = self
            .sign_entry(Action::Anchor {
                list: list.uri.clone(),
                root: hex::encode(root.0),
                count: ledger.leaves.len() as u64,
                first: batch.indexes.iter().copied().min().unwrap_or(0),
                last: batch.indexes.iter().copied().max().unwrap_or(0),
            })
            .await?;
        batch.anchor_entry = Some(String::from_utf8_lossy(entry.as_bytes()).into_owned());
        batch.root = Some(hex::encode(root.0));
        batch.stage = Stage::Signed;
        self.save_batch(batch)?;
        failpoint("after-signed");
        Ok((ledger, tree))
    }

    /// Signs one credential per row on every core, streaming them in row
    /// order into the batch archive.
    fn sign_all(
        &self,
        run: &Run<'_>,
        batch: &Batch,
        list: &ListMeta,
    ) -> Result<Ledger, IssuerError> {
        let want = batch.rows.len();
        run.progress.start("signing", want as u64);
        let iat = now();
        let exp = run
            .template
            .valid_days
            .map(|d| iat.saturating_add(i64::from(d) * 86_400));
        let tmp = slots::pending_path(run.out, &batch.id);
        let signer = Signer {
            issuer: self,
            template: run.template,
            list,
            indexes: &batch.indexes,
            iat,
            exp,
            qr: run.qr,
            lines: (batch.pending == Pending::Lines)
                .then(|| (Slots::for_batch(want as u64), tmp.as_path())),
        };
        let feed = Feed {
            rows: run.rows,
            next: Mutex::new((0, 0)),
        };
        let had_out = run.out.exists();
        let mut writer = match batch.pending {
            Pending::Credentials => {
                // Left by an interrupted run of this batch as JSON Lines
                // (the name is this batch's alone).
                let _ = std::fs::remove_file(&tmp);
                PendingWriter::create(&self.archive_path(run.batch_id))?
            }
            Pending::Lines => PendingWriter::lines(&tmp)?,
        };
        let mut ledger = Ledger::default();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let abort = AtomicBool::new(false);
        let (tx, rx) =
            std::sync::mpsc::sync_channel::<(u64, Result<Signed, IssuerError>)>(2 * threads);
        let mut result: Result<(), IssuerError> = Ok(());
        let spare = Spare::default();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let tx = tx.clone();
                    let (feed, signer, abort, spare) = (&feed, &signer, &abort, &spare);
                    s.spawn(move || {
                        // Salts and decoys: a ChaCha12 generator per thread,
                        // seeded once from the operating system.
                        let mut rng = rand::rngs::StdRng::from_entropy();
                        let mut holders = HashMap::new();
                        let mut shapes = Shapes::new(signer.list);
                        while !abort.load(Ordering::Relaxed) {
                            let Some((seq, work)) = feed.take() else {
                                break;
                            };
                            let lines = spare.take();
                            let signed = match (work, feed.rows) {
                                (Work::Records(records), BatchRows::Csv { csv, valid }) => signer
                                    .sign_records(
                                        records,
                                        csv,
                                        valid,
                                        &mut holders,
                                        &mut shapes,
                                        &mut rng,
                                        lines,
                                    ),
                                (work, _) => feed
                                    .rows(work, &mut holders)
                                    .and_then(|rows| signer.sign(rows, &mut rng, lines)),
                            };
                            let failed = signed.is_err();
                            if tx.send((seq, signed)).is_err() || failed {
                                break;
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            // Chunks arrive in any order; they are written in row order, so
            // the first error met is the lowest failing row's.
            let mut waiting = BTreeMap::new();
            let mut next = 0u64;
            for (seq, chunk) in rx {
                waiting.insert(seq, chunk);
                while let Some(chunk) = waiting.remove(&next) {
                    next += 1;
                    if result.is_err() {
                        continue;
                    }
                    let written = chunk.and_then(|mut chunk| {
                        writer.push(&chunk.lines, &chunk.slots)?;
                        for _ in 0..chunk.ids.len() {
                            run.progress.step();
                        }
                        ledger.leaves.append(&mut chunk.leaves);
                        ledger.ids.append(&mut chunk.ids);
                        ledger.holders.append(&mut chunk.holders);
                        spare.give(chunk.lines);
                        Ok(())
                    });
                    if let Err(e) = written {
                        result = Err(e);
                        abort.store(true, Ordering::Relaxed);
                    }
                }
            }
            for h in handles {
                if h.join().is_err() && result.is_ok() {
                    result = Err(IssuerError::Panicked { work: "signing" });
                }
            }
        });
        if result.is_ok() && ledger.ids.len() != want {
            result = Err(IssuerError::RowCount {
                found: ledger.ids.len(),
                want,
            });
        }
        if let Err(e) = result {
            // Nothing of a batch that failed to sign stays behind: not its
            // pending file, nor an output directory made for it.
            let _ = std::fs::remove_file(writer.tmp());
            if !had_out {
                let _ = std::fs::remove_dir(run.out);
            }
            return Err(e);
        }
        run.progress.finish();
        ledger.slots = writer.finish()?;
        Ok(ledger)
    }

    /// A signed batch resumed: its leaves and ids from the pending file,
    /// its holders from the rows (and, for [`Pending::Lines`], each line's
    /// slot, and its row, holder, id and file name checked against them),
    /// with the batch's tree.
    fn reread(&self, run: &Run<'_>, batch: &Batch) -> Result<(Ledger, BatchTree), IssuerError> {
        let mut ledger = Ledger::default();
        // Each pending line's row, holder, and whether its id and file
        // name are its credential's.
        let mut written = Vec::new();
        let rows = batch.rows.len();
        let mut path = self.pending_path(run, batch);
        // This batch's pending name, when its lines are read from another
        // (the filled archive an interrupted run renamed into place, or the
        // earlier shared pending name): moved there once they check as
        // this batch's.
        let mut placed = None;
        match batch.pending {
            Pending::Credentials => {
                for line in pending_lines(&path, rows)? {
                    let line = line?;
                    ledger
                        .leaves
                        .push(record_hash(anchor::leaf(&line).as_bytes()));
                    ledger.ids.push(credential_id(&line));
                }
            }
            Pending::Lines => {
                if !path.exists() {
                    // Interrupted after the filled archive was renamed into
                    // place (or signed by an earlier version, under the one
                    // pending name all batches shared); either may be
                    // another batch's: read where it is, taken under this
                    // batch's pending name below only once it is this
                    // batch's.
                    let found = [slots::LEGACY_NAME, crate::archive::FILE_NAME]
                        .map(|name| run.out.join(name))
                        .into_iter()
                        .find(|p| p.is_file());
                    if let Some(found) = found {
                        placed = Some(std::mem::replace(&mut path, found));
                    }
                }
                let layout = Slots::for_batch(rows as u64);
                for line in slots::read_pending(&path, layout, rows)? {
                    let (line, slot) = line?;
                    let id = credential_id(&line.sd_jwt);
                    let named = line.credential_id == id
                        && usize::try_from(line.row)
                            .is_ok_and(|row| line.file == file_name(row, &id));
                    written.push((line.row, line.holder, named));
                    ledger
                        .leaves
                        .push(record_hash(anchor::leaf(&line.sd_jwt).as_bytes()));
                    ledger.ids.push(id);
                    ledger.slots.push(slot);
                }
            }
        }
        if ledger.ids.len() != batch.rows.len() {
            return Err(IssuerError::ArchiveCount {
                path,
                found: ledger.ids.len(),
                want: batch.rows.len(),
            });
        }
        ledger.holders = match run.rows {
            BatchRows::Rows(rows) => rows.iter().map(|r| r.holder.clone()).collect(),
            BatchRows::Csv { valid, .. } => {
                let feed = Feed {
                    rows: run.rows,
                    next: Mutex::new((0, 0)),
                };
                let mut holders = HashMap::new();
                let mut out = Vec::with_capacity(valid.len());
                while let Some((_, work)) = feed.take() {
                    out.extend(
                        feed.rows(work, &mut holders)?
                            .into_iter()
                            .map(|(_, r)| r.holder),
                    );
                }
                out
            }
        };
        if ledger.holders.len() != ledger.ids.len() {
            return Err(IssuerError::RowCount {
                found: ledger.holders.len(),
                want: ledger.ids.len(),
            });
        }
        let differs = written
            .iter()
            .zip(batch.rows.iter().zip(&ledger.holders))
            .any(|((row, holder, named), (&want, key))| {
                !named || *row != want as u64 || holder != key.as_str()
            });
        if differs {
            return Err(IssuerError::ArchiveChanged { path });
        }
        let tree = batch_tree(&ledger.leaves);
        if let Some(pending) = placed {
            // Its slots are written again under the pending name, never
            // where a reader takes it as done: only this batch's archive
            // (its root the saved anchor's) is moved.
            let root = tree.root();
            if batch.root.as_deref() != Some(hex::encode(root.0).as_str()) {
                return Err(IssuerError::ArchiveChanged { path });
            }
            super::journal::replace(&path, &pending)?;
        }
        Ok((ledger, tree))
    }

    /// Where a batch's signed credentials wait: the batch archive, or its
    /// pending lines in the output directory.
    fn pending_path(&self, run: &Run<'_>, batch: &Batch) -> PathBuf {
        match batch.pending {
            Pending::Credentials => self.archive_path(&batch.id),
            Pending::Lines => slots::pending_path(run.out, &batch.id),
        }
    }

    /// Phase 3: puts the saved anchor entry on the chain (unless an earlier
    /// run did), publishes the list's first Status List Token, waits for a
    /// block to seal the entry and checks its inclusion proof.
    async fn anchor(
        &self,
        run: &Run<'_>,
        batch: &mut Batch,
        list: &ListMeta,
    ) -> Result<Anchored, IssuerError> {
        let text = batch
            .anchor_entry
            .clone()
            .ok_or_else(|| IssuerError::NoAnchorEntry {
                batch: batch.id.clone(),
            })?;
        let mut entry =
            Entry::parse(text.as_bytes()).map_err(|source| IssuerError::JournalEntry {
                batch: batch.id.clone(),
                source,
            })?;
        run.progress.start("anchoring", 1);
        let index = match self.registry.index_of(&entry.leaf_hash()).await? {
            Some(i) => i,
            None => match self.registry.submit(entry.as_bytes()).await {
                Ok(r) => r.index,
                Err(first) => {
                    // A saved entry can go stale while a run is interrupted:
                    // a later entry of this issuer (a revocation) took its
                    // sequence number, or its time is too old for the
                    // registry's clock. Sign the same anchor again, save it,
                    // then submit.
                    tracing::warn!("anchor entry refused ({first}); signing it again");
                    entry = self.sign_entry(entry.action().clone()).await?;
                    batch.anchor_entry =
                        Some(String::from_utf8_lossy(entry.as_bytes()).into_owned());
                    self.save_batch(batch)?;
                    self.registry.submit(entry.as_bytes()).await?.index
                }
            },
        };
        self.publish_if_new(list).await?;
        let (block, _note) = self.registry.sealed(index).await?;
        let proof = self.registry.inclusion(index, block.size).await?;
        log::verify_inclusion(&proof, block.size, block.root, index, entry.leaf_hash())
            .map_err(|source| IssuerError::RegistryProof { index, source })?;
        run.progress.step();
        run.progress.finish();
        Ok(Anchored {
            entry,
            index,
            block,
            proof,
        })
    }
}

/// Hands out the rows to the signer threads, a chunk at a time, numbered
/// in row order.
struct Feed<'a> {
    rows: BatchRows<'a>,
    /// The next chunk's number, and (for [`BatchRows::Rows`]) its first row.
    next: Mutex<(u64, usize)>,
}

/// A chunk of work: rows, or CSV records still to check.
enum Work<'a> {
    /// Rows from position `first` of the batch.
    Rows { first: usize, rows: &'a [Row] },
    /// Records as read.
    Records(Vec<Record>),
}

impl<'a> Feed<'a> {
    /// The next chunk and its number; `None` at the end.
    fn take(&self) -> Option<(u64, Work<'a>)> {
        // Only ever advanced whole: a panicked holder leaves it consistent.
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seq, first) = *next;
        let work = match self.rows {
            BatchRows::Rows(rows) => {
                let chunk = rows.get(first..)?;
                let chunk = &chunk[..chunk.len().min(CHUNK)];
                if chunk.is_empty() {
                    return None;
                }
                next.1 += chunk.len();
                Work::Rows { first, rows: chunk }
            }
            BatchRows::Csv { csv, .. } => {
                // Read under this lock, so chunk numbers follow file order.
                let records = csv.next_records(CHUNK);
                if records.is_empty() {
                    return None;
                }
                Work::Records(records)
            }
        };
        next.0 += 1;
        Some((seq, work))
    }

    /// The rows of a chunk to issue, each with its position in the batch.
    fn rows(
        &self,
        work: Work<'_>,
        holders: &mut HashMap<String, DidKey>,
    ) -> Result<Vec<(usize, Row)>, IssuerError> {
        match (work, self.rows) {
            (Work::Rows { first, rows }, _) => Ok(rows
                .iter()
                .enumerate()
                .map(|(i, r)| (first + i, r.clone()))
                .collect()),
            (Work::Records(records), BatchRows::Csv { csv, valid }) => {
                let mut out = Vec::with_capacity(records.len());
                for record in records {
                    let number = record.number();
                    // Rows left out (invalid, with --skip-invalid) are skipped.
                    let Ok(position) = valid.binary_search(&number) else {
                        continue;
                    };
                    let row =
                        csv.check(record, holders)
                            .map_err(|e| IssuerError::InputChanged {
                                row: number,
                                source: e.problem,
                            })?;
                    out.push((position, row));
                }
                Ok(out)
            }
            (Work::Records(_), BatchRows::Rows(_)) => Ok(Vec::new()),
        }
    }
}

/// What every signer thread shares.
struct Signer<'a> {
    issuer: &'a Issuer,
    template: &'a Template,
    list: &'a ListMeta,
    indexes: &'a [u64],
    iat: i64,
    exp: Option<i64>,
    qr: bool,
    /// For [`Pending::Lines`]: the batch's slot width, and the pending
    /// file (named by errors).
    lines: Option<(Slots, &'a Path)>,
}

/// What a signer thread keeps from row to row of a CSV: the concealment
/// of each row shape met ([`crate::template::RowClaims::shape`]), planned
/// once ([`IssuePlan`]); the status reference whose index it sets for
/// each row; and the buffers each credential is written in.
struct Shapes {
    plans: HashMap<Vec<u32>, IssuePlan>,
    status: StatusRef,
    buffers: IssueBuffers,
    text: String,
}

impl Shapes {
    fn new(list: &ListMeta) -> Self {
        Self {
            plans: HashMap::new(),
            status: StatusRef {
                idx: 0,
                uri: list.uri.clone(),
            },
            buffers: IssueBuffers::default(),
            text: String::new(),
        }
    }
}

impl Signer<'_> {
    /// The status index of the credential at `position` in the batch.
    fn index(&self, position: usize) -> Result<u64, IssuerError> {
        self.indexes
            .get(position)
            .copied()
            .ok_or(IssuerError::RowCount {
                found: position + 1,
                want: self.indexes.len(),
            })
    }

    /// A signed credential on its way out, into `out`: its QR code tried
    /// with `--qr`, its leaf hash and id taken, its pending line made.
    fn signed(
        &self,
        out: &mut Signed,
        row: usize,
        text: &str,
        holder: DidKey,
    ) -> Result<(), IssuerError> {
        if self.qr {
            qr_png(text).map_err(|source| IssuerError::Qr { row, source })?;
        }
        let id = credential_id(text);
        let leaf = record_hash(anchor::leaf(text).as_bytes());
        match self.lines {
            Some((layout, path)) => {
                let file = file_name(row, &id);
                let slot = layout.line(
                    &mut out.lines,
                    path,
                    row as u64,
                    &id,
                    &file,
                    holder.as_str(),
                    text,
                )?;
                out.slots.push(slot);
            }
            None => {
                out.lines.extend_from_slice(text.as_bytes());
                out.lines.push(b'\n');
            }
        }
        out.leaves.push(leaf);
        out.ids.push(id);
        out.holders.push(holder);
        Ok(())
    }

    /// Checks and signs a chunk of CSV records (those of `valid` rows),
    /// each straight from its cells ([`CsvRows::with_claims`],
    /// [`vc::issue_claims`]), their lines into `lines`; stops at the first
    /// failure.
    #[allow(clippy::too_many_arguments)] // What each signer thread keeps.
    fn sign_records(
        &self,
        records: Vec<Record>,
        csv: &CsvRows<'_>,
        valid: &[usize],
        holders: &mut HashMap<String, DidKey>,
        shapes: &mut Shapes,
        rng: &mut rand::rngs::StdRng,
        lines: Vec<u8>,
    ) -> Result<Signed, IssuerError> {
        let mut out = Signed::new(lines, records.len());
        for record in records {
            let number = record.number();
            // Rows left out (invalid, with --skip-invalid) are skipped.
            let Ok(position) = valid.binary_search(&number) else {
                continue;
            };
            shapes.status.idx = self.index(position)?;
            csv.with_claims(record, holders, |holder, claims| {
                if !shapes.plans.contains_key(claims.shape) {
                    let plan = IssuePlan::new(self.template.concealment_of(claims.shape));
                    shapes.plans.insert(claims.shape.to_vec(), plan);
                }
                let plan = &shapes.plans[claims.shape];
                let key = PublicKey::Ed25519(*holder.verifying_key());
                let request = ClaimsRequest {
                    vct: &self.template.vct,
                    iat: self.iat,
                    exp: self.exp,
                    holder: &key,
                    status: Some(&shapes.status),
                    claims: claims.claims,
                    concealment: plan.concealment(),
                };
                vc::issue_planned(
                    &request,
                    plan,
                    &self.issuer.key,
                    &mut shapes.buffers,
                    &mut shapes.text,
                    rng,
                )
                .map_err(|source| IssuerError::Sign {
                    row: number,
                    source,
                })?;
                self.signed(&mut out, number, &shapes.text, holder.clone())
            })
            .map_err(|e| IssuerError::InputChanged {
                row: number,
                source: e.problem,
            })??;
        }
        Ok(out)
    }

    /// Signs a chunk of rows, their lines into `lines`; stops at the
    /// first failure.
    fn sign(
        &self,
        rows: Vec<(usize, Row)>,
        rng: &mut rand::rngs::StdRng,
        lines: Vec<u8>,
    ) -> Result<Signed, IssuerError> {
        let mut out = Signed::new(lines, rows.len());
        for (position, row) in rows {
            let idx = self.index(position)?;
            let request = CredentialRequest {
                vct: self.template.vct.clone(),
                iat: self.iat,
                exp: self.exp,
                holder: PublicKey::Ed25519(*row.holder.verifying_key()),
                status: Some(StatusRef {
                    idx,
                    uri: self.list.uri.clone(),
                }),
                concealment: self.template.concealment(&row.claims),
                claims: row.claims,
            };
            let text = vc::issue_compact(request, &self.issuer.key, rng).map_err(|source| {
                IssuerError::Sign {
                    row: row.number,
                    source,
                }
            })?;
            self.signed(&mut out, row.number, &text, row.holder)?;
        }
        Ok(out)
    }
}

/// The RFC 9162 tree over the credentials' leaf hashes: each the hash of
/// a credential's issuer-signed JWT ([`anchor::leaf`]), what every
/// presentation of it carries, whatever it discloses.
pub(super) fn batch_tree(leaves: &[Hash]) -> BatchTree {
    BatchTree::new(leaves.to_vec())
}

/// Refuses an output directory that holds another batch's manifest, JSON
/// Lines archive or pending lines: a new batch would replace them.
fn refuse_used_out(out: &Path) -> Result<(), IssuerError> {
    for name in [super::output::MANIFEST, crate::archive::FILE_NAME] {
        if out.join(name).exists() {
            return Err(IssuerError::OutInUse {
                out: out.to_owned(),
                found: name.to_owned(),
            });
        }
    }
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(super::io(out)(e)),
    };
    for entry in entries {
        let name = entry.map_err(super::io(out))?.file_name();
        let name = name.to_string_lossy();
        if super::slots::is_pending_name(&name) {
            return Err(IssuerError::OutInUse {
                out: out.to_owned(),
                found: format!("pending lines ({name})"),
            });
        }
    }
    Ok(())
}
