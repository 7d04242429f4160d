//! What a replica knows, as of one block: [`ChainView`].
//!
//! A view is the read side of the chain for verification: the block it is
//! taken at (height, time, the signed note and whose cosignatures it
//! carries), the accreditation authorities, the issuers with their names,
//! kinds, periods and key rotations, the status lists (each token decoded
//! at its first lookup and kept, so every later lookup is a bit read), and
//! the anchors, each with the block that first sealed it (what an
//! [`crate::AnchorProof`] is checked against).
//! Sans-IO: a replica makes one from its [`ChainState`] and head block;
//! tests make one from entries they applied themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use sha2::{Digest as _, Sha256};

use crate::chain::{Action, ChainState, Entry, Issuer, Period};
use crate::jws::{Jws, JwsError};
use crate::log::{Block, SignedBlock};
use crate::status_list::{status, StatusList, StatusListClaims, StatusTokenError};

/// A credential's status, read from its status list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "value")]
pub enum Status {
    /// Valid (0).
    Valid,
    /// Revoked (1, "invalid"): final.
    Revoked,
    /// Suspended (2).
    Suspended,
    /// The list is not on the chain, or no token was published for it: the
    /// status is unknown.
    UnknownList,
    /// A value the Token Status List leaves to applications (3 and up).
    Other(u8),
}

impl Status {
    fn from_value(value: u8) -> Status {
        match value {
            status::VALID => Status::Valid,
            status::INVALID => Status::Revoked,
            status::SUSPENDED => Status::Suspended,
            other => Status::Other(other),
        }
    }
}

/// Most characters of a status list URI a message shows.
pub const MAX_SHOWN_URI: usize = 200;

/// A status list URI as messages show it: the credential's issuer chose it,
/// so it is quoted and escaped (`{:?}`: no raw newlines or control
/// characters reach a log line or a page) and cut after
/// [`MAX_SHOWN_URI`] characters.
pub fn shown_uri(uri: &str) -> String {
    match uri.char_indices().nth(MAX_SHOWN_URI) {
        Some((at, _)) => format!("{:?}… ({} bytes in all)", &uri[..at], uri.len()),
        None => format!("{uri:?}"),
    }
}

/// Why a status could not be read. Messages show the list URI with
/// [`shown_uri`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The list belongs to another issuer than the credential's.
    #[error(
        "status list {} belongs to {owner}, not to the credential's issuer {iss}",
        shown_uri(.list)
    )]
    ListIssuer {
        /// The list URI.
        list: String,
        /// Its owner.
        owner: String,
        /// The credential's `iss`.
        iss: String,
    },
    /// The list's current token has expired.
    #[error("status list {}: its token expired at {exp} (now {now})", shown_uri(.list))]
    TokenExpired {
        /// The list URI.
        list: String,
        /// The token's `exp`.
        exp: i64,
        /// The time of the read.
        now: i64,
    },
    /// The index is beyond the list.
    #[error("status list {} has {len} entries; index {idx} is beyond it", shown_uri(.list))]
    Index {
        /// The list URI.
        list: String,
        /// The index asked for.
        idx: u64,
        /// Entries in the list.
        len: u64,
    },
    /// The list's token did not decode (the chain checked it when it was
    /// applied, so this means a corrupted state).
    #[error("status list {}: token does not decode: {why}", shown_uri(.list))]
    Token {
        /// The list URI.
        list: String,
        /// Why.
        #[source]
        why: TokenDecodeError,
    },
}

/// Why a status list token on the chain did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenDecodeError {
    /// Not a compact JWS.
    #[error("{0}")]
    Jws(#[from] JwsError),
    /// A JWS, but not a Status List Token.
    #[error("{0}")]
    Claims(#[from] StatusTokenError),
}

/// Why a view cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The state holds another number of entries than the block seals.
    #[error("the chain state holds {state} entries but block {height} seals {block}")]
    Size {
        /// Entries in the state.
        state: u64,
        /// Height of the block.
        height: u64,
        /// Entries the block seals.
        block: u64,
    },
    /// The state is of another log than the block.
    #[error("the chain state is of log {state:?} but the block of {block:?}")]
    Origin {
        /// The state's origin.
        state: Option<String>,
        /// The block's origin.
        block: String,
    },
    /// An anchor record is of an entry beyond the view's block, or sealed
    /// by a later block.
    #[error("the anchor record of entry {index} is beyond the view's block of {size} entries")]
    AnchorBeyondHead {
        /// The record's log index.
        index: u64,
        /// Entries the view's block seals.
        size: u64,
    },
}

/// A key rotation: the old key was replaced by `new_key` at `time`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The key that replaced it.
    pub new_key: String,
    /// When (the rotate-key entry's time, Unix seconds). From this time on
    /// the old key signs nothing valid.
    pub time: i64,
}

