//! The chain on disk: one sled `Db` with one tree, keys by prefix, and
//! beside it one append-only file of full tiles ([`TILES_FILE`]). A batch of
//! entries, their tree hashes, their leaf index and the new size land in one
//! atomic sled write; the tile bytes it names are on disk before it.
//!
//! | key | value |
//! |---|---|
//! | `i` + tile (u64 BE) | where full tile `tile` sits in the tiles file: offset (u64 BE), length (u32 BE), header length (u32 BE), the CRC-32 checksums of its header and of its entry bytes (u32 BE each), then the tile number (u64 BE) |
//! | `e` + index (u64 BE) | an entry of the partial tile at the end: the tree hashes it completed, then its bytes |
//! | `l` + leaf hash | index (u64 BE); nodes only, for look-up by hash |
//! | `b` + height (u64 BE) | signed checkpoint note |
//! | `a` + index (u64 BE) | replicas: a chunk of anchor records from this entry on ([`vouch_core::view::Anchors::encoded_from`]) |
//! | `m` + name | metadata: `size`, `tiled`, `format`, `tile_bytes` (the tiles file's committed length, u64 BE), `state` (JSON), `head`, `anchors` (entries the anchor chunks cover), … |
//!
//! Entries are stored as C2SP tlog-tiles stores them: 256 to a tile, and a
//! full tile never changes. The entries `0..tiled` (`tiled` a multiple of
//! 256) sit in full tiles, the rest (fewer than 256) in one sled record
//! each; the append that fills a tile folds its single records into the
//! tile. A bulk append (a replica's sync, a node's group commit) writes one
//! tile per 256 entries. sled replays its whole log when it opens: with the
//! tiles' bytes outside it, that log holds only the small records.
//!
//! The tiles file holds full tiles 0, 1, 2, … back to back, each a tile
//! record: the byte [`TILE_FORMAT`], the hash count (u16 BE), the hashes,
//! 256 entry end offsets (u32 BE, into the bytes that follow), the entries'
//! bytes. The header (everything before the entries' bytes) and the
//! entries' bytes each have a checksum, CRC-32 (IEEE): a hash read reads
//! and checks only the header, an entry read the whole tile. A tile whose
//! bytes do not match is refused ([`StoreError::TileDamaged`]), never
//! returned. The checksums catch disk damage, not an attacker: whoever can
//! write the tiles file can write the index records beside it (and what a
//! replica serves or syncs is checked against signed roots anyway), so a
//! CRC does what SHA-256 did here at a fraction of the cost.
//!
//! An append that fills tiles writes them at the file's committed end
//! (`tile_bytes`), syncs the file, and only then commits the sled batch that
//! names them (their `i` records, the folded singles removed, `size`,
//! `tiled`, the new `tile_bytes`): sled never names bytes that are not on
//! disk. Bytes past `tile_bytes` found at open are what an append that died
//! before its commit left: they are cut off (logged). A file shorter than
//! `tile_bytes` is a corrupt store ([`StoreError::TilesCut`]).
//! [`Store::truncate`] drops the index records of the tiles it undoes and
//! lowers `tile_bytes` in one batch, then cuts the file.
//!
//! Appending record `n` completes the tree hashes at stored-hash indexes
//! `stored_hash_index(0, n)..` (its leaf, then one per level it closes); they
//! are kept with the entry, so one append is one write. The hash at level
//! `L`, position `k` belongs to record `((k + 1) << L) - 1`; a tile holds the
//! hashes of its 256 records, which are contiguous in stored-hash order.
//!
//! Older stores are converted on open, 64 tiles per
//! atomic batch, with log lines saying so; a crash during a conversion
//! resumes it on the next open: a store of the `tiles/2` layout (index
//! records of 88 bytes with SHA-256 checksums) has each tile read, checked
//! against them and indexed again with CRC-32 checksums (a tile that does
//! not match keeps failing its check); a store of the `tiles/1` layout
//! (tile records kept in sled under `t` + tile) has them moved to the tiles
//! file; and a store written before tiles (one record per entry, no
//! `format`) has its entries folded into tiles in the tiles file.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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
    /// An earlier write was applied but not flushed to disk; this handle
    /// writes no more (what is on disk may differ from what it holds).
    #[error("storage: an earlier write did not reach the disk; reopen the store")]
    Unflushed,
    /// The tiles file ([`TILES_FILE`]) could not be opened, read, written
    /// or synced.
    #[error("{}: {what}: {source}", path.display())]
    TileIo {
        /// The tiles file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A full tile's bytes in the tiles file do not match their checksum,
    /// or the file ends inside it.
    #[error("corrupt store: tile {tile} (entries {}..{}) in {}: {why}", tile * TILE, (tile + 1) * TILE, path.display())]
    TileDamaged {
        /// The tile (its first entry is `tile · 256`).
        tile: u64,
        /// The tiles file.
        path: PathBuf,
        /// How.
        why: &'static str,
    },
    /// The tiles file is shorter than the tiles the store names in it
    /// (found at open).
    #[error("corrupt store: {} holds {found} bytes, the store's tiles need {committed}: tile {tile} (entries {} on) is cut off", path.display(), tile * TILE)]
    TilesCut {
        /// The tiles file.
        path: PathBuf,
        /// The first tile that does not fit in the file.
        tile: u64,
        /// The file's length.
        found: u64,
        /// The length the store's tiles need.
        committed: u64,
    },
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
/// The `format` metadata value of a store in this layout: full tiles in
/// [`TILES_FILE`], indexed with CRC-32 checksums.
const FORMAT: &[u8] = b"tiles/3";
/// The `format` of the layout before: the same tiles, indexed with SHA-256
/// checksums (88-byte index records), converted on open.
const FORMAT_SHA256_SUMS: &[u8] = b"tiles/2";
/// The `format` of the layout before that: full tiles as sled records (`t` +
/// tile), converted on open.
const FORMAT_TILES_IN_SLED: &[u8] = b"tiles/1";
/// The file of full tiles, in the store's directory beside sled's files.
/// sled uses `conf`, `db`, `blobs/` and `snap.*` there and leaves any other
/// name alone.
pub const TILES_FILE: &str = "tiles.data";
/// Tiles written per atomic batch when converting an old store.
const MIGRATE_TILES_PER_BATCH: u64 = 64;
/// Checked tiles (or tile headers) kept in memory, at most...
const CACHED_TILES: usize = 32;
/// ... and within this many bytes (more only for a single huge tile).
const CACHED_TILE_BYTES: usize = 8 << 20;
/// A key no record has (no prefix uses `r`): read by
/// [`Store::help_reclaim`].
const RECLAIM_PROBE: &[u8] = b"r";
/// Bytes of an `i` record ([`TileIndex`]).
const TILE_INDEX_BYTES: usize = 32;
/// A tile record's header, about: format byte and hash count, the tree
/// hashes its entries complete (two per entry on average), the entry ends.
const TILE_HEAD_ESTIMATE: usize = 3 + 32 * 2 * TILE as usize + 4 * TILE as usize;
/// Bytes of an `i` record of the `tiles/2` layout ([`Sha256Index`]).
const SHA256_INDEX_BYTES: usize = 88;
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

/// The chain store. Clones share it; reads are safe beside an append or a
/// truncation in another thread (writes are serialized).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// The full tiles.
    tiles: Arc<TileFile>,
    /// Held by every write of entries (append, truncation, conversion),
    /// so that two never pick the same end of the tiles file.
    writer: Arc<Mutex<()>>,
    leaf_index: bool,
    /// Entries in tile records (a multiple of [`TILE`]), as last read or
    /// written by this process; a read that misses re-reads it from the
    /// database (another handle may have folded or unfolded a tile).
    tiled: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Fault injection for crash tests: writes left before the store acts
    /// as if the process died (every later write fails). `u64::MAX`: off.
    writes_left: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Set when a commit was applied and its flush failed: sled's memory
    /// and disk may then disagree (a truncation lowered `tile_bytes` in
    /// memory only, and an append would write over tiles the disk still
    /// names), so every later write is refused until the store is reopened.
    unflushed: Arc<std::sync::atomic::AtomicBool>,
    /// Truncations begun and ended (odd while one runs): a read of
    /// several records that saw it change may have read across a
    /// truncation and a different append after it, and reads again
    /// ([`Store::entries`]).
    truncations: Arc<std::sync::atomic::AtomicU64>,
    /// Run once between a range read's tiles and its single records (a
    /// test's truncation and append in that gap).
    #[cfg(test)]
    between_reads: Arc<Mutex<Option<TestHook>>>,
}

