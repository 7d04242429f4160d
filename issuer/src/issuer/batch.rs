//! A batch: sign every row, anchor the batch's Merkle root on the chain,
//! then write the files and the manifest.

use std::path::{Path, PathBuf};

use rand::SeedableRng as _;
use vouch_core::anchor;
use vouch_core::chain::{Action, Entry};
use vouch_core::jws::PublicKey;
use vouch_core::log::{self, record_hash, Block, Hash, MemoryHashes};
use vouch_core::status_list::StatusRef;
use vouch_core::vc::{self, CredentialRequest};
use vouch_registry::now;

use super::journal::{failpoint, read_pending, write_pending, Batch, Stage};
use super::lists::ListMeta;
use super::output::{qr_png, read_manifest};
use super::{Issuer, IssuerError};
use crate::input::Row;
use crate::template::Template;

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

/// One call of [`Issuer::issue`]: what it was asked to do.
pub(super) struct Run<'a> {
    pub(super) template: &'a Template,
    pub(super) batch_id: &'a str,
    pub(super) rows: &'a [Row],
    pub(super) out: &'a Path,
    pub(super) qr: bool,
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

impl Issuer {
    /// Issues a batch: rows already validated against `template`. Its
    /// phases (`start`, `sign`, `anchor`, `write_output`) are each recorded
    /// in the journal before they take effect, so a rerun with the same
    /// arguments resumes where this one stopped.
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
        let run = Run {
            template,
            batch_id,
            rows,
            out,
            qr,
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
        let credentials = if batch.stage == Stage::Allocated {
            self.sign(&run, &mut batch, &list).await?
        } else {
            read_pending(&self.archive_path(batch_id), rows.len())?
        };
        let tree = batch_tree(&credentials)?;
        let root = tree.root()?;
        if batch.root.as_deref() != Some(hex::encode(root.0).as_str()) {
            return Err(IssuerError::ArchiveChanged {
                path: self.archive_path(batch_id),
            });
        }
        let anchored = self.anchor(&run, &mut batch, &list).await?;
        let manifest = self.write_output(&run, &batch, &list, &credentials, &tree, &anchored)?;
        batch.stage = Stage::Done;
        self.save_batch(&batch)?;
        Ok(BatchReport {
            id: batch_id.to_owned(),
            issued: credentials.len(),
            out: out.to_owned(),
            manifest,
            anchor_index: anchored.index,
            block_height: anchored.block.height,
            already_done: false,
            resumed,
        })
    }

    /// Phase 1: finds the batch in the journal, or allocates its status
    /// indexes and records it as `allocated`.
    fn start(&self, run: &Run<'_>) -> Result<Start, IssuerError> {
        let numbers: Vec<usize> = run.rows.iter().map(|r| r.number).collect();
        match self.batch(run.batch_id)? {
            Some(b) if b.stage == Stage::Done => {
                let path = b.out.join(super::output::MANIFEST);
                let manifest = read_manifest(&path)?;
                Ok(Start::Done(BatchReport {
                    id: b.id,
                    issued: b.rows.len(),
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
                let (list, indexes) = self.allocate(run.rows.len())?;
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
                };
                self.save_batch(&b)?;
                Ok(Start::Carry(b, false))
            }
        }
    }

    /// Phase 2: signs every row, writes the batch archive, signs the anchor
    /// entry over the batch root and records the batch as `signed`. With
    /// `--qr`, refuses before anything is anchored when a credential does
    /// not fit one QR code; a rerun without `--qr` resumes this batch with
    /// the same status indexes.
    async fn sign(
        &self,
        run: &Run<'_>,
        batch: &mut Batch,
        list: &ListMeta,
    ) -> Result<Vec<String>, IssuerError> {
        let creds = self.sign_all(run, batch, list)?;
        if run.qr {
            for (row, c) in run.rows.iter().zip(&creds) {
                qr_png(c).map_err(|source| IssuerError::Qr {
                    row: row.number,
                    source,
                })?;
            }
        }
        write_pending(&self.archive_path(run.batch_id), &creds)?;
        let root = batch_tree(&creds)?.root()?;
        let entry = self
            .sign_entry(Action::Anchor {
                list: list.uri.clone(),
                root: hex::encode(root.0),
                count: creds.len() as u64,
                first: batch.indexes.iter().copied().min().unwrap_or(0),
                last: batch.indexes.iter().copied().max().unwrap_or(0),
            })
            .await?;
        batch.anchor_entry = Some(String::from_utf8_lossy(entry.as_bytes()).into_owned());
        batch.root = Some(hex::encode(root.0));
        batch.stage = Stage::Signed;
        self.save_batch(batch)?;
        failpoint("after-signed");
        Ok(creds)
    }

    /// Signs one credential per row, on every core.
    fn sign_all(
        &self,
        run: &Run<'_>,
        batch: &Batch,
        list: &ListMeta,
    ) -> Result<Vec<String>, IssuerError> {
        let (template, rows, progress) = (run.template, run.rows, run.progress);
        progress.start("signing", rows.len() as u64);
        let iat = now();
        let exp = template
            .valid_days
            .map(|d| iat.saturating_add(i64::from(d) * 86_400));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = rows.len().div_ceil(threads).max(1);
        let parts: Vec<std::thread::Result<Result<Vec<String>, IssuerError>>> =
            std::thread::scope(|s| {
                let handles: Vec<_> =
                    rows.chunks(per)
                        .zip(batch.indexes.chunks(per))
                        .map(|(part, idx)| {
                            s.spawn(move || {
                                let mut rng = rand::rngs::StdRng::from_entropy();
                                let mut out = Vec::with_capacity(part.len());
                                for (row, &i) in part.iter().zip(idx) {
                                    let request = CredentialRequest {
                                        vct: template.vct.clone(),
                                        iat,
                                        exp,
                                        holder: PublicKey::Ed25519(*row.holder.verifying_key()),
                                        status: Some(StatusRef {
                                            idx: i,
                                            uri: list.uri.clone(),
                                        }),
                                        concealment: template.concealment(&row.claims),
                                        claims: row.claims.clone(),
                                    };
                                    let credential = vc::issue(request, &self.key, &mut rng)
                                        .map_err(|source| IssuerError::Sign {
                                            row: row.number,
                                            source,
                                        })?;
                                    out.push(credential.serialize());
                                    progress.step();
                                }
                                Ok(out)
                            })
                        })
                        .collect();
                handles.into_iter().map(|h| h.join()).collect()
            });
        progress.finish();
        // Parts are in row order, and each stops at its first failure: the
        // first error is the lowest failing row's.
        let mut creds = Vec::with_capacity(rows.len());
        for part in parts {
            creds.extend(part.map_err(|_| IssuerError::Panicked { work: "signing" })??);
        }
        Ok(creds)
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

/// The RFC 9162 tree over the credentials' issuer-signed JWTs
/// ([`anchor::leaf`]): what every presentation of a credential carries,
/// whatever it discloses.
pub(super) fn batch_tree(credentials: &[String]) -> Result<MemoryHashes, IssuerError> {
    let mut tree = MemoryHashes::new();
    for c in credentials {
        tree.append(record_hash(anchor::leaf(c).as_bytes()))?;
    }
    Ok(tree)
}
