//! The chain on disk: one sled `Db`, one tree, keys by prefix, so that a
//! batch of entries, their tree hashes, their leaf index and the new size land
//! in one atomic write.
//!
//! | key | value |
//! |---|---|
//! | `e` + index (u64 BE) | the tree hashes this entry completed, then its bytes |
//! | `l` + leaf hash | index (u64 BE); nodes only, for look-up by hash |
//! | `b` + height (u64 BE) | signed checkpoint note |
//! | `m` + name | metadata: `size`, `state` (JSON), `head`, … |
//!
//! Appending record `n` completes the tree hashes at stored-hash indexes
//! `stored_hash_index(0, n)..` (its leaf, then one per level it closes); they
//! are kept in the entry's own record, so one append is one insert. The hash
//! at level `L`, position `k` lives in record `((k + 1) << L) - 1`.

use std::collections::HashMap;
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

/// The chain store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    leaf_index: bool,
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

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Malformed {
            what: "a stored integer is not 8 bytes",
        })
}

impl Store {
    /// Opens (creating) the store in directory `dir`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = open_sled(dir, 256 << 20).map_err(|e| match e {
            OpenError::Locked => StoreError::Locked {
                dir: dir.to_owned(),
            },
            OpenError::Sled(e) => StoreError::Sled(e),
        })?;
        let tree = db.open_tree("chain")?;
        Ok(Self {
            db,
            tree,
            leaf_index: true,
            writes_left: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        })
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

    /// Stages entry `index` (which must be the current size) into `batch`:
    /// its record and, on nodes, its leaf index.
    ///
    /// # Errors
    /// [`StoreError`] when earlier hashes cannot be read.
    pub fn stage(
        &self,
        batch: &mut sled::Batch,
        pending: &mut HashMap<u64, Hash>,
        index: u64,
        entry: &Entry,
    ) -> Result<(), StoreError> {
        let leaf = entry.leaf_hash();
        let reader = Pending {
            store: self,
            pending,
        };
        let hashes =
            log::stored_hashes_for_record_hash(index, leaf, &reader).map_err(|source| {
                StoreError::Tree {
                    what: "tree hashes",
                    source,
                }
            })?;
        let first = log::stored_hash_index(0, index);
        let mut record = Vec::with_capacity(1 + 32 * hashes.len() + entry.as_bytes().len());
        record.push(u8::try_from(hashes.len()).unwrap_or(u8::MAX));
        for (i, h) in hashes.into_iter().enumerate() {
            record.extend_from_slice(&h.0);
            pending.insert(first + i as u64, h);
        }
        record.extend_from_slice(entry.as_bytes());
        batch.insert(&key(b'e', index), record);
        if self.leaf_index {
            let mut l = vec![b'l'];
            l.extend_from_slice(&leaf.0);
            batch.insert(l, &index.to_be_bytes());
        }
        Ok(())
    }

    /// Applies a staged batch atomically; with `flush`, waits until it is on
    /// disk.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn commit(&self, batch: sled::Batch, flush: bool) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.tree.apply_batch(batch)?;
        if flush {
            self.db.flush()?;
        }
        Ok(())
    }

    /// Appends entries at the current size and flushes.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn append(&self, entries: &[Entry], flush: bool) -> Result<u64, StoreError> {
        let mut size = self.size()?;
        let mut batch = sled::Batch::default();
        let mut pending = HashMap::new();
        for e in entries {
            self.stage(&mut batch, &mut pending, size, e)?;
            size += 1;
        }
        batch.insert(meta("size"), &size.to_be_bytes());
        self.commit(batch, flush)?;
        Ok(size)
    }

    /// The bytes of entry `index`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn entry_bytes(&self, index: u64) -> Result<Option<sled::IVec>, StoreError> {
        self.tree
            .get(key(b'e', index))?
            .map(|r| entry_of(&r).map(|range| r.subslice(range.start, range.len())))
            .transpose()
    }

    /// Entries `[start, end)` as bytes.
    ///
    /// # Errors
    /// [`StoreError`] on I/O or a corrupt record.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<sled::IVec>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.range(key(b'e', start)..key(b'e', end)) {
            let (_, r) = item?;
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
        let mut l = vec![b'l'];
        l.extend_from_slice(&leaf.0);
        self.tree.get(l)?.map(|v| be_u64(&v)).transpose()
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
    /// state snapshot after it, its note (`head`), and the notes of the
    /// blocks up to it. A crash leaves either all of them or none.
    ///
    /// # Errors
    /// [`StoreError`] on I/O; then nothing was written.
    pub fn put_head(
        &self,
        state: &ChainState,
        head: &[u8],
        blocks: &[(u64, &str)],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(state).map_err(StoreError::State)?;
        let mut batch = sled::Batch::default();
        for (height, note) in blocks {
            batch.insert(&key(b'b', *height), note.as_bytes());
        }
        batch.insert(meta("state"), json);
        batch.insert(meta("head"), head);
        self.commit(batch, true)
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
    /// undoes entries that were stored but not verified.
    ///
    /// # Errors
    /// [`StoreError`] on I/O.
    pub fn truncate(&self, size: u64) -> Result<(), StoreError> {
        let old = self.size()?;
        if old <= size {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for item in self.tree.range(key(b'e', size)..key(b'e', old)) {
            let (k, r) = item?;
            let range = entry_of(&r)?;
            let mut l = vec![b'l'];
            l.extend_from_slice(&log::record_hash(&r[range]).0);
            batch.remove(l);
            batch.remove(k);
        }
        batch.insert(meta("size"), &size.to_be_bytes());
        self.commit(batch, true)
    }

    /// Iterates the stored tree hashes in stored-hash index order.
    pub fn stored_hashes(&self) -> impl Iterator<Item = Result<(u64, Hash), StoreError>> + '_ {
        self.tree
            .range(key(b'e', 0)..=key(b'e', u64::MAX))
            .flat_map(|item| {
                let hashes = item.map_err(StoreError::from).and_then(|(k, r)| {
                    let n = be_u64(&k[1..])?;
                    let first = log::stored_hash_index(0, n);
                    Ok(hashes_of(&r)?
                        .enumerate()
                        .map(|(i, h)| (first + i as u64, h))
                        .collect::<Vec<_>>())
                });
                match hashes {
                    Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                }
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

/// Where the entry bytes sit in a record.
fn entry_of(record: &[u8]) -> Result<std::ops::Range<usize>, StoreError> {
    let start = 1 + 32 * usize::from(*record.first().unwrap_or(&0));
    if record.is_empty() || start > record.len() {
        return Err(StoreError::Malformed {
            what: "an entry record is truncated",
        });
    }
    Ok(start..record.len())
}

/// The tree hashes in a record.
fn hashes_of(record: &[u8]) -> Result<impl Iterator<Item = Hash> + '_, StoreError> {
    let end = entry_of(record)?.start;
    Ok(record[1..end].chunks_exact(32).map(|c| {
        let mut h = [0u8; 32];
        h.copy_from_slice(c);
        Hash(h)
    }))
}

impl HashReader for Store {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                let (level, k) = log::split_stored_hash_index(i);
                let n = k
                    .checked_add(1)
                    .and_then(|k| k.checked_shl(u32::from(level)))
                    .and_then(|n| n.checked_sub(1))
                    .ok_or(TreeError::IndexesNotInTree)?;
                match self.tree.get(key(b'e', n)) {
                    Ok(Some(r)) => hashes_of(&r)
                        .map_err(|_| TreeError::MalformedHash)?
                        .nth(usize::from(level))
                        .ok_or(TreeError::IndexesNotInTree),
                    _ => Err(TreeError::IndexesNotInTree),
                }
            })
            .collect()
    }
}

/// Reads hashes from a batch not yet committed, then from the store.
struct Pending<'a> {
    store: &'a Store,
    pending: &'a HashMap<u64, Hash>,
}

impl HashReader for Pending<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                if let Some(h) = self.pending.get(&i) {
                    Ok(*h)
                } else {
                    self.store.read_hashes(&[i]).map(|v| v[0])
                }
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
    let mut attempts = 0;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
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
