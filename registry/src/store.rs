//! The chain on disk: one sled `Db`, one tree, keys by prefix, so that a
//! batch of entries, their tree hashes, their leaf index and the new size land
//! in one atomic write.
//!
//! | key | value |
//! |---|---|
//! | `t` + tile (u64 BE) | a full tile: entries `256·tile..256·tile+256` and the tree hashes they completed |
//! | `e` + index (u64 BE) | an entry of the partial tile at the end: the tree hashes it completed, then its bytes |
//! | `l` + leaf hash | index (u64 BE); nodes only, for look-up by hash |
//! | `b` + height (u64 BE) | signed checkpoint note |
//! | `a` + index (u64 BE) | replicas: a chunk of anchor records from this entry on ([`vouch_core::view::Anchors::encoded_from`]) |
//! | `m` + name | metadata: `size`, `tiled`, `format`, `state` (JSON), `head`, `anchors` (entries the anchor chunks cover), … |
//!
//! Entries are stored as C2SP tlog-tiles stores them: 256 to a record. The
//! entries `0..tiled` (`tiled` a multiple of 256) sit in tile records, the
//! rest (fewer than 256, on a store this version wrote) one record each; the
//! append that fills a tile folds its single records into the tile record in
//! the same atomic batch. A bulk append (a replica's sync, a node's group
//! commit) writes one record per 256 entries.
//!
//! Appending record `n` completes the tree hashes at stored-hash indexes
//! `stored_hash_index(0, n)..` (its leaf, then one per level it closes); they
//! are kept with the entry, so one append is one write. The hash at level
//! `L`, position `k` belongs to record `((k + 1) << L) - 1`; a tile holds the
//! hashes of its 256 records, which are contiguous in stored-hash order.
//!
//! A tile record: the byte [`TILE_FORMAT`], the hash count (u16 BE), the
//! hashes, 256 entry end offsets (u32 BE, into the bytes that follow), the
//! entries' bytes. A store written before tiles (one record per entry, no
//! `format`) is converted on open, one atomic batch per tile, with a log
//! line saying so; a crash during the conversion resumes it on the next open.

use std::path::Path;

use vouch_core::chain::{ChainState, Entry};
use vouch_core::log::{self, Hash, HashReader, TreeError};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (disk full, I/O error, corruption).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// Another process holds the database.
    #[error("{} is in use by another process (is the node running?)", dir.display())]
    Locked {
        /// The store's directory.
        dir: std::path::PathBuf,
    },
    /// A stored record is not the shape the store writes.
    #[error("corrupt store: {what}")]
    Malformed {
        /// Which record, and how.
        what: &'static str,
    },
    /// Something the store must hold is not there.
    #[error("corrupt store: {0} is missing")]
    Missing(Missing),
    /// The stored tree hashes cannot give what was asked.
    #[error("corrupt store: {what}: {source}")]
    Tree {
        /// What was being computed.
        what: &'static str,
        /// Why.
        #[source]
        source: TreeError,
    },
    /// The state snapshot does not encode or decode.
    #[error("corrupt store: state snapshot: {0}")]
    State(#[source] serde_json::Error),
    /// A stored block note is not UTF-8.
    #[error("corrupt store: block {height} is not UTF-8")]
    NotText {
        /// The block's height.
        height: u64,
        /// Why.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// The store was written in a layout this version does not know (a
    /// newer version of Vouch wrote it).
    #[error("{}: chain store format {found:?} is not one this version reads (written by a newer version?)", dir.display())]
    Format {
        /// The store's directory.
        dir: std::path::PathBuf,
        /// The format it names.
        found: String,
    },
    /// A simulated crash ([`Store::crash_after_writes`]) stopped the write.
    #[error("storage: simulated crash (fault injection)")]
    Crashed,
}

/// What a store was found to be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// A block's note.
    Block(u64),
    /// An entry.
    Entry(u64),
    /// Some of the entries `[start, end)`.
    Entries {
        /// First.
        start: u64,
        /// One past the last.
        end: u64,
    },
    /// The block that seals an anchor entry (among the blocks a sync
    /// fetched).
    SealingBlock(u64),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Block(h) => write!(f, "block {h}"),
            Missing::Entry(i) => write!(f, "entry {i}"),
            Missing::Entries { start, end } => write!(f, "some of entries {start}..{end}"),
            Missing::SealingBlock(i) => write!(f, "the block that seals anchor entry {i}"),
        }
    }
}

/// Entries per tile record (C2SP tlog-tiles' tile width).
pub const TILE: u64 = 256;
/// The first byte of a tile record: its layout version.
pub const TILE_FORMAT: u8 = 1;
/// The `format` metadata value of a store in the tile layout.
const FORMAT: &[u8] = b"tiles/1";
/// Tiles folded per atomic batch when converting an old store.
const MIGRATE_TILES_PER_BATCH: u64 = 64;
/// sled's page cache for a chain store.
const CACHE_BYTES: u64 = 256 << 20;
/// sled's log segment size for a new chain store. sled writes a page
/// larger than a quarter segment as a separate blob file and counts it in
/// its cache as the few bytes of the pointer to it, so such pages are
/// never evicted. A leaf page holds up to 17 values; with 256-entry tiles
/// (about 112 KB of anchors) every leaf is such a page at sled's default
/// 512 KiB segments, and the whole store stayed in memory. At 8 MiB
/// (pages up to 2 MiB inline) leaves of tiles are counted and evicted.
const SEGMENT_BYTES: usize = 8 << 20;

