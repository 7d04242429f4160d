//! The issuer's batch manifest: what one anchored batch of credentials is,
//! where its anchor entry sits on the chain, and each credential's file,
//! status reference and [`AnchorProof`].
//!
//! An issuer writes it as `manifest.json` beside the credential files; a
//! wallet imports a credential together with its entry
//! ([`Manifest::entry_for_credential`], [`Manifest::entry_by_file`]) and
//! keeps the anchor proof. A [`Manifest`] is consistent by construction:
//! [`Manifest::new`] and [`Manifest::from_json`] refuse an anchor entry that
//! does not commit to this batch, a proof that names another place in the
//! batch, a file name that is not a plain file name, and anything listed
//! twice. What needs the credentials themselves, or the hashes, is checked
//! by [`Manifest::check_entry`] and [`Manifest::check_anchor`].
//!
//! As JSON:
//!
//! ```json
//! {
//!   "issuer": "did:key:z6Mk…", "issuer_name": "University of Example",
//!   "template": "transcript", "vct": "https://…", "batch": "9f2c…",
//!   "count": 2, "batch_root": "<64 hex digits>", "leaf": "<LEAF_RULE>",
//!   "anchor": { "entry": "<the anchor entry's canonical JSON>",
//!     "entry_index": 12, "leaf_hash": "<hex>", "block_height": 3,
//!     "tree_size": 13, "tree_root": "<base64>", "inclusion_proof": ["<base64>"] },
//!   "credentials": [ { "row": 1, "holder": "did:key:…",
//!     "credential_id": "<32 hex digits>", "file": "000001-….sd-jwt",
//!     "status": { "idx": 7, "uri": "…" }, "qr": null,
//!     "anchor_proof": { "entry_index": 12, "leaf_index": 0, "batch_size": 2,
//!       "path": ["<base64>"] } } ]
//! }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::anchor::{self, AnchorError, AnchorProof};
use crate::chain::{Action, Entry, EntryError, MAX_LIST_URI};
use crate::did::{DidError, DidKey};
use crate::log::{self, Hash, ProofError};
use crate::sd_jwt::write_json_str;
use crate::status_list::StatusRef;

/// Longest JSON [`Manifest::from_json`] reads. A manifest of
/// [`MAX_CREDENTIALS`] credentials takes about 1 KB per credential.
pub const MAX_MANIFEST_BYTES: usize = 1 << 30;
/// The manifest's file name in an issuer's output directory.
pub const FILE_NAME: &str = "manifest.json";
/// Most credentials one manifest lists (the issuer's largest batch).
pub const MAX_CREDENTIALS: usize = 1 << 19;
/// Longest credential or QR code file name.
pub const MAX_FILE_NAME: usize = 255;
/// Longest issuer name, template name, `vct` or batch id.
pub const MAX_TEXT: usize = 1024;
/// Most hashes in the anchor entry's inclusion proof: one per level of a
/// chain of up to 2^64 entries.
pub const MAX_INCLUSION_HASHES: usize = 64;
/// How the batch's Merkle leaves are made, written into every manifest so a
/// reader knows what the batch root commits to.
pub const LEAF_RULE: &str =
    "RFC 9162 leaf hash of each credential's issuer-signed JWT (the text before its first ~)";

