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
use std::sync::OnceLock;

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
    anchors: Vec<AnchorRecord>,
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
            anchors: Vec::new(),
        })
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
            let record = AnchorRecord {
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
            };
            if let Err(at) = self.anchors.binary_search_by_key(&index, |a| a.index) {
                self.anchors.insert(at, record);
            }
        }
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

    /// The anchors recorded with [`ChainView::add_anchors`], by log index.
    pub fn anchors(&self) -> &[AnchorRecord] {
        &self.anchors
    }

    /// The anchor recorded for the entry at log index `index`, if that
    /// entry is an anchor.
    pub fn anchor(&self, index: u64) -> Option<&AnchorRecord> {
        self.anchors
            .binary_search_by_key(&index, |a| a.index)
            .ok()
            .and_then(|at| self.anchors.get(at))
    }

    /// The anchors recorded for status list `uri`, by log index.
    pub fn anchors_of<'a>(&'a self, uri: &'a str) -> impl Iterator<Item = &'a AnchorRecord> {
        self.anchors.iter().filter(move |a| a.list == uri)
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