/// What a test runs inside a store operation.
#[cfg(test)]
type TestHook = Box<dyn FnOnce() + Send>;

/// Marks a truncation as running ([`Store::truncations`] odd) while it
/// lives.
struct Truncating<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Truncating<'a> {
    fn begin(count: &'a std::sync::atomic::AtomicU64) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Truncating<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Where a full tile's record sits in the tiles file (an `i` record), with
/// the checksums of its header and of its entries' bytes, and the tile's
/// number (so that an index record copied under another tile's key is
/// refused, not read as that tile).
#[derive(Debug, Clone, Copy, PartialEq)]
struct TileIndex {
    /// The tile: its first entry is `tile · 256`.
    tile: u64,
    /// Offset in the tiles file.
    offset: u64,
    /// Length of the whole record.
    len: u32,
    /// Length of its header: format byte, hash count, hashes, entry ends.
    head: u32,
    /// CRC-32 of the header.
    head_sum: u32,
    /// CRC-32 of the entries' bytes.
    body_sum: u32,
}

impl TileIndex {
    /// The index of tile `tile`'s record `record`, written at `offset`.
    fn of(tile: u64, offset: u64, record: &[u8]) -> Result<Self, StoreError> {
        let head = TileRecord::parse(record)?.bytes_at;
        let too_long = || StoreError::Malformed {
            what: "a tile record is over 4 GiB",
        };
        Ok(Self {
            tile,
            offset,
            len: u32::try_from(record.len()).map_err(|_| too_long())?,
            head: u32::try_from(head).map_err(|_| too_long())?,
            head_sum: crc32fast::hash(&record[..head]),
            body_sum: crc32fast::hash(&record[head..]),
        })
    }

    /// The offset just past the record.
    fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    fn to_bytes(self) -> [u8; TILE_INDEX_BYTES] {
        let mut out = [0u8; TILE_INDEX_BYTES];
        out[..8].copy_from_slice(&self.offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.len.to_be_bytes());
        out[12..16].copy_from_slice(&self.head.to_be_bytes());
        out[16..20].copy_from_slice(&self.head_sum.to_be_bytes());
        out[20..24].copy_from_slice(&self.body_sum.to_be_bytes());
        out[24..].copy_from_slice(&self.tile.to_be_bytes());
        out
    }

    /// Tile `tile`'s index record.
    fn from_bytes(bytes: &[u8], tile: u64) -> Result<Self, StoreError> {
        let malformed = StoreError::Malformed {
            what: "a tile's index record is not 32 bytes, names a header longer than the tile, or names another tile",
        };
        if bytes.len() != TILE_INDEX_BYTES {
            return Err(malformed);
        }
        let ix = Self {
            offset: be_u64(&bytes[..8])?,
            len: be_u32(&bytes[8..12]),
            head: be_u32(&bytes[12..16]),
            head_sum: be_u32(&bytes[16..20]),
            body_sum: be_u32(&bytes[20..24]),
            tile: be_u64(&bytes[24..])?,
        };
        ix.checked(tile).ok_or(malformed)
    }

    /// Itself, when it is tile `tile`'s and names a header within a record
    /// that ends within a u64 offset.
    fn checked(self, tile: u64) -> Option<Self> {
        let fits = self.tile == tile
            && self.head <= self.len
            && self.offset.checked_add(u64::from(self.len)).is_some();
        fits.then_some(self)
    }

    /// Where tile `tile`'s index record, of this layout or the `tiles/2`
    /// one (a store being converted), says the tile ends in the tiles file.
    fn end_of_any(bytes: &[u8], tile: u64) -> Result<u64, StoreError> {
        if bytes.len() == SHA256_INDEX_BYTES {
            Ok(Sha256Index::from_bytes(bytes, tile)?.place.end())
        } else {
            Ok(Self::from_bytes(bytes, tile)?.end())
        }
    }
}

/// A tile's index record in the `tiles/2` layout: the same place, with
/// SHA-256 checksums ([`log::record_hash`]) of the header and the entries'
/// bytes; read only to convert a store.
struct Sha256Index {
    /// The tile's place (its CRC-32 fields unset).
    place: TileIndex,
    head_sum: Hash,
    body_sum: Hash,
}

impl Sha256Index {
    /// Tile `tile`'s `tiles/2` index record: offset (u64 BE), length and
    /// header length (u32 BE each), the two SHA-256 checksums, the tile.
    fn from_bytes(bytes: &[u8], tile: u64) -> Result<Self, StoreError> {
        let malformed = StoreError::Malformed {
            what: "a tile's tiles/2 index record is not 88 bytes, names a header longer than the tile, or names another tile",
        };
        if bytes.len() != SHA256_INDEX_BYTES {
            return Err(malformed);
        }
        let place = TileIndex {
            offset: be_u64(&bytes[..8])?,
            len: be_u32(&bytes[8..12]),
            head: be_u32(&bytes[12..16]),
            head_sum: 0,
            body_sum: 0,
            tile: be_u64(&bytes[80..])?,
        };
        Ok(Self {
            place: place.checked(tile).ok_or(malformed)?,
            head_sum: hash_at(&bytes[16..48]),
            body_sum: hash_at(&bytes[48..80]),
        })
    }

    /// The record's bytes (for tests that write a `tiles/2` store).
    #[cfg(test)]
    fn to_bytes(&self) -> [u8; SHA256_INDEX_BYTES] {
        let mut out = [0u8; SHA256_INDEX_BYTES];
        out[..8].copy_from_slice(&self.place.offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.place.len.to_be_bytes());
        out[12..16].copy_from_slice(&self.place.head.to_be_bytes());
        out[16..48].copy_from_slice(&self.head_sum.0);
        out[48..80].copy_from_slice(&self.body_sum.0);
        out[80..].copy_from_slice(&self.place.tile.to_be_bytes());
        out
    }
}

/// How much of a tile a read needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The header: its tree hashes.
    Head,
    /// All of it: its entries too.
    Whole,
}