/// Why a manifest is refused: not the manifest JSON, out of bounds, or
/// inconsistent. Each message names the field and the credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// More bytes than [`MAX_MANIFEST_BYTES`].
    #[error("manifest: {bytes} bytes of JSON, more than the {MAX_MANIFEST_BYTES}-byte limit")]
    TooLarge {
        /// The input's length.
        bytes: usize,
    },
    /// Not the manifest's JSON (the message gives line and column).
    #[error("manifest: not the manifest JSON: {source}")]
    Json {
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The `leaf` rule is not [`LEAF_RULE`].
    #[error("manifest: leaf rule {0:?} is not the one this version checks")]
    LeafRule(String),
    /// No credentials.
    #[error("manifest: the batch lists no credentials")]
    Empty,
    /// More credentials than [`MAX_CREDENTIALS`].
    #[error("manifest: {0} credentials, more than {MAX_CREDENTIALS}")]
    TooManyCredentials(usize),
    /// `count` is not the number of credentials listed.
    #[error("manifest: count is {count} but {listed} credentials are listed")]
    Count {
        /// The `count` field.
        count: u64,
        /// Credentials listed.
        listed: usize,
    },
    /// A text field is longer than its bound.
    #[error("manifest: {field} is {len} bytes, more than {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// `issuer` is not a did:key.
    #[error("manifest: issuer {did:?} is not a did:key: {source}")]
    Issuer {
        /// The text.
        did: String,
        /// Why.
        source: DidError,
    },
    /// A hash field is not in its encoding.
    #[error("manifest: {field} is not {encoding}")]
    Hash {
        /// The field (`batch_root`, `anchor.tree_root`, …).
        field: String,
        /// What it should be.
        encoding: &'static str,
    },
    /// The inclusion proof is longer than [`MAX_INCLUSION_HASHES`].
    #[error("manifest: anchor.inclusion_proof has {0} hashes, more than {MAX_INCLUSION_HASHES}")]
    InclusionTooLong(usize),
    /// `anchor.entry` is not a chain entry.
    #[error("manifest: anchor.entry is not a chain entry: {source}")]
    AnchorEntry {
        /// Why.
        source: EntryError,
    },
    /// `anchor.entry` is a chain entry of another kind.
    #[error("manifest: anchor.entry is a {0} entry, not an anchor")]
    NotAnAnchor(&'static str),
    /// `anchor.entry` was written by someone other than the issuer.
    #[error("manifest: anchor.entry is by {author}, not by the issuer {issuer}")]
    AnchorAuthor {
        /// The entry's author.
        author: String,
        /// The manifest's issuer.
        issuer: String,
    },
    /// The anchor entry commits to another root or count.
    #[error(
        "manifest: the anchor entry commits to root {root} and {count} credentials, not this \
         batch (root {batch_root}, {listed} credentials)"
    )]
    AnchorBatch {
        /// The entry's root.
        root: String,
        /// The entry's count.
        count: u64,
        /// The manifest's `batch_root`.
        batch_root: String,
        /// Credentials listed.
        listed: usize,
    },
    /// `anchor.leaf_hash` is not the leaf hash of `anchor.entry`.
    #[error("manifest: anchor.leaf_hash is not the leaf hash of anchor.entry")]
    LeafHash,
    /// `anchor.entry_index` is not inside `anchor.tree_size`.
    #[error("manifest: anchor.entry_index {index} is not in a tree of {size} entries")]
    EntryIndex {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A file name that is not a plain name inside the output directory.
    #[error(
        "manifest: credentials[{position}].{field} {name:?} is not a plain file name \
         (1 to {MAX_FILE_NAME} bytes, no path separator, no leading dot)"
    )]
    FileName {
        /// Position in `credentials`.
        position: usize,
        /// `file` or `qr`.
        field: &'static str,
        /// The name.
        name: String,
    },
    /// A file name, credential id or status index listed twice.
    #[error("manifest: {file}: {what} {value} is listed twice")]
    Duplicate {
        /// The credential's file.
        file: String,
        /// What is repeated.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Rows not in increasing order.
    #[error("manifest: {file}: row {row} does not come after row {previous}")]
    RowOrder {
        /// The credential's file.
        file: String,
        /// Its row.
        row: u64,
        /// The row before it.
        previous: u64,
    },
    /// A credential id that is not 32 lowercase hex digits.
    #[error("manifest: {file}: credential_id {id:?} is not 32 lowercase hex digits")]
    CredentialId {
        /// The credential's file.
        file: String,
        /// The id.
        id: String,
    },
    /// A holder that is not a did:key.
    #[error("manifest: {file}: holder {holder:?} is not a did:key: {source}")]
    Holder {
        /// The credential's file.
        file: String,
        /// The text.
        holder: String,
        /// Why.
        source: DidError,
    },
    /// A status reference outside the anchored list and index range.
    #[error(
        "manifest: {file}: status index {idx} of {uri} is not in the anchored list {list} \
         (indexes {first}..={last})"
    )]
    Status {
        /// The credential's file.
        file: String,
        /// The credential's status list.
        uri: String,
        /// Its index.
        idx: u64,
        /// The list the anchor entry names.
        list: String,
        /// The anchor's lowest index.
        first: u64,
        /// The anchor's highest index.
        last: u64,
    },
    /// An anchor proof for another place than the credential's own.
    #[error(
        "manifest: {file}: the anchor proof is for entry {entry} leaf {leaf} of {size}, not \
         entry {want_entry} leaf {want_leaf} of {want_size}"
    )]
    ProofPlace {
        /// The credential's file.
        file: String,
        /// The proof's anchor entry index.
        entry: u64,
        /// The proof's leaf index.
        leaf: u64,
        /// The proof's batch size.
        size: u64,
        /// The manifest's anchor entry index.
        want_entry: u64,
        /// The credential's position.
        want_leaf: u64,
        /// The number of credentials.
        want_size: u64,
    },
}

/// Why a manifest's proofs do not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The credential is not the one the entry lists.
    #[error("{file}: the credential's id is {found}, not {listed} as the manifest lists")]
    CredentialId {
        /// The entry's file.
        file: String,
        /// The credential's id.
        found: String,
        /// The entry's id.
        listed: String,
    },
    /// The anchor proof does not lead from the credential to the batch root.
    #[error("{file}: not in the batch root: {source}")]
    NotInBatch {
        /// The entry's file.
        file: String,
        /// Why.
        source: AnchorError,
    },
    /// The anchor entry's signature does not verify under the issuer's key.
    #[error("the anchor entry's signature does not verify: {source}")]
    AnchorSignature {
        /// Why.
        source: EntryError,
    },
    /// The inclusion proof does not lead from the anchor entry to the tree
    /// root.
    #[error("anchor not in the chain: entry {index} is not in the tree of {size}: {source}")]
    NotInChain {
        /// The anchor entry's index.
        index: u64,
        /// The tree size.
        size: u64,
        /// Why.
        source: ProofError,
    },
}

/// Which batch a manifest describes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInfo {
    /// The issuer.
    pub issuer: DidKey,
    /// Its display name.
    pub issuer_name: String,
    /// The template's name.
    pub template: String,
    /// The credentials' `vct`.
    pub vct: String,
    /// The batch id.
    pub batch: String,
}

/// Where the batch's anchor entry sits on the chain, as the issuer read it
/// back from its registry.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedAnchor {
    /// The anchor entry.
    pub entry: Entry,
    /// Its index in the chain's log.
    pub entry_index: u64,
    /// Height of the block that sealed it.
    pub block_height: u64,
    /// That block's tree size.
    pub tree_size: u64,
    /// That block's tree root.
    pub tree_root: Hash,
    /// Inclusion proof of the entry in that tree.
    pub inclusion_proof: Vec<Hash>,
}

/// One credential of the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    /// The input row it was issued from.
    pub row: u64,
    /// The holder.
    pub holder: DidKey,
    /// [`credential_id`] of the credential.
    pub credential_id: String,
    /// Its file name in the output directory.
    pub file: String,
    /// Its status list reference.
    pub status: StatusRef,
    /// The QR code PNG's file name, when one was written.
    pub qr: Option<String>,
    /// Its place in the anchored batch.
    pub anchor_proof: AnchorProof,
}

/// A batch manifest; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Manifest {
    batch: BatchInfo,
    batch_root: Hash,
    anchor: SealedAnchor,
    entries: Vec<ManifestEntry>,
    /// The entries by file name and by credential id, made when first
    /// looked up (an issuer writing a manifest never does).
    lookup: OnceLock<Lookup>,
}