/// A batch anchor as the chain records it, with the block that sealed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnchorRecord {
    /// Log index of the anchor entry.
    pub index: u64,
    /// The issuer that anchored it.
    pub issuer: String,
    /// The entry's time (the issuer's word, bounded by the node's clock).
    pub time: i64,
    /// Status list URI of the batch.
    pub list: String,
    /// Hex Merkle root over the batch.
    pub root: String,
    /// Credentials in the batch.
    pub count: u64,
    /// Lowest status index the batch's credentials use.
    pub first: u64,
    /// Highest status index the batch's credentials use.
    pub last: u64,
    /// Height of the first block that seals the entry.
    pub sealed_height: u64,
    /// That block's time (Unix seconds, the node's clock): the batch was
    /// issued no later than this.
    pub sealed_time: i64,
}

/// A status list's current token, decoded once.
#[derive(Debug, Clone)]
struct DecodedList {
    exp: Option<i64>,
    list: StatusList,
}

#[derive(Debug, Clone)]
struct ListView {
    owner: String,
    /// The current token; `None`: none published yet.
    token: Option<String>,
    /// The token decoded, at the first lookup (`Err`: it did not decode).
    /// Decoding lazily keeps a view of many large lists cheap to make: a
    /// list inflates to at most [`crate::status_list::MAX_LIST_BYTES`], and
    /// only the lists verifications read are inflated, each once.
    decoded: OnceLock<Result<DecodedList, TokenDecodeError>>,
}

impl ListView {
    fn decoded(&self) -> Option<&Result<DecodedList, TokenDecodeError>> {
        let text = self.token.as_deref()?;
        Some(self.decoded.get_or_init(|| {
            let jws = Jws::parse(text)?;
            let claims = StatusListClaims::parse_unverified(&jws)?;
            Ok(DecodedList {
                exp: claims.exp,
                list: claims.list,
            })
        }))
    }
}

/// What a replica knows as of one block. See the module documentation.
#[derive(Debug, Clone)]
pub struct ChainView {
    head: SignedBlock,
    authorities: BTreeSet<String>,
    issuers: BTreeMap<String, Issuer>,
    rotations: BTreeMap<String, Rotation>,
    lists: BTreeMap<String, ListView>,
    anchors: Anchors,
    /// Every anchor record in one slice, made at the first
    /// [`ChainView::anchors`] call.
    flat: OnceLock<Vec<AnchorRecord>>,
}

impl ChainView {
    /// The view of `state`, sealed by `head` (a block whose signatures the
    /// caller verified, e.g. with [`crate::log::TrustPolicy::verify`]).
    /// Status list tokens are decoded at their first lookup, once.
    ///
    /// # Errors
    /// [`ViewError`] when the state is not the one the block seals (another
    /// size or another log).
    pub fn new(state: &ChainState, head: SignedBlock) -> Result<ChainView, ViewError> {
        if state.size != head.block.size {
            return Err(ViewError::Size {
                state: state.size,
                height: head.block.height,
                block: head.block.size,
            });
        }
        if state.origin.as_deref() != Some(head.block.origin.as_str()) {
            return Err(ViewError::Origin {
                state: state.origin.clone(),
                block: head.block.origin.clone(),
            });
        }
        // A rotated key writes nothing after its rotate-key entry (it is no
        // longer an authority, and a rotated issuer key is refused), so its
        // author's last entry time is the rotation time.
        let rotations = state
            .issuers
            .iter()
            .filter_map(|(did, issuer)| {
                let new_key = issuer.rotated_to.clone()?;
                let time = state.authors.get(did).map_or(i64::MIN, |&(_, t)| t);
                Some((did.clone(), Rotation { new_key, time }))
            })
            .collect();
        let lists = state
            .lists
            .iter()
            .map(|(uri, record)| {
                (
                    uri.clone(),
                    ListView {
                        owner: record.owner.clone(),
                        token: record.token.clone(),
                        decoded: OnceLock::new(),
                    },
                )
            })
            .collect();
        Ok(ChainView {
            head,
            authorities: state.authorities.clone(),
            issuers: state.issuers.clone(),
            rotations,
            lists,
            anchors: Anchors::default(),
            flat: OnceLock::new(),
        })
    }

    /// This view with `anchors` as its anchor records (a replica's, kept
    /// with the blocks that sealed them; shared, not copied).
    ///
    /// # Errors
    /// [`ViewError::AnchorBeyondHead`] when a record is of an entry beyond
    /// the view's block or sealed by a later block.
    pub fn with_anchors(mut self, anchors: Anchors) -> Result<ChainView, ViewError> {
        if let Some(index) = anchors.first_outside(&self.head.block) {
            return Err(ViewError::AnchorBeyondHead {
                index,
                size: self.head.block.size,
            });
        }
        self.anchors = anchors;
        self.flat = OnceLock::new();
        Ok(self)
    }