/// What a replica's stored anchor record chunks hold: the records of the
/// anchor entries among the first `size` entries, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorCover {
    /// Entries covered.
    pub size: u64,
    /// Anchor records stored.
    pub count: u64,
}

impl AnchorCover {
    fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.size.to_be_bytes());
        out[8..].copy_from_slice(&self.count.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let malformed = StoreError::Malformed {
            what: "the anchor records' cover is not 16 bytes",
        };
        if bytes.len() != 16 {
            return Err(malformed);
        }
        Ok(Self {
            size: be_u64(&bytes[..8])?,
            count: be_u64(&bytes[8..])?,
        })
    }
}

/// The chain store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    leaf_index: bool,
    /// Entries in tile records (a multiple of [`TILE`]), as last read or
    /// written by this process; a read that misses re-reads it from the
    /// database (another handle may have folded or unfolded a tile).
    tiled: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Fault injection for crash tests: writes left before the store acts
    /// as if the process died (every later write fails). `u64::MAX`: off.
    writes_left: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn key(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(name.as_bytes());
    k
}

fn leaf_key(leaf: &Hash) -> Vec<u8> {
    let mut l = vec![b'l'];
    l.extend_from_slice(&leaf.0);
    l
}

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Malformed {
            what: "a stored integer is not 8 bytes",
        })
}

/// Where one entry's record was found.
enum Record {
    /// In a tile record, at this slot.
    Tile(sled::IVec, usize),
    /// In its own record.
    Single(sled::IVec),
}

/// One entry on its way into a record: its bytes and the tree hashes it
/// completed.
struct Staged<'a> {
    bytes: &'a [u8],
    hashes: &'a [Hash],
}

