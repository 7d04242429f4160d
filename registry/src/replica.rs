//! A replica: syncs a node's log, verifies every signature, rule, proof and
//! block, and keeps the derived state in its own sled `Db`, so verifiers and
//! wallets answer `accredited` and `status` offline.
//!
//! A sync either moves the replica to a newer checkpoint that its policy
//! accepts, with every entry up to it checked, or changes nothing: entries
//! staged during a failed sync are removed again.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use vouch_core::chain::{
    verify_signatures, Action, AuthorCache, ChainState, Entry, EntryError, RuleError,
};
use vouch_core::log::{self, Block, CheckpointError, Hash, MemoryHashes, SignedBlock, TrustPolicy};
use vouch_core::view::{Anchors, ChainView};

use crate::client::ClientError;
use crate::source::{ChainSource, SourceError};
use crate::store::{AnchorCover, Missing, Store, StoreError};
use crate::wire::{MAX_BLOCKS, MAX_RANGE};

/// How far ahead of the replica's clock a block's time may be, in seconds.
/// The node stamps blocks with its own clock when it seals them, so an
/// honest block is never far ahead; a block dated in the future would let a
/// node vouch now for a state it claims to hold later.
pub const BLOCK_CLOCK_SKEW: i64 = 600;

pub use crate::trust::{Trust, TrustFile};

/// Why a sync or audit failed. A failed sync changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source could not be asked, or refused.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A checkpoint is unsigned, under-cosigned or malformed.
    #[error("checkpoint refused: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The node's log is not an extension of the one this replica verified.
    #[error("FORK: {seen}{}{}", if *.no_longer_served { "; the node no longer serves our entries" } else { "" }, .index.map(|i| format!("; the logs diverge at entry {i}")).unwrap_or_default())]
    Fork {
        /// First entry that differs, when found.
        index: Option<u64>,
        /// What was seen.
        seen: ForkSeen,
        /// The node serves fewer entries than this replica verified.
        no_longer_served: bool,
    },
    /// The node offers an older checkpoint than one already verified.
    #[error("ROLLBACK: the node's checkpoint (block {theirs_height} of {theirs_size} entries) is older than the verified one (block {ours_height} of {ours_size} entries)")]
    Rollback {
        /// Height verified here.
        ours_height: u64,
        /// Entries verified here.
        ours_size: u64,
        /// Height offered.
        theirs_height: u64,
        /// Entries offered.
        theirs_size: u64,
    },
    /// An entry does not parse, verify or follow the rules.
    #[error("entry {index} refused: {source}")]
    BadEntry {
        /// Its index.
        index: u64,
        /// Why.
        #[source]
        source: EntryRefused,
    },
    /// The source served no entries, or more than asked for, for a range
    /// below the block it offered.
    #[error("asked the node for entries {start}..{end}, got {got}")]
    ShortRange {
        /// First entry asked for.
        start: u64,
        /// One past the last.
        end: u64,
        /// Entries received.
        got: u64,
    },
    /// The source did not serve a block below the one it offered.
    #[error("the node did not serve block {height}")]
    MissingBlock {
        /// Its height.
        height: u64,
    },
    /// Checking a range of entries on a blocking thread failed.
    #[error("entry check task: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The entries served do not hash to the signed root.
    #[error("entries 0..{size} do not hash to the root of the signed block {height} (tampered in transit or by the node)")]
    Mismatch {
        /// Tree size checked.
        size: u64,
        /// Block height.
        height: u64,
    },
    /// A stored tree hash is not the hash of the entries (or beyond them).
    #[error("corrupt store: stored tree hash {index} is not the replayed one")]
    StoredHash {
        /// Its stored-hash index.
        index: u64,
    },
    /// The store holds another number of tree hashes than its entries make.
    #[error("corrupt store: {stored} tree hashes stored, {expected} expected")]
    StoredHashCount {
        /// Hashes stored.
        stored: u64,
        /// Hashes the entries make.
        expected: u64,
    },
    /// Nothing verified yet.
    #[error("replica has not synced yet")]
    NotSynced,
    /// A sync was stopped half-way (its future dropped); the next sync
    /// repairs the replica first.
    #[error("a sync of this replica was interrupted; sync again")]
    Interrupted,
    /// The state and the head block disagree (cannot happen after a
    /// successful open or sync; a guard for [`Replica::view`]).
    #[error("cannot make a chain view: {0}")]
    View(#[from] vouch_core::view::ViewError),
    /// Anchor records could not be made or read back.
    #[error("anchor records: {0}")]
    Anchors(#[from] vouch_core::view::AnchorsError),
    /// A status read the chain's state refuses: the list does not belong to
    /// the credential's issuer ([`RuleError::ListIssuer`]), its token has
    /// expired ([`RuleError::TokenExpired`]), or the index is beyond the
    /// list ([`RuleError::Token`]). Nothing is wrong with the replica.
    #[error("status of index {idx} of {list} refused: {source}")]
    StatusRead {
        /// The list URI read.
        list: String,
        /// The index read.
        idx: u64,
        /// Why the state refused it.
        #[source]
        source: RuleError,
    },
    /// A block that verifies but whose time this replica refuses (or the
    /// caller's own check does: a witness refusing a block time).
    #[error("block {height} refused: {reason}")]
    BadBlock {
        /// Its height.
        height: u64,
        /// Why.
        #[source]
        reason: BlockRefusal,
    },
}

/// Why a block that verifies is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockRefusal {
    /// It is dated more than [`BLOCK_CLOCK_SKEW`] ahead of the reader's
    /// clock.
    #[error(
        "its time {time} is more than {BLOCK_CLOCK_SKEW} s ahead of this replica's clock ({now})"
    )]
    FromTheFuture {
        /// The block's time.
        time: i64,
        /// The reader's clock.
        now: i64,
    },
    /// It is dated before a block already seen.
    #[error("its time {time} goes back before block {seen_height} ({seen_time})")]
    TimeGoesBack {
        /// The block's time.
        time: i64,
        /// The height of the block seen.
        seen_height: u64,
        /// Its time.
        seen_time: i64,
    },
}

impl From<ClientError> for ReplicaError {
    fn from(e: ClientError) -> Self {
        ReplicaError::Source(e.into())
    }
}