    /// Records the anchor entries among `entries` (log index and entry),
    /// each with the first block that seals it: the earliest of `blocks`
    /// whose tree holds the entry, or else the view's own block. Other
    /// entries are skipped, and so are entries beyond the view's block;
    /// blocks of another log or beyond the view's block are ignored.
    ///
    /// `entries` must be entries of the state this view was made from and
    /// `blocks` blocks of this log the caller verified (signed by the node
    /// and chained up to the view's block), as a replica stores them: the
    /// view takes their times as given. Recording an index twice keeps the
    /// first record.
    pub fn add_anchors<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (u64, &'a Entry)>,
        blocks: &[Block],
    ) {
        let head = &self.head.block;
        let mut sealing: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.origin == head.origin && b.height <= head.height && b.size <= head.size)
            .collect();
        sealing.sort_by_key(|b| (b.size, b.height));
        let mut added = Vec::new();
        for (index, entry) in entries {
            if index >= head.size {
                continue;
            }
            let Action::Anchor {
                list,
                root,
                count,
                first,
                last,
            } = entry.action()
            else {
                continue;
            };
            let at = sealing.partition_point(|b| b.size <= index);
            let sealed_by = sealing.get(at).copied().unwrap_or(head);
            added.push(AnchorRecord {
                index,
                issuer: entry.author().as_str().to_owned(),
                time: entry.time(),
                list: list.clone(),
                root: root.clone(),
                count: *count,
                first: *first,
                last: *last,
                sealed_height: sealed_by.height,
                sealed_time: sealed_by.time,
            });
        }
        if added.is_empty() {
            return;
        }
        // Earlier records first, so that a stable sort and dedup keep the
        // first record of an index.
        let mut all: Vec<AnchorRecord> = self.anchors.iter().cloned().collect();
        all.extend(added);
        all.sort_by_key(|a| a.index);
        all.dedup_by_key(|a| a.index);
        let mut anchors = Anchors::default();
        for record in &all {
            // Sorted and deduplicated, from entries the rules accepted (a
            // root that is not 64 hex digits was refused by them): a record
            // that does not fit is left out rather than recorded wrong.
            if let Err(e) = anchors.push_record(record) {
                debug_assert!(false, "anchor record {}: {e}", record.index);
            }
        }
        self.anchors = anchors;
        self.flat = OnceLock::new();
    }

    /// The block this view is taken at.
    pub fn block(&self) -> &Block {
        &self.head.block
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.head.block.height
    }

    /// The block's time (Unix seconds).
    pub fn time(&self) -> i64 {
        self.head.block.time
    }

    /// How old the view is at `now`, in seconds (negative when the block is
    /// from the future of `now`).
    pub fn age(&self, now: i64) -> i64 {
        now.saturating_sub(self.head.block.time)
    }

    /// Names of the witnesses whose cosignatures on the block verified
    /// under the replica's trust policy.
    pub fn cosigned_by(&self) -> &[String] {
        &self.head.cosigned_by
    }

    /// The block as signed note, with every signature line, for checking
    /// cosignatures under another policy.
    pub fn note(&self) -> &str {
        &self.head.note
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.head.block.origin
    }

    /// The accreditation authorities.
    pub fn authorities(&self) -> &BTreeSet<String> {
        &self.authorities
    }

    /// An issuer key as the chain knows it.
    pub fn issuer(&self, did: &str) -> Option<&Issuer> {
        self.issuers.get(did)
    }

    /// Every issuer key, by did:key.
    pub fn issuers(&self) -> &BTreeMap<String, Issuer> {
        &self.issuers
    }

    /// When and to what `did` was rotated, if it was.
    pub fn rotation(&self, did: &str) -> Option<&Rotation> {
        self.rotations.get(did)
    }

    /// How many status lists this view has inflated so far: each list at
    /// most once, at its first lookup.
    pub fn decoded_lists(&self) -> usize {
        self.lists
            .values()
            .filter(|l| l.decoded.get().is_some())
            .count()
    }

    /// The anchors recorded with [`ChainView::add_anchors`] or
    /// [`ChainView::with_anchors`], by log index. The first call copies
    /// every record into one slice (kept for later calls); look-ups by
    /// index or list ([`ChainView::anchor`], [`ChainView::anchors_of`]) do
    /// not.
    pub fn anchors(&self) -> &[AnchorRecord] {
        self.flat
            .get_or_init(|| self.anchors.iter().cloned().collect())
    }

    /// The anchor records as the view keeps them (shared with the replica
    /// it was made from).
    pub fn anchor_records(&self) -> &Anchors {
        &self.anchors
    }

    /// The anchor recorded for the entry at log index `index`, if that
    /// entry is an anchor.
    pub fn anchor(&self, index: u64) -> Option<&AnchorRecord> {
        self.anchors.get(index)
    }

    /// The anchors recorded for status list `uri`, by log index.
    pub fn anchors_of<'a>(&'a self, uri: &'a str) -> impl Iterator<Item = &'a AnchorRecord> {
        self.anchors.of_list(uri)
    }

    /// The accreditation period of `issuer` covering `kind` at `at`, if any.
    pub fn accreditation(&self, issuer: &str, kind: &str, at: i64) -> Option<&Period> {
        self.issuers.get(issuer)?.periods.iter().find(|p| {
            p.from <= at && p.until.is_none_or(|u| at < u) && p.kinds.iter().any(|k| k == kind)
        })
    }

    /// Whether `a` and `b` are keys of one issuer (equal, or of one
    /// rotation history).
    pub fn same_issuer(&self, a: &str, b: &str) -> bool {
        crate::chain::same_issuer(&self.issuers, a, b)
    }

    /// The status of index `idx` of list `uri` for a credential issued by
    /// `iss`, read at `now`. The list's token is decoded at its first
    /// lookup and kept for the next.
    ///
    /// # Errors
    /// [`StatusError`] when the list is another issuer's, its token has
    /// expired, or `idx` is beyond it.
    pub fn status(&self, iss: &str, uri: &str, idx: u64, now: i64) -> Result<Status, StatusError> {
        let Some(record) = self.lists.get(uri) else {
            return Ok(Status::UnknownList);
        };
        if !self.same_issuer(&record.owner, iss) {
            return Err(StatusError::ListIssuer {
                list: uri.to_owned(),
                owner: record.owner.clone(),
                iss: iss.to_owned(),
            });
        }
        let decoded = match record.decoded() {
            None => return Ok(Status::UnknownList),
            Some(Err(why)) => {
                return Err(StatusError::Token {
                    list: uri.to_owned(),
                    why: why.clone(),
                })
            }
            Some(Ok(decoded)) => decoded,
        };
        if let Some(exp) = decoded.exp.filter(|&exp| now >= exp) {
            return Err(StatusError::TokenExpired {
                list: uri.to_owned(),
                exp,
                now,
            });
        }
        decoded
            .list
            .get(idx)
            .map(Status::from_value)
            .map_err(|_| StatusError::Index {
                list: uri.to_owned(),
                idx,
                len: decoded.list.len(),
            })
    }
}