/// Where each entry is in [`Manifest::entries`]: by file name (its
/// credential's and its QR code's) and by credential id.
#[derive(Debug, Clone, Default)]
struct Lookup {
    by_file: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl PartialEq for Manifest {
    /// The same batch, anchor and entries (the lookup is made from them).
    fn eq(&self, other: &Self) -> bool {
        self.batch == other.batch
            && self.batch_root == other.batch_root
            && self.anchor == other.anchor
            && self.entries == other.entries
    }
}

/// A credential's id: the first 16 bytes of the SHA-256 of its
/// issuer-signed JWT ([`anchor::leaf`]), in hex. The same for the
/// credential and every presentation of it.
pub fn credential_id(credential: &str) -> String {
    hex(&Sha256::digest(anchor::leaf(credential).as_bytes())[..16])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A name that stays inside the directory it is joined to, on any system.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
}

fn bounded_text(field: &'static str, text: &str) -> Result<(), ManifestError> {
    if text.len() > MAX_TEXT {
        return Err(ManifestError::TooLong {
            field,
            len: text.len(),
            max: MAX_TEXT,
        });
    }
    Ok(())
}

impl Manifest {
    /// A manifest of `entries`, in batch order, anchored by `anchor` under
    /// `batch_root`.
    ///
    /// # Errors
    /// [`ManifestError`] when the parts do not fit together: no or too many
    /// entries, an anchor entry that is not this issuer's anchor of this
    /// root and count, an entry index outside the tree, an entry whose
    /// proof names another place in the batch, whose status is outside the
    /// anchored list and range, whose file name is not plain, or anything
    /// listed twice.
    pub fn new(
        batch: BatchInfo,
        batch_root: Hash,
        anchor: SealedAnchor,
        entries: Vec<ManifestEntry>,
    ) -> Result<Self, ManifestError> {
        bounded_text("issuer_name", &batch.issuer_name)?;
        bounded_text("template", &batch.template)?;
        bounded_text("vct", &batch.vct)?;
        bounded_text("batch", &batch.batch)?;
        if entries.is_empty() {
            return Err(ManifestError::Empty);
        }
        if entries.len() > MAX_CREDENTIALS {
            return Err(ManifestError::TooManyCredentials(entries.len()));
        }
        if anchor.inclusion_proof.len() > MAX_INCLUSION_HASHES {
            return Err(ManifestError::InclusionTooLong(
                anchor.inclusion_proof.len(),
            ));
        }
        if anchor.entry_index >= anchor.tree_size {
            return Err(ManifestError::EntryIndex {
                index: anchor.entry_index,
                size: anchor.tree_size,
            });
        }
        if anchor.entry.author() != &batch.issuer {
            return Err(ManifestError::AnchorAuthor {
                author: anchor.entry.author().as_str().to_owned(),
                issuer: batch.issuer.as_str().to_owned(),
            });
        }
        let Action::Anchor {
            list,
            root,
            count,
            first,
            last,
        } = anchor.entry.action()
        else {
            return Err(ManifestError::NotAnAnchor(anchor.entry.action().kind()));
        };
        let size = entries.len() as u64;
        if *root != hex(&batch_root.0) || *count != size {
            return Err(ManifestError::AnchorBatch {
                root: root.clone(),
                count: *count,
                batch_root: hex(&batch_root.0),
                listed: entries.len(),
            });
        }
        // Borrowed: the lookup by name and id is made when it is needed.
        let mut files = HashSet::with_capacity(entries.len() * 2);
        let mut ids = HashSet::with_capacity(entries.len());
        let mut indexes = HashSet::with_capacity(entries.len());
        let mut previous: Option<u64> = None;
        for (i, e) in entries.iter().enumerate() {
            for (field, name) in [("file", Some(&e.file)), ("qr", e.qr.as_ref())] {
                let Some(name) = name else { continue };
                if !plain_file_name(name) {
                    return Err(ManifestError::FileName {
                        position: i,
                        field,
                        name: name.chars().take(MAX_FILE_NAME).collect(),
                    });
                }
                if !files.insert(name.as_str()) {
                    return Err(ManifestError::Duplicate {
                        file: e.file.clone(),
                        what: "file name",
                        value: name.clone(),
                    });
                }
            }
            let file = || e.file.clone();
            if let Some(previous) = previous.filter(|&p| p >= e.row) {
                return Err(ManifestError::RowOrder {
                    file: file(),
                    row: e.row,
                    previous,
                });
            }
            previous = Some(e.row);
            let id_ok = e.credential_id.len() == 32
                && e.credential_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !id_ok {
                return Err(ManifestError::CredentialId {
                    file: file(),
                    id: e.credential_id.chars().take(64).collect(),
                });
            }
            if !ids.insert(e.credential_id.as_str()) {
                return Err(ManifestError::Duplicate {
                    file: file(),
                    what: "credential_id",
                    value: e.credential_id.clone(),
                });
            }
            if e.status.uri != *list || !(*first..=*last).contains(&e.status.idx) {
                return Err(ManifestError::Status {
                    file: file(),
                    uri: e.status.uri.chars().take(MAX_LIST_URI).collect(),
                    idx: e.status.idx,
                    list: list.clone(),
                    first: *first,
                    last: *last,
                });
            }
            if !indexes.insert(e.status.idx) {
                return Err(ManifestError::Duplicate {
                    file: file(),
                    what: "status index",
                    value: e.status.idx.to_string(),
                });
            }
            let p = &e.anchor_proof;
            let place = (p.entry_index(), p.leaf_index(), p.batch_size());
            if place != (anchor.entry_index, i as u64, size) {
                return Err(ManifestError::ProofPlace {
                    file: file(),
                    entry: place.0,
                    leaf: place.1,
                    size: place.2,
                    want_entry: anchor.entry_index,
                    want_leaf: i as u64,
                    want_size: size,
                });
            }
        }
        Ok(Self {
            batch,
            batch_root,
            anchor,
            entries,
            lookup: OnceLock::new(),
        })
    }