/// What showed that a node's log is not the one a replica verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForkSeen {
    /// Another block at a height already verified.
    #[error("two different blocks at the same height ({height})")]
    SameHeight {
        /// The height.
        height: u64,
    },
    /// A newer block whose tree does not extend the verified one.
    #[error("the node's block {height} does not extend our verified tree of {size} entries")]
    NotExtending {
        /// The newer block's height.
        height: u64,
        /// Entries verified here.
        size: u64,
    },
    /// A block that does not link to the one before it.
    #[error("block {height} does not follow the block before it")]
    BrokenLink {
        /// Its height.
        height: u64,
    },
}

/// Why an entry was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryRefused {
    /// It does not parse, or its signature does not verify.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// It breaks a chain rule.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The thread checking its signature panicked.
    #[error("signature check panicked")]
    Panicked,
}

/// A value and the chain position it is valid as of.
#[derive(Debug, Clone, PartialEq)]
pub struct AsOf<T> {
    /// The answer.
    pub value: T,
    /// Block height.
    pub height: u64,
    /// Block time (Unix seconds).
    pub time: i64,
    /// Entries covered.
    pub size: u64,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    /// Size before.
    pub from: u64,
    /// Size after.
    pub to: u64,
    /// Height of the block now verified.
    pub height: u64,
    /// Witnesses that cosigned it.
    pub cosigned_by: Vec<String>,
    /// Where the time went.
    pub timings: Timings,
}

/// Time spent in each phase of a sync. The phases overlap: chunks of
/// entries are parsed and have their signatures checked while the chunk
/// before them has the rules applied and is written, and the next range
/// downloads, so their sum exceeds the sync's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Waiting for the node's entries with nothing else to do.
    pub fetch: std::time::Duration,
    /// Parsing entries and verifying their signatures: the wall-clock
    /// time while at least one chunk was being checked (on all cores).
    pub verify: std::time::Duration,
    /// Applying the rules.
    pub apply: std::time::Duration,
    /// Writing to the store and computing tree hashes.
    pub store: std::time::Duration,
}

/// The sled tree of anchor entries of replicas before anchor records
/// (log index → sealing block height), removed when such a replica opens.
const OLD_ANCHORS_TREE: &str = "anchors";
/// Its meta key (entries below it were indexed).
const OLD_ANCHORS_SCANNED: &str = "anchors-scanned";

/// A replica's latest [`ChainView`], readable from any thread (a verifier
/// service's requests) while the replica syncs. Each successful sync swaps
/// in a new snapshot; a reader keeps the snapshot it took, whole and
/// unchanged, for as long as it holds it. Cloning shares the same slot.
#[derive(Debug, Clone, Default)]
pub struct SharedView {
    current: Arc<RwLock<Option<Arc<ChainView>>>>,
}

impl SharedView {
    /// The latest view, or `None` before the replica's first sync.
    pub fn current(&self) -> Option<Arc<ChainView>> {
        // A writer only ever swaps an `Arc`: a poisoned lock still holds a
        // whole value.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, view: ChainView) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(view));
    }
}

/// A replica.
pub struct Replica {
    store: Store,
    policy: TrustPolicy,
    state: ChainState,
    size: u64,
    head: Option<SignedBlock>,
    /// The anchor records up to the head, with the blocks that sealed them.
    anchors: Anchors,
    timings: Timings,
    /// Where each successful sync publishes its view, once asked for.
    shared: Option<SharedView>,
    /// A sync was stopped half-way (its future dropped): the state and the
    /// store may hold staged entries beyond the head until the next sync
    /// puts them back.
    interrupted: bool,
    /// The chunk being applied and staged on a blocking thread, while it
    /// runs.
    checking: Option<tokio::task::JoinHandle<Checked>>,
}

/// What applying and staging a chunk on a blocking thread gives back: the
/// state (moved there and back), the anchor records with the chunk's and
/// the size staged up to, or the refusal; the time spent.
type Checked = (ChainState, Result<(Anchors, u64), ReplicaError>, Timings);

/// What parsing and verifying a chunk on a blocking thread gives back: the
/// entries and leaf hashes, or the refusal at a position in the chunk.
type Parsing = Result<Parsed, (usize, EntryRefused)>;

/// Entries per verifying task of a sync (and per staged append: 16 tiles).
/// Pippenger's cost per signature in the batch equation falls as the
/// batch grows, by about a third from 512 to 4,096 and little beyond, and
/// a few tasks of this size at once keep every core busy.
const VERIFY_CHUNK: usize = 4096;

/// Most bytes of entry lines a verifying task takes (a chunk is cut
/// shorter than [`VERIFY_CHUNK`] entries when its lines reach this).
const CHUNK_BYTES: usize = 16 << 20;

/// Most bytes of lines received and not yet handed to a task before the
/// next download waits: a node that serves entries of up to
/// `MAX_ENTRY_BYTES` each cannot make a replica hold `MAX_RANGE` of them.
/// What a sync holds at once is then at most this, one download
/// (`MAX_ENTRIES_CALL`), and a chunk per task and per staged result.
const WAITING_BYTES: usize = 64 << 20;

impl Replica {
    /// Opens (creating) a replica whose data lives in `dir`.
    ///
    /// # Errors
    /// [`ReplicaError`] when storage fails or the stored head no longer
    /// verifies under `policy`.
    pub fn open(dir: &Path, policy: TrustPolicy) -> Result<Self, ReplicaError> {
        let store = Store::open(dir)?.without_leaf_index();
        let head = match store.meta("head")? {
            Some(note) => Some(policy.with_need(0).verify(&note)?),
            None => None,
        };
        let size = head.as_ref().map_or(0, |h| h.block.size);
        // Entries beyond the verified head are from a sync that did not finish.
        store.truncate(size)?;
        let mut state = store.state()?.unwrap_or_default();
        if state.size != size {
            // A crash between two separate writes (older versions saved the
            // state and the head apart) leaves a snapshot that does not
            // match the head: rebuild it from the verified entries.
            tracing::warn!(
                "state snapshot covers {} entries, verified head {size}: rebuilding it",
                state.size
            );
            state = replay(&store, size)?;
            if let Some(head) = &head {
                if store.root(size)? != head.block.root {
                    return Err(ReplicaError::Mismatch {
                        size,
                        height: head.block.height,
                    });
                }
            }
            store.put_state(&state)?;
            store.flush()?;
        }
        let anchors = load_anchors(&store, dir, head.as_ref())?;
        Ok(Self {
            store,
            policy,
            state,
            size,
            head,
            anchors,
            timings: Timings::default(),
            shared: None,
            interrupted: false,
            checking: None,
        })
    }