/// Anchors per chunk of [`Anchors`] (and per encoded chunk a replica
/// stores).
pub const ANCHOR_CHUNK: usize = 4096;

/// The first byte of an encoded anchor chunk: its layout version.
pub const ANCHOR_CHUNK_FORMAT: u8 = 1;

/// Longest string (issuer did:key, list URI) an encoded chunk may hold.
const MAX_CHUNK_STRING: usize = 1024;

/// Bytes of one encoded row: seven 64-bit fields, the root, two string
/// references.
const ROW_BYTES: usize = 7 * 8 + 32 + 2 * 4;

/// Why anchor records could not be added or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorsError {
    /// Anchors are recorded in log order, each index once.
    #[error(
        "anchor of entry {index} recorded after entry {last}: anchors are recorded in log order"
    )]
    OutOfOrder {
        /// The index offered.
        index: u64,
        /// The last index recorded.
        last: u64,
    },
    /// The anchor's root is not 64 lowercase hex digits (the chain's rules
    /// refuse such an anchor).
    #[error("anchor of entry {index}: its root is not 64 lowercase hex digits")]
    Root {
        /// The anchor's log index.
        index: u64,
    },
    /// An encoded chunk is not one [`Anchors::encoded_from`] writes, or does
    /// not follow the chunk before it.
    #[error("anchor chunk at entry {key}: {why}")]
    Chunk {
        /// The chunk's key (the index of its first anchor, as stored).
        key: u64,
        /// What is wrong.
        why: &'static str,
    },
}

/// One anchor, compact: its strings are references into the chunk's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    index: u64,
    time: i64,
    count: u64,
    first: u64,
    last: u64,
    sealed_height: u64,
    sealed_time: i64,
    root: [u8; 32],
    issuer: u32,
    list: u32,
}

/// Up to [`ANCHOR_CHUNK`] anchors in log order, the strings they use, and
/// their [`AnchorRecord`]s once asked for.
#[derive(Debug, Default)]
struct Chunk {
    strings: Vec<Box<str>>,
    rows: Vec<Row>,
    records: OnceLock<Vec<AnchorRecord>>,
}

impl Clone for Chunk {
    /// A copy without the records (they are made again when asked for).
    fn clone(&self) -> Self {
        Chunk {
            strings: self.strings.clone(),
            rows: self.rows.clone(),
            records: OnceLock::new(),
        }
    }
}

