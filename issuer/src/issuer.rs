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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use vouch_core::chain::{Action, Entry, ListUri};
use vouch_core::jws::PublicKey;
use vouch_core::log::{self, record_hash, Hash, MemoryHashes};
use vouch_core::status_list::{StatusList, StatusListClaims, StatusRef};
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::{anchor, AnchorProof, DidKey};
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::now;

use crate::input::Row;
use crate::keystore::{self, Cost};
use crate::registry::{Registry, RegistryError};
use crate::template::Template;

/// Entries per status list (2 bits each: valid, revoked, suspended).
pub const LIST_SIZE: u64 = 1 << 20;
/// A list is closed for new credentials when this share of it is used, so
/// random positions stay cheap to find and the crowd stays large.
pub const LIST_FILL: u64 = LIST_SIZE / 2;

/// `issuer.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerConfig {
    /// Display name.
    pub name: String,
    /// The issuer's did:key.
    pub did: String,
    /// Remote registry URL; none: the embedded one in `D/registry`.
    pub registry: Option<String>,
    /// Base URL status list URIs are built on
    /// (`{base}/v1/status/{issuer did}~{name}`, see [`ListUri`]).
    pub status_base: String,
}

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_owned(),
        source,
    }
}

fn state_err(e: impl std::fmt::Display) -> IssuerError {
    IssuerError::State(e.to_string())
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The issuer DID.
    pub did: String,
    /// The registry it will use (URL, or the embedded directory).
    pub registry: String,
    /// For the embedded registry: the genesis authority's DID.
    pub authority: Option<String>,
}