    /// A handle on this replica's latest view, for readers on other threads
    /// while it syncs; it holds the current view now (when the replica has
    /// synced) and each later successful sync replaces it.
    ///
    /// # Errors
    /// [`ReplicaError::View`] when the current view cannot be made (see
    /// [`Replica::view`]).
    pub fn shared_view(&mut self) -> Result<SharedView, ReplicaError> {
        if let Some(shared) = &self.shared {
            return Ok(shared.clone());
        }
        let shared = SharedView::default();
        if self.head.is_some() {
            shared.replace(self.view()?);
        }
        self.shared = Some(shared.clone());
        Ok(shared)
    }

    /// Replaces the shared view (if any) with the view of the new head.
    fn publish(&self) {
        if let Some(shared) = &self.shared {
            match self.view() {
                Ok(view) => shared.replace(view),
                // The state and head were saved together, so this is a bug;
                // readers keep the previous view.
                Err(e) => tracing::error!("cannot publish the replica's new view: {e}"),
            }
        }
    }

    /// The latest verified block.
    pub fn head(&self) -> Option<&SignedBlock> {
        self.head.as_ref()
    }

    /// The derived state as of [`Replica::head`].
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// What this replica knows as of its head, for
    /// [`vouch_core::verify::verify`]: the state, and every anchor entry
    /// with the block that first sealed it (so an anchor proof can bound
    /// when a credential was issued). Status lists are decoded in the view,
    /// each at its first lookup.
    ///
    /// # Errors
    /// [`ReplicaError::NotSynced`] before the first sync,
    /// [`ReplicaError::Interrupted`] after a sync whose future was dropped
    /// (until the next sync).
    pub fn view(&self) -> Result<ChainView, ReplicaError> {
        if self.interrupted {
            return Err(ReplicaError::Interrupted);
        }
        let head = self.head.clone().ok_or(ReplicaError::NotSynced)?;
        Ok(ChainView::new(&self.state, head)?.with_anchors(self.anchors.clone())?)
    }