impl Chunk {
    /// The reference of `s` among the chunk's strings, added if it is not
    /// one of the last few (the strings of the last anchors come back most
    /// often; a string kept twice costs bytes, not correctness).
    fn string(&mut self, s: &str) -> u32 {
        let n = self.strings.len();
        let found = self
            .strings
            .iter()
            .rev()
            .take(8)
            .position(|x| &**x == s)
            .map(|back| n - 1 - back);
        let at = found.unwrap_or_else(|| {
            self.strings.push(s.into());
            n
        });
        // At most two strings per row and ANCHOR_CHUNK rows.
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    fn text(&self, at: u32) -> &str {
        // References are made by `string` or checked by `decode`.
        usize::try_from(at)
            .ok()
            .and_then(|at| self.strings.get(at))
            .map_or("", |s| s)
    }

    fn records(&self) -> &[AnchorRecord] {
        self.records.get_or_init(|| {
            self.rows
                .iter()
                .map(|r| AnchorRecord {
                    index: r.index,
                    issuer: self.text(r.issuer).to_owned(),
                    time: r.time,
                    list: self.text(r.list).to_owned(),
                    root: root_hex(&r.root),
                    count: r.count,
                    first: r.first,
                    last: r.last,
                    sealed_height: r.sealed_height,
                    sealed_time: r.sealed_time,
                })
                .collect()
        })
    }

    fn first_index(&self) -> Option<u64> {
        self.rows.first().map(|r| r.index)
    }

    fn last_index(&self) -> Option<u64> {
        self.rows.last().map(|r| r.index)
    }

    /// `[format] [string count u32] ([len u32] [utf-8])* [row count u32]
    /// rows [SHA-256 of all before]`, each row its seven integers
    /// (big-endian), root, and two string references (u32). The digest
    /// turns a damaged chunk into an error instead of a wrong record.
    fn encode(&self) -> Vec<u8> {
        let text: usize = self.strings.iter().map(|s| 4 + s.len()).sum();
        let mut out = Vec::with_capacity(9 + text + ROW_BYTES * self.rows.len());
        out.push(ANCHOR_CHUNK_FORMAT);
        let n = |len: usize| u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        out.extend_from_slice(&n(self.strings.len()));
        for s in &self.strings {
            out.extend_from_slice(&n(s.len()));
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&n(self.rows.len()));
        for r in &self.rows {
            for v in [
                r.index,
                r.time as u64,
                r.count,
                r.first,
                r.last,
                r.sealed_height,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&r.sealed_time.to_be_bytes());
            out.extend_from_slice(&r.root);
            out.extend_from_slice(&r.issuer.to_be_bytes());
            out.extend_from_slice(&r.list.to_be_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Chunk, &'static str> {
        let body = bytes
            .len()
            .checked_sub(32)
            .and_then(|at| bytes.get(..at))
            .ok_or("truncated")?;
        if Sha256::digest(body)[..] != bytes[body.len()..] {
            return Err("its checksum does not match (damaged)");
        }
        let mut r = Reader(body);
        if r.take(1)? != [ANCHOR_CHUNK_FORMAT] {
            return Err("unknown format");
        }
        let strings = r.u32()? as usize;
        if strings > 2 * ANCHOR_CHUNK {
            return Err("too many strings");
        }
        let mut chunk = Chunk {
            strings: Vec::with_capacity(strings),
            ..Chunk::default()
        };
        for _ in 0..strings {
            let len = r.u32()? as usize;
            if len > MAX_CHUNK_STRING {
                return Err("a string is too long");
            }
            let s = std::str::from_utf8(r.take(len)?).map_err(|_| "a string is not UTF-8")?;
            chunk.strings.push(s.into());
        }
        let rows = r.u32()? as usize;
        if rows == 0 || rows > ANCHOR_CHUNK {
            return Err("no anchors, or more than a chunk holds");
        }
        if r.0.len() != rows * ROW_BYTES {
            return Err("its length is not that of its anchors");
        }
        chunk.rows.reserve_exact(rows);
        for _ in 0..rows {
            let row = Row {
                index: r.u64()?,
                time: r.u64()? as i64,
                count: r.u64()?,
                first: r.u64()?,
                last: r.u64()?,
                sealed_height: r.u64()?,
                sealed_time: r.u64()? as i64,
                root: r.take(32)?.try_into().map_err(|_| "truncated")?,
                issuer: r.u32()?,
                list: r.u32()?,
            };
            if chunk.last_index().is_some_and(|last| row.index <= last) {
                return Err("its anchors are not in log order");
            }
            if row.issuer as usize >= strings || row.list as usize >= strings {
                return Err("a string reference is out of range");
            }
            if row.count == 0 || row.first > row.last || row.count - 1 > row.last - row.first {
                return Err("an anchor's count does not fit its status indexes");
            }
            chunk.rows.push(row);
        }
        Ok(chunk)
    }
}

/// Reads an encoded chunk front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
}

/// 64 lowercase hex digits as 32 bytes.
fn root_bytes(root: &str) -> Option<[u8; 32]> {
    if root.len() != 64 || !root.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let digit = |b: u8| {
        if b.is_ascii_digit() {
            b - b'0'
        } else {
            b - b'a' + 10
        }
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(root.as_bytes().chunks_exact(2)) {
        *o = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Some(out)
}

/// 32 bytes as 64 lowercase hex digits.
fn root_hex(root: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in root {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// A chain's anchor records in log order, each with the block that first
/// sealed it, kept compact (about 100 bytes an anchor) in chunks of
/// [`ANCHOR_CHUNK`]. A replica keeps one, stores it encoded
/// ([`Anchors::encoded_from`], [`Anchors::decode`]) and hands it to every
/// view it makes ([`ChainView::with_anchors`]): a clone shares the chunks,
/// and appending copies at most the last one. The [`AnchorRecord`]s of a
/// chunk are made at its first look-up and kept.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

impl Anchors {
    /// Anchors recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The log index of the last anchor recorded.
    pub fn last_index(&self) -> Option<u64> {
        self.chunks.last().and_then(|c| c.last_index())
    }

    /// Records the entry at log index `index` when it is an anchor, first
    /// sealed by `sealed_by` (a block the caller verified, whose tree holds
    /// the entry); returns whether it was one.
    ///
    /// # Errors
    /// [`AnchorsError::OutOfOrder`] when `index` is not beyond the last
    /// anchor recorded; [`AnchorsError::Root`] for a root the chain's rules
    /// refuse.
    pub fn push(
        &mut self,
        index: u64,
        entry: &Entry,
        sealed_by: &Block,
    ) -> Result<bool, AnchorsError> {
        let Action::Anchor {
            list,
            root,
            count,
            first,
            last,
        } = entry.action()
        else {
            return Ok(false);
        };
        self.push_row(
            Row {
                index,
                time: entry.time(),
                count: *count,
                first: *first,
                last: *last,
                sealed_height: sealed_by.height,
                sealed_time: sealed_by.time,
                root: root_bytes(root).ok_or(AnchorsError::Root { index })?,
                issuer: 0,
                list: 0,
            },
            entry.author().as_str(),
            list,
        )?;
        Ok(true)
    }

    /// Records `record` after the last anchor recorded.
    ///
    /// # Errors
    /// As [`Anchors::push`].
    pub fn push_record(&mut self, record: &AnchorRecord) -> Result<(), AnchorsError> {
        self.push_row(
            Row {
                index: record.index,
                time: record.time,
                count: record.count,
                first: record.first,
                last: record.last,
                sealed_height: record.sealed_height,
                sealed_time: record.sealed_time,
                root: root_bytes(&record.root).ok_or(AnchorsError::Root {
                    index: record.index,
                })?,
                issuer: 0,
                list: 0,
            },
            &record.issuer,
            &record.list,
        )
    }

    fn push_row(&mut self, mut row: Row, issuer: &str, list: &str) -> Result<(), AnchorsError> {
        if let Some(last) = self.last_index().filter(|&last| row.index <= last) {
            return Err(AnchorsError::OutOfOrder {
                index: row.index,
                last,
            });
        }
        let full = self
            .chunks
            .last()
            .is_none_or(|c| c.rows.len() >= ANCHOR_CHUNK);
        if full {
            self.chunks.push(Arc::default());
        }
        let Some(chunk) = self.chunks.last_mut() else {
            // Pushed just above when there was none.
            return Ok(());
        };
        // Copies the chunk when a view still shares it.
        let chunk = Arc::make_mut(chunk);
        // Records made before no longer cover every row.
        chunk.records = OnceLock::new();
        row.issuer = chunk.string(issuer);
        row.list = chunk.string(list);
        chunk.rows.push(row);
        self.len += 1;
        Ok(())
    }

    /// The log index of the first anchor that does not fit `block`: of an
    /// entry beyond its tree, or sealed by a later block.
    pub fn first_outside(&self, block: &Block) -> Option<u64> {
        self.chunks
            .iter()
            .flat_map(|c| c.rows.iter())
            .find(|r| {
                r.index >= block.size
                    || r.sealed_height > block.height
                    || r.sealed_time > block.time
            })
            .map(|r| r.index)
    }

    /// The record of the anchor at log index `index`, if that entry is one.
    pub fn get(&self, index: u64) -> Option<&AnchorRecord> {
        let at = self
            .chunks
            .partition_point(|c| c.last_index().is_some_and(|last| last < index));
        let chunk = self.chunks.get(at)?;
        let pos = chunk.rows.binary_search_by_key(&index, |r| r.index).ok()?;
        chunk.records().get(pos)
    }

    /// The records of status list `uri`, in log order (chunks without it
    /// are skipped without making their records).
    pub fn of_list<'a>(&'a self, uri: &'a str) -> impl Iterator<Item = &'a AnchorRecord> + 'a {
        self.chunks
            .iter()
            .filter(move |c| c.strings.iter().any(|s| &**s == uri))
            .flat_map(move |c| c.records().iter().filter(move |r| r.list == uri))
    }

    /// Every record, in log order.
    pub fn iter(&self) -> impl Iterator<Item = &AnchorRecord> + '_ {
        self.chunks.iter().flat_map(|c| c.records().iter())
    }

    /// The chunks holding anchors at log index `from` or beyond, encoded,
    /// each with its key (the index of its first anchor): what to store
    /// after recording the anchors of entries from `from` on. A chunk
    /// stored before under the same key is replaced.
    pub fn encoded_from(&self, from: u64) -> Vec<(u64, Vec<u8>)> {
        let at = self
            .chunks
            .partition_point(|c| c.last_index().is_some_and(|last| last < from));
        self.chunks
            .get(at..)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| Some((c.first_index()?, c.encode())))
            .collect()
    }

    /// Anchors from their encoded chunks, in key order, as
    /// [`Anchors::encoded_from`] made them.
    ///
    /// # Errors
    /// [`AnchorsError::Chunk`] for a chunk that is not well formed, whose
    /// key is not its first anchor's index, or that does not follow the
    /// chunk before it.
    pub fn decode<'a>(
        chunks: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Result<Anchors, AnchorsError> {
        let mut out = Anchors::default();
        for (key, bytes) in chunks {
            let chunk = Chunk::decode(bytes).map_err(|why| AnchorsError::Chunk { key, why })?;
            if chunk.first_index() != Some(key) {
                return Err(AnchorsError::Chunk {
                    key,
                    why: "its key is not the index of its first anchor",
                });
            }
            if out.last_index().is_some_and(|last| last >= key) {
                return Err(AnchorsError::Chunk {
                    key,
                    why: "it does not follow the chunk before it",
                });
            }
            out.len += chunk.rows.len();
            out.chunks.push(Arc::new(chunk));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::log::Hash;

    fn block(height: u64, size: u64) -> Block {
        Block {
            origin: "test.example/log".into(),
            height,
            time: 1_800_000_000 + height as i64,
            prev: Hash([0; 32]),
            size,
            root: Hash([1; 32]),
        }
    }

    /// An anchor entry by key `k` on list `list`.
    fn anchor(k: u8, seq: u64, list: &str) -> Entry {
        let key = SigningKey::from_bytes(&[k; 32]);
        Entry::sign(
            &key,
            seq,
            1_800_000_000,
            Action::Anchor {
                list: list.into(),
                root: format!("{:064x}", seq + 0xabc),
                count: 2,
                first: 10 * seq,
                last: 10 * seq + 5,
            },
        )
    }

    /// Anchors at every odd index below `n`, on two lists, by two keys;
    /// each sealed by block `index / 1000`.
    fn anchors(n: u64) -> (Anchors, Vec<AnchorRecord>) {
        let mut a = Anchors::default();
        let mut records = Vec::new();
        for index in (1..n).step_by(2) {
            let list = if index % 3 == 0 {
                "https://a/l/1"
            } else {
                "https://a/l/2"
            };
            let e = anchor(1 + (index % 5 == 0) as u8, index, list);
            let b = block(index / 1000, index + 1);
            assert!(a.push(index, &e, &b).unwrap());
            let Action::Anchor {
                list,
                root,
                count,
                first,
                last,
            } = e.action().clone()
            else {
                unreachable!()
            };
            records.push(AnchorRecord {
                index,
                issuer: e.author().as_str().to_owned(),
                time: e.time(),
                list,
                root,
                count,
                first,
                last,
                sealed_height: b.height,
                sealed_time: b.time,
            });
        }
        (a, records)
    }

    #[test]
    fn anchors_read_back_as_recorded_and_round_trip_their_encoding() {
        let (a, records) = anchors(4 * ANCHOR_CHUNK as u64 + 700);
        assert_eq!(a.len(), records.len());
        assert_eq!(a.iter().cloned().collect::<Vec<_>>(), records);
        for r in records.iter().step_by(97) {
            assert_eq!(a.get(r.index), Some(r));
            assert_eq!(a.get(r.index + 1), None, "not an anchor");
        }
        let of_1: Vec<_> = records
            .iter()
            .filter(|r| r.list == "https://a/l/1")
            .collect();
        assert_eq!(a.of_list("https://a/l/1").collect::<Vec<_>>(), of_1);
        assert_eq!(a.of_list("https://a/l/3").count(), 0);
        let chunks = a.encoded_from(0);
        assert_eq!(chunks.len(), 3);
        let back = Anchors::decode(chunks.iter().map(|(k, v)| (*k, v.as_slice()))).unwrap();
        assert_eq!(back.iter().cloned().collect::<Vec<_>>(), records);
        // Only the chunks holding anchors from an index on.
        let last = records.last().unwrap().index;
        assert_eq!(a.encoded_from(last).len(), 1);
        assert_eq!(a.encoded_from(last + 1).len(), 0);
        // A non-anchor entry is not recorded.
        let key = SigningKey::from_bytes(&[3; 32]);
        let other = Entry::sign(
            &key,
            0,
            1,
            Action::Withdraw {
                issuer: "x".into(),
                reason: "y".into(),
            },
        );
        let mut b = a.clone();
        assert!(!b.push(last + 2, &other, &block(9, last + 3)).unwrap());
        assert_eq!(b.len(), a.len());
    }

    #[test]
    fn appending_copies_only_what_a_clone_shares_and_keeps_order() {
        let (mut a, records) = anchors(50);
        let view = a.clone();
        assert_eq!(view.get(1), Some(&records[0]), "records made");
        let e = anchor(1, 51, "https://a/l/1");
        a.push(51, &e, &block(0, 52)).unwrap();
        assert_eq!(a.len(), records.len() + 1);
        assert_eq!(view.len(), records.len());
        assert_eq!(view.get(51), None, "the clone is unchanged");
        assert_eq!(a.get(51).unwrap().index, 51, "records made again");
        assert_eq!(
            a.push(51, &e, &block(0, 52)),
            Err(AnchorsError::OutOfOrder {
                index: 51,
                last: 51
            })
        );
        assert_eq!(
            a.push(20, &e, &block(0, 52)),
            Err(AnchorsError::OutOfOrder {
                index: 20,
                last: 51
            })
        );
        let mut bad = a.get(51).unwrap().clone();
        bad.index = 60;
        bad.root = "AB".repeat(32);
        assert_eq!(a.push_record(&bad), Err(AnchorsError::Root { index: 60 }));
        assert_eq!(a.len(), records.len() + 1);
    }

    #[test]
    fn fail_damaged_anchor_chunks_are_refused() {
        let (a, _) = anchors(40);
        let chunks = a.encoded_from(0);
        let (key, good) = (chunks[0].0, chunks[0].1.clone());
        let decode = |k: u64, bytes: &[u8]| Anchors::decode([(k, bytes)]);
        assert!(decode(key, &good).is_ok());
        // Every flipped bit and every cut is caught.
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                assert!(
                    matches!(decode(key, &bad), Err(AnchorsError::Chunk { .. })),
                    "byte {i} ^ {flip:#x} accepted"
                );
            }
        }
        for len in [0, 1, 5, 31, 32, 33, good.len() - 1] {
            assert!(decode(key, &good[..len]).is_err(), "cut at {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(key, &longer).is_err());
        // A key that is not the chunk's first anchor; chunks out of order.
        assert!(decode(key + 1, &good).is_err());
        assert!(Anchors::decode([(key, good.as_slice()), (key, good.as_slice())]).is_err());
        // Well-formed bytes with a correct digest but a bad body.
        let forge = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut body = good[..good.len() - 32].to_vec();
            edit(&mut body);
            let digest = Sha256::digest(&body);
            body.extend_from_slice(&digest);
            decode(key, &body)
        };
        assert!(forge(&|_| {}).is_ok());
        assert!(forge(&|b| b[0] = 2).is_err(), "unknown format");
        // The last row's list reference out of range.
        assert!(forge(&|b| {
            let n = b.len();
            b[n - 4..].copy_from_slice(&99u32.to_be_bytes())
        })
        .is_err());
        // The last row's count (0).
        assert!(forge(&|b| {
            let at = b.len() - ROW_BYTES + 16;
            b[at..at + 8].copy_from_slice(&0u64.to_be_bytes())
        })
        .is_err());
        // The last row's index not after the one before.
        assert!(forge(&|b| {
            let at = b.len() - ROW_BYTES;
            b[at..at + 8].copy_from_slice(&1u64.to_be_bytes())
        })
        .is_err());
    }

    #[test]
    fn a_view_takes_anchors_only_within_its_block() {
        let (a, records) = anchors(20);
        let head = |size: u64| SignedBlock {
            block: block(5, size),
            note: String::new(),
            cosigned_by: vec![],
        };
        let state = ChainState {
            origin: Some("test.example/log".into()),
            size: 20,
            ..ChainState::default()
        };
        let view = ChainView::new(&state, head(20))
            .unwrap()
            .with_anchors(a.clone())
            .unwrap();
        assert_eq!(view.anchors(), records.as_slice());
        assert_eq!(view.anchor(3), Some(&records[1]));
        let short = ChainState {
            size: 19,
            ..state.clone()
        };
        assert_eq!(
            ChainView::new(&short, head(19))
                .unwrap()
                .with_anchors(a)
                .err(),
            Some(ViewError::AnchorBeyondHead {
                index: 19,
                size: 19
            })
        );
    }
}