    /// Parses a manifest's JSON (see the [module documentation](self)), of
    /// outside input.
    ///
    /// # Errors
    /// [`ManifestError`]: more than [`MAX_MANIFEST_BYTES`] or
    /// [`MAX_CREDENTIALS`], not the manifest JSON (with line and column), a
    /// field not in its encoding, or parts that do not fit together (see
    /// [`Manifest::new`]).
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        // Refused before parsing: serde would build the whole thing first.
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge { bytes: text.len() });
        }
        let wire: Wire =
            serde_json::from_str(text).map_err(|source| ManifestError::Json { source })?;
        if wire.leaf != LEAF_RULE {
            return Err(ManifestError::LeafRule(
                wire.leaf.chars().take(200).collect(),
            ));
        }
        if wire.count != wire.credentials.len() as u64 {
            return Err(ManifestError::Count {
                count: wire.count,
                listed: wire.credentials.len(),
            });
        }
        bounded_text("issuer", &wire.issuer)?;
        let issuer = DidKey::parse(&wire.issuer).map_err(|source| ManifestError::Issuer {
            did: wire.issuer.clone(),
            source,
        })?;
        let batch_root =
            anchor::root_from_hex(&wire.batch_root).ok_or_else(|| ManifestError::Hash {
                field: "batch_root".into(),
                encoding: "64 lowercase hex digits",
            })?;
        let a = wire.anchor;
        let entry = Entry::parse(a.entry.as_bytes())
            .map_err(|source| ManifestError::AnchorEntry { source })?;
        let leaf_hash = anchor::root_from_hex(&a.leaf_hash).ok_or_else(|| ManifestError::Hash {
            field: "anchor.leaf_hash".into(),
            encoding: "64 lowercase hex digits",
        })?;
        if leaf_hash != entry.leaf_hash() {
            return Err(ManifestError::LeafHash);
        }
        let base64 = |field: String, text: &str| {
            log::hash_from_base64(text).ok_or(ManifestError::Hash {
                field,
                encoding: "32 bytes of standard base64",
            })
        };
        let tree_root = base64("anchor.tree_root".into(), &a.tree_root)?;
        let inclusion_proof = a
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(i, h)| base64(format!("anchor.inclusion_proof[{i}]"), h))
            .collect::<Result<Vec<_>, _>>()?;
        let anchor = SealedAnchor {
            entry,
            entry_index: a.entry_index,
            block_height: a.block_height,
            tree_size: a.tree_size,
            tree_root,
            inclusion_proof,
        };
        let mut entries = Vec::with_capacity(wire.credentials.len());
        for c in wire.credentials {
            let holder = DidKey::parse(&c.holder).map_err(|source| ManifestError::Holder {
                file: c.file.chars().take(MAX_FILE_NAME).collect(),
                holder: c.holder.chars().take(200).collect(),
                source,
            })?;
            entries.push(ManifestEntry {
                row: c.row,
                holder,
                credential_id: c.credential_id,
                file: c.file,
                status: c.status,
                qr: c.qr,
                anchor_proof: c.anchor_proof,
            });
        }
        let batch = BatchInfo {
            issuer,
            issuer_name: wire.issuer_name,
            template: wire.template,
            vct: wire.vct,
            batch: wire.batch,
        };
        Self::new(batch, batch_root, anchor, entries)
    }

    /// The JSON form, indented for people to read: what `serde_json`'s
    /// pretty printer writes for it (two spaces an indent), written
    /// straight into one string.
    pub fn to_json(&self) -> String {
        let first = self.entries.first().map_or(0, |e| {
            e.file.len() + e.status.uri.len() + 60 * e.anchor_proof.path().len()
        });
        let mut out = String::with_capacity(2048 + self.entries.len() * (first + 512));
        let a = &self.anchor;
        out.push('{');
        let mut top = Members::new(1);
        top.text(&mut out, "issuer", self.batch.issuer.as_str());
        top.text(&mut out, "issuer_name", &self.batch.issuer_name);
        top.text(&mut out, "template", &self.batch.template);
        top.text(&mut out, "vct", &self.batch.vct);
        top.text(&mut out, "batch", &self.batch.batch);
        top.number(&mut out, "count", self.entries.len() as u64);
        top.text(&mut out, "batch_root", &hex(&self.batch_root.0));
        top.text(&mut out, "leaf", LEAF_RULE);
        top.key(&mut out, "anchor");
        out.push('{');
        let mut anchor = Members::new(2);
        anchor.text(
            &mut out,
            "entry",
            &String::from_utf8_lossy(a.entry.as_bytes()),
        );
        anchor.number(&mut out, "entry_index", a.entry_index);
        anchor.text(&mut out, "leaf_hash", &hex(&a.entry.leaf_hash().0));
        anchor.number(&mut out, "block_height", a.block_height);
        anchor.number(&mut out, "tree_size", a.tree_size);
        anchor.key(&mut out, "tree_root");
        base64_str(&mut out, &a.tree_root);
        anchor.key(&mut out, "inclusion_proof");
        hash_list(&mut out, 2, &a.inclusion_proof);
        anchor.end(&mut out, '}');
        top.key(&mut out, "credentials");
        out.push('[');
        let mut list = Members::new(2);
        for e in &self.entries {
            list.item(&mut out);
            out.push('{');
            let mut entry = Members::new(3);
            entry.number(&mut out, "row", e.row);
            entry.text(&mut out, "holder", e.holder.as_str());
            entry.text(&mut out, "credential_id", &e.credential_id);
            entry.text(&mut out, "file", &e.file);
            entry.key(&mut out, "status");
            out.push('{');
            let mut status = Members::new(4);
            status.number(&mut out, "idx", e.status.idx);
            status.text(&mut out, "uri", &e.status.uri);
            status.end(&mut out, '}');
            entry.key(&mut out, "qr");
            match &e.qr {
                Some(qr) => write_json_str(qr, &mut out),
                None => out.push_str("null"),
            }
            entry.key(&mut out, "anchor_proof");
            out.push('{');
            let p = &e.anchor_proof;
            let mut proof = Members::new(4);
            proof.number(&mut out, "entry_index", p.entry_index());
            proof.number(&mut out, "leaf_index", p.leaf_index());
            proof.number(&mut out, "batch_size", p.batch_size());
            proof.key(&mut out, "path");
            hash_list(&mut out, 4, p.path());
            proof.end(&mut out, '}');
            entry.end(&mut out, '}');
        }
        list.end(&mut out, ']');
        top.end(&mut out, '}');
        out
    }

    /// The JSON form as `serde_json` writes [`Wire`]: what
    /// [`Manifest::to_json`] must equal.
    #[cfg(test)]
    fn to_serde_json(&self) -> String {
        let wire = Wire {
            issuer: self.batch.issuer.as_str().to_owned(),
            issuer_name: self.batch.issuer_name.clone(),
            template: self.batch.template.clone(),
            vct: self.batch.vct.clone(),
            batch: self.batch.batch.clone(),
            count: self.entries.len() as u64,
            batch_root: hex(&self.batch_root.0),
            leaf: LEAF_RULE.to_owned(),
            anchor: AnchorWire {
                entry: String::from_utf8_lossy(self.anchor.entry.as_bytes()).into_owned(),
                entry_index: self.anchor.entry_index,
                leaf_hash: hex(&self.anchor.entry.leaf_hash().0),
                block_height: self.anchor.block_height,
                tree_size: self.anchor.tree_size,
                tree_root: STANDARD.encode(self.anchor.tree_root.0),
                inclusion_proof: log::hashes_to_base64(&self.anchor.inclusion_proof),
            },
            credentials: self
                .entries
                .iter()
                .map(|e| EntryWire {
                    row: e.row,
                    holder: e.holder.as_str().to_owned(),
                    credential_id: e.credential_id.clone(),
                    file: e.file.clone(),
                    status: e.status.clone(),
                    qr: e.qr.clone(),
                    anchor_proof: e.anchor_proof.clone(),
                })
                .collect(),
        };
        // Strings, integers and proofs (themselves strings and integers)
        // always serialise.
        serde_json::to_string_pretty(&wire).unwrap_or_default()
    }

    /// Which batch this is.
    pub fn batch(&self) -> &BatchInfo {
        &self.batch
    }

    /// The RFC 9162 root over the credentials' leaves ([`LEAF_RULE`]).
    pub fn batch_root(&self) -> Hash {
        self.batch_root
    }

    /// The anchor entry and where it sits on the chain.
    pub fn anchor(&self) -> &SealedAnchor {
        &self.anchor
    }

    /// The credentials, in batch (leaf) order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The entry of the credential in file `file` (a plain file name, as
    /// the manifest lists it).
    pub fn entry_by_file(&self, file: &str) -> Option<&ManifestEntry> {
        self.lookup()
            .by_file
            .get(file)
            .and_then(|&i| self.entries.get(i))
            .filter(|e| e.file == file)
    }

    /// The entry of `credential` (the credential's text, or a presentation
    /// of it: both share the issuer-signed JWT), found by its
    /// [`credential_id`]. Check it with [`Manifest::check_entry`].
    pub fn entry_for_credential(&self, credential: &str) -> Option<&ManifestEntry> {
        self.lookup()
            .by_id
            .get(&credential_id(credential))
            .and_then(|&i| self.entries.get(i))
    }

    /// The entries by file name and id, made on first use.
    fn lookup(&self) -> &Lookup {
        self.lookup.get_or_init(|| {
            let mut lookup = Lookup {
                by_file: HashMap::with_capacity(self.entries.len() * 2),
                by_id: HashMap::with_capacity(self.entries.len()),
            };
            for (i, e) in self.entries.iter().enumerate() {
                lookup.by_file.insert(e.file.clone(), i);
                if let Some(qr) = &e.qr {
                    lookup.by_file.insert(qr.clone(), i);
                }
                lookup.by_id.insert(e.credential_id.clone(), i);
            }
            lookup
        })
    }

    /// Checks that `credential` (its text, or a presentation of it) is the
    /// one `entry` lists, and that the entry's anchor proof leads from its
    /// issuer-signed JWT ([`anchor::leaf`]) to the batch root.
    ///
    /// # Errors
    /// [`CheckError::CredentialId`] for another credential,
    /// [`CheckError::NotInBatch`] when the proof does not lead there.
    pub fn check_entry(&self, entry: &ManifestEntry, credential: &str) -> Result<(), CheckError> {
        let found = credential_id(credential);
        if found != entry.credential_id {
            return Err(CheckError::CredentialId {
                file: entry.file.clone(),
                found,
                listed: entry.credential_id.clone(),
            });
        }
        entry
            .anchor_proof
            .verify(anchor::leaf(credential).as_bytes(), self.batch_root)
            .map_err(|source| CheckError::NotInBatch {
                file: entry.file.clone(),
                source,
            })
    }

    /// Checks that the anchor entry is signed by the issuer and is entry
    /// `anchor.entry_index` of the tree the manifest records. (Whether that
    /// tree is the chain's is for a replica to say: see
    /// [`crate::verify`].)
    ///
    /// # Errors
    /// [`CheckError::AnchorSignature`] or [`CheckError::NotInChain`].
    pub fn check_anchor(&self) -> Result<(), CheckError> {
        let a = &self.anchor;
        a.entry
            .verify_signature()
            .map_err(|source| CheckError::AnchorSignature { source })?;
        log::verify_inclusion(
            &a.inclusion_proof,
            a.tree_size,
            a.tree_root,
            a.entry_index,
            a.entry.leaf_hash(),
        )
        .map_err(|source| CheckError::NotInChain {
            index: a.entry_index,
            size: a.tree_size,
            source,
        })
    }
}