impl Store {
    /// Opens (creating) the store in directory `dir`. A store written
    /// before the tile layout is converted to it first (logged).
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has it open;
    /// [`StoreError::Format`] for a layout this version does not know.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let opened = match open_sled_segments(dir, CACHE_BYTES, Some(SEGMENT_BYTES)) {
            Err(OpenError::Sled(sled::Error::Unsupported(why))) if why.contains("io buffer") => {
                tracing::info!(
                    "{}: a chain store made with sled's default log segments: its tile pages stay in memory (stores made since keep them in {} MiB segments, within the cache)",
                    dir.display(),
                    SEGMENT_BYTES >> 20
                );
                open_sled_segments(dir, CACHE_BYTES, None)
            }
            other => other,
        };
        let db = opened.map_err(|e| match e {
            OpenError::Locked => StoreError::Locked {
                dir: dir.to_owned(),
            },
            OpenError::Sled(e) => StoreError::Sled(e),
        })?;
        let tree = db.open_tree("chain")?;
        let store = Self {
            db,
            tree,
            leaf_index: true,
            tiled: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            writes_left: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        };
        store.load_tiled()?;
        match store.tree.get(meta("format"))? {
            Some(f) if f.as_ref() == FORMAT => {}
            Some(f) => {
                return Err(StoreError::Format {
                    dir: dir.to_owned(),
                    found: String::from_utf8_lossy(&f).into_owned(),
                })
            }
            None => store.migrate(dir)?,
        }
        Ok(store)
    }

    /// Converts a store of one record per entry (before tiles) to tiles,
    /// one atomic batch per [`MIGRATE_TILES_PER_BATCH`] tiles, then marks
    /// it with the format. An empty store is only marked.
    fn migrate(&self, dir: &Path) -> Result<(), StoreError> {
        let size = self.size()?;
        let full = size / TILE * TILE;
        let mut tiled = self.load_tiled()?;
        if tiled < full {
            tracing::info!(
                "{}: converting the chain store ({size} entries, one record each) to tiles of {TILE} entries",
                dir.display()
            );
        }
        while tiled < full {
            let to = full.min(tiled + MIGRATE_TILES_PER_BATCH * TILE);
            let mut batch = sled::Batch::default();
            let mut hashes = Vec::new();
            let mut singles = Vec::new();
            for n in tiled..to {
                let r = self
                    .tree
                    .get(key(b'e', n))?
                    .ok_or(StoreError::Missing(Missing::Entry(n)))?;
                singles.push(r);
                batch.remove(&key(b'e', n));
            }
            for (t, records) in (tiled / TILE..).zip(singles.chunks(TILE as usize)) {
                hashes.clear();
                let mut bytes = Vec::with_capacity(records.len());
                for r in records {
                    hashes.extend(hashes_of(r)?);
                    bytes.push(&r[entry_of(r)?]);
                }
                batch.insert(&key(b't', t), tile_record(&hashes, bytes.iter().copied()));
            }
            batch.insert(meta("tiled"), &to.to_be_bytes());
            self.commit(batch, false)?;
            self.set_tiled(to);
            tiled = to;
        }
        self.tree.insert(meta("format"), FORMAT)?;
        self.db.flush()?;
        if full > 0 {
            tracing::info!("{}: chain store converted to tiles", dir.display());
        }
        Ok(())
    }

    /// Fault injection for crash tests: after `n` more writes (each insert
    /// or atomic batch counts one), every write fails with
    /// [`StoreError::Crashed`] and changes nothing, as if the process had
    /// died there. Shared by clones of this store.
    #[doc(hidden)]
    pub fn crash_after_writes(&self, n: u64) {
        self.writes_left
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Counts one write against [`Store::crash_after_writes`].
    fn write_allowed(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == u64::MAX {
            return Ok(());
        }
        if left == 0 {
            return Err(StoreError::Crashed);
        }
        self.writes_left.store(left - 1, Ordering::SeqCst);
        Ok(())
    }

    /// Stops writing the leaf-hash index (replicas look entries up by index).
    pub fn without_leaf_index(mut self) -> Self {
        self.leaf_index = false;
        self
    }

    /// Entries stored.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or corruption.
    pub fn size(&self) -> Result<u64, StoreError> {
        match self.tree.get(meta("size"))? {
            Some(v) => be_u64(&v),
            None => Ok(0),
        }
    }

    /// Entries in tile records, read from the database (and remembered).
    fn load_tiled(&self) -> Result<u64, StoreError> {
        let tiled = match self.tree.get(meta("tiled"))? {
            Some(v) => be_u64(&v)?,
            None => 0,
        };
        if tiled % TILE != 0 {
            return Err(StoreError::Malformed {
                what: "the tiled entry count is not a multiple of the tile width",
            });
        }
        self.set_tiled(tiled);
        Ok(tiled)
    }

    fn set_tiled(&self, tiled: u64) {
        self.tiled.store(tiled, std::sync::atomic::Ordering::SeqCst);
    }

    fn cached_tiled(&self) -> u64 {
        self.tiled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The record holding entry `n`. A miss re-reads where the tiles end
    /// and looks once more: a concurrent append may have folded the entry
    /// into a tile (or a truncation unfolded it).
    fn record(&self, n: u64) -> Result<Option<Record>, StoreError> {
        let mut tiled = self.cached_tiled();
        for last in [false, true] {
            let found = if n < tiled {
                self.tree
                    .get(key(b't', n / TILE))?
                    .map(|t| Record::Tile(t, (n % TILE) as usize))
            } else {
                self.tree.get(key(b'e', n))?.map(Record::Single)
            };
            if found.is_some() || last {
                return Ok(found);
            }
            tiled = self.load_tiled()?;
        }
        Ok(None)
    }

    /// Appends entries at the current size; with `flush`, waits until they
    /// are on disk. One atomic write: their records (full tiles as tile
    /// records, with the partial tile's earlier entries folded in), tree
    /// hashes, leaf index and the new size.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or when earlier tree hashes cannot be read.
    pub fn append(&self, entries: &[Entry], flush: bool) -> Result<u64, StoreError> {
        let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
        self.append_hashed(entries, &leaves, flush)
    }

    /// As [`Store::append`], with the entries' leaf hashes already computed
    /// (`leaves[i]` must be `entries[i].leaf_hash()`; a replica hashes them
    /// on all cores while it parses).
    ///
    /// # Errors
    /// [`StoreError`] on I/O or when earlier tree hashes cannot be read;
    /// [`StoreError::Malformed`] when the two slices differ in length.
    pub fn append_hashed(
        &self,
        entries: &[Entry],
        leaves: &[Hash],
        flush: bool,
    ) -> Result<u64, StoreError> {
        if leaves.len() != entries.len() {
            return Err(StoreError::Malformed {
                what: "an append's leaf hashes do not match its entries",
            });
        }
        let size = self.size()?;
        let tiled = self.load_tiled()?;
        let new_size = size + entries.len() as u64;
        let new_tiled = new_size / TILE * TILE;
        // The tree hashes the new entries complete are contiguous in
        // stored-hash order from `base`.
        let base = log::stored_hash_index(0, size);
        let mut pending = Pending {
            store: self,
            base,
            hashes: Vec::with_capacity(entries.len() * 2 + 64),
        };
        let mut starts = Vec::with_capacity(entries.len() + 1);
        let mut batch = sled::Batch::default();
        for (n, &leaf) in (size..).zip(leaves) {
            let hashes =
                log::stored_hashes_for_record_hash(n, leaf, &pending).map_err(|source| {
                    StoreError::Tree {
                        what: "tree hashes",
                        source,
                    }
                })?;
            starts.push(pending.hashes.len());
            pending.hashes.extend(hashes);
            if self.leaf_index {
                batch.insert(leaf_key(&leaf), &n.to_be_bytes());
            }
        }
        starts.push(pending.hashes.len());
        let staged = |j: usize| Staged {
            bytes: entries[j].as_bytes(),
            hashes: &pending.hashes[starts[j]..starts[j + 1]],
        };
        // Tiles this append fills: earlier single records folded in.
        let mut t = tiled / TILE;
        while (t + 1) * TILE <= new_size {
            let first = t * TILE;
            let mut singles = Vec::new();
            for n in first..size.max(first) {
                let r = self
                    .tree
                    .get(key(b'e', n))?
                    .ok_or(StoreError::Missing(Missing::Entry(n)))?;
                singles.push(r);
                batch.remove(&key(b'e', n));
            }
            let mut hashes = Vec::with_capacity(2 * TILE as usize);
            let mut bytes: Vec<&[u8]> = Vec::with_capacity(TILE as usize);
            for r in &singles {
                hashes.extend(hashes_of(r)?);
                bytes.push(&r[entry_of(r)?]);
            }
            for n in size.max(first)..first + TILE {
                let s = staged(usize::try_from(n - size).unwrap_or(usize::MAX));
                hashes.extend_from_slice(s.hashes);
                bytes.push(s.bytes);
            }
            batch.insert(&key(b't', t), tile_record(&hashes, bytes.into_iter()));
            t += 1;
        }
        for n in size.max(new_tiled)..new_size {
            let s = staged(usize::try_from(n - size).unwrap_or(usize::MAX));
            batch.insert(&key(b'e', n), single_record(&s));
        }
        batch.insert(meta("size"), &new_size.to_be_bytes());
        if new_tiled != tiled {
            batch.insert(meta("tiled"), &new_tiled.to_be_bytes());
        }
        self.commit(batch, flush)?;
        self.set_tiled(new_tiled);
        Ok(new_size)
    }

    /// Applies a batch atomically; with `flush`, waits until it is on disk.
    fn commit(&self, batch: sled::Batch, flush: bool) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.apply_batch(batch)?;
        if flush {
            self.db.flush()?;
        }
        Ok(())
    }

    /// The bytes of entry `index`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn entry_bytes(&self, index: u64) -> Result<Option<sled::IVec>, StoreError> {
        match self.record(index)? {
            None => Ok(None),
            Some(Record::Tile(t, slot)) => {
                let tile = TileRecord::parse(&t)?;
                let range = tile.entry(slot)?;
                Ok(Some(t.subslice(range.start, range.len())))
            }
            Some(Record::Single(r)) => {
                let range = entry_of(&r)?;
                Ok(Some(r.subslice(range.start, range.len())))
            }
        }
    }

    /// Entries `[start, end)` as bytes (fewer when the store ends first).
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<sled::IVec>, StoreError> {
        let first = self.entries_once(start, end, self.cached_tiled())?;
        let want = end.min(self.size()?).saturating_sub(start);
        if first.len() as u64 >= want {
            return Ok(first);
        }
        // A concurrent append folded entries into a tile meanwhile.
        let tiled = self.load_tiled()?;
        self.entries_once(start, end, tiled)
    }

    fn entries_once(
        &self,
        start: u64,
        end: u64,
        tiled: u64,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let mut out = Vec::with_capacity(usize::try_from(end.saturating_sub(start)).unwrap_or(0));
        if start < tiled.min(end) {
            let last = tiled.min(end);
            for item in self
                .tree
                .range(key(b't', start / TILE)..=key(b't', (last - 1) / TILE))
            {
                let (k, t) = item?;
                let first = be_u64(&k[1..])? * TILE;
                let tile = TileRecord::parse(&t)?;
                let from = start.max(first) - first;
                let to = last.min(first + TILE) - first;
                if first + from != start + out.len() as u64 {
                    // A tile is missing: stop where the entries stop.
                    return Ok(out);
                }
                for slot in from..to {
                    let range = tile.entry(slot as usize)?;
                    out.push(t.subslice(range.start, range.len()));
                }
            }
            if (out.len() as u64) < last - start {
                return Ok(out);
            }
        }
        for item in self.tree.range(key(b'e', start.max(tiled))..key(b'e', end)) {
            let (k, r) = item?;
            if be_u64(&k[1..])? != start + out.len() as u64 {
                break;
            }
            let range = entry_of(&r)?;
            out.push(r.subslice(range.start, range.len()));
        }
        Ok(out)
    }

    /// The index of the entry with this leaf hash.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn index_of(&self, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        self.tree
            .get(leaf_key(leaf))?
            .map(|v| be_u64(&v))
            .transpose()
    }

    /// Stores the signed note of block `height`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn put_block(&self, height: u64, note: &str, flush: bool) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.insert(key(b'b', height), note.as_bytes())?;
        if flush {
            self.db.flush()?;
        }
        Ok(())
    }

    /// The signed note of block `height`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a note that is not UTF-8.
    pub fn block(&self, height: u64) -> Result<Option<String>, StoreError> {
        self.tree
            .get(key(b'b', height))?
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|source| StoreError::NotText { height, source })
            })
            .transpose()
    }

    /// The highest block: its height and note.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn last_block(&self) -> Result<Option<(u64, String)>, StoreError> {
        let Some(item) = self
            .tree
            .range(key(b'b', 0)..=key(b'b', u64::MAX))
            .next_back()
        else {
            return Ok(None);
        };
        let (k, v) = item?;
        let height = be_u64(&k[1..])?;
        let note = String::from_utf8(v.to_vec())
            .map_err(|source| StoreError::NotText { height, source })?;
        Ok(Some((height, note)))
    }

    /// Saves a state snapshot (the state after `state.size` entries).
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn put_state(&self, state: &ChainState) -> Result<(), StoreError> {
        let json = serde_json::to_vec(state).map_err(StoreError::State)?;
        self.write_allowed()?;
        self.tree.insert(meta("state"), json)?;
        Ok(())
    }

    /// Saves a replica's verified head in one atomic, flushed write: the
    /// state snapshot after it, its note (`head`), the notes of the blocks
    /// up to it, and the anchor record chunks that changed (each replacing
    /// the one stored under its key), marked as holding `anchors` records
    /// for the state's entries. A crash leaves either all of them or none.
    ///
    /// # Errors
    /// [`StoreError`] on I/O; then nothing was written.
    pub fn put_head(
        &self,
        state: &ChainState,
        head: &[u8],
        blocks: &[(u64, &str)],
        anchor_chunks: &[(u64, Vec<u8>)],
        anchors: u64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(state).map_err(StoreError::State)?;
        let mut batch = sled::Batch::default();
        for (height, note) in blocks {
            batch.insert(&key(b'b', *height), note.as_bytes());
        }
        for (first, chunk) in anchor_chunks {
            batch.insert(&key(b'a', *first), chunk.as_slice());
        }
        let cover = AnchorCover {
            size: state.size,
            count: anchors,
        };
        batch.insert(meta("anchors"), &cover.to_bytes());
        batch.insert(meta("state"), json);
        batch.insert(meta("head"), head);
        self.commit(batch, true)
    }

    /// What a replica's stored anchor chunks cover (`None`: none stored,
    /// a store from before anchor records).
    ///
    /// # Errors
    /// [`StoreError`] on I/O; [`StoreError::Malformed`] for a value that is
    /// not 16 bytes.
    pub fn anchor_cover(&self) -> Result<Option<AnchorCover>, StoreError> {
        self.tree
            .get(meta("anchors"))?
            .map(|v| AnchorCover::from_bytes(&v))
            .transpose()
    }

    /// The stored anchor record chunks, by key (the index of each chunk's
    /// first anchor).
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a malformed key.
    pub fn anchor_chunks(&self) -> Result<Vec<(u64, sled::IVec)>, StoreError> {
        self.tree
            .range(key(b'a', 0)..=key(b'a', u64::MAX))
            .map(|item| {
                let (k, v) = item?;
                Ok((be_u64(&k[1..])?, v))
            })
            .collect()
    }

    /// Replaces every stored anchor record chunk by `chunks`, which cover
    /// as `cover` says, in one atomic, flushed write.
    ///
    /// # Errors
    /// [`StoreError`] on I/O; then nothing was written.
    pub fn replace_anchor_chunks(
        &self,
        chunks: &[(u64, Vec<u8>)],
        cover: AnchorCover,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for item in self.tree.range(key(b'a', 0)..=key(b'a', u64::MAX)) {
            let (k, _) = item?;
            batch.remove(k);
        }
        for (first, chunk) in chunks {
            batch.insert(&key(b'a', *first), chunk.as_slice());
        }
        batch.insert(meta("anchors"), &cover.to_bytes());
        self.commit(batch, true)
    }

    /// Removes a named metadata value.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn remove_meta(&self, name: &str) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.remove(meta(name))?;
        Ok(())
    }

    /// Removes a separate tree (see [`Store::open_tree`]) and its data.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.db.drop_tree(name)?;
        Ok(())
    }

    /// The last state snapshot, if any.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a snapshot that does not decode.
    pub fn state(&self) -> Result<Option<ChainState>, StoreError> {
        self.tree
            .get(meta("state"))?
            .map(|v| serde_json::from_slice(&v).map_err(StoreError::State))
            .transpose()
    }

    /// A named metadata value.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn meta(&self, name: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.tree.get(meta(name))?)
    }

    /// Sets a named metadata value.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.insert(meta(name), value)?;
        Ok(())
    }

    /// Removes every entry from `size` on (and its hashes and leaf index):
    /// undoes entries that were stored but not verified. A tile that ends
    /// beyond `size` is unfolded: its entries below `size` go back to
    /// single records.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn truncate(&self, size: u64) -> Result<(), StoreError> {
        let old = self.size()?;
        if old <= size {
            return Ok(());
        }
        let tiled = self.load_tiled()?;
        let new_tiled = tiled.min(size / TILE * TILE);
        let mut batch = sled::Batch::default();
        for item in self.tree.range(key(b'e', size.max(tiled))..key(b'e', old)) {
            let (k, r) = item?;
            if self.leaf_index {
                batch.remove(leaf_key(&log::record_hash(&r[entry_of(&r)?])));
            }
            batch.remove(k);
        }
        for t in new_tiled / TILE..tiled / TILE {
            let r = self
                .tree
                .get(key(b't', t))?
                .ok_or(StoreError::Missing(Missing::Entry(t * TILE)))?;
            let tile = TileRecord::parse(&r)?;
            for slot in 0..TILE as usize {
                let n = t * TILE + slot as u64;
                let bytes = &r[tile.entry(slot)?];
                if n < size {
                    let hashes = tile.hashes_of_slot(n)?;
                    batch.insert(
                        &key(b'e', n),
                        single_record(&Staged {
                            bytes,
                            hashes: &hashes,
                        }),
                    );
                } else if self.leaf_index {
                    batch.remove(leaf_key(&log::record_hash(bytes)));
                }
            }
            batch.remove(&key(b't', t));
        }
        batch.insert(meta("size"), &size.to_be_bytes());
        batch.insert(meta("tiled"), &new_tiled.to_be_bytes());
        self.commit(batch, true)?;
        self.set_tiled(new_tiled);
        Ok(())
    }

    /// Iterates the stored tree hashes in stored-hash index order.
    pub fn stored_hashes(&self) -> impl Iterator<Item = Result<(u64, Hash), StoreError>> + '_ {
        let tiles = self
            .tree
            .range(key(b't', 0)..=key(b't', u64::MAX))
            .map(|item| {
                let (k, r) = item?;
                let first = log::stored_hash_index(0, be_u64(&k[1..])? * TILE);
                let hashes: Vec<Hash> = TileRecord::parse(&r)?.hashes().collect();
                Ok((first, hashes))
            });
        let singles = self
            .tree
            .range(key(b'e', 0)..=key(b'e', u64::MAX))
            .map(|item| {
                let (k, r) = item?;
                let first = log::stored_hash_index(0, be_u64(&k[1..])?);
                let hashes: Vec<Hash> = hashes_of(&r)?.collect();
                Ok((first, hashes))
            });
        tiles
            .chain(singles)
            .flat_map(|group: Result<(u64, Vec<Hash>), StoreError>| match group {
                Ok((first, hashes)) => (first..).zip(hashes).map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
    }

    /// Waits until everything written is on disk.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The root of the stored tree at `size`.
    ///
    /// # Errors
    /// [`StoreError`] when hashes are missing.
    pub fn root(&self, size: u64) -> Result<Hash, StoreError> {
        log::tree_hash(size, self).map_err(|source| StoreError::Tree {
            what: "tree root",
            source,
        })
    }

    /// Bytes the database uses on disk.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// A separate tree for other data (the relay).
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }
}

