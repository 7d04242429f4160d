//! Anchor proofs: that a credential is a leaf of a batch an issuer anchored
//! on the chain.
//!
//! An issuer anchors each batch of credentials with one chain entry
//! ([`crate::chain::Action::Anchor`]) carrying the RFC 9162 Merkle root over
//! the batch. Each leaf is a credential's issuer-signed JWT (the compact
//! SD-JWT up to its first `~`, see [`leaf`]): it commits to every
//! disclosure digest, so any presentation of the credential, whatever it
//! discloses, reproduces it. An [`AnchorProof`] is where that leaf sits in
//! which anchored batch, and the audit path to the batch root. The block
//! that sealed the anchor entry then bounds when the credential was issued,
//! whatever its own `iat` says.
//!
//! The tree maths is [`crate::log`]'s (`tlog_tiles`); this module only
//! bounds and carries the proof.

use serde::{Deserialize, Serialize};

use crate::log::{self, Hash, ProofError};

/// The longest audit path an anchor proof may carry: one hash per level of
/// a batch of up to 2^64 credentials.
pub const MAX_PATH_HASHES: usize = 64;
/// Longest JSON form [`AnchorProof::from_json`] reads: a full path of
/// [`MAX_PATH_HASHES`] hashes is about 3.2 KB.
pub const MAX_PROOF_JSON_BYTES: usize = 8 << 10;

/// Why an anchor proof is refused or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The batch size is zero.
    #[error("anchor proof: a batch of 0 credentials has no leaves")]
    EmptyBatch,
    /// The leaf index is not inside the batch.
    #[error("anchor proof: leaf {leaf} is not in a batch of {size}")]
    LeafIndex {
        /// The leaf index.
        leaf: u64,
        /// The batch size.
        size: u64,
    },
    /// More path hashes than any batch needs.
    #[error("anchor proof: an audit path of {0} hashes is longer than {MAX_PATH_HASHES}")]
    PathTooLong(usize),
    /// The path does not have the length RFC 9162 gives for this leaf and
    /// batch size.
    #[error(
        "anchor proof: leaf {leaf} of a batch of {size} needs an audit path of {want} hashes, \
         not {got}"
    )]
    PathLength {
        /// The leaf index.
        leaf: u64,
        /// The batch size.
        size: u64,
        /// Hashes RFC 9162 needs.
        want: usize,
        /// Hashes carried.
        got: usize,
    },
    /// A path element is not 32 bytes of standard base64.
    #[error("anchor proof: audit path hash {0} is not 32 bytes of standard base64")]
    Hash(usize),
    /// The proof is not the expected JSON.
    #[error("anchor proof: {0}")]
    Malformed(String),
    /// The path does not lead from the leaf to the batch root.
    #[error("anchor proof: leaf {leaf} of a batch of {size} does not lead to the batch root")]
    Mismatch {
        /// The leaf index.
        leaf: u64,
        /// The batch size.
        size: u64,
    },
}

/// Where a credential sits in an anchored batch, and the audit path from it
/// to the batch root. The fields are consistent by construction
/// ([`AnchorProof::new`] checks them, and so does deserialising).
///
/// As JSON: `{"entry_index": 12, "leaf_index": 3, "batch_size": 5,
/// "path": ["<base64>", …]}`, hashes in standard base64 as checkpoints and
/// manifests carry them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct AnchorProof {
    entry: u64,
    leaf: u64,
    size: u64,
    path: Vec<Hash>,
}

/// The JSON form of an [`AnchorProof`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    entry_index: u64,
    leaf_index: u64,
    batch_size: u64,
    path: Vec<String>,
}

impl TryFrom<Wire> for AnchorProof {
    type Error = AnchorError;

    fn try_from(wire: Wire) -> Result<Self, AnchorError> {
        if wire.path.len() > MAX_PATH_HASHES {
            return Err(AnchorError::PathTooLong(wire.path.len()));
        }
        let path = wire
            .path
            .iter()
            .enumerate()
            .map(|(i, h)| log::hash_from_base64(h).ok_or(AnchorError::Hash(i)))
            .collect::<Result<Vec<_>, _>>()?;
        AnchorProof::new(wire.entry_index, wire.leaf_index, wire.batch_size, path)
    }
}