/// Writes the members of one JSON object or the items of one array as
/// `serde_json`'s pretty printer does: each on its own line, indented two
/// spaces a level, `,` between them.
struct Members {
    /// The members' level (the object's own is one less).
    depth: usize,
    first: bool,
}

impl Members {
    fn new(depth: usize) -> Self {
        Self { depth, first: true }
    }

    /// The line break and indent before the next item.
    fn item(&mut self, out: &mut String) {
        out.push_str(if self.first { "\n" } else { ",\n" });
        self.first = false;
        indent(out, self.depth);
    }

    /// The next member's name and `: `.
    fn key(&mut self, out: &mut String, name: &str) {
        self.item(out);
        write_json_str(name, out);
        out.push_str(": ");
    }

    fn text(&mut self, out: &mut String, name: &str, value: &str) {
        self.key(out, name);
        write_json_str(value, out);
    }

    fn number(&mut self, out: &mut String, name: &str, value: u64) {
        self.key(out, name);
        // Writing into a String does not fail.
        let _ = write!(out, "{value}");
    }

    /// The closing `}` or `]`: on its own line after members, right after
    /// the opening one for none.
    fn end(self, out: &mut String, close: char) {
        if !self.first {
            out.push('\n');
            indent(out, self.depth - 1);
        }
        out.push(close);
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A hash as a JSON string of standard base64 (never escaped).
fn base64_str(out: &mut String, hash: &Hash) {
    out.push('"');
    STANDARD.encode_string(hash.0, out);
    out.push('"');
}

/// A list of hashes in standard base64, its items at level `depth + 1`.
fn hash_list(out: &mut String, depth: usize, hashes: &[Hash]) {
    out.push('[');
    let mut items = Members::new(depth + 1);
    for h in hashes {
        items.item(out);
        base64_str(out, h);
    }
    items.end(out, ']');
}

/// The JSON form of a [`Manifest`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    issuer: String,
    issuer_name: String,
    template: String,
    vct: String,
    batch: String,
    count: u64,
    batch_root: String,
    leaf: String,
    anchor: AnchorWire,
    #[serde(deserialize_with = "credentials")]
    credentials: Vec<EntryWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorWire {
    entry: String,
    entry_index: u64,
    leaf_hash: String,
    block_height: u64,
    tree_size: u64,
    tree_root: String,
    #[serde(deserialize_with = "inclusion_proof")]
    inclusion_proof: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryWire {
    row: u64,
    holder: String,
    credential_id: String,
    file: String,
    status: StatusRef,
    qr: Option<String>,
    anchor_proof: AnchorProof,
}

fn credentials<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EntryWire>, D::Error> {
    d.deserialize_seq(Bounded::new(MAX_CREDENTIALS))
}

fn inclusion_proof<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_seq(Bounded::new(MAX_INCLUSION_HASHES))
}

/// A list read up to `max` items: more is refused while reading, before
/// they are built.
struct Bounded<T> {
    max: usize,
    item: std::marker::PhantomData<T>,
}

impl<T> Bounded<T> {
    fn new(max: usize) -> Self {
        Self {
            max,
            item: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} items", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(1024));
        while let Some(item) = seq.next_element()? {
            if out.len() == self.max {
                return Err(de::Error::custom(format_args!(
                    "more than {} items",
                    self.max
                )));
            }
            out.push(item);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::log::{prove_record, record_hash, MemoryHashes};
    use ed25519_dalek::SigningKey;

    const LIST: &str = "https://reg.example/v1/status/did:key:x~1";

    struct Batch {
        manifest: Manifest,
        credentials: Vec<String>,
    }

    /// A batch of `n` made-up credentials (`header.payload{i}.sig~disc`),
    /// anchored as entry 4 of a chain of 6 entries.
    fn batch(n: u64) -> Batch {
        let issuer = SigningKey::from_bytes(&[7; 32]);
        let did = DidKey::from_public_key(&issuer.verifying_key());
        let credentials: Vec<String> = (0..n)
            .map(|i| format!("eyJhbGciOi.payload{i}.sig~WyJz~"))
            .collect();
        let mut tree = MemoryHashes::new();
        for c in &credentials {
            tree.append(record_hash(anchor::leaf(c).as_bytes()))
                .unwrap();
        }
        let root = tree.root().unwrap();
        let entry = Entry::sign(
            &issuer,
            0,
            1_780_000_000,
            Action::Anchor {
                list: LIST.into(),
                root: hex(&root.0),
                count: n,
                first: 10,
                last: 10 + n,
            },
        );
        let mut chain = MemoryHashes::new();
        for i in 0..6u8 {
            let leaf = if i == 4 {
                entry.leaf_hash()
            } else {
                record_hash(&[i])
            };
            chain.append(leaf).unwrap();
        }
        let anchor = SealedAnchor {
            entry,
            entry_index: 4,
            block_height: 2,
            tree_size: 6,
            tree_root: chain.root().unwrap(),
            inclusion_proof: prove_record(6, 4, &chain).unwrap(),
        };
        let holder = DidKey::from_public_key(&SigningKey::from_bytes(&[8; 32]).verifying_key());
        let entries = credentials
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let i = i as u64;
                let id = credential_id(c);
                ManifestEntry {
                    row: i + 1,
                    holder: holder.clone(),
                    file: format!("{:06}-{id}.sd-jwt", i + 1),
                    credential_id: id,
                    status: StatusRef {
                        idx: 10 + i,
                        uri: LIST.into(),
                    },
                    qr: (i % 2 == 0).then(|| format!("{:06}.png", i + 1)),
                    anchor_proof: AnchorProof::new(4, i, n, prove_record(n, i, &tree).unwrap())
                        .unwrap(),
                }
            })
            .collect();
        let info = BatchInfo {
            issuer: did,
            issuer_name: "University of Example".into(),
            template: "transcript".into(),
            vct: "https://vouch.example/vct/transcript".into(),
            batch: "0011223344556677".into(),
        };
        Batch {
            manifest: Manifest::new(info, root, anchor, entries).unwrap(),
            credentials,
        }
    }

    /// An edit of a manifest's JSON.
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

    /// The JSON of a good manifest of 3, edited by `edit`, parsed.
    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Manifest, ManifestError> {
        let mut v: serde_json::Value = serde_json::from_str(&batch(3).manifest.to_json()).unwrap();
        edit(&mut v);
        Manifest::from_json(&v.to_string())
    }

    fn message(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        edited(edit).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_and_checks_every_entry() {
        for n in [1, 2, 5, 8] {
            let b = batch(n);
            let json = b.manifest.to_json();
            let back = Manifest::from_json(&json).unwrap();
            assert_eq!(back, b.manifest);
            assert_eq!(back.to_json(), json);
            back.check_anchor().unwrap();
            for (e, c) in back.entries().iter().zip(&b.credentials) {
                back.check_entry(e, c).unwrap();
                // A presentation (other disclosures, a KB-JWT) finds and
                // checks the same entry.
                let shown = format!("{}~kb.jwt.sig", anchor::leaf(c));
                assert_eq!(back.entry_for_credential(&shown), Some(e));
                back.check_entry(e, &shown).unwrap();
                assert_eq!(back.entry_by_file(&e.file), Some(e));
            }
        }
        let b = batch(3);
        let v: serde_json::Value = serde_json::from_str(&b.manifest.to_json()).unwrap();
        assert_eq!(v["count"], 3);
        assert_eq!(v["leaf"], LEAF_RULE);
        assert_eq!(v["anchor"]["entry_index"], 4);
        assert_eq!(v["credentials"][1]["anchor_proof"]["leaf_index"], 1);
        assert_eq!(v["credentials"][1]["qr"], serde_json::Value::Null);
    }

    /// The JSON is written straight into a string, byte for byte as
    /// `serde_json`'s pretty printer writes it: batches of several sizes
    /// (with and without QR codes), text that needs escaping, an empty
    /// list.
    #[test]
    fn json_is_serde_jsons_pretty_print() {
        for n in [1, 2, 3, 7] {
            let m = batch(n).manifest;
            assert_eq!(m.to_json(), m.to_serde_json(), "batch of {n}");
        }
        let m = batch(2).manifest;
        let mut info = m.batch().clone();
        info.issuer_name = "Uni \"Ex\" \\ \n\t\u{1}\u{1f}é\u{7f} ~".into();
        info.template = String::new();
        let mut anchor = m.anchor().clone();
        anchor.inclusion_proof = Vec::new();
        let m = Manifest::new(info, m.batch_root(), anchor, m.entries().to_vec()).unwrap();
        let json = m.to_json();
        assert_eq!(json, m.to_serde_json());
        assert!(json.contains("\"inclusion_proof\": []"), "{json}");
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
    }

    #[test]
    fn lookups_miss_what_is_not_listed() {
        let b = batch(3);
        let m = &b.manifest;
        assert!(m.entry_by_file("nope.sd-jwt").is_none());
        // A QR file name is not a credential's entry.
        assert!(m.entry_by_file("000001.png").is_none());
        assert!(m.entry_for_credential("eyJhbGciOi.other.sig~").is_none());
    }

    #[test]
    fn fail_a_credential_or_proof_that_does_not_check() {
        let b = batch(4);
        let m = &b.manifest;
        let e = &m.entries()[1];
        assert!(matches!(
            m.check_entry(e, &b.credentials[2]),
            Err(CheckError::CredentialId { .. })
        ));
        // The same place, another path: parses, does not lead to the root.
        let mut v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        v["credentials"][1]["anchor_proof"]["path"][0] =
            v["credentials"][2]["anchor_proof"]["path"][0].clone();
        let moved = Manifest::from_json(&v.to_string()).unwrap();
        let err = moved
            .check_entry(&moved.entries()[1], &b.credentials[1])
            .unwrap_err();
        assert!(matches!(err, CheckError::NotInBatch { .. }));
        assert!(
            err.to_string().starts_with(&format!(
                "{}: not in the batch root",
                moved.entries()[1].file
            )),
            "{err}"
        );
        // An inclusion proof of another entry.
        let mut v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        v["anchor"]["inclusion_proof"][0] = STANDARD.encode([3; 32]).into();
        let err = Manifest::from_json(&v.to_string())
            .unwrap()
            .check_anchor()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("anchor not in the chain: entry 4 is not in the tree of 6"),
            "{err}"
        );
    }

    #[test]
    fn fail_broken_json_names_the_place() {
        let e = Manifest::from_json("{\"issuer\": ").unwrap_err();
        assert!(matches!(e, ManifestError::Json { .. }));
        assert!(e.to_string().contains("line 1 column"), "{e}");
        for bad in ["", "[]", "null", "{}"] {
            assert!(matches!(
                Manifest::from_json(bad),
                Err(ManifestError::Json { .. })
            ));
        }
        let e = message(|v| v["extra"] = 1.into());
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = message(|v| v["credentials"][0]["anchor_proof"]["leaf_index"] = 9.into());
        assert!(e.contains("leaf 9 is not in a batch of 3"), "{e}");
        let e = message(|v| v["credentials"][0]["row"] = (-1).into());
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn fail_over_the_bounds() {
        let huge = " ".repeat(MAX_MANIFEST_BYTES + 1);
        assert!(matches!(
            Manifest::from_json(&huge),
            Err(ManifestError::TooLarge { .. })
        ));
        // A list one item longer than its bound is refused while reading.
        let mut de = serde_json::Deserializer::from_str("[1, 2, 3]");
        let e = de.deserialize_seq(Bounded::<u8>::new(2)).unwrap_err();
        assert!(e.to_string().contains("more than 2 items"), "{e}");
        let mut de = serde_json::Deserializer::from_str("[1, 2]");
        assert_eq!(de.deserialize_seq(Bounded::<u8>::new(2)).unwrap(), [1, 2]);
        let e = message(|v| {
            v["anchor"]["inclusion_proof"] = vec!["AAAA"; MAX_INCLUSION_HASHES + 1].into();
        });
        assert!(e.contains("more than 64 items"), "{e}");
        let e = message(|v| v["issuer_name"] = "x".repeat(MAX_TEXT + 1).into());
        assert!(
            e.contains("issuer_name is 1025 bytes, more than 1024"),
            "{e}"
        );
        let e = message(|v| {
            v["credentials"][1]["file"] = "x".repeat(MAX_FILE_NAME + 1).into();
        });
        assert!(e.contains("credentials[1].file"), "{e}");
    }

    #[test]
    fn fail_inconsistent_parts_name_the_field_and_credential() {
        let file0 = batch(3).manifest.entries()[0].file.clone();
        let cases: Vec<(Edit, String)> = vec![
            (
                Box::new(|v| v["leaf"] = "whole file".into()),
                "leaf rule \"whole file\"".into(),
            ),
            (
                Box::new(|v| v["count"] = 4.into()),
                "count is 4 but 3 credentials are listed".into(),
            ),
            (
                Box::new(|v| v["credentials"] = serde_json::json!([])),
                "count is 3 but 0".into(),
            ),
            (
                Box::new(|v| v["issuer"] = "did:web:x".into()),
                "issuer \"did:web:x\" is not a did:key".into(),
            ),
            (
                Box::new(|v| v["batch_root"] = "AB".repeat(32).into()),
                "batch_root is not 64 lowercase hex digits".into(),
            ),
            (
                Box::new(|v| v["anchor"]["tree_root"] = "AAAA".into()),
                "anchor.tree_root is not 32 bytes".into(),
            ),
            (
                Box::new(|v| v["anchor"]["inclusion_proof"][0] = "!".into()),
                "anchor.inclusion_proof[0] is not".into(),
            ),
            (
                Box::new(|v| v["anchor"]["entry"] = "{}".into()),
                "anchor.entry is not a chain entry".into(),
            ),
            (
                Box::new(|v| v["anchor"]["leaf_hash"] = "00".repeat(32).into()),
                "anchor.leaf_hash is not the leaf hash".into(),
            ),
            (
                Box::new(|v| v["anchor"]["entry_index"] = 6.into()),
                "anchor.entry_index 6 is not in a tree of 6".into(),
            ),
            (
                Box::new(|v| v["credentials"][2]["file"] = "../../etc/passwd".into()),
                "credentials[2].file \"../../etc/passwd\" is not a plain file name".into(),
            ),
            (
                Box::new(|v| v["credentials"][0]["qr"] = "a/b.png".into()),
                "credentials[0].qr".into(),
            ),
            (
                Box::new(|v| {
                    v["credentials"][1]["file"] = v["credentials"][0]["file"].clone();
                }),
                "is listed twice".into(),
            ),
            (
                Box::new(|v| v["credentials"][1]["row"] = 1.into()),
                "row 1 does not come after row 1".into(),
            ),
            (
                Box::new(|v| v["credentials"][0]["credential_id"] = "XYZ".into()),
                format!("{file0}: credential_id \"XYZ\" is not 32 lowercase hex digits"),
            ),
            (
                Box::new(|v| v["credentials"][0]["holder"] = "did:key:zBad".into()),
                format!("{file0}: holder \"did:key:zBad\" is not a did:key"),
            ),
            (
                Box::new(|v| v["credentials"][0]["status"]["idx"] = 99.into()),
                format!("{file0}: status index 99 of {LIST} is not in the anchored list"),
            ),
            (
                Box::new(|v| v["credentials"][0]["status"]["uri"] = "https://other/x".into()),
                "status index 10 of https://other/x".into(),
            ),
            (
                Box::new(|v| {
                    v["credentials"][1]["status"]["idx"] =
                        v["credentials"][0]["status"]["idx"].clone();
                }),
                "status index 10 is listed twice".into(),
            ),
            (
                Box::new(|v| {
                    let first = v["credentials"][0]["anchor_proof"].clone();
                    v["credentials"][0]["anchor_proof"] =
                        v["credentials"][1]["anchor_proof"].clone();
                    v["credentials"][1]["anchor_proof"] = first;
                }),
                format!(
                    "{file0}: the anchor proof is for entry 4 leaf 1 of 3, not entry 4 leaf 0 of 3"
                ),
            ),
        ];
        for (edit, want) in cases {
            let e = message(edit);
            assert!(e.starts_with("manifest: "), "{e}");
            assert!(e.contains(&want), "{e}\n does not contain {want}");
        }
    }

    #[test]
    fn fail_an_anchor_of_another_batch_author_or_kind() {
        let b = batch(3);
        let m = &b.manifest;
        let other = SigningKey::from_bytes(&[9; 32]);
        let with_entry = |entry: Entry| {
            let anchor = SealedAnchor {
                entry,
                ..m.anchor().clone()
            };
            Manifest::new(
                m.batch().clone(),
                m.batch_root(),
                anchor,
                m.entries().to_vec(),
            )
        };
        let Action::Anchor { list, root, .. } = m.anchor().entry.action().clone() else {
            unreachable!()
        };
        let action = |count| Action::Anchor {
            list: list.clone(),
            root: root.clone(),
            count,
            first: 10,
            last: 13,
        };
        let issuer = SigningKey::from_bytes(&[7; 32]);
        assert!(matches!(
            with_entry(Entry::sign(&other, 0, 1, action(3))),
            Err(ManifestError::AnchorAuthor { .. })
        ));
        assert!(matches!(
            with_entry(Entry::sign(&issuer, 0, 1, action(4))),
            Err(ManifestError::AnchorBatch {
                count: 4,
                listed: 3,
                ..
            })
        ));
        let status = Action::Status {
            list,
            sequence: 1,
            token: "x".into(),
        };
        assert!(matches!(
            with_entry(Entry::sign(&issuer, 0, 1, status)),
            Err(ManifestError::NotAnAnchor("status"))
        ));
        assert!(matches!(
            Manifest::new(
                m.batch().clone(),
                m.batch_root(),
                m.anchor().clone(),
                Vec::new()
            ),
            Err(ManifestError::Empty)
        ));
    }

    #[test]
    fn credential_ids_are_of_the_issuer_signed_jwt() {
        assert_eq!(credential_id("a.b.c~d1~"), credential_id("a.b.c~d2~kb"));
        assert_ne!(credential_id("a.b.c~"), credential_id("a.b.d~"));
        assert_eq!(credential_id("a.b.c").len(), 32);
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
    }

    #[test]
    fn plain_file_names() {
        for ok in ["000001-ab.sd-jwt", "a", "résumé.png"] {
            assert!(plain_file_name(ok), "{ok}");
        }
        let long = "x".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "c:x",
            "a\nb",
            long.as_str(),
        ] {
            assert!(!plain_file_name(bad), "{bad:?}");
        }
    }
}