/// Where the entry bytes sit in a single record.
fn entry_of(record: &[u8]) -> Result<std::ops::Range<usize>, StoreError> {
    let start = 1 + 32 * usize::from(*record.first().unwrap_or(&0));
    if record.is_empty() || start > record.len() {
        return Err(StoreError::Malformed {
            what: "an entry record is truncated",
        });
    }
    Ok(start..record.len())
}

/// The tree hashes in a single record.
fn hashes_of(record: &[u8]) -> Result<impl Iterator<Item = Hash> + '_, StoreError> {
    let end = entry_of(record)?.start;
    Ok(record[1..end].chunks_exact(32).map(hash_at))
}

fn hash_at(c: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(c);
    Hash(h)
}

/// A single record: hash count, hashes, entry bytes.
fn single_record(s: &Staged<'_>) -> Vec<u8> {
    let mut record = Vec::with_capacity(1 + 32 * s.hashes.len() + s.bytes.len());
    // At most 64 levels plus the leaf: fits a byte.
    record.push(u8::try_from(s.hashes.len()).unwrap_or(u8::MAX));
    for h in s.hashes {
        record.extend_from_slice(&h.0);
    }
    record.extend_from_slice(s.bytes);
    record
}

/// A tile record of [`TILE`] entries and the tree hashes they completed.
fn tile_record<'a>(hashes: &[Hash], entries: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let entries: Vec<&[u8]> = entries.collect();
    let total: usize = entries.iter().map(|e| e.len()).sum();
    let mut record = Vec::with_capacity(3 + 32 * hashes.len() + 4 * entries.len() + total);
    record.push(TILE_FORMAT);
    // A tile completes at most 2·256 + 64 hashes: fits a u16.
    record.extend_from_slice(
        &u16::try_from(hashes.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    for h in hashes {
        record.extend_from_slice(&h.0);
    }
    let mut end = 0usize;
    for e in &entries {
        end += e.len();
        // Entries are at most `MAX_ENTRY_BYTES` each: 256 of them fit a u32.
        record.extend_from_slice(&u32::try_from(end).unwrap_or(u32::MAX).to_be_bytes());
    }
    for e in entries {
        record.extend_from_slice(e);
    }
    record
}

/// A tile record, split into its parts (borrowed).
struct TileRecord<'a> {
    /// Stored-hash index of the tile's first hash.
    hashes: &'a [u8],
    ends: &'a [u8],
    /// Offset of the entry bytes in the record.
    bytes_at: usize,
    len: usize,
}

