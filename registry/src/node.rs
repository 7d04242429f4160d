//! A chain node: sequences entries that pass the rules, seals blocks, keeps
//! witness cosignatures.
//!
//! A node directory holds `config.json` (origin, witnesses, how many
//! cosignatures a block needs), `node.key` (the checkpoint signing key),
//! `authority.key` (the genesis authority, written by `init`) and `db/`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use vouch_core::chain::{
    verify_signatures, Action, AuthorCache, ChainState, Entry, EntryError, RuleError,
};
use vouch_core::log::{self, Block, CheckpointError, Hash, SignedBlock, TreeError, TrustPolicy};
use vouch_core::DidKey;

use crate::keys;
use crate::store::{Store, StoreError};
pub use crate::wire::Receipt;

/// How far an entry's time may be from the node's clock, in seconds.
pub const CLOCK_SKEW: i64 = 600;

/// A node's configuration (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeConfig {
    /// The log origin: the checkpoint's first line and the node key's name.
    pub origin: String,
    /// Witness verifier keys (`name+id+key`, cosignature/v1).
    pub witnesses: Vec<String>,
    /// Cosignatures a block needs before the node calls it final.
    pub need: usize,
}

impl NodeConfig {
    /// The trust policy this configuration describes, for `key`.
    ///
    /// The node's own policy is not a trust decision (the node trusts its
    /// own log): it says whose cosignatures the node keeps and how many it
    /// advertises a block needs. So it allows a weak quorum; readers decide
    /// their own policy ([`crate::replica::Trust`]), and `vouch-registry
    /// init` refuses to configure a weak one unless forced
    /// ([`NodeConfig::check_quorum`]).
    ///
    /// # Errors
    /// [`CheckpointError`] when a witness key does not parse, a witness is
    /// listed twice, there are too many, or `need` exceeds them.
    pub fn policy(
        &self,
        key: &ed25519_dalek::VerifyingKey,
    ) -> Result<TrustPolicy, CheckpointError> {
        self.build_policy(key, true)
    }

    /// Checks that this configuration needs a majority of its witnesses
    /// (see [`TrustPolicy::new`]) unless `force_weak_quorum`.
    ///
    /// # Errors
    /// [`CheckpointError::Policy`] saying why a weak quorum is refused, or
    /// what else is wrong with the witnesses.
    pub fn check_quorum(&self, force_weak_quorum: bool) -> Result<(), CheckpointError> {
        // Any key will do: only the witnesses and `need` are checked.
        let placeholder = SigningKey::from_bytes(&[0; 32]).verifying_key();
        self.build_policy(&placeholder, force_weak_quorum)
            .map(|_| ())
    }

    fn build_policy(
        &self,
        key: &ed25519_dalek::VerifyingKey,
        force_weak_quorum: bool,
    ) -> Result<TrustPolicy, CheckpointError> {
        let witnesses = self
            .witnesses
            .iter()
            .map(|v| log::parse_vkey(v).map(|(name, _, key)| (name, key)))
            .collect::<Result<_, _>>()?;
        Ok(TrustPolicy::new(
            (self.origin.clone(), *key),
            witnesses,
            self.need,
            force_weak_quorum,
        )?)
    }
}