    /// The local store (for proofs and audits).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn as_of<T>(&self, value: T) -> Result<AsOf<T>, ReplicaError> {
        if self.interrupted {
            return Err(ReplicaError::Interrupted);
        }
        let head = self.head.as_ref().ok_or(ReplicaError::NotSynced)?;
        Ok(AsOf {
            value,
            height: head.block.height,
            time: head.block.time,
            size: head.block.size,
        })
    }

    /// Whether `issuer` was accredited for `kind` at `at`, as of the head.
    ///
    /// # Errors
    /// [`ReplicaError::NotSynced`].
    pub fn accredited(
        &self,
        issuer: &str,
        kind: &str,
        at: i64,
    ) -> Result<AsOf<bool>, ReplicaError> {
        self.as_of(self.state.accredited(issuer, kind, at))
    }

    /// Status of index `idx` of list `uri` for a credential issued by `iss`,
    /// read at `now` (`None`: no token published).
    ///
    /// # Errors
    /// [`ReplicaError::NotSynced`], or [`ReplicaError::StatusRead`] for an
    /// index beyond the list, a list `iss` does not own, or an expired token.
    pub fn status(
        &self,
        iss: &str,
        uri: &str,
        idx: u64,
        now: i64,
    ) -> Result<AsOf<Option<u8>>, ReplicaError> {
        let value = self.state.status_of(iss, uri, idx, now).map_err(|source| {
            ReplicaError::StatusRead {
                list: uri.to_owned(),
                idx,
                source,
            }
        })?;
        self.as_of(value)
    }

    /// The newest block the source has that this policy accepts.
    async fn target(&self, source: &impl ChainSource) -> Result<SignedBlock, ReplicaError> {
        let note = source.checkpoint().await?;
        match self.policy.verify(note.as_bytes()) {
            Ok(b) => Ok(b),
            Err(CheckpointError::Cosignatures { got, need }) => {
                // The newest block may not be cosigned yet: look back a little.
                let latest = self
                    .policy
                    .with_need(0)
                    .verify(note.as_bytes())?
                    .block
                    .height;
                let floor = self.head.as_ref().map_or(0, |h| h.block.height);
                for height in (floor..latest).rev().take(64) {
                    let note = source.block(height).await?;
                    if let Ok(b) = self.policy.verify(note.as_bytes()) {
                        return Ok(b);
                    }
                }
                Err(CheckpointError::Cosignatures { got, need }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Syncs from `source` (a [`crate::client::NodeClient`], an in-process
    /// [`crate::node::Node`]) to the newest block the policy accepts,
    /// checking everything, with the system clock as the replica's clock
    /// (see [`Replica::sync_at`]).
    ///
    /// # Errors
    /// [`ReplicaError`]; the replica is unchanged.
    pub async fn sync(&mut self, source: &impl ChainSource) -> Result<SyncReport, ReplicaError> {
        self.sync_at(source, crate::now()).await
    }

    /// Syncs to the newest block the policy accepts, checking everything,
    /// with the replica's clock reading `now` (Unix seconds): a block dated
    /// more than [`BLOCK_CLOCK_SKEW`] after `now` is refused.
    ///
    /// # Errors
    /// [`ReplicaError`] ([`ReplicaError::BadBlock`] for a block from the
    /// future); the replica is unchanged.
    pub async fn sync_at(
        &mut self,
        source: &impl ChainSource,
        now: i64,
    ) -> Result<SyncReport, ReplicaError> {
        self.sync_checked(source, now, |_, _| Ok(())).await
    }

    /// Syncs like [`Replica::sync_at`], but first lets `check` refuse the
    /// block the replica would move to (given the current head, if any),
    /// before anything is fetched or stored.
    ///
    /// # Errors
    /// [`ReplicaError`], including what `check` returns; the replica is
    /// unchanged.
    pub async fn sync_checked(
        &mut self,
        source: &impl ChainSource,
        now: i64,
        check: impl FnOnce(Option<&Block>, &Block) -> Result<(), ReplicaError>,
    ) -> Result<SyncReport, ReplicaError> {
        if self.interrupted {
            // A dropped sync's range check may still be writing: let it end.
            if let Some(task) = self.checking.take() {
                let _ = task.await;
            }
            self.rollback()?;
        }
        let target = self.target(source).await?;
        check(self.head.as_ref().map(|h| &h.block), &target.block)?;
        // The blocks before the target are no later than it (`check_link`),
        // so checking the target's time covers them all.
        if target.block.time > now.saturating_add(BLOCK_CLOCK_SKEW) {
            return Err(ReplicaError::BadBlock {
                height: target.block.height,
                reason: BlockRefusal::FromTheFuture {
                    time: target.block.time,
                    now,
                },
            });
        }
        let from = self.size;
        self.timings = Timings::default();
        self.interrupted = true;
        let advanced = self.advance(source, &target).await;
        match advanced {
            Ok(()) => {
                self.interrupted = false;
                self.publish();
                Ok(SyncReport {
                    from,
                    to: self.size,
                    height: target.block.height,
                    cosigned_by: target.cosigned_by,
                    timings: self.timings,
                })
            }
            Err(e) => {
                self.rollback()?;
                Err(e)
            }
        }
    }

    fn rollback(&mut self) -> Result<(), ReplicaError> {
        self.store.truncate(self.size)?;
        self.state = self.store.state()?.unwrap_or_default();
        self.interrupted = false;
        Ok(())
    }

    async fn advance(
        &mut self,
        source: &impl ChainSource,
        target: &SignedBlock,
    ) -> Result<(), ReplicaError> {
        let want = &target.block;
        if let Some(head) = &self.head {
            if want.height < head.block.height || want.size < head.block.size {
                return Err(ReplicaError::Rollback {
                    ours_height: head.block.height,
                    ours_size: head.block.size,
                    theirs_height: want.height,
                    theirs_size: want.size,
                });
            }
            if want.height == head.block.height {
                if want.hash() != head.block.hash() {
                    let seen = ForkSeen::SameHeight {
                        height: want.height,
                    };
                    return Err(self.fork(source, seen).await);
                }
                let count = self.anchors.len() as u64;
                self.save_head(target, &[(want.height, &target.note)], &[], count)?;
                return Ok(());
            }
            // Cheap early check: the node must prove its new tree extends ours.
            let ours = self.store.root(self.size)?;
            let proof = source.consistency(self.size, want.size).await;
            let consistent = match proof {
                Ok(p) => log::verify_consistency(&p, self.size, ours, want.size, want.root).is_ok(),
                Err(e) if e.is_refusal() => false,
                Err(e) => return Err(e.into()),
            };
            if !consistent {
                let seen = ForkSeen::NotExtending {
                    height: want.height,
                    size: self.size,
                };
                return Err(self.fork(source, seen).await);
            }
        }
        // The blocks in between, each signed by the node and chained.
        let mut blocks = Vec::new();
        let (mut prev, first) = match &self.head {
            Some(h) => (Some(h.block.clone()), h.block.height + 1),
            None => (None, 0),
        };
        let mut notes = Vec::new();
        let mut fetched: std::collections::VecDeque<String> = Default::default();
        for height in first..=want.height {
            let (block, note) = if height == want.height {
                (want.clone(), target.note.clone())
            } else {
                if fetched.is_empty() {
                    let end = (height + MAX_BLOCKS).min(want.height);
                    fetched.extend(source.blocks(height, end).await?);
                }
                let note = fetched
                    .pop_front()
                    .ok_or(ReplicaError::MissingBlock { height })?;
                (
                    self.policy.with_need(0).verify(note.as_bytes())?.block,
                    note,
                )
            };
            check_link(prev.as_ref(), &block)?;
            prev = Some(block.clone());
            blocks.push(block);
            notes.push(note);
        }
        // The entries, in a pipeline that keeps every core busy: ranges
        // download one ahead of what is being checked; each chunk of
        // `VERIFY_CHUNK` entries is parsed, hashed and has its signatures
        // batch-verified as a blocking task of its own, one more at a time
        // than there are cores (so a core whose chunk ends, or that waits
        // for the node, always finds another); verified chunks have the
        // rules applied and are staged in the store in order, on one
        // blocking thread, while later ones verify. A node may serve fewer
        // entries than asked for (its byte cap per reply, the client's per
        // call): the next range then starts after the last entry received.
        // Errors come in entry order: a chunk's refusal is reported once
        // the chunks before it are staged (their own refusal first), a
        // failed download once everything before it is.
        let sealing: Arc<[Block]> = blocks.clone().into();
        // The anchor records after this sync: the current ones shared,
        // the new ones recorded as their chunks are staged.
        let mut anchors = Some(self.anchors.clone());
        let slots = std::thread::available_parallelism().map_or(1, usize::from) + 1;
        let fetch =
            |start: u64, end: u64| async move { (start, end, source.entries(start, end).await) };
        let mut fetching = None;
        let mut next_fetch = (self.size < want.size).then_some(self.size);
        let mut fetch_failed: Option<ReplicaError> = None;
        // Lines received, not yet handed to a verifying task: from `waiting_at`.
        let mut waiting: Vec<Vec<u8>> = Vec::new();
        let mut waiting_bytes = 0usize;
        let mut waiting_at = self.size;
        let mut verifying: VecDeque<(u64, tokio::task::JoinHandle<Parsing>)> = VecDeque::new();
        let mut verifying_since: Option<std::time::Instant> = None;
        let mut ready: VecDeque<Result<Verified, ReplicaError>> = VecDeque::new();
        let mut staged_to = self.size;
        let mut next_block = 0;
        loop {
            // After a refusal nothing more is checked; after a failed
            // download what was received still is (its refusals first).
            let refused = ready.iter().any(Result::is_err);
            let stopped = refused || fetch_failed.is_some();
            if fetching.is_none()
                && !stopped
                && waiting.len() < MAX_RANGE as usize
                && waiting_bytes < WAITING_BYTES
            {
                if let Some(at) = next_fetch.take() {
                    let end = at.saturating_add(MAX_RANGE).min(want.size);
                    fetching = Some(Box::pin(fetch(at, end)));
                }
            }
            let all_received = fetching.is_none() && (next_fetch.is_none() || stopped);
            while !refused && verifying.len() < slots && ready.len() < 2 && !waiting.is_empty() {
                // Chunks end at multiples of `VERIFY_CHUNK`: each staged
                // append fills whole tiles.
                // Large lines cut a chunk short at `CHUNK_BYTES` (then
                // it fills no whole tiles: correct, only slower).
                let aligned = VERIFY_CHUNK - (waiting_at % VERIFY_CHUNK as u64) as usize;
                let mut bytes = 0;
                let by_bytes = waiting.iter().take(aligned).position(|line| {
                    bytes += line.len();
                    bytes >= CHUNK_BYTES
                });
                let n = if let Some(last) = by_bytes {
                    last + 1
                } else if waiting.len() >= aligned {
                    aligned
                } else if all_received {
                    waiting.len()
                } else {
                    break;
                };
                let rest = waiting.split_off(n);
                waiting_bytes -= waiting.iter().map(Vec::len).sum::<usize>();
                let chunk = std::mem::replace(&mut waiting, rest);
                if verifying.is_empty() {
                    verifying_since = Some(std::time::Instant::now());
                }
                verifying.push_back((waiting_at, verify_chunk(chunk)));
                waiting_at += n as u64;
            }
            if self.checking.is_none() {
                match ready.pop_front() {
                    Some(Ok(verified)) => {
                        let recorded = anchors.take().unwrap_or_default();
                        self.start_stage(verified, recorded, sealing.clone());
                    }
                    // Everything before it is staged.
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
            }
            let only_fetching = verifying.is_empty() && self.checking.is_none();
            if only_fetching && fetching.is_none() {
                if let Some(e) = fetch_failed.take() {
                    return Err(e);
                }
                // Nothing runs and nothing is left to start: done.
                break;
            }
            let t = std::time::Instant::now();
            tokio::select! {
                Some((start, end, got)) = maybe(fetching.as_mut()), if fetching.is_some() => {
                    fetching = None;
                    match got {
                        Err(e) => fetch_failed = Some(e.into()),
                        Ok(lines) => {
                            let got = lines.len() as u64;
                            if got == 0 || got > end - start {
                                fetch_failed = Some(ReplicaError::ShortRange { start, end, got });
                            } else {
                                if start + got < want.size {
                                    next_fetch = Some(start + got);
                                }
                                waiting_bytes += lines.iter().map(Vec::len).sum::<usize>();
                                if waiting.is_empty() {
                                    waiting = lines;
                                } else {
                                    waiting.extend(lines);
                                }
                            }
                        }
                    }
                }
                Some(joined) = maybe(verifying.front_mut().map(|(_, task)| task)), if !verifying.is_empty() => {
                    let start = verifying.pop_front().map_or(0, |(start, _)| start);
                    if verifying.is_empty() {
                        if let Some(since) = verifying_since.take() {
                            self.timings.verify += since.elapsed();
                        }
                    }
                    ready.push_back(match joined {
                        Err(e) => Err(ReplicaError::Task(e)),
                        Ok(Err((i, source))) => Err(ReplicaError::BadEntry {
                            index: start + i as u64,
                            source,
                        }),
                        Ok(Ok(Parsed { entries, leaves })) => Ok(Verified {
                            start,
                            entries,
                            leaves,
                        }),
                    });
                }
                Some(joined) = maybe(self.checking.as_mut()), if self.checking.is_some() => {
                    let (recorded, end) = self.finish_stage(joined)?;
                    anchors = Some(recorded);
                    staged_to = end;
                    while let Some(b) = blocks.get(next_block).filter(|b| b.size <= staged_to) {
                        self.check_root(b)?;
                        next_block += 1;
                    }
                }
            }
            if only_fetching {
                // Waiting for the node with nothing else to do.
                self.timings.fetch += t.elapsed();
            }
        }
        if staged_to != want.size {
            // Every range was received and staged: cannot happen.
            return Err(ReplicaError::ShortRange {
                start: staged_to,
                end: want.size,
                got: 0,
            });
        }
        for b in &blocks[next_block..] {
            self.check_root(b)?;
        }
        let anchors = anchors.unwrap_or_else(|| self.anchors.clone());
        let chunks = anchors.encoded_from(self.size);
        let blocks: Vec<(u64, &str)> = blocks
            .iter()
            .zip(&notes)
            .map(|(b, note)| (b.height, note.as_str()))
            .collect();
        self.save_head(target, &blocks, &chunks, anchors.len() as u64)?;
        self.size = want.size;
        self.anchors = anchors;
        Ok(())
    }

    /// Checks that the stored tree at the block's size has the block's root.
    fn check_root(&self, block: &Block) -> Result<(), ReplicaError> {
        if self.store.root(block.size)? == block.root {
            Ok(())
        } else {
            Err(ReplicaError::Mismatch {
                size: block.size,
                height: block.height,
            })
        }
    }

    /// Starts applying the rules to `verified` entries on a blocking
    /// thread (the state moves there and back), staging them in the store
    /// (not yet counted as verified) and recording the anchors among them
    /// in `anchors`, each with the first of `sealing` (the blocks of this
    /// sync) that seals it. The task is kept in `self` until
    /// [`Replica::finish_stage`] takes its result, so that a sync dropped
    /// meanwhile can wait for it before putting the store back.
    fn start_stage(&mut self, verified: Verified, mut anchors: Anchors, sealing: Arc<[Block]>) {
        let mut state = std::mem::take(&mut self.state);
        let store = self.store.clone();
        let end = verified.start + verified.entries.len() as u64;
        self.checking = Some(tokio::task::spawn_blocking(move || {
            let mut timings = Timings::default();
            let result = apply_and_stage(
                &mut state,
                &mut anchors,
                &sealing,
                &store,
                &verified,
                &mut timings,
            )
            .map(|()| (anchors, end));
            (state, result, timings)
        }));
    }

    /// Takes the result of the staging task [`Replica::start_stage`]
    /// started (`joined`): the state back, and the anchor records with the
    /// chunk's and the size staged up to, or the refusal.
    fn finish_stage(
        &mut self,
        joined: Result<Checked, tokio::task::JoinError>,
    ) -> Result<(Anchors, u64), ReplicaError> {
        self.checking = None;
        let (state, result, timings) = joined.map_err(ReplicaError::Task)?;
        // On a panic the state stays empty; the failed sync's rollback
        // reads it back from the store.
        self.state = state;
        self.timings.apply += timings.apply;
        self.timings.store += timings.store;
        result
    }

    /// Makes `head` the verified head: its state, its note, the notes of
    /// `blocks` and the anchor record chunks that changed (of `anchors`
    /// records in all) land in one
    /// atomic, flushed write, so a crash leaves the replica at the old head
    /// or the new one, never between.
    fn save_head(
        &mut self,
        head: &SignedBlock,
        blocks: &[(u64, &str)],
        anchor_chunks: &[(u64, Vec<u8>)],
        anchors: u64,
    ) -> Result<(), ReplicaError> {
        self.store.put_head(
            &self.state,
            head.note.as_bytes(),
            blocks,
            anchor_chunks,
            anchors,
        )?;
        self.head = Some(head.clone());
        Ok(())
    }

    /// Builds a fork error, locating the first entry where the node's log
    /// and ours differ.
    async fn fork(&self, source: &impl ChainSource, seen: ForkSeen) -> ReplicaError {
        tracing::error!("fork detected: {seen}");
        let mut at = 0;
        while at < self.size {
            let end = (at + MAX_RANGE).min(self.size);
            let Ok(theirs) = source.entries(at, end).await else {
                break;
            };
            let Ok(ours) = self.store.entries(at, end) else {
                break;
            };
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                if a.as_ref() != b.as_slice() {
                    return ReplicaError::Fork {
                        index: Some(at + i as u64),
                        seen,
                        no_longer_served: false,
                    };
                }
            }
            if theirs.len() < ours.len() {
                return ReplicaError::Fork {
                    index: Some(at + theirs.len() as u64),
                    seen,
                    no_longer_served: true,
                };
            }
            at = end;
        }
        ReplicaError::Fork {
            index: None,
            seen,
            no_longer_served: false,
        }
    }
}

/// A chunk of entries parsed, hashed and with their signatures verified,
/// not yet applied.
struct Verified {
    /// The index of the first.
    start: u64,
    entries: Vec<Entry>,
    /// Their leaf hashes.
    leaves: Vec<Hash>,
}

/// Runs `f` when there is one.
async fn maybe<T>(f: Option<impl std::future::Future<Output = T>>) -> Option<T> {
    match f {
        Some(f) => Some(f.await),
        None => None,
    }
}

/// Starts parsing the entries of `lines`, hashing their leaves and
/// batch-verifying their signatures on a blocking thread.
fn verify_chunk(lines: Vec<Vec<u8>>) -> tokio::task::JoinHandle<Parsing> {
    tokio::task::spawn_blocking(move || parse_and_verify_part(lines))
}

/// Applies `verified` entries to `state`; stages them in `store`; records
/// the anchor entries among them in `anchors`, each with the first of
/// `sealing` whose tree holds it.
fn apply_and_stage(
    state: &mut ChainState,
    anchors: &mut Anchors,
    sealing: &[Block],
    store: &Store,
    verified: &Verified,
    timings: &mut Timings,
) -> Result<(), ReplicaError> {
    let start = verified.start;
    let entries = &verified.entries;
    let t = std::time::Instant::now();
    for (i, e) in entries.iter().enumerate() {
        state.apply(e).map_err(|err| ReplicaError::BadEntry {
            index: start + i as u64,
            source: err.into(),
        })?;
    }
    for (index, e) in (start..).zip(entries) {
        if !matches!(e.action(), Action::Anchor { .. }) {
            continue;
        }
        let at = sealing.partition_point(|b| b.size <= index);
        let block = sealing
            .get(at)
            .ok_or(StoreError::Missing(Missing::SealingBlock(index)))?;
        anchors.push(index, e, block)?;
    }
    timings.apply += t.elapsed();
    let t = std::time::Instant::now();
    store.append_hashed(entries, &verified.leaves, false)?;
    timings.store += t.elapsed();
    Ok(())
}

/// Checks that `block` follows `prev` (or is a genesis block).
fn check_link(prev: Option<&Block>, block: &Block) -> Result<(), ReplicaError> {
    let ok = match prev {
        None => block.height == 0 && block.prev == Hash([0; 32]),
        Some(p) => {
            block.height == p.height + 1
                && block.prev == p.hash()
                && block.size >= p.size
                && block.time >= p.time
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ReplicaError::Fork {
            index: None,
            seen: ForkSeen::BrokenLink {
                height: block.height,
            },
            no_longer_served: false,
        })
    }
}

/// Runs `work` on each of `parts` on a thread of its own (given the
/// part's number) and gives their results in order, or the first failure
/// in part order: a part's error, or `panicked(n)` for part `n` whose
/// thread panicked. Every thread is joined before anything is returned,
/// so a panic in one part beside an error in another is that error or
/// the panic's, never a second panic of the thread scope.
fn on_threads<P: Send, T: Send, E: Send>(
    parts: Vec<P>,
    panicked: impl Fn(usize) -> E,
    work: impl Fn(usize, P) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let work = &work;
    let joined: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(n, part)| scope.spawn(move || work(n, part)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    joined
        .into_iter()
        .enumerate()
        .map(|(n, result)| result.unwrap_or_else(|_| Err(panicked(n))))
        .collect()
}

/// Runs `work` over `lines` split into one part per core (each at least
/// `min` long, so small inputs stay on one thread), giving each part its
/// offset in `lines`, and joins the results in order. A part whose thread
/// panicked gives `panicked`.
fn on_all_cores<B: Sync, T: Send, E: Send>(
    lines: &[B],
    min: usize,
    panicked: impl Fn() -> E,
    work: impl Fn(usize, &[B]) -> Result<Vec<T>, E> + Sync,
) -> Result<Vec<T>, E> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = lines.len().div_ceil(threads).max(min).max(1);
    let parts = on_threads(
        lines.chunks(per).collect(),
        |_| panicked(),
        |n, part| work(n * per, part),
    )?;
    let mut all = Vec::with_capacity(lines.len());
    for part in parts {
        all.extend(part);
    }
    Ok(all)
}

/// Entries parsed, with their leaf hashes, in order.
#[derive(Default)]
struct Parsed {
    entries: Vec<Entry>,
    leaves: Vec<Hash>,
}

/// Signatures per multiscalar equation: Pippenger's cost per point falls
/// as the batch grows (its bucket sums are shared by more points): about
/// a third less from 512 to 4,096, and a few per cent more to 8,192. A
/// part is split into equal batches of at most `MAX_BATCH` (not one full
/// batch and a short rest); a bad signature then costs up to a batch of
/// single checks to find.
const MAX_BATCH: usize = 8192;

/// Parses entries (keeping each line as its entry's bytes), computes their
/// leaf hashes and batch-verifies their signatures, on this thread. Errors
/// carry the position in `lines`.
fn parse_and_verify_part(lines: Vec<Vec<u8>>) -> Result<Parsed, (usize, EntryRefused)> {
    let mut authors = AuthorCache::default();
    let mut parsed = Parsed {
        entries: Vec::with_capacity(lines.len()),
        leaves: Vec::with_capacity(lines.len()),
    };
    for (i, line) in lines.into_iter().enumerate() {
        parsed.leaves.push(log::record_hash(&line));
        parsed
            .entries
            .push(Entry::parse_owned(line, &mut authors).map_err(|e| (i, e.into()))?);
    }
    let out = &parsed.entries;
    let batch = out
        .len()
        .div_ceil(out.len().div_ceil(MAX_BATCH).max(1))
        .max(1);
    for (c, chunk) in out.chunks(batch).enumerate() {
        verify_signatures(chunk).map_err(|(i, e)| (c * batch + i, e.into()))?;
    }
    Ok(parsed)
}

/// [`parse_and_verify_part`] on all cores, in parts. Errors carry the
/// position in `lines`.
fn parse_and_verify(lines: Vec<Vec<u8>>) -> Result<Parsed, (usize, EntryRefused)> {
    // Below this many entries a part stays on one core.
    const MIN_PART: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = lines.len().div_ceil(threads).max(MIN_PART).max(1);
    // The parts, moved to their threads: split from the end.
    let mut parts = Vec::with_capacity(threads);
    let mut rest = lines;
    while rest.len() > per {
        let at = (rest.len() - 1) / per * per;
        parts.push(rest.split_off(at));
    }
    parts.push(rest);
    parts.reverse();
    let parts = on_threads(
        parts,
        |n| (n * per, EntryRefused::Panicked),
        |n, part| parse_and_verify_part(part).map_err(|(i, e)| (n * per + i, e)),
    )?;
    // The first part's vectors take the others' entries.
    let mut all: Option<Parsed> = None;
    for part in parts {
        match all.as_mut() {
            None => all = Some(part),
            Some(all) => {
                all.entries.extend(part.entries);
                all.leaves.extend(part.leaves);
            }
        }
    }
    Ok(all.unwrap_or_default())
}

/// A stored block (its note was verified before it was stored).
fn stored_block(store: &Store, height: u64) -> Result<Block, ReplicaError> {
    let note = store
        .block(height)?
        .ok_or(StoreError::Missing(Missing::Block(height)))?;
    Ok(Block::from_note_unverified(note.as_bytes())?)
}

/// The first block up to `head` whose tree holds entry `index` (which is
/// below the head's size), by binary search over the stored blocks.
fn sealing_block(store: &Store, head: &Block, index: u64) -> Result<Block, ReplicaError> {
    // Invariant: block `hi` seals the entry; blocks below `lo` do not.
    let (mut lo, mut hi) = (0, head.height);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if stored_block(store, mid)?.size > index {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if hi == head.height {
        Ok(head.clone())
    } else {
        stored_block(store, hi)
    }
}

/// The anchor records up to `head`, from the store's anchor chunks. A
/// store without them (written before anchor records) or whose chunks do
/// not decode, do not cover the head's entries exactly or do not fit its
/// block (damaged) gets them rebuilt from its entries and blocks, logged,
/// and stored for the next open.
fn load_anchors(
    store: &Store,
    dir: &Path,
    head: Option<&SignedBlock>,
) -> Result<Anchors, ReplicaError> {
    let Some(head) = head.map(|h| &h.block) else {
        return Ok(Anchors::default());
    };
    let size = head.size;
    let cover = match store.anchor_cover() {
        Ok(cover) => cover,
        Err(e @ StoreError::Malformed { .. }) => {
            tracing::warn!("{}: {e}: rebuilding the anchor records", dir.display());
            None
        }
        Err(e) => return Err(e.into()),
    };
    match cover {
        Some(cover) if cover.size == size => {
            let chunks = store.anchor_chunks()?;
            let decoded = Anchors::decode(chunks.iter().map(|(k, v)| (*k, v.as_ref())));
            match decoded {
                Ok(anchors) if anchors.len() as u64 != cover.count => tracing::warn!(
                    "{}: {} anchor records stored, {} expected (damaged): rebuilding them from the entries",
                    dir.display(),
                    anchors.len(),
                    cover.count
                ),
                Ok(anchors) => match anchors.first_outside(head) {
                    None => return Ok(anchors),
                    Some(index) => tracing::warn!(
                        "{}: the stored anchor record of entry {index} is beyond the head (damaged): rebuilding the anchor records from the entries",
                        dir.display()
                    ),
                },
                Err(e) => tracing::warn!(
                    "{}: the stored {e} (damaged): rebuilding the anchor records from the entries",
                    dir.display()
                ),
            }
        }
        Some(cover) => tracing::warn!(
            "{}: the stored anchor records cover {} entries, the head {size}: rebuilding them from the entries",
            dir.display(),
            cover.size
        ),
        None => tracing::info!(
            "{}: building anchor records from the {size} entries (a replica from before them)",
            dir.display()
        ),
    }
    let anchors = scan_anchors(store, head)?;
    store.replace_anchor_chunks(
        &anchors.encoded_from(0),
        AnchorCover {
            size,
            count: anchors.len() as u64,
        },
    )?;
    if store.meta(OLD_ANCHORS_SCANNED)?.is_some() {
        store.drop_tree(OLD_ANCHORS_TREE)?;
        store.remove_meta(OLD_ANCHORS_SCANNED)?;
        store.flush()?;
    }
    tracing::info!(
        "{}: {} anchor records built and stored",
        dir.display(),
        anchors.len()
    );
    Ok(anchors)
}

/// The anchor records of the first `head.size` stored entries (parsed on
/// all cores; their signatures were checked when they were synced), each
/// with the first stored block that seals it.
fn scan_anchors(store: &Store, head: &Block) -> Result<Anchors, ReplicaError> {
    let size = head.size;
    let mut anchors = Anchors::default();
    let mut sealing: Option<Block> = None;
    let mut at = 0;
    while at < size {
        let end = at.saturating_add(MAX_RANGE).min(size);
        let lines = store.entries(at, end)?;
        if lines.len() as u64 != end - at {
            return Err(StoreError::Missing(Missing::Entries { start: at, end }).into());
        }
        let entries = parse_all(&lines).map_err(|(i, e)| ReplicaError::BadEntry {
            index: at + i as u64,
            source: e.into(),
        })?;
        for (index, entry) in (at..).zip(&entries) {
            if !matches!(entry.action(), Action::Anchor { .. }) {
                continue;
            }
            // Entries come in order: the block that sealed the previous
            // anchor seals this one too when its tree holds it.
            let block = match sealing.take().filter(|b| b.size > index) {
                Some(b) => b,
                None => sealing_block(store, head, index)?,
            };
            anchors.push(index, entry, &block)?;
            sealing = Some(block);
        }
        at = end;
    }
    Ok(anchors)
}

/// Parses entries on all cores (no signature check). Errors carry the
/// position in `lines`.
fn parse_all<B: AsRef<[u8]> + Sync>(lines: &[B]) -> Result<Vec<Entry>, (usize, EntryError)> {
    on_all_cores(
        lines,
        1,
        // A parser that panicked: the entries cannot be read.
        || (0, EntryError::Malformed("parser panicked".into())),
        |offset, part| {
            let mut authors = AuthorCache::default();
            part.iter()
                .enumerate()
                .map(|(i, line)| {
                    Entry::parse_with(line.as_ref(), &mut authors).map_err(|e| (offset + i, e))
                })
                .collect()
        },
    )
}

/// The state after the first `size` stored entries, replayed from genesis.
fn replay(store: &Store, size: u64) -> Result<ChainState, ReplicaError> {
    replay_each(store, size, |_| Ok(()))
}

/// Replays the first `size` stored entries from genesis, each checked
/// (signature, rules) and then handed to `each`; returns the state after
/// them. Used by [`replay`] and [`audit`].
fn replay_each(
    store: &Store,
    size: u64,
    mut each: impl FnMut(&Entry) -> Result<(), ReplicaError>,
) -> Result<ChainState, ReplicaError> {
    let mut state = ChainState::new();
    let mut at = 0;
    while at < size {
        let end = (at + MAX_RANGE).min(size);
        let lines = store.entries(at, end)?;
        if lines.len() as u64 != end - at {
            return Err(StoreError::Missing(Missing::Entries { start: at, end }).into());
        }
        let lines = lines.iter().map(|l| l.to_vec()).collect();
        let parsed = parse_and_verify(lines).map_err(|(i, source)| ReplicaError::BadEntry {
            index: at + i as u64,
            source,
        })?;
        for (i, e) in parsed.entries.iter().enumerate() {
            state.apply(e).map_err(|err| ReplicaError::BadEntry {
                index: at + i as u64,
                source: err.into(),
            })?;
            each(e)?;
        }
        at = end;
    }
    Ok(state)
}

/// What an offline audit found.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Blocks checked.
    pub blocks: u64,
    /// Blocks with the cosignatures the policy needs.
    pub cosigned_blocks: u64,
    /// Height and size of the last block.
    pub head: Option<(u64, u64)>,
    /// Accredited issuers at the end.
    pub issuers: usize,
    /// Status lists at the end.
    pub lists: usize,
}

/// Re-checks a store offline: every entry's signature and rules from
/// genesis, every stored tree hash, every block's signature, link and root.
///
/// # Errors
/// [`ReplicaError`] at the first thing that does not verify.
pub fn audit(store: &Store, policy: &TrustPolicy) -> Result<AuditReport, ReplicaError> {
    let size = store.size()?;
    let mut tree = MemoryHashes::new();
    let state = replay_each(store, size, |e| {
        tree.append(e.leaf_hash())
            .map_err(|source| StoreError::Tree {
                what: "replayed tree",
                source,
            })?;
        Ok(())
    })?;
    let mut count = 0;
    for item in store.stored_hashes() {
        let (i, h) = item?;
        let mine = log::HashReader::read_hashes(&tree, &[i])
            .map_err(|_| ReplicaError::StoredHash { index: i })?;
        if mine[0] != h {
            return Err(ReplicaError::StoredHash { index: i });
        }
        count += 1;
    }
    if count != log::stored_hash_count(size) {
        return Err(ReplicaError::StoredHashCount {
            stored: count,
            expected: log::stored_hash_count(size),
        });
    }
    let relaxed = policy.with_need(0);
    let mut prev: Option<Block> = None;
    let (mut blocks, mut cosigned) = (0, 0);
    while let Some(note) = store.block(blocks)? {
        let signed = relaxed.verify(note.as_bytes())?;
        check_link(prev.as_ref(), &signed.block)?;
        let b = &signed.block;
        let root = log::tree_hash(b.size, &tree).map_err(|_| ReplicaError::Mismatch {
            size: b.size,
            height: b.height,
        })?;
        if b.size > size || root != b.root {
            return Err(ReplicaError::Mismatch {
                size: b.size,
                height: b.height,
            });
        }
        if signed.cosigned_by.len() >= policy.need() {
            cosigned += 1;
        }
        prev = Some(signed.block);
        blocks += 1;
    }
    Ok(AuditReport {
        entries: size,
        blocks,
        cosigned_blocks: cosigned,
        head: prev.map(|b| (b.height, b.size)),
        issuers: state.issuers.len(),
        lists: state.lists.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Part `n` of three: `bad` fails, `dies` panics, the others give `n`.
    fn part(n: usize, bad: usize, dies: usize) -> Result<usize, String> {
        if n == dies {
            panic!("part {n} panicked on purpose");
        }
        if n == bad {
            return Err(format!("part {n} refused"));
        }
        Ok(n)
    }

    #[test]
    fn a_part_that_panics_beside_a_part_that_fails_gives_the_first_failure_in_order() {
        let run = |bad, dies| {
            on_threads(
                vec![0, 1, 2],
                |n| format!("part {n} panicked"),
                |_, n| part(n, bad, dies),
            )
        };
        // Before the fix, returning the error left the panicked thread for
        // `thread::scope` to re-raise: a panic instead of an error.
        assert_eq!(run(0, 1), Err("part 0 refused".into()));
        assert_eq!(run(2, 1), Err("part 1 panicked".into()));
        assert_eq!(run(1, 0), Err("part 0 panicked".into()));
        assert_eq!(run(9, 9), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn a_refused_entry_is_placed_by_its_index_in_all_the_parts() {
        // Lines that are not entries: the first refused is the first line
        // of the part that holds it, wherever the parts split.
        let lines: Vec<Vec<u8>> = (0..9000).map(|_| b"{}".to_vec()).collect();
        let Err((at, EntryRefused::Entry(_))) = parse_and_verify(lines) else {
            panic!("lines that are not entries were accepted");
        };
        assert_eq!(at, 0);
        assert!(matches!(
            parse_and_verify_part(vec![b"not json".to_vec()]),
            Err((0, EntryRefused::Entry(_)))
        ));
    }
}