impl<'a> TileRecord<'a> {
    fn parse(r: &'a [u8]) -> Result<Self, StoreError> {
        let malformed = StoreError::Malformed {
            what: "a tile record is truncated or of an unknown format",
        };
        if r.len() < 3 || r[0] != TILE_FORMAT {
            return Err(malformed);
        }
        let count = usize::from(u16::from_be_bytes([r[1], r[2]]));
        let hashes_end = 3 + 32 * count;
        let bytes_at = hashes_end + 4 * TILE as usize;
        if r.len() < bytes_at {
            return Err(malformed);
        }
        Ok(Self {
            hashes: &r[3..hashes_end],
            ends: &r[hashes_end..bytes_at],
            bytes_at,
            len: r.len(),
        })
    }

    fn end(&self, slot: usize) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.ends[4 * slot..4 * slot + 4]);
        u32::from_be_bytes(b) as usize
    }

    /// Where entry `slot` sits in the record.
    fn entry(&self, slot: usize) -> Result<std::ops::Range<usize>, StoreError> {
        let start = if slot == 0 { 0 } else { self.end(slot - 1) };
        let end = self.end(slot);
        if slot >= TILE as usize || start > end || self.bytes_at + end > self.len {
            return Err(StoreError::Malformed {
                what: "a tile record's entry offsets are out of order or out of bounds",
            });
        }
        Ok(self.bytes_at + start..self.bytes_at + end)
    }

    fn hashes(&self) -> impl Iterator<Item = Hash> + 'a {
        self.hashes.chunks_exact(32).map(hash_at)
    }

    /// The hash at position `i` among the tile's hashes.
    fn hash(&self, i: u64) -> Option<Hash> {
        let i = usize::try_from(i).ok()?;
        self.hashes.get(32 * i..32 * i + 32).map(hash_at)
    }

    /// The hashes record `n` (in this tile) completed.
    fn hashes_of_slot(&self, n: u64) -> Result<Vec<Hash>, StoreError> {
        let first = log::stored_hash_index(0, n / TILE * TILE);
        let from = log::stored_hash_index(0, n) - first;
        let to = log::stored_hash_index(0, n + 1) - first;
        (from..to)
            .map(|i| {
                self.hash(i).ok_or(StoreError::Malformed {
                    what: "a tile record holds too few hashes",
                })
            })
            .collect()
    }
}