impl From<AnchorProof> for Wire {
    fn from(proof: AnchorProof) -> Wire {
        Wire {
            entry_index: proof.entry,
            leaf_index: proof.leaf,
            batch_size: proof.size,
            path: log::hashes_to_base64(&proof.path),
        }
    }
}

/// The number of audit path hashes RFC 9162 (§2.1.3.2) uses for leaf
/// `leaf` of a tree of `size` leaves (`leaf < size`): the levels where the
/// leaf's subtree has a sibling.
fn path_len(leaf: u64, size: u64) -> usize {
    let last = size - 1;
    // Levels below the point where the paths to `leaf` and to the last
    // leaf part, then one per left sibling above it.
    let inner = (u64::BITS - (leaf ^ last).leading_zeros()) as usize;
    let border = leaf.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    inner + border
}

/// The Merkle leaf of a credential: its issuer-signed JWT, the compact
/// SD-JWT (or presentation) up to its first `~`.
pub fn leaf(credential: &str) -> &str {
    credential.split('~').next().unwrap_or(credential)
}

impl AnchorProof {
    /// A proof that leaf `leaf` of a batch of `size` credentials, anchored
    /// by chain entry `entry`, has audit path `path`.
    ///
    /// # Errors
    /// [`AnchorError`] when the batch is empty, the leaf is outside it, or
    /// the path is not exactly as long as RFC 9162 makes it for this leaf
    /// and size (so at most [`MAX_PATH_HASHES`]).
    pub fn new(entry: u64, leaf: u64, size: u64, path: Vec<Hash>) -> Result<Self, AnchorError> {
        if path.len() > MAX_PATH_HASHES {
            return Err(AnchorError::PathTooLong(path.len()));
        }
        if size == 0 {
            return Err(AnchorError::EmptyBatch);
        }
        if leaf >= size {
            return Err(AnchorError::LeafIndex { leaf, size });
        }
        let want = path_len(leaf, size);
        if path.len() != want {
            return Err(AnchorError::PathLength {
                leaf,
                size,
                want,
                got: path.len(),
            });
        }
        Ok(Self {
            entry,
            leaf,
            size,
            path,
        })
    }

    /// Parses the JSON form (see [`AnchorProof`]) of outside input.
    ///
    /// # Errors
    /// [`AnchorError`] when it is not that JSON, or its fields are out of
    /// bounds or inconsistent.
    pub fn from_json(text: &str) -> Result<Self, AnchorError> {
        // Refused before parsing: serde would build the whole path first.
        if text.len() > MAX_PROOF_JSON_BYTES {
            return Err(AnchorError::Malformed(format!(
                "{} bytes of JSON, more than the {MAX_PROOF_JSON_BYTES}-byte limit",
                text.len()
            )));
        }
        serde_json::from_str::<Wire>(text)
            .map_err(|e| AnchorError::Malformed(e.to_string()))?
            .try_into()
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        // A struct of integers and strings always serialises.
        serde_json::to_string(&Wire::from(self.clone())).unwrap_or_default()
    }

    /// The chain log index of the anchor entry.
    pub fn entry_index(&self) -> u64 {
        self.entry
    }

    /// The credential's leaf index in the batch.
    pub fn leaf_index(&self) -> u64 {
        self.leaf
    }

    /// How many credentials the batch holds.
    pub fn batch_size(&self) -> u64 {
        self.size
    }

    /// The audit path, leaf level first.
    pub fn path(&self) -> &[Hash] {
        &self.path
    }

    /// Checks that `leaf_bytes` (a credential's [`leaf`]) is leaf
    /// [`AnchorProof::leaf_index`] of the batch of
    /// [`AnchorProof::batch_size`] credentials whose RFC 9162 root is
    /// `batch_root`.
    ///
    /// The hashes bind the batch size only through the path's shape: a
    /// caller must also check [`AnchorProof::batch_size`] against the
    /// anchor entry's count, as [`crate::verify::verify`] does.
    ///
    /// # Errors
    /// [`AnchorError::Mismatch`] when the path does not lead there.
    pub fn verify(&self, leaf_bytes: &[u8], batch_root: Hash) -> Result<(), AnchorError> {
        let leaf_hash = log::record_hash(leaf_bytes);
        log::verify_inclusion(&self.path, self.size, batch_root, self.leaf, leaf_hash).map_err(
            |e| match e {
                ProofError::TooLong(n) => AnchorError::PathTooLong(n),
                _ => AnchorError::Mismatch {
                    leaf: self.leaf,
                    size: self.size,
                },
            },
        )
    }
}