/// Why the node could not start or act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `init` was asked to create a node where one exists.
    #[error("{} already holds a node (config.json exists)", dir.display())]
    Exists {
        /// The directory.
        dir: PathBuf,
    },
    /// `config.json` does not parse.
    #[error("{}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The genesis entry breaks a rule (an origin or authority the chain
    /// refuses).
    #[error("genesis: {0}")]
    Genesis(#[source] RuleError),
    /// A cosignature was posted for a block the node does not have.
    #[error("no block {height}")]
    NoBlock {
        /// The height asked for.
        height: u64,
    },
    /// A stored entry does not parse or breaks a rule.
    #[error("stored chain does not verify: entry {index}: {source}")]
    BadStoredEntry {
        /// Its index.
        index: u64,
        /// Why.
        #[source]
        source: crate::replica::EntryRefused,
    },
    /// The store holds no block.
    #[error("stored chain does not verify: no blocks")]
    NoBlocks,
    /// The last block does not match the stored tree.
    #[error("stored chain does not verify: block {height} (size {block_size}) does not match the stored tree of {size} entries")]
    HeadMismatch {
        /// The block's height.
        height: u64,
        /// The block's tree size.
        block_size: u64,
        /// Entries stored.
        size: u64,
    },
    /// A checkpoint could not be made or checked.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Why a submitted entry was refused. Nothing is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Not an entry.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// Breaks a chain rule.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// Its time is too far from the node's clock.
    #[error("entry time {time} is more than {CLOCK_SKEW} s from the node's clock ({now})")]
    Clock {
        /// The entry's time.
        time: i64,
        /// The node's.
        now: i64,
    },
    /// The node failed to store it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the node cannot give a proof.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofRequestError {
    /// The leaf or the tree size is beyond the log.
    #[error("no leaf {index} in a tree of {size} (log has {log})")]
    NoLeaf {
        /// The leaf asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
        /// Entries in the log.
        log: u64,
    },
    /// The sizes are not `0 < old <= new <= log`.
    #[error("no consistency proof from {old} to {new} (log has {log})")]
    NoRange {
        /// The older size asked for.
        old: u64,
        /// The newer size asked for.
        new: u64,
        /// Entries in the log.
        log: u64,
    },
    /// The stored tree could not give the hashes.
    #[error("proof: {0}")]
    Tree(#[source] TreeError),
}

struct Inner {
    state: ChainState,
    size: u64,
    head: Block,
    head_note: String,
}

/// A running node.
pub struct Node {
    dir: PathBuf,
    config: NodeConfig,
    key: SigningKey,
    policy: TrustPolicy,
    store: Store,
    inner: Mutex<Inner>,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The node's checkpoint verifier key.
    pub node_vkey: String,
    /// The genesis authority's did:key.
    pub authority: String,
    /// Where the authority's key was written.
    pub authority_key: PathBuf,
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Node {
    /// Creates a node in `dir`: node key, authority key, genesis entry and
    /// block 0.
    ///
    /// # Errors
    /// [`NodeError::Exists`] when `dir` already holds a node.
    pub fn init(
        dir: &Path,
        config: NodeConfig,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<InitReport, NodeError> {
        if config_path(dir).exists() {
            return Err(NodeError::Exists {
                dir: dir.to_owned(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let node_key = SigningKey::generate(rng);
        config.policy(&node_key.verifying_key())?;
        let authority = SigningKey::generate(rng);
        let authority_did = DidKey::from_public_key(&authority.verifying_key());
        let genesis = Entry::sign(
            &authority,
            0,
            now,
            Action::Genesis {
                origin: config.origin.clone(),
                authorities: vec![authority_did.as_str().to_owned()],
            },
        );
        let mut state = ChainState::new();
        state.apply(&genesis).map_err(NodeError::Genesis)?;
        let store = Store::open(&dir.join("db"))?;
        store.append(std::slice::from_ref(&genesis), false)?;
        let head = Block {
            origin: config.origin.clone(),
            height: 0,
            time: now,
            prev: Hash([0; 32]),
            size: 1,
            root: store.root(1)?,
        };
        store.put_block(0, &log::sign_block(&head, &node_key)?, false)?;
        store.put_state(&state)?;
        store.flush()?;
        keys::write(&dir.join("node.key"), &node_key).map_err(io(dir))?;
        let authority_key = dir.join("authority.key");
        keys::write(&authority_key, &authority).map_err(io(&authority_key))?;
        let json = serde_json::to_vec_pretty(&config).unwrap_or_default();
        std::fs::write(config_path(dir), json).map_err(io(dir))?;
        Ok(InitReport {
            node_vkey: log::node_vkey(&config.origin, &node_key.verifying_key()),
            authority: authority_did.as_str().to_owned(),
            authority_key,
        })
    }

    /// Opens the node in `dir`, rebuilds its state and checks that its last
    /// block matches its stored tree.
    ///
    /// # Errors
    /// [`NodeError`] when the directory is not a node or does not verify.
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        let path = config_path(dir);
        let text = std::fs::read(&path).map_err(io(&path))?;
        let config: NodeConfig =
            serde_json::from_slice(&text).map_err(|source| NodeError::Config {
                path: path.clone(),
                source,
            })?;
        let key_path = dir.join("node.key");
        let key = keys::read(&key_path).map_err(io(&key_path))?;
        let policy = config.policy(&key.verifying_key())?;
        let store = Store::open(&dir.join("db"))?;
        let size = store.size()?;
        let state = rebuild_state(&store, size)?;
        let (height, note) = store.last_block()?.ok_or(NodeError::NoBlocks)?;
        let head = policy.with_need(0).verify(note.as_bytes())?.block;
        if head.height != height || head.size > size || store.root(head.size)? != head.root {
            return Err(NodeError::HeadMismatch {
                height,
                block_size: head.size,
                size,
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            config,
            key,
            policy,
            store,
            inner: Mutex::new(Inner {
                state,
                size,
                head,
                head_note: note,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-written
        // (apply is all-or-nothing), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The node's trust policy (its key, witnesses, cosignatures needed).
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// The node's checkpoint verifier key.
    pub fn vkey(&self) -> String {
        log::node_vkey(&self.config.origin, &self.key.verifying_key())
    }

    /// What `GET /v1/info` says: origin, key, witnesses, cosignatures
    /// needed, size.
    pub fn info(&self) -> crate::wire::NodeInfo {
        crate::wire::NodeInfo {
            origin: self.config.origin.clone(),
            node_vkey: self.vkey(),
            witnesses: self.config.witnesses.clone(),
            need: self.config.need,
            size: self.size(),
        }
    }

    /// Checks and appends one entry; returns once it is on disk.
    ///
    /// # Errors
    /// [`SubmitError`]; nothing is stored.
    pub fn submit(&self, bytes: &[u8], now: i64) -> Result<Receipt, SubmitError> {
        let entry = Entry::parse(bytes)?;
        if !within_skew(entry.time(), now) {
            return Err(SubmitError::Clock {
                time: entry.time(),
                now,
            });
        }
        entry.verify_signature()?;
        let mut inner = self.lock();
        // `apply` changes nothing when it refuses.
        inner.state.apply(&entry)?;
        let index = inner.size;
        if let Err(e) = self.store.append(std::slice::from_ref(&entry), true) {
            // Not acknowledged: put the state back to what is stored.
            if let Ok(state) = rebuild_state(&self.store, index) {
                inner.state = state;
            }
            return Err(e.into());
        }
        inner.size = index + 1;
        Ok(Receipt {
            index,
            leaf_hash: hex::encode(entry.leaf_hash().0),
        })
    }

    /// Checks and appends entries in order as one atomic, flushed write
    /// (group commit). All are stored or none: the first refusal is
    /// returned with its position.
    ///
    /// # Errors
    /// The position and [`SubmitError`] of the first refused entry.
    pub fn submit_batch(
        &self,
        batch: &[&[u8]],
        now: i64,
    ) -> Result<Vec<Receipt>, (usize, SubmitError)> {
        let mut authors = AuthorCache::default();
        let mut entries = Vec::with_capacity(batch.len());
        for (i, bytes) in batch.iter().enumerate() {
            let entry = Entry::parse_with(bytes, &mut authors).map_err(|e| (i, e.into()))?;
            if !within_skew(entry.time(), now) {
                return Err((
                    i,
                    SubmitError::Clock {
                        time: entry.time(),
                        now,
                    },
                ));
            }
            entries.push(entry);
        }
        verify_signatures(&entries).map_err(|(i, e)| (i, e.into()))?;
        let mut inner = self.lock();
        let start = inner.size;
        let mut next = inner.state.clone();
        for (i, e) in entries.iter().enumerate() {
            next.apply(e).map_err(|err| (i, err.into()))?;
        }
        self.store
            .append(&entries, true)
            .map_err(|e| (0, e.into()))?;
        inner.state = next;
        inner.size = start + entries.len() as u64;
        Ok(entries
            .iter()
            .enumerate()
            .map(|(i, e)| Receipt {
                index: start + i as u64,
                leaf_hash: hex::encode(e.leaf_hash().0),
            })
            .collect())
    }

    /// Seals the entries since the last block into a new block, if there are
    /// any; returns the new block's note.
    ///
    /// # Errors
    /// [`NodeError`] when storage fails.
    pub fn seal(&self, now: i64) -> Result<Option<String>, NodeError> {
        let mut inner = self.lock();
        if inner.size == inner.head.size {
            return Ok(None);
        }
        self.seal_locked(&mut inner, now).map(Some)
    }

    /// Seals a block when the last one is `every` seconds old or older at
    /// `now`, even with no new entries: a heartbeat, with the same tree
    /// size and root, a new time, linked to the last block. On a quiet
    /// chain it keeps readers' replicas fresh (their policy bounds the age
    /// of the block they check against) once witnesses cosign it. Entries
    /// waiting are sealed in it too. Returns the new block's note, or
    /// `None` when the last block is younger (a clock behind the last
    /// block's time included: block times never go back).
    ///
    /// # Errors
    /// [`NodeError`] when storage fails.
    pub fn heartbeat(&self, now: i64, every: u64) -> Result<Option<String>, NodeError> {
        let mut inner = self.lock();
        let every = i64::try_from(every).unwrap_or(i64::MAX);
        if now < inner.head.time.saturating_add(every) {
            return Ok(None);
        }
        self.seal_locked(&mut inner, now).map(Some)
    }

    /// Signs and stores the next block over the entries so far.
    fn seal_locked(&self, inner: &mut Inner, now: i64) -> Result<String, NodeError> {
        let block = Block {
            origin: self.config.origin.clone(),
            height: inner.head.height + 1,
            time: now.max(inner.head.time),
            prev: inner.head.hash(),
            size: inner.size,
            root: self.store.root(inner.size)?,
        };
        let note = log::sign_block(&block, &self.key)?;
        // A heartbeat changes no state: no snapshot to write.
        if block.size != inner.head.size {
            self.store.put_state(&inner.state)?;
        }
        self.store.put_block(block.height, &note, true)?;
        inner.head = block;
        inner.head_note = note.clone();
        Ok(note)
    }

    /// The latest block's signed note.
    pub fn checkpoint(&self) -> String {
        self.lock().head_note.clone()
    }

    /// The latest block.
    pub fn head(&self) -> Block {
        self.lock().head.clone()
    }

    /// Block `height`'s signed note.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn block(&self, height: u64) -> Result<Option<String>, StoreError> {
        self.store.block(height)
    }

    /// Adds a witness's cosignature to block `height`. Only cosignatures
    /// that verify under a witness key of the node's configuration are
    /// kept, at most one per witness (the first one wins); every other line
    /// of the posted note is dropped. The stored block is rewritten only
    /// when a witness is added. Returns the witnesses that have now
    /// cosigned it.
    ///
    /// # Errors
    /// [`NodeError::Checkpoint`] when the note is not this block or carries no
    /// valid cosignature from a known witness.
    pub fn add_cosignature(&self, height: u64, note: &str) -> Result<Vec<String>, NodeError> {
        // At least one valid cosignature by a configured witness; lines
        // that do not verify are ignored, never stored. Checked before
        // taking the lock, so bad notes do not hold up submissions.
        self.policy.with_need(1).verify(note.as_bytes())?;
        let mut inner = self.lock();
        let stored = self
            .store
            .block(height)?
            .ok_or(NodeError::NoBlock { height })?;
        let Some(merged) = self.policy.merge_cosignatures(&stored, note)? else {
            // Every witness in the note has cosigned already: nothing to write.
            return Ok(self
                .policy
                .with_need(0)
                .verify(stored.as_bytes())?
                .cosigned_by);
        };
        let signed: SignedBlock = self.policy.with_need(0).verify(merged.as_bytes())?;
        self.store.put_block(height, &merged, true)?;
        if height == inner.head.height {
            inner.head_note = merged;
        }
        Ok(signed.cosigned_by)
    }

    /// Entries `[start, end)`, capped to the log's size.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<sled::IVec>, StoreError> {
        let size = self.lock().size;
        self.store.entries(start, end.min(size))
    }

    /// Entries in the log (sealed or not).
    pub fn size(&self) -> u64 {
        self.lock().size
    }

    /// Inclusion proof of leaf `index` in the tree of `size`.
    ///
    /// # Errors
    /// [`ProofRequestError::NoLeaf`] when the request is out of range.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofRequestError> {
        let log = self.size();
        if index >= size || size > log {
            return Err(ProofRequestError::NoLeaf { index, size, log });
        }
        log::prove_record(size, index, &self.store).map_err(ProofRequestError::Tree)
    }

    /// Consistency proof from the tree of `old` to that of `new`.
    ///
    /// # Errors
    /// [`ProofRequestError::NoRange`] when the request is out of range.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofRequestError> {
        let log = self.size();
        if old == 0 || old > new || new > log {
            return Err(ProofRequestError::NoRange { old, new, log });
        }
        log::prove_tree(new, old, &self.store).map_err(ProofRequestError::Tree)
    }

    /// The index of the entry with this leaf hash.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn index_of(&self, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        self.store.index_of(leaf)
    }

    /// Reads the derived state.
    pub fn with_state<T>(&self, f: impl FnOnce(&ChainState) -> T) -> T {
        f(&self.lock().state)
    }

    /// The store (for the relay and the benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Whether an entry time is within [`CLOCK_SKEW`] of the node's clock.
/// `abs_diff` cannot overflow, so a time near `i64::MIN` or `i64::MAX` is
/// far from any clock, as it should be.
fn within_skew(time: i64, now: i64) -> bool {
    time.abs_diff(now) <= CLOCK_SKEW.unsigned_abs()
}

/// Rebuilds the state after `size` entries: the last snapshot, then the
/// entries after it.
fn rebuild_state(store: &Store, size: u64) -> Result<ChainState, NodeError> {
    let mut state = match store.state()? {
        Some(s) if s.size <= size => s,
        _ => ChainState::new(),
    };
    let mut at = state.size;
    while at < size {
        let end = (at + 4096).min(size);
        for (i, bytes) in store.entries(at, end)?.iter().enumerate() {
            let index = at + i as u64;
            let bad =
                |source: crate::replica::EntryRefused| NodeError::BadStoredEntry { index, source };
            let entry = Entry::parse(bytes).map_err(|e| bad(e.into()))?;
            state.apply(&entry).map_err(|e| bad(e.into()))?;
        }
        at = end;
    }
    Ok(state)
}