impl HashReader for Store {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        // Consecutive reads often fall in one tile: keep the last one.
        let mut last: Option<(u64, sled::IVec)> = None;
        indexes
            .iter()
            .map(|&i| {
                let (level, k) = log::split_stored_hash_index(i);
                let n = k
                    .checked_add(1)
                    .and_then(|k| k.checked_shl(u32::from(level)))
                    .and_then(|n| n.checked_sub(1))
                    .ok_or(TreeError::IndexesNotInTree)?;
                if let Some((t, r)) = &last {
                    if *t == n / TILE {
                        let first = log::stored_hash_index(0, t * TILE);
                        return TileRecord::parse(r)
                            .map_err(|_| TreeError::MalformedHash)?
                            .hash(i - first)
                            .ok_or(TreeError::IndexesNotInTree);
                    }
                }
                match self.record(n) {
                    Ok(Some(Record::Tile(r, _))) => {
                        let t = n / TILE;
                        let first = log::stored_hash_index(0, t * TILE);
                        let h = TileRecord::parse(&r)
                            .map_err(|_| TreeError::MalformedHash)?
                            .hash(i - first)
                            .ok_or(TreeError::IndexesNotInTree);
                        last = Some((t, r));
                        h
                    }
                    Ok(Some(Record::Single(r))) => hashes_of(&r)
                        .map_err(|_| TreeError::MalformedHash)?
                        .nth(usize::from(level))
                        .ok_or(TreeError::IndexesNotInTree),
                    _ => Err(TreeError::IndexesNotInTree),
                }
            })
            .collect()
    }
}