/// The tiles file, shared by a store's clones.
struct TileFile {
    file: File,
    path: PathBuf,
    /// Held shared by a read from looking up a tile's index record to
    /// reading its bytes, and exclusively while a truncation cuts the file
    /// (after committing that the tiles are gone): a read never finds
    /// bytes that are cut off, or written over, before it reads them.
    gate: RwLock<()>,
    /// Tiles (whole, or headers) read and checked lately, the latest first,
    /// keyed by the whole index record. A truncation that drops tiles
    /// empties it: CRC-32 checksums do not tell a tile written again at
    /// the same place from one an attacker made to collide.
    cache: Mutex<VecDeque<(TileIndex, sled::IVec)>>,
}

impl TileFile {
    /// Opens (creating) the tiles file in `dir`.
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(TILES_FILE);
        let io = |what| {
            let path = path.clone();
            move |source| StoreError::TileIo { path, what, source }
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("opening"))?;
        // The file's name must be on disk before any tile in it is; synced
        // at every open, as a process that created it may have died
        // before its sync.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing the directory that holds it"))?;
        Ok(Self {
            file,
            path,
            gate: RwLock::new(()),
            cache: Mutex::new(VecDeque::new()),
        })
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::TileIo {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self
            .file
            .metadata()
            .map_err(self.io("reading its length"))?
            .len())
    }

    /// Holds off truncations of the file while a read finds and reads a
    /// tile.
    fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        // The lock guards no data: a panic while it was held broke nothing.
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VecDeque<(TileIndex, sled::IVec)>> {
        // Every change to the cache leaves it valid: a panic while it was
        // held broke nothing.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `part` of tile `tile`, which `ix` says where to find: read, checked
    /// against its checksums, kept for the next read.
    fn read(&self, tile: u64, ix: &TileIndex, part: Part) -> Result<sled::IVec, StoreError> {
        let head = ix.head as usize;
        {
            let mut cache = self.cache();
            let hit = cache.iter().position(|(k, bytes)| {
                k == ix && (part == Part::Head || bytes.len() == ix.len as usize)
            });
            if let Some(at) = hit {
                if let Some(item) = cache.remove(at) {
                    let bytes = match part {
                        Part::Head => item.1.subslice(0, head),
                        Part::Whole => item.1.clone(),
                    };
                    cache.push_front(item);
                    return Ok(bytes);
                }
            }
        }
        // A damaged index record may name any length: it is read only
        // when the file holds that many bytes there.
        if ix.end() > self.len()? {
            return Err(self.damaged(tile, "its index names bytes past the end of the file"));
        }
        let want = match part {
            Part::Head => head,
            Part::Whole => ix.len as usize,
        };
        let mut buf = vec![0u8; want];
        self.file
            .read_exact_at(&mut buf, ix.offset)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::UnexpectedEof => self.damaged(tile, "the file ends inside it"),
                _ => self.io("reading a tile")(source),
            })?;
        if crc32fast::hash(&buf[..head]) != ix.head_sum
            || (part == Part::Whole && crc32fast::hash(&buf[head..]) != ix.body_sum)
        {
            return Err(self.damaged(tile, "its bytes do not match their checksum"));
        }
        let bytes = sled::IVec::from(buf);
        let mut cache = self.cache();
        cache.push_front((*ix, bytes.clone()));
        let mut total: usize = cache.iter().map(|(_, b)| b.len()).sum();
        while cache.len() > CACHED_TILES || (total > CACHED_TILE_BYTES && cache.len() > 1) {
            if let Some((_, b)) = cache.pop_back() {
                total -= b.len();
            }
        }
        Ok(bytes)
    }

    fn damaged(&self, tile: u64, why: &'static str) -> StoreError {
        StoreError::TileDamaged {
            tile,
            path: self.path.clone(),
            why,
        }
    }

    /// Writes `bytes` at `offset` (the committed end) and syncs them:
    /// two writes for [`Store::crash_after_writes`].
    fn append(&self, store: &Store, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        store.write_allowed()?;
        self.file
            .write_all_at(bytes, offset)
            .map_err(self.io("writing tiles"))?;
        store.write_allowed()?;
        self.file.sync_data().map_err(self.io("syncing tiles"))
    }

    /// Cuts the file to `len` bytes and syncs it.
    fn cut(&self, len: u64) -> Result<(), StoreError> {
        self.file
            .set_len(len)
            .map_err(self.io("cutting it short"))?;
        self.file.sync_data().map_err(self.io("syncing it"))
    }
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

/// The u32 (BE) in `bytes`, which are 4 (the caller slices them).
fn be_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    u32::from_be_bytes(b)
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
    /// In a full tile (whole, or its header as asked), at this slot.
    Tile(sled::IVec, usize),
    /// In its own record.
    Single(sled::IVec),
}

/// Full tiles on their way to the tiles file: their records back to back,
/// and each one's index record with offsets from the first.
#[derive(Default)]
struct TilesWritten {
    bytes: Vec<u8>,
    tiles: Vec<(u64, TileIndex)>,
}

impl TilesWritten {
    /// Adds tile `tile`'s record.
    fn push(&mut self, tile: u64, record: &[u8]) -> Result<(), StoreError> {
        let ix = TileIndex::of(tile, self.bytes.len() as u64, record)?;
        self.bytes.extend_from_slice(record);
        self.tiles.push((tile, ix));
        Ok(())
    }

    /// Adds tile `tile` of these entries and the tree hashes they completed.
    fn push_entries<'a>(
        &mut self,
        tile: u64,
        hashes: &[Hash],
        entries: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        let at = self.bytes.len();
        tile_record_into(&mut self.bytes, hashes, entries);
        let ix = TileIndex::of(tile, at as u64, &self.bytes[at..])?;
        self.tiles.push((tile, ix));
        Ok(())
    }
}

/// One entry on its way into a record: its bytes and the tree hashes it
/// completed.
struct Staged<'a> {
    bytes: &'a [u8],
    hashes: &'a [Hash],
}