/// Creates an issuer in `dir`.
///
/// # Errors
/// [`IssuerError`] when `dir` already holds an issuer, or on I/O.
pub fn init(
    dir: &Path,
    name: &str,
    registry: Option<&str>,
    passphrase: &str,
    cost: Cost,
) -> Result<InitReport, IssuerError> {
    let config_path = dir.join("issuer.json");
    if config_path.exists() {
        return Err(IssuerError::Other(format!(
            "{} already holds an issuer",
            dir.display()
        )));
    }
    if name.trim().is_empty() {
        return Err(IssuerError::Other("--name is empty".into()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut rng = rand::rngs::OsRng;
    let key = SigningKey::generate(&mut rng);
    keystore::create(
        &dir.join("issuer.keystore"),
        &key,
        passphrase,
        cost,
        &mut rng,
    )?;
    let did = DidKey::from_public_key(&key.verifying_key());
    let (status_base, authority, shown) = match registry {
        Some(url) => (url.trim_end_matches('/').to_owned(), None, url.to_owned()),
        None => {
            let slug: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let config = NodeConfig {
                origin: format!("{}.vouch.local/registry", slug.trim_matches('-')),
                witnesses: Vec::new(),
                need: 0,
            };
            let report = Node::init(&dir.join("registry"), config, now(), &mut rng)
                .map_err(|e| IssuerError::Other(format!("embedded registry: {e}")))?;
            (
                "http://127.0.0.1:7400".to_owned(),
                Some(report.authority),
                dir.join("registry").display().to_string(),
            )
        }
    };
    let config = IssuerConfig {
        name: name.to_owned(),
        did: did.as_str().to_owned(),
        registry: registry.map(str::to_owned),
        status_base,
    };
    let json = serde_json::to_vec_pretty(&config).map_err(state_err)?;
    std::fs::write(&config_path, json).map_err(io(&config_path))?;
    Ok(InitReport {
        did: did.as_str().to_owned(),
        registry: shown,
        authority,
    })
}

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

/// A status list the issuer owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ListMeta {
    id: String,
    uri: String,
    used: u64,
}

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

/// An opened issuer.
pub struct Issuer {
    dir: PathBuf,
    config: IssuerConfig,
    key: IssuerKey,
    db: sled::Db,
    registry: Registry,
}

impl Issuer {
    /// Opens the issuer in `dir` with its passphrase.
    ///
    /// # Errors
    /// [`IssuerError`], [`keystore::KeystoreError::WrongPassphrase`] among
    /// them.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Self, IssuerError> {
        let config_path = dir.join("issuer.json");
        let text = std::fs::read(&config_path).map_err(io(&config_path))?;
        let config: IssuerConfig = serde_json::from_slice(&text)
            .map_err(|e| IssuerError::Other(format!("{}: {e}", config_path.display())))?;
        let key = keystore::open(&dir.join("issuer.keystore"), passphrase)?;
        if DidKey::from_public_key(&key.verifying_key()).as_str() != config.did {
            return Err(IssuerError::Other(
                "issuer.json names another DID than the keystore holds".into(),
            ));
        }
        let db = sled::open(dir.join("state")).map_err(state_err)?;
        let registry = match &config.registry {
            Some(url) => Registry::Remote(
                vouch_registry::client::NodeClient::new(url).map_err(RegistryError::from)?,
            ),
            None => Registry::embedded(&dir.join("registry"))?,
        };
        Ok(Self {
            dir: dir.to_owned(),
            config,
            key: IssuerKey::new(key),
            db,
            registry,
        })
    }

    /// The issuer's DID.
    pub fn did(&self) -> &str {
        &self.config.did
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The registry handle.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The issuer directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, IssuerError> {
        self.db
            .get(key)
            .map_err(state_err)?
            .map(|v| serde_json::from_slice(&v).map_err(state_err))
            .transpose()
    }

    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), IssuerError> {
        let bytes = serde_json::to_vec(value).map_err(state_err)?;
        self.db.insert(key, bytes).map_err(state_err)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), IssuerError> {
        self.db.flush().map_err(state_err)?;
        Ok(())
    }

    /// A batch from the journal.
    ///
    /// # Errors
    /// [`IssuerError::State`].
    pub fn batch(&self, id: &str) -> Result<Option<Batch>, IssuerError> {
        self.get_json(&format!("batch/{id}"))
    }

    /// Status list `id`'s current values (all valid if never set).
    fn statuses(&self, id: &str) -> Result<StatusList, IssuerError> {
        match self.db.get(format!("status/{id}")).map_err(state_err)? {
            Some(bytes) => StatusList::from_bytes(2, bytes.to_vec()).map_err(state_err),
            None => StatusList::new(2, LIST_SIZE).map_err(state_err),
        }
    }

    /// Chooses `n` unused random indexes in an open list; saves them.
    fn allocate(&self, n: usize) -> Result<(ListMeta, Vec<u64>), IssuerError> {
        let n = n as u64;
        if n > LIST_FILL {
            return Err(IssuerError::Other(format!(
                "a batch may hold at most {LIST_FILL} credentials"
            )));
        }
        let mut number = 1u32;
        let list = loop {
            // The list's name inside this issuer's namespace on the chain.
            let id = number.to_string();
            let meta = match self.get_json::<ListMeta>(&format!("list/{id}"))? {
                Some(meta) => meta,
                None => {
                    let uri = ListUri::format(&self.config.status_base, &self.config.did, &id);
                    ListUri::parse(&uri).map_err(|e| {
                        IssuerError::Other(format!(
                            "status base {:?} in issuer.json: {e}",
                            self.config.status_base
                        ))
                    })?;
                    ListMeta { uri, id, used: 0 }
                }
            };
            if meta.used + n <= LIST_FILL {
                break meta;
            }
            number += 1;
        };
        let used_key = format!("used/{}", list.id);
        let mut used = match self.db.get(&used_key).map_err(state_err)? {
            Some(v) => v.to_vec(),
            None => vec![0u8; (LIST_SIZE / 8) as usize],
        };
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut out = Vec::with_capacity(n as usize);
        while (out.len() as u64) < n {
            let idx = rng.gen_range(0..LIST_SIZE);
            let (byte, bit) = ((idx / 8) as usize, idx % 8);
            if used[byte] & (1 << bit) == 0 {
                used[byte] |= 1 << bit;
                out.push(idx);
            }
        }
        let meta = ListMeta {
            used: list.used + n,
            ..list
        };
        self.db.insert(&used_key, used).map_err(state_err)?;
        self.put_json(&format!("list/{}", meta.id), &meta)?;
        Ok((meta, out))
    }

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

    /// Signs a chain entry as this issuer, with its next sequence number.
    async fn sign_entry(&self, action: Action) -> Result<Entry, IssuerError> {
        Ok(self
            .registry
            .sign_next(self.key.signing_key(), action)
            .await?)
    }

    /// Publishes the first Status List Token of a list, if none is on the
    /// chain yet.
    async fn publish_if_new(&self, list: &ListMeta) -> Result<(), IssuerError> {
        let state = self.registry.state().await?;
        let published = state
            .lists
            .get(&list.uri)
            .is_some_and(|r| r.token.is_some());
        if !published {
            let statuses = self.statuses(&list.id)?;
            self.publish(list, &statuses, 1).await?;
        }
        Ok(())
    }

    async fn publish(
        &self,
        list: &ListMeta,
        statuses: &StatusList,
        sequence: u64,
    ) -> Result<u64, IssuerError> {
        let token = StatusListClaims {
            sub: list.uri.clone(),
            iss: Some(self.config.did.clone()),
            iat: now(),
            exp: None,
            ttl: Some(300),
            list: statuses.clone(),
        }
        .sign(
            &self.key.did().verification_method(),
            self.key.signing_key(),
        );
        let entry = self
            .sign_entry(Action::Status {
                list: list.uri.clone(),
                sequence,
                token: token.as_str().to_owned(),
            })
            .await?;
        Ok(self.registry.submit(entry.as_bytes()).await?.index)
    }

    /// Sets the status of `idx` in the list `uri` (1 revoked, 2 suspended,
    /// 0 valid again after a suspension), publishes the new token and waits
    /// for it to be sealed. Returns the entry index.
    ///
    /// # Errors
    /// [`IssuerError::Other`] for an unknown list or index, or a revoked
    /// credential being reinstated.
    pub async fn set_status(&self, uri: &str, idx: u64, value: u8) -> Result<u64, IssuerError> {
        let id = ListUri::parse(uri)
            .map_err(|e| IssuerError::Other(e.to_string()))?
            .name;
        let list: ListMeta = self
            .get_json(&format!("list/{id}"))?
            .filter(|l: &ListMeta| l.uri == uri)
            .ok_or_else(|| {
                IssuerError::Other(format!("{uri} is not one of this issuer's status lists"))
            })?;
        let used = self
            .db
            .get(format!("used/{id}"))
            .map_err(state_err)?
            .is_some_and(|u| {
                u.get((idx / 8) as usize)
                    .is_some_and(|b| b & (1 << (idx % 8)) != 0)
            });
        if !used {
            return Err(IssuerError::Other(format!(
                "status index {idx} of {id} was never given to a credential"
            )));
        }
        let mut statuses = self.statuses(id)?;
        let current = statuses.get(idx).map_err(state_err)?;
        if current == 1 && value != 1 {
            return Err(IssuerError::Other(format!(
                "status index {idx} is revoked; revocation is final"
            )));
        }
        let state = self.registry.state().await?;
        let on_chain = state
            .status_of(&self.config.did, uri, idx, now())
            .ok()
            .flatten();
        if current == value && on_chain == Some(value) {
            return Err(IssuerError::Other(format!(
                "status index {idx} already has that status ({})",
                ["valid", "revoked", "suspended"]
                    .get(usize::from(value))
                    .unwrap_or(&"?")
            )));
        }
        // Saved before publishing: if publishing fails, the change is not
        // lost, and running the command again publishes it.
        statuses.set(idx, value).map_err(state_err)?;
        self.db
            .insert(format!("status/{id}"), statuses.as_bytes())
            .map_err(state_err)?;
        self.flush()?;
        let sequence = state.lists.get(uri).map_or(0, |r| r.sequence) + 1;
        let index = self.publish(&list, &statuses, sequence).await?;
        self.registry.sealed(index).await?;
        Ok(index)
    }

    /// The status list URIs this issuer owns.
    ///
    /// # Errors
    /// [`IssuerError::State`].
    pub fn lists(&self) -> Result<Vec<String>, IssuerError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix("list/") {
            let (_, v) = item.map_err(state_err)?;
            let meta: ListMeta = serde_json::from_slice(&v).map_err(state_err)?;
            out.push(meta.uri);
        }
        Ok(out)
    }
}