/// Reads the hashes an append is computing (contiguous from `base`), then
/// the store's.
struct Pending<'a> {
    store: &'a Store,
    base: u64,
    hashes: Vec<Hash>,
}

impl HashReader for Pending<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| match i.checked_sub(self.base) {
                Some(j) => usize::try_from(j)
                    .ok()
                    .and_then(|j| self.hashes.get(j))
                    .copied()
                    .ok_or(TreeError::IndexesNotInTree),
                None => self.store.read_hashes(&[i]).map(|v| v[0]),
            })
            .collect()
    }
}

/// Why a sled database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process holds it (still, after waiting for this one's own
    /// just-closed handle to let go).
    #[error("the database is open in another process")]
    Locked,
    /// Any other sled failure.
    #[error(transparent)]
    Sled(#[from] sled::Error),
}

/// Opens (creating) the sled database at `path` with `cache_bytes` of
/// cache. A database this process just closed stays locked until sled's
/// background flusher exits, longer on a busy machine: wait up to 5 s for
/// that, not for another process. Used by every store of the workspace
/// (chain, wallet, nonce book).
///
/// # Errors
/// [`OpenError::Locked`] when it stays locked; [`OpenError::Sled`].
pub fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, OpenError> {
    open_sled_segments(path, cache_bytes, None)
}