/// A batch root as an anchor entry writes it (64 lowercase hex digits);
/// `None` when it is not one.
pub fn root_from_hex(hex: &str) -> Option<Hash> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(Hash(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::log::{prove_record, MemoryHashes};

    fn leaves(n: u64) -> Vec<String> {
        (0..n)
            .map(|i| format!("eyJhbGciOi.payload{i}.sig"))
            .collect()
    }

    fn batch(n: u64) -> (Vec<String>, MemoryHashes) {
        let creds = leaves(n);
        let mut tree = MemoryHashes::new();
        for c in &creds {
            tree.append(log::record_hash(c.as_bytes())).unwrap();
        }
        (creds, tree)
    }

    fn proof(tree: &MemoryHashes, leaf: u64) -> AnchorProof {
        let path = prove_record(tree.size(), leaf, tree).unwrap();
        AnchorProof::new(9, leaf, tree.size(), path).unwrap()
    }

    #[test]
    fn every_leaf_of_every_small_batch_verifies_and_round_trips() {
        for n in 1..=19 {
            let (creds, tree) = batch(n);
            let root = tree.root().unwrap();
            for i in 0..n {
                let p = proof(&tree, i);
                p.verify(creds[i as usize].as_bytes(), root).unwrap();
                let json = p.to_json();
                assert_eq!(AnchorProof::from_json(&json).unwrap(), p);
                let value = serde_json::to_value(&p).unwrap();
                assert_eq!(value["entry_index"], 9);
                assert_eq!(value["leaf_index"], i);
                assert_eq!(value["batch_size"], n);
                let back: AnchorProof = serde_json::from_value(value).unwrap();
                assert_eq!(back, p);
            }
        }
    }

    #[test]
    fn the_leaf_is_the_issuer_signed_jwt() {
        assert_eq!(leaf("a.b.c~d1~d2~kb"), "a.b.c");
        assert_eq!(leaf("a.b.c~"), "a.b.c");
        assert_eq!(leaf("a.b.c"), "a.b.c");
    }

    #[test]
    fn fail_a_flipped_hash_another_leaf_or_root() {
        let (creds, tree) = batch(7);
        let root = tree.root().unwrap();
        let p = proof(&tree, 3);
        for at in 0..p.path.len() {
            let mut bad = p.clone();
            bad.path[at].0[5] ^= 1;
            assert!(matches!(
                bad.verify(creds[3].as_bytes(), root),
                Err(AnchorError::Mismatch { leaf: 3, size: 7 })
            ));
        }
        assert!(p.verify(creds[4].as_bytes(), root).is_err());
        assert!(p.verify(b"", root).is_err());
        let mut other = root;
        other.0[0] ^= 0x80;
        assert!(p.verify(creds[3].as_bytes(), other).is_err());
    }

    #[test]
    fn fail_a_wrong_index_or_size() {
        let (creds, tree) = batch(8);
        let root = tree.root().unwrap();
        let p = proof(&tree, 2);
        // Same path length (a full tree of 8), another leaf: the path does
        // not lead to the root.
        let moved = AnchorProof::new(9, 3, 8, p.path.clone()).unwrap();
        assert!(moved.verify(creds[2].as_bytes(), root).is_err());
        assert!(moved.verify(creds[3].as_bytes(), root).is_err());
        // Another size: leaf 6 of 8 has a right sibling, leaf 6 of 7 none.
        let last = proof(&tree, 6);
        assert!(matches!(
            AnchorProof::new(9, 6, 7, last.path.clone()),
            Err(AnchorError::PathLength {
                want: 2,
                got: 3,
                ..
            })
        ));
        let (seven, small) = batch(7);
        let short = proof(&small, 6);
        let grown = AnchorProof::new(9, 6, 8, short.path.clone());
        assert!(matches!(grown, Err(AnchorError::PathLength { .. })));
        assert!(short.verify(seven[6].as_bytes(), root).is_err());
        // Where the path has the same shape in both sizes (leaf 2 of 7 and
        // of 8), the hashes cannot tell the sizes apart: the verifier
        // compares the size with the anchor entry's count.
        let resized = AnchorProof::new(9, 2, 7, p.path.clone()).unwrap();
        assert!(resized.verify(creds[2].as_bytes(), root).is_ok());
        // Sizes that make the path the wrong length are refused outright.
        assert!(matches!(
            AnchorProof::new(9, 2, 4, p.path.clone()),
            Err(AnchorError::PathLength {
                want: 2,
                got: 3,
                ..
            })
        ));
        assert_eq!(
            AnchorProof::new(9, 8, 8, p.path.clone()),
            Err(AnchorError::LeafIndex { leaf: 8, size: 8 })
        );
        assert_eq!(
            AnchorProof::new(9, 0, 0, Vec::new()),
            Err(AnchorError::EmptyBatch)
        );
        // A batch of one: the leaf is the root, the path empty.
        let (one, tree) = batch(1);
        let single = AnchorProof::new(0, 0, 1, Vec::new()).unwrap();
        single
            .verify(one[0].as_bytes(), tree.root().unwrap())
            .unwrap();
        assert!(AnchorProof::new(0, 0, 1, vec![Hash([0; 32])]).is_err());
    }

    #[test]
    fn fail_an_over_long_or_malformed_path_from_outside() {
        let long = vec![Hash([1; 32]); MAX_PATH_HASHES + 1];
        assert_eq!(
            AnchorProof::new(0, 0, u64::MAX, long),
            Err(AnchorError::PathTooLong(65))
        );
        let hashes = log::hashes_to_base64(&[Hash([1; 32]); MAX_PATH_HASHES + 1]);
        let json = serde_json::json!({
            "entry_index": 1, "leaf_index": 0, "batch_size": u64::MAX, "path": hashes,
        });
        assert_eq!(
            AnchorProof::from_json(&json.to_string()),
            Err(AnchorError::PathTooLong(65))
        );
        // The largest batch: a path of exactly 64 hashes is accepted, and
        // its JSON is within the byte limit.
        let full: Vec<Hash> = vec![Hash([2; 32]); 64];
        let proof = AnchorProof::new(0, 0, u64::MAX, full).unwrap();
        assert_eq!(AnchorProof::from_json(&proof.to_json()), Ok(proof));
        // A megabyte of path strings is refused before serde builds them.
        let huge = format!(
            r#"{{"entry_index":1,"leaf_index":0,"batch_size":2,"path":[{}"x"]}}"#,
            "\"x\",".repeat(200_000)
        );
        assert!(matches!(
            AnchorProof::from_json(&huge),
            Err(AnchorError::Malformed(m)) if m.contains("limit")
        ));
        for bad in [
            r#"{"entry_index":1,"leaf_index":0,"batch_size":2,"path":["AAAA"]}"#,
            r#"{"entry_index":1,"leaf_index":0,"batch_size":2,"path":[7]}"#,
            r#"{"entry_index":1,"leaf_index":0,"batch_size":2}"#,
            r#"{"entry_index":-1,"leaf_index":0,"batch_size":1,"path":[]}"#,
            r#"{"entry_index":1,"leaf_index":0,"batch_size":1,"path":[],"x":1}"#,
            "[]",
            "",
        ] {
            assert!(AnchorProof::from_json(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            AnchorProof::from_json(
                r#"{"entry_index":1,"leaf_index":0,"batch_size":2,"path":["AAAA"]}"#
            ),
            Err(AnchorError::Hash(0))
        ));
    }

    #[test]
    fn path_lengths_match_the_tree() {
        for n in 1..=40u64 {
            let (_, tree) = batch(n);
            for i in 0..n {
                let p = prove_record(n, i, &tree).unwrap();
                assert_eq!(path_len(i, n), p.len(), "leaf {i} of {n}");
            }
        }
        assert_eq!(path_len(0, u64::MAX), 64);
        assert_eq!(path_len(u64::MAX - 1, u64::MAX), 63);
    }

    #[test]
    fn batch_roots_parse_from_anchor_hex() {
        let h = Hash([0xab; 32]);
        assert_eq!(root_from_hex(&"ab".repeat(32)), Some(h));
        assert_eq!(root_from_hex(&"AB".repeat(32)), None);
        assert_eq!(root_from_hex(&"ab".repeat(31)), None);
        assert_eq!(root_from_hex(&"zz".repeat(32)), None);
    }
}