/// Crash injection for tests: with `VOUCH_FAILPOINT=<name>` in the
/// environment, the process dies here as if killed (exit status 137).
fn failpoint(name: &str) {
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

/// A credential's id: the first 16 bytes of the SHA-256 of its issuer JWT.
pub fn credential_id(credential: &str) -> String {
    let jwt = credential.split('~').next().unwrap_or_default();
    hex::encode(&Sha256::digest(jwt.as_bytes())[..16])
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

/// Writes one file per credential, on several threads (creating files is
/// mostly waiting on the file system).
fn write_files(
    out: &Path,
    names: &[String],
    creds: &[String],
    qr: bool,
    progress: &dyn Progress,
) -> Result<(), IssuerError> {
    const THREADS: usize = 2;
    let per = names.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(per)
            .zip(creds.chunks(per))
            .map(|(names, creds)| {
                s.spawn(move || {
                    for (name, cred) in names.iter().zip(creds) {
                        let to = out.join(name);
                        std::fs::write(&to, cred).map_err(io(&to))?;
                        if qr {
                            let image = qr_png(cred).map_err(IssuerError::Other)?;
                            let to = out.join(qr_name(name));
                            std::fs::write(&to, image).map_err(io(&to))?;
                        }
                        progress.step();
                    }
                    Ok::<(), IssuerError>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| IssuerError::Other("a writer thread failed".into()))??;
        }
        Ok(())
    })
}

/// The PNG file name beside a credential file.
fn qr_name(name: &str) -> String {
    format!("{}.png", name.trim_end_matches(".sd-jwt"))
}

/// A credential as a `VCH1:` QR code PNG (error correction M), for handing
/// it over to a wallet's camera.
///
/// # Errors
/// A message when it does not fit one QR code.
pub fn qr_png(credential: &str) -> Result<Vec<u8>, String> {
    use vouch_core::envelope;
    let env = envelope::encode(credential).map_err(|e| e.to_string())?;
    let code = vouch_core::qr::qr_code(&env, qrcode::EcLevel::M).map_err(|e| e.to_string())?;
    vouch_core::qr::png(&code, 4, 4).map_err(|e| e.to_string())
}

/// Writes the batch archive (one credential per line) and syncs it.
fn write_pending(path: &Path, creds: &[String]) -> Result<(), IssuerError> {
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
fn read_pending(path: &Path, n: usize) -> Result<Vec<String>, IssuerError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let creds: Vec<String> = text.lines().map(str::to_owned).collect();
    if creds.len() != n {
        return Err(IssuerError::State(format!(
            "the batch archive {} holds {} credentials, not {n}",
            path.display(),
            creds.len()
        )));
    }
    Ok(creds)
}

/// The status reference inside a credential file, read only after the
/// issuer-signed JWT verifies under `issuer`'s own key (the did:key), so an
/// edited file cannot point a revocation at someone else's credential.
///
/// # Errors
/// [`IssuerError::Other`] when it is not an SD-JWT VC signed by this issuer
/// with a status.
pub fn status_of_credential(text: &str, issuer: &str) -> Result<(String, u64), IssuerError> {
    let key = DidKey::parse(issuer)
        .map_err(|e| IssuerError::Other(format!("this issuer's DID {issuer}: {e}")))?;
    let sd = vouch_core::SdJwt::parse(text.trim())
        .map_err(|e| IssuerError::Other(format!("not an SD-JWT credential: {e}")))?;
    sd.jwt()
        .verify(&PublicKey::Ed25519(*key.verifying_key()))
        .map_err(|e| {
            IssuerError::Other(format!(
                "the credential's signature does not verify under this issuer's key \
                 ({issuer}): the file was altered or another issuer signed it ({e}); \
                 nothing was changed"
            ))
        })?;
    let payload = sd.payload();
    if payload.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(IssuerError::Other(format!(
            "the credential was issued by {}, not by this issuer ({issuer})",
            payload
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or("nobody")
        )));
    }
    let sl = &payload
        .get("status")
        .and_then(|s| s.get("status_list"))
        .cloned()
        .unwrap_or_default();
    match (sl["uri"].as_str(), sl["idx"].as_u64()) {
        (Some(uri), Some(idx)) => Ok((uri.to_owned(), idx)),
        _ => Err(IssuerError::Other(
            "the credential has no status list entry".into(),
        )),
    }
}

/// Checks a finished batch: each credential (or, unless `all`, the first)
/// verifies as this issuer's, and its anchor proof names the batch's anchor
/// entry, its own place in the batch and the batch size, and leads from its
/// issuer-signed JWT to the batch root; and the anchor entry is in the
/// sealed tree. Used by tests, and by `issue` as its
/// one-line check. Returns how many credentials were checked.
///
/// # Errors
/// A message naming the first credential that does not check.
pub fn check_manifest(out: &Path, all: bool) -> Result<usize, String> {
    let m: Value = serde_json::from_slice(
        &std::fs::read(out.join("manifest.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let root = hex::decode(m["batch_root"].as_str().unwrap_or_default())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Hash)
        .ok_or("bad batch_root")?;
    let count = m["count"].as_u64().ok_or("bad count")?;
    let b64s = |v: &Value| log::hashes_from_json(v).ok_or_else(|| "bad proof".to_owned());
    let entry_index = m["anchor"]["entry_index"]
        .as_u64()
        .ok_or("bad entry_index")?;
    let mut n = 0;
    let credentials = m["credentials"].as_array().ok_or("no credentials")?;
    let take = if all { credentials.len() } else { 1 };
    for (i, c) in credentials.iter().take(take).enumerate() {
        let file = out.join(c["file"].as_str().ok_or("no file")?);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let sd = vouch_core::SdJwt::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let options =
            vouch_core::sd_jwt::VerifyOptions::new(now(), vouch_core::sd_jwt::KeyBinding::Optional);
        let verdict = vouch_core::sd_jwt::verify_parsed(&sd, &options)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if !verdict.is_valid() {
            return Err(format!("{}: does not verify", file.display()));
        }
        let proof: AnchorProof = serde_json::from_value(c["anchor_proof"].clone())
            .map_err(|e| format!("{}: anchor proof: {e}", file.display()))?;
        if (proof.entry_index(), proof.leaf_index(), proof.batch_size())
            != (entry_index, i as u64, count)
        {
            return Err(format!(
                "{}: the anchor proof is for entry {} leaf {} of {}, not entry {entry_index} \
                 leaf {i} of {count}",
                file.display(),
                proof.entry_index(),
                proof.leaf_index(),
                proof.batch_size()
            ));
        }
        proof
            .verify(anchor::leaf(&text).as_bytes(), root)
            .map_err(|e| format!("{}: not in the batch root: {e}", file.display()))?;
        n += 1;
    }
    let a = &m["anchor"];
    let entry = Entry::parse(a["entry"].as_str().unwrap_or_default().as_bytes())
        .map_err(|e| e.to_string())?;
    match entry.action() {
        Action::Anchor {
            root: r, count: k, ..
        } if *r == hex::encode(root.0) && *k == count => {}
        _ => return Err("the anchor entry does not commit to this batch".into()),
    }
    let tree_root = a["tree_root"]
        .as_str()
        .and_then(log::hash_from_base64)
        .ok_or("bad tree_root")?;
    log::verify_inclusion(
        &b64s(&a["inclusion_proof"])?,
        a["tree_size"].as_u64().ok_or("bad tree_size")?,
        tree_root,
        entry_index,
        entry.leaf_hash(),
    )
    .map_err(|e| format!("anchor not in the chain: {e}"))?;
    Ok(n)
}