/// As [`open_sled`], with sled's log segments of `segment_bytes` (a power
/// of two up to 16 MiB) for a new database; `None`: sled's default
/// (512 KiB). sled keeps the size a database was made with: opening one
/// with another fails.
fn open_sled_segments(
    path: &Path,
    cache_bytes: u64,
    segment_bytes: Option<usize>,
) -> Result<sled::Db, OpenError> {
    let mut attempts = 0;
    loop {
        let mut config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        if let Some(bytes) = segment_bytes {
            config = config.segment_size(bytes);
        }
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                if attempts >= 250 {
                    return Err(OpenError::Locked);
                }
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ed25519_dalek::SigningKey;
    use vouch_core::chain::{Action, Entry};
    use vouch_core::log::{self, MemoryHashes};

    use super::*;

    /// `n` signed entries (accreditations: no rules are applied here).
    fn entries(n: u64) -> Vec<Entry> {
        let k = SigningKey::from_bytes(&[7; 32]);
        (0..n)
            .map(|seq| {
                Entry::sign(
                    &k,
                    seq,
                    1_700_000_000,
                    Action::Accredit {
                        issuer: format!("did:example:{seq}"),
                        name: "x".repeat(usize::try_from(seq % 50).unwrap()),
                        kinds: vec!["transcript".into()],
                    },
                )
            })
            .collect()
    }

    /// Checks every entry, root and stored hash of `store` against `all`.
    fn check(store: &Store, all: &[Entry]) {
        let size = all.len() as u64;
        assert_eq!(store.size().unwrap(), size);
        let got = store.entries(0, size + 5).unwrap();
        assert_eq!(got.len(), all.len());
        let mut tree = MemoryHashes::new();
        for (i, e) in all.iter().enumerate() {
            assert_eq!(got[i].as_ref(), e.as_bytes(), "entry {i}");
            tree.append(e.leaf_hash()).unwrap();
            let n = i as u64;
            assert_eq!(
                store.entry_bytes(n).unwrap().unwrap().as_ref(),
                e.as_bytes()
            );
            assert_eq!(store.root(n + 1).unwrap(), tree.root().unwrap(), "root {n}");
            assert_eq!(store.index_of(&e.leaf_hash()).unwrap(), Some(n));
        }
        assert!(store.entry_bytes(size).unwrap().is_none());
        let mid = store.entries(size / 3, size / 3 + 300).unwrap();
        assert_eq!(mid.len() as u64, (size / 3 + 300).min(size) - size / 3);
        let stored: Vec<(u64, Hash)> = store.stored_hashes().map(Result::unwrap).collect();
        assert_eq!(stored.len() as u64, log::stored_hash_count(size));
        for (i, h) in stored {
            assert_eq!(log::HashReader::read_hashes(&tree, &[i]).unwrap()[0], h);
        }
    }

    fn records(store: &Store, prefix: u8) -> usize {
        store.tree.scan_prefix([prefix]).count()
    }

    #[test]
    fn appends_fill_tiles_and_leave_a_partial_tile_single() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = entries(700);
        // One by one across the first tile boundary, then in bulk.
        let mut at = 0;
        for chunk in [250, 1, 1, 1, 10, 300, 137] {
            if chunk == 1 {
                store.append(&all[at..=at], true).unwrap();
            } else {
                store.append(&all[at..at + chunk], false).unwrap();
            }
            at += chunk;
        }
        assert_eq!(at, 700);
        check(&store, &all);
        assert_eq!(records(&store, b't'), 2);
        assert_eq!(records(&store, b'e'), 700 - 512);
        drop(store);
        // Reopened, it reads the same.
        let store = Store::open(dir.path()).unwrap();
        check(&store, &all);
    }

    #[test]
    fn truncating_into_a_tile_unfolds_it_and_appends_fold_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = entries(600);
        store.append(&all[..100], false).unwrap();
        store.append(&all[100..], false).unwrap();
        store.truncate(300).unwrap();
        check(&store, &all[..300]);
        assert_eq!(records(&store, b't'), 1);
        assert_eq!(records(&store, b'e'), 44);
        // A leaf of the removed entries is no longer indexed.
        assert_eq!(store.index_of(&all[400].leaf_hash()).unwrap(), None);
        store.truncate(200).unwrap();
        check(&store, &all[..200]);
        assert_eq!(records(&store, b't'), 0);
        store.append(&all[200..], true).unwrap();
        check(&store, &all);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        check(&store, &all);
    }

    #[test]
    fn a_store_of_one_record_per_entry_is_converted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(600);
        {
            // The layout before tiles: every entry its own record, no format.
            let db = sled::open(dir.path()).unwrap();
            let tree = db.open_tree("chain").unwrap();
            let mut tree_hashes = MemoryHashes::new();
            for (n, e) in (0u64..).zip(&all) {
                let hashes =
                    log::stored_hashes_for_record_hash(n, e.leaf_hash(), &tree_hashes).unwrap();
                tree_hashes.append(e.leaf_hash()).unwrap();
                let record = single_record(&Staged {
                    bytes: e.as_bytes(),
                    hashes: &hashes,
                });
                tree.insert(key(b'e', n), record).unwrap();
                tree.insert(leaf_key(&e.leaf_hash()), &n.to_be_bytes())
                    .unwrap();
            }
            tree.insert(meta("size"), &600u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
        assert_eq!(records(&store, b't'), 2);
        assert_eq!(records(&store, b'e'), 600 - 512);
        check(&store, &all);
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.set_meta("format", b"tiles/9").unwrap();
            store.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Format { found, .. }) if found == "tiles/9"
        ));
    }

    #[test]
    fn broken_tile_records_are_refused() {
        let all = entries(256);
        let hashes = vec![Hash([1; 32]); 3];
        let good = tile_record(&hashes, all.iter().map(Entry::as_bytes));
        let tile = TileRecord::parse(&good).unwrap();
        assert_eq!(&good[tile.entry(255).unwrap()], all[255].as_bytes());
        assert_eq!(tile.hash(2), Some(Hash([1; 32])));
        assert_eq!(tile.hash(3), None);
        // Wrong format byte, cut short, offsets past the end.
        let mut bad = good.clone();
        bad[0] = 9;
        assert!(TileRecord::parse(&bad).is_err());
        assert!(TileRecord::parse(&good[..100]).is_err());
        assert!(TileRecord::parse(&[]).is_err());
        let cut = &good[..good.len() - 1];
        assert!(TileRecord::parse(cut).unwrap().entry(255).is_err());
        let mut disorder = good.clone();
        let ends = 3 + 32 * 3;
        disorder[ends..ends + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(TileRecord::parse(&disorder).unwrap().entry(1).is_err());
        // Through the store: a broken tile is a corrupt store, not a panic.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.append(&all, true).unwrap();
        store.tree.insert(key(b't', 0), &bad[..]).unwrap();
        assert!(matches!(
            store.entry_bytes(3),
            Err(StoreError::Malformed { .. })
        ));
        assert!(store.entries(0, 10).is_err());
        assert!(store.root(256).is_err());
    }
}
