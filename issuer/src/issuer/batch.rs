//! A batch: sign every row, anchor the batch's Merkle root on the chain,
//! then write the files and the manifest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::SeedableRng as _;
use serde_json::{json, Value};
use vouch_core::chain::{Action, Entry};
use vouch_core::jws::PublicKey;
use vouch_core::log::{self, record_hash, MemoryHashes};
use vouch_core::status_list::StatusRef;
use vouch_core::vc::{self, CredentialRequest};
use vouch_core::{anchor, AnchorProof};
use vouch_registry::now;

use super::journal::{failpoint, read_pending, write_pending, Batch, Stage};
use super::lists::ListMeta;
use super::output::{credential_id, qr_name, qr_png, write_files};
use super::{io, state_err, Issuer, IssuerError};
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

impl Issuer {
    /// Issues a batch: rows already validated against `template`.
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
        let mut resumed = false;
        let mut batch = match self.batch(batch_id)? {
            Some(b) if b.stage == Stage::Done => {
                let manifest = b.out.join("manifest.json");
                let m: Value =
                    serde_json::from_slice(&std::fs::read(&manifest).map_err(io(&manifest))?)
                        .map_err(state_err)?;
                return Ok(BatchReport {
                    id: b.id,
                    issued: b.rows.len(),
                    out: b.out,
                    manifest,
                    anchor_index: m["anchor"]["entry_index"].as_u64().unwrap_or(0),
                    block_height: m["anchor"]["block_height"].as_u64().unwrap_or(0),
                    already_done: true,
                    resumed: false,
                });
            }
            Some(b) => {
                if b.out != out {
                    return Err(IssuerError::Other(format!(
                        "batch {batch_id} was started with --out {}; rerun with that directory",
                        b.out.display()
                    )));
                }
                resumed = true;
                b
            }
            None => {
                let (list, indexes) = self.allocate(rows.len())?;
                let b = Batch {
                    id: batch_id.to_owned(),
                    template: template.name.clone(),
                    out: out.to_owned(),
                    rows: rows.iter().map(|r| r.number).collect(),
                    list: list.id,
                    indexes,
                    stage: Stage::Allocated,
                    anchor_entry: None,
                    root: None,
                };
                self.put_json(&format!("batch/{batch_id}"), &b)?;
                self.flush()?;
                b
            }
        };
        if batch.rows != rows.iter().map(|r| r.number).collect::<Vec<_>>() {
            return Err(IssuerError::Other(format!(
                "batch {batch_id} was started with other rows (was --skip-invalid changed?)"
            )));
        }
        let list: ListMeta = self
            .get_json(&format!("list/{}", batch.list))?
            .ok_or_else(|| IssuerError::State(format!("list {} is missing", batch.list)))?;
        self.registry
            .ensure_accredited(&self.config.did, &self.config.name, &template.kind)
            .await?;