impl Store {
    /// Opens (creating) the store in directory `dir`. A store of an older
    /// layout is converted first (logged); tile bytes that an append left
    /// past the committed end of the tiles file are cut off.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has it open;
    /// [`StoreError::Format`] for a layout this version does not know;
    /// [`StoreError::TilesCut`] when the tiles file is shorter than the
    /// store's tiles need.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, u64::MAX, MIGRATE_TILES_PER_BATCH)
    }

    /// [`Store::open`], with [`Store::crash_after_writes`] set to
    /// `writes_left` from the start (a crash during the conversion) and
    /// `tiles_per_batch` tiles per batch of the conversion.
    fn open_with(dir: &Path, writes_left: u64, tiles_per_batch: u64) -> Result<Self, StoreError> {
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
        // A layout this version does not know is refused before the tiles
        // file is made: a refused store is left as it was.
        let format = tree.get(meta("format"))?;
        if let Some(f) = &format {
            if ![FORMAT, FORMAT_SHA256_SUMS, FORMAT_TILES_IN_SLED].contains(&f.as_ref()) {
                return Err(StoreError::Format {
                    dir: dir.to_owned(),
                    found: String::from_utf8_lossy(f).into_owned(),
                });
            }
        }
        let store = Self {
            db,
            tree,
            tiles: Arc::new(TileFile::open(dir)?),
            writer: Arc::new(Mutex::new(())),
            leaf_index: true,
            tiled: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            writes_left: Arc::new(std::sync::atomic::AtomicU64::new(writes_left)),
            unflushed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            truncations: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            #[cfg(test)]
            between_reads: Arc::new(Mutex::new(None)),
        };
        store.load_tiled()?;
        store.check_tiles_file()?;
        if format.as_deref() != Some(FORMAT) {
            store.migrate(dir, tiles_per_batch)?;
        }
        Ok(store)
    }

    /// Checks the tiles file's length against the committed one: bytes
    /// beyond it (an append that died before its commit) are cut off,
    /// fewer is a corrupt store.
    fn check_tiles_file(&self) -> Result<(), StoreError> {
        let committed = self.tile_bytes()?;
        let found = self.tiles.len()?;
        if found > committed {
            tracing::warn!(
                "{}: {} bytes past the end of the stored tiles (an append that did not finish): cutting them off",
                self.tiles.path.display(),
                found - committed
            );
            self.tiles.cut(committed)?;
        } else if found < committed {
            // The first tile that does not fit: index records are in tile
            // order, and so are the tiles in the file.
            let mut tile = 0;
            for item in self.tree.range(key(b'i', 0)..=key(b'i', u64::MAX)).rev() {
                let (k, v) = item?;
                let t = be_u64(&k[1..])?;
                if TileIndex::end_of_any(&v, t)? <= found {
                    break;
                }
                tile = t;
            }
            return Err(StoreError::TilesCut {
                path: self.tiles.path.clone(),
                tile,
                found,
                committed,
            });
        }
        Ok(())
    }

    /// The committed length of the tiles file.
    fn tile_bytes(&self) -> Result<u64, StoreError> {
        match self.tree.get(meta("tile_bytes"))? {
            Some(v) => be_u64(&v),
            None => Ok(0),
        }
    }

    /// Converts an older store to this layout, `per_batch` tiles per
    /// atomic batch (each after the tiles file is synced), then marks it
    /// with the format. First the `tiles/2` index records (SHA-256
    /// checksums) are replaced by this layout's; then the tile records kept in sled (`tiles/1`,
    /// or a conversion of a store before tiles that an older version left
    /// half done) move to the tiles file; then entries in single records
    /// before the partial tile (a store before tiles) fold into tiles. A
    /// crash leaves a store the next open converts on from where it is.
    fn migrate(&self, dir: &Path, per_batch: u64) -> Result<(), StoreError> {
        let _writer = self.lock_writer();
        let per_batch = usize::try_from(per_batch.max(1)).unwrap_or(usize::MAX);
        self.reindex_sha256_tiles(dir, per_batch)?;
        let in_sled = self.tree.scan_prefix([b't']).count();
        if in_sled > 0 {
            tracing::info!(
                "{}: moving {in_sled} full tiles of the chain store out of sled into {TILES_FILE}",
                dir.display()
            );
        }
        loop {
            let next = match self
                .tree
                .range(key(b'i', 0)..=key(b'i', u64::MAX))
                .next_back()
            {
                Some(item) => be_u64(&item?.0[1..])? + 1,
                None => 0,
            };
            let records = self
                .tree
                .range(key(b't', 0)..=key(b't', u64::MAX))
                .take(per_batch)
                .collect::<Result<Vec<_>, _>>()?;
            if records.is_empty() {
                break;
            }
            let mut written = TilesWritten::default();
            let mut batch = sled::Batch::default();
            for (t, (k, record)) in (next..).zip(&records) {
                if be_u64(&k[1..])? != t {
                    return Err(StoreError::Malformed {
                        what: "the tiles kept in sled do not follow the tiles in the tiles file",
                    });
                }
                written.push(t, record)?;
                batch.remove(k);
            }
            self.write_tiles(written, &mut batch)?;
            self.commit(batch, false)?;
        }
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
            let to = full.min(tiled + per_batch as u64 * TILE);
            let mut batch = sled::Batch::default();
            let mut singles = Vec::new();
            for n in tiled..to {
                let r = self
                    .tree
                    .get(key(b'e', n))?
                    .ok_or(StoreError::Missing(Missing::Entry(n)))?;
                singles.push(r);
                batch.remove(&key(b'e', n));
            }
            let mut written = TilesWritten::default();
            let mut hashes = Vec::new();
            for (t, records) in (tiled / TILE..).zip(singles.chunks(TILE as usize)) {
                hashes.clear();
                let mut bytes = Vec::with_capacity(records.len());
                for r in records {
                    hashes.extend(hashes_of(r)?);
                    bytes.push(&r[entry_of(r)?]);
                }
                written.push_entries(t, &hashes, bytes.iter().copied())?;
            }
            batch.insert(meta("tiled"), &to.to_be_bytes());
            self.write_tiles(written, &mut batch)?;
            self.commit(batch, false)?;
            self.set_tiled(to);
            tiled = to;
        }
        self.write_allowed()?;
        self.tree.insert(meta("format"), FORMAT)?;
        self.db.flush()?;
        if in_sled > 0 || full > 0 {
            tracing::info!(
                "{}: chain store converted: {full} entries in tiles in {TILES_FILE}",
                dir.display()
            );
        }
        Ok(())
    }

    /// Replaces every `tiles/2` index record (88 bytes, SHA-256 checksums)
    /// by one of this layout (CRC-32 checksums of the same bytes),
    /// `per_batch` per atomic batch. Each tile is read and checked against
    /// its SHA-256 checksums first: a header or entries that do not match
    /// get a CRC-32 that does not match them either (logged), so the tile
    /// stays refused as damaged instead of being vouched for; a record
    /// naming bytes past the end of the file keeps naming them (refused
    /// when read).
    fn reindex_sha256_tiles(&self, dir: &Path, per_batch: usize) -> Result<(), StoreError> {
        let is_old = |item: &Result<(sled::IVec, sled::IVec), sled::Error>| {
            item.as_ref()
                .map_or(true, |(_, v)| v.len() == SHA256_INDEX_BYTES)
        };
        let old = self
            .tree
            .range(key(b'i', 0)..=key(b'i', u64::MAX))
            .filter(is_old)
            .count();
        if old == 0 {
            return Ok(());
        }
        tracing::info!(
            "{}: indexing {old} full tiles of the chain store again with CRC-32 checksums (tiles/2 to tiles/3)",
            dir.display()
        );
        let file_len = self.tiles.len()?;
        let mut from = 0;
        loop {
            let records = self
                .tree
                .range(key(b'i', from)..=key(b'i', u64::MAX))
                .filter(is_old)
                .take(per_batch)
                .collect::<Result<Vec<_>, _>>()?;
            let Some((last, _)) = records.last() else {
                break;
            };
            from = be_u64(&last[1..])?.saturating_add(1);
            let mut batch = sled::Batch::default();
            for (k, v) in &records {
                let t = be_u64(&k[1..])?;
                let old = Sha256Index::from_bytes(v, t)?;
                let ix = self.crc_index(&old, file_len)?;
                batch.insert(k, &ix.to_bytes()[..]);
            }
            self.commit(batch, false)?;
        }
        Ok(())
    }

    /// The index record of this layout for the tile `old` names, its
    /// checksums computed from the tile's bytes (deliberately wrong for a
    /// part that does not match its SHA-256 checksum).
    fn crc_index(&self, old: &Sha256Index, file_len: u64) -> Result<TileIndex, StoreError> {
        let place = old.place;
        if place.end() > file_len {
            return Ok(place);
        }
        let mut buf = vec![0u8; place.len as usize];
        self.tiles
            .file
            .read_exact_at(&mut buf, place.offset)
            .map_err(self.tiles.io("reading a tile to convert it"))?;
        let (head, body) = buf.split_at(place.head as usize);
        let sum = |part: &[u8], sha: &Hash, what: &str| {
            let crc = crc32fast::hash(part);
            if log::record_hash(part) == *sha {
                crc
            } else {
                tracing::warn!(
                    "{}: tile {} (entries {} on): its {what} does not match its SHA-256 checksum: it stays refused as damaged",
                    self.tiles.path.display(),
                    place.tile,
                    place.tile * TILE
                );
                !crc
            }
        };
        Ok(TileIndex {
            head_sum: sum(head, &old.head_sum, "header"),
            body_sum: sum(body, &old.body_sum, "entries"),
            ..place
        })
    }

    /// Writes the tiles in `written` at the committed end of the tiles file
    /// and syncs them, and adds to `batch` their index records and the new
    /// committed length. Nothing to write: nothing done.
    fn write_tiles(
        &self,
        written: TilesWritten,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        if written.tiles.is_empty() {
            return Ok(());
        }
        let at = self.tile_bytes()?;
        self.tiles.append(self, at, &written.bytes)?;
        for (t, mut ix) in written.tiles {
            ix.offset += at;
            batch.insert(&key(b'i', t), &ix.to_bytes()[..]);
        }
        let end = at + written.bytes.len() as u64;
        batch.insert(meta("tile_bytes"), &end.to_be_bytes());
        Ok(())
    }

    /// Serializes writes of entries.
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        // The lock guards no data: a panic while it was held broke nothing.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fault injection for crash tests: after `n` more writes (each insert,
    /// atomic batch, write of tiles to the tiles file and sync of it counts
    /// one), every write fails with
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
        if self.unflushed.load(Ordering::SeqCst) {
            return Err(StoreError::Unflushed);
        }
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
    fn record(&self, n: u64, part: Part) -> Result<Option<Record>, StoreError> {
        let mut tiled = self.cached_tiled();
        for last in [false, true] {
            let found = if n < tiled {
                self.tile(n / TILE, part)?
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

    /// `part` of full tile `t`, if the store holds it.
    fn tile(&self, t: u64, part: Part) -> Result<Option<sled::IVec>, StoreError> {
        let _gate = self.tiles.shared();
        let Some(ix) = self.tree.get(key(b'i', t))? else {
            return Ok(None);
        };
        let ix = TileIndex::from_bytes(&ix, t)?;
        self.tiles.read(t, &ix, part).map(Some)
    }

    /// Appends entries at the current size; with `flush`, waits until they
    /// are on disk. The tiles it fills (with the partial tile's earlier
    /// entries folded in) are written to the tiles file and synced first;
    /// then one atomic write: their index records, the other entries'
    /// records, tree hashes, leaf index and the new size.
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
        let _writer = self.lock_writer();
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
        // Writes in the batch, for [`Store::help_reclaim`].
        let mut ops = 0;
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
                ops += 1;
            }
        }
        starts.push(pending.hashes.len());
        let staged = |j: usize| Staged {
            bytes: entries[j].as_bytes(),
            hashes: &pending.hashes[starts[j]..starts[j + 1]],
        };
        // Tiles this append fills: earlier single records folded in. Their
        // bytes are reserved at once (a bulk append writes megabytes; grown
        // by doubling they were copied again and again).
        let mut written = TilesWritten::default();
        let filled = usize::try_from(new_tiled.saturating_sub(tiled) / TILE).unwrap_or(0);
        let body: usize = entries.iter().map(|e| e.as_bytes().len()).sum();
        written.bytes.reserve(body + filled * TILE_HEAD_ESTIMATE);
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
                ops += 1;
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
            written.push_entries(t, &hashes, bytes.into_iter())?;
            t += 1;
        }
        self.write_tiles(written, &mut batch)?;
        for n in size.max(new_tiled)..new_size {
            let s = staged(usize::try_from(n - size).unwrap_or(usize::MAX));
            batch.insert(&key(b'e', n), single_record(&s));
            ops += 1;
        }
        batch.insert(meta("size"), &new_size.to_be_bytes());
        if new_tiled != tiled {
            batch.insert(meta("tiled"), &new_tiled.to_be_bytes());
        }
        self.commit(batch, flush)?;
        self.set_tiled(new_tiled);
        self.help_reclaim(ops);
        Ok(new_size)
    }

    /// Lets sled free what `inserts` random inserts left behind. sled frees
    /// replaced pages through an epoch collector that runs a bounded step
    /// (a few hundred objects) every 128 pins of its threads; a bulk append
    /// of random leaf-index keys leaves more than the later reads pin for,
    /// and it piled up (a node of 1M entries held 4.4 GB, and a store opened
    /// later in the process paid for freeing it). A read of an absent key
    /// is a cheap pin; one per four writes keeps up.
    fn help_reclaim(&self, writes: usize) {
        for _ in 0..writes / 4 {
            // The result does not matter: the read only pins the epoch.
            let _ = self.tree.get(RECLAIM_PROBE);
        }
    }

    /// Applies a batch atomically; with `flush`, waits until it is on disk.
    fn commit(&self, batch: sled::Batch, flush: bool) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.apply_batch(batch)?;
        if flush {
            if let Err(e) = self.db.flush() {
                self.unflushed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The bytes of entry `index`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn entry_bytes(&self, index: u64) -> Result<Option<sled::IVec>, StoreError> {
        match self.record(index, Part::Whole)? {
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
        use std::sync::atomic::Ordering;
        // The tiles and the single records are read apart: a truncation
        // and a different append between the two would mix two chains.
        // A read that a truncation overlapped is done again; after a few,
        // with writes held off.
        for _ in 0..3 {
            let seen = self.truncations.load(Ordering::SeqCst);
            if seen % 2 == 0 {
                let got = self.entries_unchecked(start, end)?;
                if self.truncations.load(Ordering::SeqCst) == seen {
                    return Ok(got);
                }
            }
            std::thread::yield_now();
        }
        let _writer = self.lock_writer();
        self.entries_unchecked(start, end)
    }

    /// [`Store::entries`], correct when no truncation runs meanwhile.
    fn entries_unchecked(&self, start: u64, end: u64) -> Result<Vec<sled::IVec>, StoreError> {
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
            // Held from finding the tiles to reading them.
            let _gate = self.tiles.shared();
            for item in self
                .tree
                .range(key(b'i', start / TILE)..=key(b'i', (last - 1) / TILE))
            {
                let (k, ix) = item?;
                let first = be_u64(&k[1..])? * TILE;
                let t = self.tiles.read(
                    first / TILE,
                    &TileIndex::from_bytes(&ix, first / TILE)?,
                    Part::Whole,
                )?;
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
        #[cfg(test)]
        {
            let hook = self
                .between_reads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(hook) = hook {
                hook();
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
    /// single records. One atomic, flushed write drops the tiles' index
    /// records and lowers the tiles file's committed length; then the file
    /// is cut (reads racing this wait for the cut, and never see cut bytes).
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a damaged tile.
    pub fn truncate(&self, size: u64) -> Result<(), StoreError> {
        let _writer = self.lock_writer();
        let old = self.size()?;
        if old <= size {
            return Ok(());
        }
        let _truncating = Truncating::begin(&self.truncations);
        let tiled = self.load_tiled()?;
        let committed = self.tile_bytes()?;
        let mut tile_bytes = committed;
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
            let ix = self
                .tree
                .get(key(b'i', t))?
                .ok_or(StoreError::Missing(Missing::Entry(t * TILE)))?;
            let ix = TileIndex::from_bytes(&ix, t)?;
            tile_bytes = tile_bytes.min(ix.offset);
            batch.remove(&key(b'i', t));
            if t * TILE >= size && !self.leaf_index {
                // Every entry of it goes, and none is in the leaf index:
                // its bytes are not needed (a damaged tile among the
                // entries being dropped does not stop their removal).
                continue;
            }
            let r = self.tiles.read(t, &ix, Part::Whole)?;
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
        }
        batch.insert(meta("size"), &size.to_be_bytes());
        batch.insert(meta("tiled"), &new_tiled.to_be_bytes());
        batch.insert(meta("tile_bytes"), &tile_bytes.to_be_bytes());
        self.commit(batch, true)?;
        self.set_tiled(new_tiled);
        if new_tiled < tiled {
            // Reads that looked a dropped tile up before the commit are
            // done once the gate is ours, and later ones find the new
            // index: the cache holds no tile written before, whose index
            // a tile written again at the same place could match (CRC-32
            // checksums can be made to collide).
            let _gate = self.tiles.exclusive();
            self.tiles.cache().clear();
            if tile_bytes < committed {
                // After the commit: a crash before the cut leaves bytes
                // past the committed end, cut off at the next open.
                self.write_allowed()?;
                self.tiles.cut(tile_bytes)?;
            }
        }
        Ok(())
    }

    /// Iterates the stored tree hashes in stored-hash index order.
    pub fn stored_hashes(&self) -> impl Iterator<Item = Result<(u64, Hash), StoreError>> + '_ {
        let tiles = self
            .tree
            .range(key(b'i', 0)..=key(b'i', u64::MAX))
            .filter_map(|item| {
                let header = |item: Result<(sled::IVec, sled::IVec), sled::Error>| {
                    let t = be_u64(&item?.0[1..])?;
                    // Looked up again under the gate: a truncation may
                    // have dropped it since the scan found it.
                    let Some(r) = self.tile(t, Part::Head)? else {
                        return Ok(None);
                    };
                    let first = log::stored_hash_index(0, t * TILE);
                    let hashes: Vec<Hash> = TileRecord::parse(&r)?.hashes().collect();
                    Ok(Some((first, hashes)))
                };
                header(item).transpose()
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

    /// Bytes the store uses on disk: sled's files and the tiles file.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.tiles.len()?)
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

/// A tile record of [`TILE`] entries and the tree hashes they completed
/// (the tests write old layouts with it).
#[cfg(test)]
fn tile_record<'a>(hashes: &[Hash], entries: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut record = Vec::new();
    tile_record_into(&mut record, hashes, entries);
    record
}

/// [`tile_record`], written at the end of `record`.
fn tile_record_into<'a>(
    record: &mut Vec<u8>,
    hashes: &[Hash],
    entries: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    let entries: Vec<&[u8]> = entries.collect();
    let total: usize = entries.iter().map(|e| e.len()).sum();
    record.reserve(3 + 32 * hashes.len() + 4 * entries.len() + total);
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
                match self.record(n, Part::Head) {
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
                    Ok(None) => Err(TreeError::IndexesNotInTree),
                    Err(e) => {
                        // The tree error cannot carry it: say which record.
                        tracing::error!("reading tree hash {i}: {e}");
                        Err(TreeError::MalformedHash)
                    }
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
        entries_by(7, n)
    }

    /// `n` signed entries by the key of seed `[seed; 32]`.
    fn entries_by(seed: u8, n: u64) -> Vec<Entry> {
        let k = SigningKey::from_bytes(&[seed; 32]);
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

    /// The tiles file's length, checked against the committed one.
    fn tiles_file_len(store: &Store) -> u64 {
        let len = store.tiles.len().unwrap();
        assert_eq!(len, store.tile_bytes().unwrap());
        len
    }

    /// Writes `all` in the layout of an older version: with
    /// `tiles_in_sled`, `tiles/1` (full tiles as sled records); without,
    /// the layout before tiles (one record per entry, no format).
    fn legacy_store(dir: &Path, all: &[Entry], tiles_in_sled: bool) {
        let db = sled::open(dir).unwrap();
        let tree = db.open_tree("chain").unwrap();
        let size = all.len() as u64;
        let full = if tiles_in_sled { size / TILE * TILE } else { 0 };
        let mut tree_hashes = MemoryHashes::new();
        let mut tile_hashes = Vec::new();
        let mut tile_entries: Vec<&[u8]> = Vec::new();
        for (n, e) in (0u64..).zip(all) {
            let hashes =
                log::stored_hashes_for_record_hash(n, e.leaf_hash(), &tree_hashes).unwrap();
            tree_hashes.append(e.leaf_hash()).unwrap();
            if n < full {
                tile_hashes.extend(hashes);
                tile_entries.push(e.as_bytes());
                if tile_entries.len() == TILE as usize {
                    let record = tile_record(&tile_hashes, tile_entries.drain(..));
                    tree.insert(key(b't', n / TILE), record).unwrap();
                    tile_hashes.clear();
                }
            } else {
                let record = single_record(&Staged {
                    bytes: e.as_bytes(),
                    hashes: &hashes,
                });
                tree.insert(key(b'e', n), record).unwrap();
            }
            tree.insert(leaf_key(&e.leaf_hash()), &n.to_be_bytes())
                .unwrap();
        }
        tree.insert(meta("size"), &size.to_be_bytes()).unwrap();
        if tiles_in_sled {
            tree.insert(meta("tiled"), &full.to_be_bytes()).unwrap();
            tree.insert(meta("format"), FORMAT_TILES_IN_SLED).unwrap();
        }
        db.flush().unwrap();
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
        assert_eq!(records(&store, b'i'), 2);
        assert_eq!(records(&store, b'e'), 700 - 512);
        assert_eq!(records(&store, b't'), 0);
        assert!(tiles_file_len(&store) > 2 * 256 * 100);
        drop(store);
        // Reopened, it reads the same.
        let store = Store::open(dir.path()).unwrap();
        check(&store, &all);
    }

    #[test]
    fn a_truncation_that_drops_tiles_forgets_every_tile_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ours = entries(600);
        store.append(&ours, true).unwrap();
        check(&store, &ours);
        assert!(!store.tiles.cache().is_empty(), "reads keep tiles");
        // Not past a tile: what was read stays.
        store.truncate(520).unwrap();
        assert!(!store.tiles.cache().is_empty());
        // Tile 1 dropped: nothing read before is kept (a tile written
        // again where it was could carry colliding CRC-32 checksums).
        store.truncate(300).unwrap();
        assert!(store.tiles.cache().is_empty());
        let theirs = entries_by(9, 600);
        store.append(&theirs[300..], true).unwrap();
        check(&store, &[&ours[..300], &theirs[300..]].concat());
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
        assert_eq!(records(&store, b'i'), 1);
        assert_eq!(records(&store, b'e'), 44);
        // A leaf of the removed entries is no longer indexed.
        assert_eq!(store.index_of(&all[400].leaf_hash()).unwrap(), None);
        store.truncate(200).unwrap();
        check(&store, &all[..200]);
        assert_eq!(records(&store, b'i'), 0);
        assert_eq!(tiles_file_len(&store), 0);
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
        legacy_store(dir.path(), &all, false);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
        assert_eq!(records(&store, b'i'), 2);
        assert_eq!(records(&store, b't'), 0);
        assert_eq!(records(&store, b'e'), 600 - 512);
        tiles_file_len(&store);
        check(&store, &all);
    }

    #[test]
    fn a_store_with_its_tiles_in_sled_is_converted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(700);
        legacy_store(dir.path(), &all, true);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
        assert_eq!(records(&store, b't'), 0);
        assert_eq!(records(&store, b'i'), 2);
        assert_eq!(records(&store, b'e'), 700 - 512);
        tiles_file_len(&store);
        check(&store, &all);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        check(&store, &all);
    }

    #[test]
    fn a_conversion_that_crashes_resumes_on_the_next_open() {
        let all = entries(800);
        for tiles_in_sled in [true, false] {
            // One tile per batch, three tiles: three batches of a tiles
            // file write, its sync and the sled batch; then the format.
            let mut crashed = 0;
            for writes in 0..11u64 {
                let dir = tempfile::tempdir().unwrap();
                legacy_store(dir.path(), &all, tiles_in_sled);
                match Store::open_with(dir.path(), writes, 1) {
                    Err(StoreError::Crashed) => crashed += 1,
                    other => assert!(other.is_ok(), "{writes} writes: {:?}", other.err()),
                }
                let store = Store::open(dir.path()).unwrap();
                assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
                assert_eq!(records(&store, b't'), 0, "{writes} writes");
                assert_eq!(records(&store, b'i'), 3, "{writes} writes");
                tiles_file_len(&store);
                check(&store, &all);
            }
            assert_eq!(crashed, 10, "tiles in sled: {tiles_in_sled}");
        }
    }

    /// Rewrites the tile index records of the store in `dir` (of this
    /// layout) as the `tiles/2` layout wrote them: 88 bytes, SHA-256
    /// checksums of the bytes in the tiles file.
    fn sha256_store(dir: &Path) {
        let store = Store::open(dir).unwrap();
        let records: Vec<_> = store.tree.scan_prefix([b'i']).map(Result::unwrap).collect();
        for (k, v) in records {
            let ix = TileIndex::from_bytes(&v, be_u64(&k[1..]).unwrap()).unwrap();
            let mut bytes = vec![0u8; ix.len as usize];
            store
                .tiles
                .file
                .read_exact_at(&mut bytes, ix.offset)
                .unwrap();
            let old = Sha256Index {
                place: ix,
                head_sum: log::record_hash(&bytes[..ix.head as usize]),
                body_sum: log::record_hash(&bytes[ix.head as usize..]),
            };
            store.tree.insert(k, &old.to_bytes()[..]).unwrap();
        }
        store.set_meta("format", FORMAT_SHA256_SUMS).unwrap();
        store.flush().unwrap();
    }

    /// The lengths of the tile index records of `store`.
    fn index_lengths(store: &Store) -> Vec<usize> {
        store
            .tree
            .scan_prefix([b'i'])
            .map(|item| item.unwrap().1.len())
            .collect()
    }

    #[test]
    fn a_store_with_sha256_tile_checksums_is_converted_on_open() {
        let all = entries(800);
        // Converted whole, or after a crash at any write (one tile per
        // batch, three tiles: three batches, then the format).
        let mut crashed = 0;
        for writes in [u64::MAX, 0, 1, 2, 3] {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = Store::open(dir.path()).unwrap();
                store.append(&all, true).unwrap();
            }
            sha256_store(dir.path());
            match Store::open_with(dir.path(), writes, 1) {
                Err(StoreError::Crashed) => crashed += 1,
                Ok(store) => assert_eq!(index_lengths(&store), vec![TILE_INDEX_BYTES; 3]),
                Err(e) => panic!("{writes} writes: {e:?}"),
            }
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
            assert_eq!(index_lengths(&store), vec![TILE_INDEX_BYTES; 3]);
            tiles_file_len(&store);
            check(&store, &all);
        }
        assert_eq!(crashed, 4);
        // A tile damaged before the conversion stays refused after it.
        let dir = tempfile::tempdir().unwrap();
        let one = {
            let store = Store::open(dir.path()).unwrap();
            store.append(&all, true).unwrap();
            TileIndex::from_bytes(&store.tree.get(key(b'i', 1)).unwrap().unwrap(), 1).unwrap()
        };
        sha256_store(dir.path());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join(TILES_FILE))
            .unwrap();
        let mut b = [0u8];
        file.read_exact_at(&mut b, one.end() - 3).unwrap();
        file.write_all_at(&[b[0] ^ 4], one.end() - 3).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta("format").unwrap().unwrap().as_ref(), FORMAT);
        assert!(matches!(
            store.entry_bytes(300),
            Err(StoreError::TileDamaged { tile: 1, .. })
        ));
        assert_eq!(store.entries(0, 256).unwrap().len(), 256);
        assert_eq!(store.entries(512, 800).unwrap().len(), 288);
        // Its header (the tree hashes) was intact and still reads.
        let mut tree = MemoryHashes::new();
        for e in &all {
            tree.append(e.leaf_hash()).unwrap();
        }
        assert_eq!(store.root(800).unwrap(), tree.root().unwrap());
        // A tiles/2 index record cut short is a corrupt store, not a panic.
        let v = Sha256Index::from_bytes(
            &Sha256Index {
                place: one,
                head_sum: Hash([0; 32]),
                body_sum: Hash([0; 32]),
            }
            .to_bytes(),
            1,
        );
        assert!(v.is_ok());
        assert!(Sha256Index::from_bytes(&[0u8; 87], 1).is_err());
        assert!(Sha256Index::from_bytes(
            &Sha256Index {
                place: one,
                head_sum: Hash([0; 32]),
                body_sum: Hash([0; 32]),
            }
            .to_bytes(),
            2
        )
        .is_err());
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.set_meta("format", b"tiles/9").unwrap();
            store.flush().unwrap();
        }
        // A later layout may keep its tiles elsewhere: refused without
        // making or cutting a tiles file.
        std::fs::remove_file(dir.path().join(TILES_FILE)).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Format { found, .. }) if found == "tiles/9"
        ));
        assert!(!dir.path().join(TILES_FILE).exists());
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
        // Through the store: a tile of the wrong format with a matching
        // checksum is a corrupt store, not a panic.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.append(&all, true).unwrap();
        let ix = TileIndex::from_bytes(&store.tree.get(key(b'i', 0)).unwrap().unwrap(), 0).unwrap();
        let mut stored = vec![0u8; ix.len as usize];
        store
            .tiles
            .file
            .read_exact_at(&mut stored, ix.offset)
            .unwrap();
        stored[0] = 9;
        let forged = TileIndex {
            head_sum: crc32fast::hash(&stored[..ix.head as usize]),
            ..ix
        };
        store.tiles.file.write_all_at(&stored, ix.offset).unwrap();
        store
            .tree
            .insert(key(b'i', 0), &forged.to_bytes()[..])
            .unwrap();
        assert!(matches!(
            store.entry_bytes(3),
            Err(StoreError::Malformed { .. })
        ));
        assert!(store.entries(0, 10).is_err());
        assert!(store.root(256).is_err());
        // An index record cut short, or naming a header longer than the tile.
        assert!(TileIndex::from_bytes(&forged.to_bytes()[..31], 0).is_err());
        let longer = TileIndex {
            head: ix.len + 1,
            ..ix
        };
        assert!(TileIndex::from_bytes(&longer.to_bytes(), 0).is_err());
        // An index record read under another tile's key.
        assert!(TileIndex::from_bytes(&ix.to_bytes(), 1).is_err());
    }

    #[test]
    fn a_damaged_index_record_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.append(&entries(600), true).unwrap();
        let index =
            |t: u64| TileIndex::from_bytes(&store.tree.get(key(b'i', t)).unwrap().unwrap(), t);
        let (zero, one) = (index(0).unwrap(), index(1).unwrap());
        // Tile 0's index record copied over tile 1's: its checksums match
        // the bytes it names, but they are not tile 1.
        store
            .tree
            .insert(key(b'i', 1), &zero.to_bytes()[..])
            .unwrap();
        assert!(matches!(
            store.entry_bytes(300),
            Err(StoreError::Malformed { .. })
        ));
        assert!(store.entries(256, 300).is_err());
        // A record naming 4 GiB: refused without reading (or allocating)
        // past the end of the file.
        let huge = TileIndex {
            len: u32::MAX,
            ..one
        };
        store
            .tree
            .insert(key(b'i', 1), &huge.to_bytes()[..])
            .unwrap();
        let err = store.entry_bytes(300).unwrap_err();
        assert!(
            matches!(err, StoreError::TileDamaged { tile: 1, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("past the end of the file"),
            "{err}"
        );
        // The good record back: the tile reads again.
        store
            .tree
            .insert(key(b'i', 1), &one.to_bytes()[..])
            .unwrap();
        assert!(store.entry_bytes(300).unwrap().is_some());
    }

    #[test]
    fn a_damaged_tile_is_refused_and_names_the_tile() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(600);
        let index = |store: &Store, t: u64| {
            TileIndex::from_bytes(&store.tree.get(key(b'i', t)).unwrap().unwrap(), t).unwrap()
        };
        let flip = |at: u64| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.path().join(TILES_FILE))
                .unwrap();
            let mut b = [0u8];
            file.read_exact_at(&mut b, at).unwrap();
            file.write_all_at(&[b[0] ^ 1], at).unwrap();
        };
        let (one, zero) = {
            let store = Store::open(dir.path()).unwrap();
            store.append(&all, true).unwrap();
            (index(&store, 1), index(&store, 0))
        };
        // A byte of tile 1's entries.
        flip(one.end() - 7);
        let store = Store::open(dir.path()).unwrap();
        let err = store.entries(0, 600).unwrap_err();
        assert!(
            matches!(err, StoreError::TileDamaged { tile: 1, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("tile 1 (entries 256..512)"), "{text}");
        assert!(text.contains("checksum"), "{text}");
        assert!(matches!(
            store.entry_bytes(300),
            Err(StoreError::TileDamaged { tile: 1, .. })
        ));
        // Tile 0 and the tree hashes (in the header) are intact.
        assert_eq!(store.entries(0, 256).unwrap().len(), 256);
        let mut tree = MemoryHashes::new();
        for e in &all {
            tree.append(e.leaf_hash()).unwrap();
        }
        assert_eq!(store.root(600).unwrap(), tree.root().unwrap());
        drop(store);
        // A byte of tile 0's hashes: hash reads refuse it too.
        flip(zero.offset + 40);
        let store = Store::open(dir.path()).unwrap();
        // The root at 300 reads the hash of 0..256, in tile 0's header.
        assert!(store.root(300).is_err());
        assert!(matches!(
            store.entry_bytes(0),
            Err(StoreError::TileDamaged { tile: 0, .. })
        ));
        assert!(store.stored_hashes().any(|h| h.is_err()));
    }

    #[test]
    fn a_tiles_file_shorter_than_its_tiles_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(800);
        let len = {
            let store = Store::open(dir.path()).unwrap();
            store.append(&all, true).unwrap();
            tiles_file_len(&store)
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(TILES_FILE))
            .unwrap();
        // Into tile 2, the last.
        file.set_len(len - 1).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(
            matches!(err, StoreError::TilesCut { tile: 2, found, committed, .. } if found == len - 1 && committed == len),
            "{err:?}"
        );
        assert!(err.to_string().contains("tile 2 (entries 512 on)"), "{err}");
        // Gone altogether: tile 0 on.
        std::fs::remove_file(dir.path().join(TILES_FILE)).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TilesCut {
                tile: 0,
                found: 0,
                ..
            })
        ));
    }

    #[test]
    fn a_crash_between_writing_tiles_and_committing_them_is_cut_off_at_open() {
        let all = entries(900);
        // After the tiles file write, after its sync: the sled batch
        // never commits.
        for writes in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let before = {
                let store = Store::open(dir.path()).unwrap();
                store.append(&all[..300], true).unwrap();
                let before = tiles_file_len(&store);
                store.crash_after_writes(writes);
                assert!(matches!(
                    store.append(&all[300..], true),
                    Err(StoreError::Crashed)
                ));
                assert!(store.tiles.len().unwrap() > before);
                before
            };
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(tiles_file_len(&store), before);
            check(&store, &all[..300]);
            store.append(&all[300..], true).unwrap();
            check(&store, &all);
        }
    }

    #[test]
    fn a_range_read_across_a_truncation_and_another_append_returns_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ours = entries(300);
        let theirs = entries_by(8, 300);
        store.append(&ours, false).unwrap();
        // Between the read's tile (0..256) and its single records
        // (256..300): back to 200, and 100 other entries on.
        let writer = store.clone();
        let other = theirs[200..].to_vec();
        *store.between_reads.lock().unwrap() = Some(Box::new(move || {
            writer.truncate(200).unwrap();
            writer.append(&other, false).unwrap();
        }));
        let got = store.entries(0, 300).unwrap();
        assert!(store.between_reads.lock().unwrap().is_none(), "not raced");
        let now: Vec<&[u8]> = ours[..200]
            .iter()
            .chain(&theirs[200..])
            .map(Entry::as_bytes)
            .collect();
        // The chain as it is now (the read began before the truncation
        // and ended after the append): not entries 200..256 of one and
        // 256..300 of the other.
        assert_eq!(got.len(), now.len());
        let differs = got.iter().zip(&now).position(|(g, n)| g.as_ref() != *n);
        assert_eq!(differs, None, "the first entry not of the chain now");
    }

    #[test]
    fn reads_beside_appends_and_truncations_see_whole_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = entries(1200);
        store.append(&all[..100], false).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                let all = all.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let got = store.entries(0, 1200).unwrap();
                        for (e, g) in all.iter().zip(&got) {
                            assert_eq!(g.as_ref(), e.as_bytes());
                        }
                        if let Some(e) = store.entry_bytes(reads % 1200).unwrap() {
                            assert_eq!(e.as_ref(), all[(reads % 1200) as usize].as_bytes());
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for round in 0..20u64 {
            let to = 300 + 45 * round;
            store.append(&all[100..to as usize], false).unwrap();
            store.truncate(100 + 17 * round).unwrap();
            store.truncate(100).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        store.append(&all[100..], true).unwrap();
        check(&store, &all);
    }
}