        let pending = self.dir.join("batches").join(format!("{batch_id}.sd-jwt"));
        let (credentials, tree) = if batch.stage == Stage::Allocated {
            let creds = self.sign_all(template, rows, &batch, &list, progress)?;
            if qr {
                // Refuse before anything is anchored; a rerun without --qr
                // resumes this batch with the same status indexes.
                for (row, c) in rows.iter().zip(&creds) {
                    qr_png(c).map_err(|e| {
                        IssuerError::Other(format!(
                            "--qr: the credential of row {} does not fit one QR code ({e}); issue without --qr",
                            row.number
                        ))
                    })?;
                }
            }
            write_pending(&pending, &creds)?;
            let tree = batch_tree(&creds)?;
            let root = tree.root().map_err(state_err)?;
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
            self.put_json(&format!("batch/{batch_id}"), &batch)?;
            self.flush()?;
            failpoint("after-signed");
            (creds, tree)
        } else {
            let creds = read_pending(&pending, rows.len())?;
            let tree = batch_tree(&creds)?;
            (creds, tree)
        };
        let root = tree.root().map_err(state_err)?;
        if batch.root.as_deref() != Some(hex::encode(root.0).as_str()) {
            return Err(IssuerError::State(format!(
                "the batch archive {} does not match the saved anchor; it was changed",
                pending.display()
            )));
        }
        let entry_text = batch
            .anchor_entry
            .clone()
            .ok_or_else(|| IssuerError::State("signed batch without anchor entry".into()))?;
        let mut entry = Entry::parse(entry_text.as_bytes()).map_err(state_err)?;
        let mut entry_text = entry_text;
        progress.start("anchoring", 1);
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
                    entry_text = String::from_utf8_lossy(entry.as_bytes()).into_owned();
                    batch.anchor_entry = Some(entry_text.clone());
                    self.put_json(&format!("batch/{batch_id}"), &batch)?;
                    self.flush()?;
                    self.registry.submit(entry.as_bytes()).await?.index
                }
            },
        };
        self.publish_if_new(&list).await?;
        let (block, _note) = self.registry.sealed(index).await?;
        let chain_proof = self.registry.inclusion(index, block.size).await?;
        log::verify_inclusion(
            &chain_proof,
            block.size,
            block.root,
            index,
            entry.leaf_hash(),
        )
        .map_err(|e| IssuerError::Other(format!("the registry's inclusion proof: {e}")))?;
        progress.step();
        progress.finish();

        // Files into place, then the manifest, then the journal. The archive
        // is on disk already, so these need no sync of their own: a rerun
        // rewrites them.
        std::fs::create_dir_all(out).map_err(io(out))?;
        progress.start("writing", rows.len() as u64);
        let names: Vec<String> = rows
            .iter()
            .zip(&credentials)
            .map(|(row, cred)| format!("{:06}-{}.sd-jwt", row.number, credential_id(cred)))
            .collect();
        write_files(out, &names, &credentials, qr, progress)?;
        let mut items = Vec::with_capacity(rows.len());
        for (i, (row, name)) in rows.iter().zip(&names).enumerate() {
            let path = log::prove_record(tree.size(), i as u64, &tree).map_err(state_err)?;
            let proof = AnchorProof::new(index, i as u64, tree.size(), path).map_err(state_err)?;
            items.push(json!({
                "row": row.number,
                "holder": row.holder.as_str(),
                "credential_id": &name[7..name.len() - ".sd-jwt".len()],
                "file": name,
                "status": { "uri": list.uri, "idx": batch.indexes[i] },
                "qr": qr.then(|| qr_name(name)),
                "anchor_proof": proof,
            }));
        }
        let manifest = json!({
            "issuer": self.config.did,
            "issuer_name": self.config.name,
            "template": template.name,
            "vct": template.vct,
            "batch": batch_id,
            "count": credentials.len(),
            "batch_root": hex::encode(root.0),
            "leaf": "RFC 9162 leaf hash of each credential's issuer-signed JWT (the text before its first ~)",
            "anchor": {
                "entry": entry_text,
                "entry_index": index,
                "leaf_hash": hex::encode(entry.leaf_hash().0),
                "block_height": block.height,
                "tree_size": block.size,
                "tree_root": STANDARD.encode(block.root.0),
                "inclusion_proof": log::hashes_to_base64(&chain_proof),
            },
            "credentials": items,
        });
        let path = out.join("manifest.json");
        let tmp = out.join(".manifest.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&manifest).map_err(state_err)?,
        )
        .map_err(io(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        progress.finish();
        batch.stage = Stage::Done;
        self.put_json(&format!("batch/{batch_id}"), &batch)?;
        self.flush()?;
        Ok(BatchReport {
            id: batch_id.to_owned(),
            issued: credentials.len(),
            out: out.to_owned(),
            manifest: path,
            anchor_index: index,
            block_height: block.height,
            already_done: false,
            resumed,
        })
    }

    fn sign_all(
        &self,
        template: &Template,
        rows: &[Row],
        batch: &Batch,
        list: &ListMeta,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, IssuerError> {
        progress.start("signing", rows.len() as u64);
        let iat = now();
        let exp = template
            .valid_days
            .map(|d| iat.saturating_add(i64::from(d) * 86_400));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = rows.len().div_ceil(threads).max(1);
        let failed = AtomicUsize::new(usize::MAX);
        let parts: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = rows
                .chunks(per)
                .zip(batch.indexes.chunks(per))
                .map(|(part, idx)| {
                    let failed = &failed;
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
                            match vc::issue(request, &self.key, &mut rng) {
                                Ok(c) => out.push(c.serialize()),
                                Err(_) => {
                                    failed.fetch_min(row.number, Ordering::Relaxed);
                                    return out;
                                }
                            }
                            progress.step();
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        progress.finish();
        let bad = failed.load(Ordering::Relaxed);
        if bad != usize::MAX {
            return Err(IssuerError::Other(format!(
                "row {bad}: the credential could not be issued"
            )));
        }
        let creds: Vec<String> = parts.into_iter().flatten().collect();
        if creds.len() != rows.len() {
            return Err(IssuerError::Other("a signing thread failed".into()));
        }
        Ok(creds)
    }
}

/// The RFC 9162 tree over the credentials' issuer-signed JWTs
/// ([`anchor::leaf`]): what every presentation of a credential carries,
/// whatever it discloses.
fn batch_tree(credentials: &[String]) -> Result<MemoryHashes, IssuerError> {
    let mut tree = MemoryHashes::new();
    for c in credentials {
        tree.append(record_hash(anchor::leaf(c).as_bytes()))
            .map_err(state_err)?;
    }
    Ok(tree)
}
