//! The chain's Merkle log: RFC 9162 tree hashing and proofs, and blocks as
//! C2SP `tlog-checkpoint` signed notes, signed by the node and cosigned by
//! witnesses (C2SP `tlog-cosignature`, `cosignature/v1`).
//!
//! The tree maths is `tlog_tiles` (a port of Go's `sumdb/tlog`, checked here
//! against the transparency-dev vectors); storage reaches it through
//! [`HashReader`], so the node keeps hashes in sled and tests in memory.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use signed_note::{Note, Signature as NoteSignature, Verifier};
use tlog_tiles::Checkpoint;

pub use tlog_tiles::{
    node_hash, prove_record, prove_tree, record_hash, split_stored_hash_index, stored_hash_count,
    stored_hash_index, stored_hashes_for_record_hash, tree_hash, Error as TreeError, Hash,
    HashReader, EMPTY_HASH,
};

/// Signature algorithm byte of a plain Ed25519 signed-note key.
const ALG_ED25519: u8 = 0x01;
/// Signature algorithm byte of a `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The longest proof we look at: two hashes per level of a 2^64 tree.
const MAX_PROOF_HASHES: usize = 128;
/// The most witnesses a trust policy may name. A signed note holds at most
/// 100 signature lines and one is the node's, so every configured witness's
/// cosignature always fits beside it.
pub const MAX_WITNESSES: usize = 64;

/// Why a proof does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The sizes cannot be proved (index beyond the tree, shrinking tree).
    #[error("bad proof request: {0}")]
    Bounds(String),
    /// The proof has too many hashes to be real.
    #[error("proof of {0} hashes is too long")]
    TooLong(usize),
    /// The hashes do not recompute the root.
    #[error("proof does not match the root")]
    Mismatch,
}

/// Checks that the leaf `leaf` is at `index` of the tree of `size` leaves with
/// root `root` (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError`] when it is not.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Bounds(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong(proof.len()));
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf)
        .map_err(|_| ProofError::Mismatch)
}

/// Checks that the tree of `new_size` with `new_root` extends the tree of
/// `old_size` with `old_root` (RFC 9162 §2.1.4.2). The empty tree is a prefix
/// of every tree.
///
/// # Errors
/// [`ProofError`] when it does not.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::Bounds(format!(
            "tree shrank from {old_size} to {new_size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong(proof.len()));
    }
    if old_size == 0 {
        return if proof.is_empty() && old_root == EMPTY_HASH {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    tlog_tiles::check_tree(&proof.to_vec(), new_size, new_root, old_size, old_root)
        .map_err(|_| ProofError::Mismatch)
}

/// A hash from standard base64 (as checkpoints, proofs and manifests carry
/// them); `None` unless it is exactly 32 bytes.
pub fn hash_from_base64(text: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(text).ok()?;
    Some(Hash(<[u8; 32]>::try_from(bytes).ok()?))
}

/// Hashes from a JSON list of standard-base64 strings; `None` when it is not
/// one.
pub fn hashes_from_json(value: &serde_json::Value) -> Option<Vec<Hash>> {
    value
        .as_array()?
        .iter()
        .map(|h| hash_from_base64(h.as_str()?))
        .collect()
}

/// Hashes as standard-base64 strings.
pub fn hashes_to_base64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h.0)).collect()
}

/// Hashes kept in memory, for witnesses checking a span of entries and for
/// tests. Indexes are `tlog_tiles` stored-hash indexes.
#[derive(Debug, Default, Clone)]
pub struct MemoryHashes {
    hashes: Vec<Hash>,
    leaves: u64,
}

impl MemoryHashes {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf by its record hash; returns its index.
    ///
    /// # Errors
    /// Never in practice: every hash it reads is one it stored.
    pub fn append(&mut self, leaf: Hash) -> Result<u64, TreeError> {
        let n = self.leaves;
        let new = stored_hashes_for_record_hash(n, leaf, self)?;
        self.hashes.extend(new);
        self.leaves += 1;
        Ok(n)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves
    }

    /// The root of the whole tree.
    ///
    /// # Errors
    /// Never in practice: every hash it reads is one it stored.
    pub fn root(&self) -> Result<Hash, TreeError> {
        tree_hash(self.leaves, self)
    }
}

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i))
                    .copied()
                    .ok_or(TreeError::IndexesNotInTree)
            })
            .collect()
    }
}

/// An RFC 9162 tree over leaves all held in memory (a batch of
/// credentials): every level made once, bottom up, so that its root and
/// each leaf's audit path are read off the levels, not computed again for
/// each leaf from stored subtree hashes.
///
/// RFC 9162's tree (split at the largest power of two below the size) is
/// the tree whose levels pair their nodes from the left and carry an
/// unpaired last node up unchanged: the same root, the same paths.
#[derive(Debug, Clone)]
pub struct BatchTree {
    /// `levels[0]` the leaves' record hashes, each next level half as
    /// long (rounded up), the last one the root alone.
    levels: Vec<Vec<Hash>>,
}

impl BatchTree {
    /// The tree over `leaves` (record hashes, [`record_hash`]), in order.
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let above = below
                .chunks(2)
                .map(|pair| match *pair {
                    [left, right] => node_hash(left, right),
                    [only] => only,
                    _ => unreachable!("chunks(2) gives one or two"),
                })
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The root: RFC 9162's `MTH` of the leaves ([`EMPTY_HASH`] for none).
    pub fn root(&self) -> Hash {
        // No leaves: one level, empty.
        self.levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(EMPTY_HASH)
    }

    /// The audit path of leaf `index`, leaf level first (RFC 9162 §2.1.3:
    /// what [`prove_record`] gives for this tree), or `None` when the tree
    /// has no such leaf.
    pub fn audit_path(&self, index: u64) -> Option<Vec<Hash>> {
        let mut at = usize::try_from(index).ok()?;
        if at >= self.levels[0].len() {
            return None;
        }
        let mut path = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for level in &self.levels[..self.levels.len() - 1] {
            // An unpaired last node is carried up: no hash at this level.
            if let Some(&sibling) = level.get(at ^ 1) {
                path.push(sibling);
            }
            at /= 2;
        }
        Some(path)
    }
}

/// A block: the log sealed at a size, chained to the block before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The log's origin line (its name).
    pub origin: String,
    /// Height, from 0 (the genesis block).
    pub height: u64,
    /// Unix seconds when it was sealed.
    pub time: i64,
    /// Hash of the previous block's checkpoint text; zeroes for height 0.
    pub prev: Hash,
    /// Tree size.
    pub size: u64,
    /// Tree root.
    pub root: Hash,
}

/// The extension line that carries the block fields.
const BLOCK_LINE: &str = "vouch-block";

/// Why a checkpoint or block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Not a C2SP checkpoint, or not one of our blocks.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signed note does not parse or a known key's signature is wrong.
    #[error("signed note: {0}")]
    Note(String),
    /// The node's signature is missing.
    #[error("checkpoint is not signed by the node key {0}")]
    Unsigned(String),
    /// Fewer cosignatures than the policy needs.
    #[error("{got} of the {need} witness cosignatures needed")]
    Cosignatures {
        /// Valid cosignatures from known witnesses.
        got: usize,
        /// Required by policy.
        need: usize,
    },
    /// The trust policy itself is refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Why a trust policy is refused (see [`TrustPolicy::new`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// More witnesses than a signed note can carry cosignatures for.
    #[error("the policy names {0} witnesses; at most {MAX_WITNESSES} are allowed")]
    TooManyWitnesses(usize),
    /// The same witness (by name or by key) is listed twice, so one witness
    /// would count as two.
    #[error("witness {0:?} is listed more than once (by name or by key)")]
    DuplicateWitness(String),
    /// More cosignatures needed than there are witnesses: no block could
    /// ever be accepted.
    #[error("the policy needs {need} cosignatures but names only {witnesses} witnesses")]
    NeedTooHigh {
        /// Cosignatures needed.
        need: usize,
        /// Witnesses named.
        witnesses: usize,
    },
    /// `need` is at most half the witnesses, and weak quorums were not
    /// explicitly allowed.
    #[error(
        "a policy needing {need} of {witnesses} witness cosignatures is a weak quorum: two \
         disjoint sets of {need} witnesses can each be shown a different fork, so the node \
         could show different histories to different readers and both would verify; need \
         at least {majority} (more than half), or force a weak quorum explicitly"
    )]
    WeakQuorum {
        /// Cosignatures needed.
        need: usize,
        /// Witnesses named.
        witnesses: usize,
        /// The smallest majority of these witnesses.
        majority: usize,
    },
}

impl Block {
    /// The checkpoint body (the note text) of this block.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{BLOCK_LINE} {} {} {}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.0),
            self.height,
            self.time,
            STANDARD.encode(self.prev.0)
        )
    }

    /// The block hash: SHA-256 of its checkpoint body.
    pub fn hash(&self) -> Hash {
        Hash(Sha256::digest(self.body().as_bytes()).into())
    }

    /// The block of a signed checkpoint note, without checking any
    /// signature (for a writer reading back from the node it trusts).
    ///
    /// # Errors
    /// [`CheckpointError`] when the note or its body is malformed.
    pub fn from_note_unverified(note: &[u8]) -> Result<Self, CheckpointError> {
        let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::Note(e.to_string()))?;
        Self::from_body(parsed.text())
    }

    /// Parses a checkpoint body written by [`Block::body`].
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`] naming what is wrong.
    pub fn from_body(text: &[u8]) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::Malformed(why.to_owned());
        let checkpoint = Checkpoint::from_bytes(text).map_err(|e| bad(&e.to_string()))?;
        let ext = checkpoint.extension();
        let line = ext
            .strip_prefix(BLOCK_LINE)
            .and_then(|l| l.strip_prefix(' '))
            .and_then(|l| l.strip_suffix('\n'))
            .ok_or_else(|| bad("no vouch-block line"))?;
        let mut fields = line.split(' ');
        let (Some(height), Some(time), Some(prev), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("vouch-block line needs height, time, previous hash"));
        };
        let prev = STANDARD
            .decode(prev)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| bad("previous block hash is not 32 bytes of base64"))?;
        let block = Self {
            origin: checkpoint.origin().to_owned(),
            height: parse_decimal(height).ok_or_else(|| bad("bad height"))?,
            time: time.parse().map_err(|_| bad("bad time"))?,
            prev: Hash(prev),
            size: checkpoint.size(),
            root: *checkpoint.hash(),
        };
        // Only the canonical spelling is accepted, so the block hash is unique.
        if block.body().as_bytes() != text {
            return Err(bad("not in canonical form"));
        }
        Ok(block)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// Key id of a signed-note key: SHA-256(name || '\n' || alg || key)[:4].
fn key_id(name: &str, alg: u8, key: &VerifyingKey) -> u32 {
    let mut encoded = vec![alg];
    encoded.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &encoded)
}

/// The public "verifier key" string `name+hexid+base64(alg||key)` of a node.
pub fn node_vkey(name: &str, key: &VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(name, key)
}

/// The verifier key string of a witness (`cosignature/v1`).
pub fn witness_vkey(name: &str, key: &VerifyingKey) -> String {
    let mut encoded = vec![ALG_COSIGNATURE_V1];
    encoded.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{:08x}+{}",
        key_id(name, ALG_COSIGNATURE_V1, key),
        STANDARD.encode(encoded)
    )
}

/// Parses a verifier key string: its name, algorithm byte and key.
///
/// # Errors
/// [`CheckpointError::Malformed`] when it is not `name+hexid+base64` with an
/// Ed25519 or cosignature/v1 key whose id matches.
pub fn parse_vkey(vkey: &str) -> Result<(String, u8, VerifyingKey), CheckpointError> {
    let bad = |why: &str| CheckpointError::Malformed(format!("verifier key {vkey:?}: {why}"));
    // The key is standard base64, which may itself contain '+'.
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id), Some(key), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected name+id+key"));
    };
    let raw = STANDARD.decode(key).map_err(|_| bad("key is not base64"))?;
    let (&alg, key) = raw.split_first().ok_or_else(|| bad("empty key"))?;
    if alg != ALG_ED25519 && alg != ALG_COSIGNATURE_V1 {
        return Err(bad("unknown signature algorithm"));
    }
    let key = <[u8; 32]>::try_from(key)
        .ok()
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| bad("not an Ed25519 key"))?;
    if u32::from_str_radix(id, 16).ok() != Some(key_id(name, alg, &key)) || id.len() != 8 {
        return Err(bad("key id does not match"));
    }
    Ok((name.to_owned(), alg, key))
}

/// The node's checkpoint signer (plain Ed25519 signed-note signature).
pub struct NodeSigner<'a> {
    name: &'a str,
    key: &'a SigningKey,
}

impl<'a> NodeSigner<'a> {
    /// A signer named `name` (the log origin).
    pub fn new(name: &'a str, key: &'a SigningKey) -> Self {
        Self { name, key }
    }
}

impl signed_note::Signer for NodeSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        key_id(self.name, ALG_ED25519, &self.key.verifying_key())
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

struct NodeVerifier {
    name: String,
    key: VerifyingKey,
}

impl Verifier for NodeVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        key_id(&self.name, ALG_ED25519, &self.key)
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        crate::ed25519::verify(&self.key, &[msg], sig).is_ok()
    }
}

/// The message a `cosignature/v1` signs.
fn cosigned_message(time: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A witness's cosigner: `cosignature/v1` at a given time.
pub struct Cosigner<'a> {
    name: &'a str,
    key: &'a SigningKey,
    time: u64,
}

impl<'a> Cosigner<'a> {
    /// A cosigner named `name`, stamping `time` (Unix seconds).
    pub fn new(name: &'a str, key: &'a SigningKey, time: u64) -> Self {
        Self { name, key, time }
    }
}

impl signed_note::Signer for Cosigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        key_id(self.name, ALG_COSIGNATURE_V1, &self.key.verifying_key())
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        let sig = self.key.sign(&cosigned_message(self.time, msg));
        let mut out = self.time.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        key_id(&self.name, ALG_COSIGNATURE_V1, &self.key)
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((time, sig)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let time = u64::from_be_bytes(*time);
        crate::ed25519::verify(&self.key, &[&cosigned_message(time, msg)], sig).is_ok()
    }
}

/// Who must have signed a block for a replica to accept it. Built only by
/// [`TrustPolicy::new`], which refuses duplicate witnesses, an impossible
/// `need` and (unless forced) a weak quorum; the fields are private so that
/// no struct literal can skip those checks:
///
/// ```compile_fail
/// use ed25519_dalek::SigningKey;
/// let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
/// let weak = vouch_core::log::TrustPolicy {
///     node: ("log".to_owned(), key),
///     witnesses: vec![("w".to_owned(), key), ("w".to_owned(), key)],
///     need: 1,
/// };
/// ```
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    /// The node's name (the log origin) and key.
    node: (String, VerifyingKey),
    /// Witnesses' names and keys.
    witnesses: Vec<(String, VerifyingKey)>,
    /// How many witness cosignatures a block needs.
    need: usize,
}

/// A block as signed note: the block, and who signed it.
#[derive(Debug, Clone)]
pub struct SignedBlock {
    /// The block.
    pub block: Block,
    /// Names of the witnesses whose cosignatures verified.
    pub cosigned_by: Vec<String>,
    /// The whole signed note.
    pub note: String,
}

impl TrustPolicy {
    /// A checked policy: the node's name and key, the witnesses' names and
    /// keys, and how many of their cosignatures a block needs.
    ///
    /// A policy with witnesses must need more than half of them (a strict
    /// majority), so that two disjoint sets of witnesses can never both
    /// reach `need`: a node that shows one fork to some witnesses and
    /// another fork to the rest cannot get both cosigned, provided honest
    /// witnesses never cosign two forks. `force_weak_quorum` allows a
    /// smaller `need` anyway (tests, or a deployment that accepts the risk).
    /// A policy with no witnesses at all (`need` 0) trusts the node's key
    /// alone and is allowed: there is no witness quorum to split.
    ///
    /// # Errors
    /// [`PolicyError`] for more than [`MAX_WITNESSES`] witnesses, a witness
    /// listed twice, `need` above the number of witnesses, or a weak quorum
    /// that was not forced.
    pub fn new(
        node: (String, VerifyingKey),
        witnesses: Vec<(String, VerifyingKey)>,
        need: usize,
        force_weak_quorum: bool,
    ) -> Result<Self, PolicyError> {
        let n = witnesses.len();
        if n > MAX_WITNESSES {
            return Err(PolicyError::TooManyWitnesses(n));
        }
        for (i, (name, key)) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|(other, other_key)| other == name || other_key == key)
            {
                return Err(PolicyError::DuplicateWitness(name.clone()));
            }
        }
        if need > n {
            return Err(PolicyError::NeedTooHigh { need, witnesses: n });
        }
        if n > 0 && need.saturating_mul(2) <= n && !force_weak_quorum {
            return Err(PolicyError::WeakQuorum {
                need,
                witnesses: n,
                majority: n / 2 + 1,
            });
        }
        Ok(Self {
            node,
            witnesses,
            need,
        })
    }

    /// The node's name (the log origin).
    pub fn origin(&self) -> &str {
        &self.node.0
    }

    /// The node's key.
    pub fn node_key(&self) -> &VerifyingKey {
        &self.node.1
    }

    /// The witnesses' names and keys, in policy order.
    pub fn witnesses(&self) -> &[(String, VerifyingKey)] {
        &self.witnesses
    }

    /// How many witness cosignatures a block needs.
    pub fn need(&self) -> usize {
        self.need
    }

    /// The same keys, needing `need` cosignatures (0: the node's signature
    /// alone, for reading blocks whose cosignatures come later). This only
    /// changes how many cosignatures are asked for: a `need` above the
    /// number of witnesses accepts no block.
    pub fn with_need(&self, need: usize) -> TrustPolicy {
        TrustPolicy {
            need,
            ..self.clone()
        }
    }

    /// The valid signature lines of a note under this policy: the node's,
    /// and per witness (in policy order) its first valid cosignature. Lines
    /// that do not verify under a key of this policy are ignored, whoever
    /// they claim to be from.
    fn valid_lines<'a>(&self, text: &[u8], sigs: &'a [NoteSignature]) -> ValidLines<'a> {
        let first_valid = |verifier: &dyn Verifier| {
            sigs.iter().find(|s| {
                s.name() == verifier.name()
                    && s.id() == verifier.key_id()
                    && verifier.verify(text, s.signature())
            })
        };
        let node = first_valid(&NodeVerifier {
            name: self.node.0.clone(),
            key: self.node.1,
        });
        let witnesses = self
            .witnesses
            .iter()
            .enumerate()
            .map(|(i, (name, key))| {
                // `TrustPolicy::new` refuses a witness listed twice; should
                // one slip in anyway, it still counts once.
                let repeated = self.witnesses[..i]
                    .iter()
                    .any(|(other, other_key)| other == name || other_key == key);
                if repeated {
                    return None;
                }
                first_valid(&CosignatureVerifier {
                    name: name.clone(),
                    key: *key,
                })
            })
            .collect();
        ValidLines { node, witnesses }
    }

    /// Verifies a signed checkpoint note: the node's signature, and at least
    /// `need` witness cosignatures. Signature lines that do not verify under
    /// a key of this policy (unknown keys, and junk lines that carry a known
    /// name and key id) are ignored, so nobody can make a note unreadable by
    /// adding lines to it; only valid signatures count.
    ///
    /// # Errors
    /// [`CheckpointError`] naming what is missing or wrong.
    pub fn verify(&self, note: &[u8]) -> Result<SignedBlock, CheckpointError> {
        let (text, sigs) = split_note(note)?;
        let block = Block::from_body(&text)?;
        if block.origin != self.node.0 {
            return Err(CheckpointError::Malformed(format!(
                "origin {:?} is not this log ({:?})",
                block.origin, self.node.0
            )));
        }
        let valid = self.valid_lines(&text, &sigs);
        if valid.node.is_none() {
            return Err(CheckpointError::Unsigned(self.node.0.clone()));
        }
        let cosigned_by: Vec<String> = self
            .witnesses
            .iter()
            .zip(&valid.witnesses)
            .filter(|(_, sig)| sig.is_some())
            .map(|((name, _), _)| name.clone())
            .collect();
        if cosigned_by.len() < self.need {
            return Err(CheckpointError::Cosignatures {
                got: cosigned_by.len(),
                need: self.need,
            });
        }
        Ok(SignedBlock {
            block,
            cosigned_by,
            note: String::from_utf8_lossy(note).into_owned(),
        })
    }

    /// Merges the witness cosignatures of `offered` (a copy of the same
    /// checkpoint) into `stored`, keeping only lines that verify: the
    /// node's signature and at most one cosignature per witness of this
    /// policy. The first valid cosignature of a witness wins: a witness
    /// already present is not replaced by a newer one. Every other line of
    /// either note is dropped, so a merged note never holds more than
    /// `1 + witnesses` lines.
    ///
    /// Returns `None` when `offered` adds no witness, so the caller need not
    /// rewrite anything.
    ///
    /// # Errors
    /// [`CheckpointError`] when either note does not parse, the texts
    /// differ, or `stored` lacks a valid node signature.
    pub fn merge_cosignatures(
        &self,
        stored: &str,
        offered: &str,
    ) -> Result<Option<String>, CheckpointError> {
        let (text, stored_sigs) = split_note(stored.as_bytes())?;
        let (offered_text, offered_sigs) = split_note(offered.as_bytes())?;
        if text != offered_text {
            return Err(CheckpointError::Note(
                "cosigned checkpoint is not the same checkpoint".into(),
            ));
        }
        let have = self.valid_lines(&text, &stored_sigs);
        let Some(node) = have.node else {
            return Err(CheckpointError::Unsigned(self.node.0.clone()));
        };
        let new = self.valid_lines(&text, &offered_sigs);
        let adds = have
            .witnesses
            .iter()
            .zip(&new.witnesses)
            .any(|(h, n)| h.is_none() && n.is_some());
        if !adds {
            return Ok(None);
        }
        let mut out = text;
        out.push(b'\n');
        out.extend(node.to_bytes());
        for (h, n) in have.witnesses.iter().zip(&new.witnesses) {
            if let Some(sig) = h.or(*n) {
                out.extend(sig.to_bytes());
            }
        }
        let merged = String::from_utf8(out)
            .map_err(|_| CheckpointError::Note("merged note is not UTF-8".into()))?;
        Note::from_bytes(merged.as_bytes()).map_err(|e| CheckpointError::Note(e.to_string()))?;
        Ok(Some(merged))
    }
}

/// The signature lines of a note that verify under a policy.
struct ValidLines<'a> {
    /// The node's signature.
    node: Option<&'a NoteSignature>,
    /// Per witness of the policy, in order: its first valid cosignature.
    witnesses: Vec<Option<&'a NoteSignature>>,
}

/// A signed note's text and its signature lines, parsed (at most 100 lines,
/// as C2SP signed-note allows) but not verified.
fn split_note(note: &[u8]) -> Result<(Vec<u8>, Vec<NoteSignature>), CheckpointError> {
    let err = |e: signed_note::NoteError| CheckpointError::Note(e.to_string());
    let parsed = Note::from_bytes(note).map_err(err)?;
    // `from_bytes` checked that the note is UTF-8 and ends with a blank
    // line and signature lines.
    let text =
        std::str::from_utf8(note).map_err(|_| CheckpointError::Note("note is not UTF-8".into()))?;
    let lines = text
        .rsplit_once("\n\n")
        .and_then(|(_, sigs)| sigs.strip_suffix('\n'))
        .ok_or_else(|| CheckpointError::Note("note has no signature lines".into()))?;
    let sigs = lines
        .split('\n')
        .map(|line| NoteSignature::from_bytes(line.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok((parsed.text().to_vec(), sigs))
}

/// Signs a block as a checkpoint note by the node.
///
/// # Errors
/// [`CheckpointError::Note`] when the origin is not a valid key name.
pub fn sign_block(block: &Block, key: &SigningKey) -> Result<String, CheckpointError> {
    let mut note = Note::new(block.body().as_bytes(), &[])
        .map_err(|e| CheckpointError::Note(e.to_string()))?;
    note.add_sigs(&[&NodeSigner::new(&block.origin, key)])
        .map_err(|e| CheckpointError::Note(e.to_string()))?;
    Ok(String::from_utf8_lossy(&note.to_bytes()).into_owned())
}

/// Adds a witness cosignature to a signed checkpoint note.
///
/// # Errors
/// [`CheckpointError::Note`] when the note does not parse or the name is
/// not a valid key name.
pub fn cosign(
    note: &str,
    name: &str,
    key: &SigningKey,
    time: u64,
) -> Result<String, CheckpointError> {
    let mut parsed =
        Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::Note(e.to_string()))?;
    parsed
        .add_sigs(&[&Cosigner::new(name, key, time)])
        .map_err(|e| CheckpointError::Note(e.to_string()))?;
    Ok(String::from_utf8_lossy(&parsed.to_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn block() -> Block {
        Block {
            origin: "registry.example/vouch".into(),
            height: 3,
            time: 1_780_000_000,
            prev: Hash([7; 32]),
            size: 10,
            root: Hash([9; 32]),
        }
    }

    #[test]
    fn block_body_round_trips_and_is_canonical() {
        let b = block();
        assert_eq!(Block::from_body(b.body().as_bytes()).unwrap(), b);
        let text = b.body().replace(" 3 ", " 03 ");
        assert!(Block::from_body(text.as_bytes()).is_err());
        assert!(Block::from_body(b"registry\n10\n").is_err());
        assert!(Block::from_body(b"").is_err());
    }

    #[test]
    fn signed_and_cosigned_blocks_verify_by_policy() {
        let node = SigningKey::from_bytes(&[1; 32]);
        let w1 = SigningKey::from_bytes(&[2; 32]);
        let w2 = SigningKey::from_bytes(&[3; 32]);
        let b = block();
        let note = sign_block(&b, &node).unwrap();
        let one = cosign(&note, "w1", &w1, 1_780_000_001).unwrap();
        let two = cosign(&note, "w2", &w2, 1_780_000_002).unwrap();
        let mut policy = TrustPolicy::new(
            (b.origin.clone(), node.verifying_key()),
            vec![
                ("w1".into(), w1.verifying_key()),
                ("w2".into(), w2.verifying_key()),
            ],
            2,
            false,
        )
        .unwrap();
        let both = policy.merge_cosignatures(&one, &two).unwrap().unwrap();
        assert_eq!(policy.merge_cosignatures(&both, &two).unwrap(), None);
        let ok = policy.verify(both.as_bytes()).unwrap();
        assert_eq!(ok.block, b);
        assert_eq!(Block::from_note_unverified(both.as_bytes()).unwrap(), b);
        assert!(Block::from_note_unverified(b.body().as_bytes()).is_err());
        assert_eq!(ok.cosigned_by, vec!["w1".to_string(), "w2".to_string()]);
        assert!(matches!(
            policy.verify(one.as_bytes()),
            Err(CheckpointError::Cosignatures { got: 1, need: 2 })
        ));
        policy = policy.with_need(1);
        policy.verify(one.as_bytes()).unwrap();
        // A changed body fails the signatures.
        let forged = both.replace("\n10\n", "\n11\n");
        assert!(policy.verify(forged.as_bytes()).is_err());
        // A wrong node key: unsigned.
        let wrong = TrustPolicy::new(
            (b.origin.clone(), w2.verifying_key()),
            policy.witnesses().to_vec(),
            1,
            true,
        )
        .unwrap();
        assert!(wrong.verify(both.as_bytes()).is_err());
    }

    #[test]
    fn vkeys_round_trip() {
        let k = SigningKey::from_bytes(&[5; 32]).verifying_key();
        let (name, alg, key) = parse_vkey(&node_vkey("node", &k)).unwrap();
        assert_eq!((name.as_str(), alg, key), ("node", ALG_ED25519, k));
        let (_, alg, _) = parse_vkey(&witness_vkey("w", &k)).unwrap();
        assert_eq!(alg, ALG_COSIGNATURE_V1);
        assert!(parse_vkey("node+00000000+AQ==").is_err());
        assert!(parse_vkey("node").is_err());
        // Keys whose base64 contains '+' parse too.
        for b in 0..=255u8 {
            let k = SigningKey::from_bytes(&[b; 32]).verifying_key();
            assert_eq!(parse_vkey(&witness_vkey("w", &k)).unwrap().2, k);
        }
        let wrong_id = node_vkey("node", &k).replacen('+', "+f", 1);
        assert!(parse_vkey(&wrong_id).is_err());
    }

    #[test]
    fn a_batch_tree_has_the_roots_and_paths_of_the_stored_hash_tree() {
        let mut stored = MemoryHashes::new();
        let mut leaves = Vec::new();
        assert_eq!(BatchTree::new(Vec::new()).root(), stored.root().unwrap());
        assert_eq!(BatchTree::new(Vec::new()).audit_path(0), None);
        // Every size to 130 (each power of two and the sizes around it),
        // then a few larger ones, every leaf of each.
        let sizes = (1..=130u32).chain([255, 256, 257, 1000, 1025]);
        let mut grown = 0u32;
        for size in sizes {
            while grown < size {
                let leaf = record_hash(&grown.to_be_bytes());
                stored.append(leaf).unwrap();
                leaves.push(leaf);
                grown += 1;
            }
            let tree = BatchTree::new(leaves.clone());
            assert_eq!(tree.size(), u64::from(size));
            assert_eq!(tree.root(), stored.root().unwrap(), "size {size}");
            for index in 0..u64::from(size) {
                let path = tree.audit_path(index).unwrap();
                assert_eq!(
                    path,
                    prove_record(u64::from(size), index, &stored).unwrap(),
                    "size {size}, leaf {index}"
                );
                verify_inclusion(
                    &path,
                    u64::from(size),
                    tree.root(),
                    index,
                    leaves[index as usize],
                )
                .unwrap();
            }
            assert_eq!(tree.audit_path(u64::from(size)), None);
            assert_eq!(tree.audit_path(u64::MAX), None);
        }
    }

    #[test]
    fn memory_tree_proofs_check() {
        let mut t = MemoryHashes::new();
        let mut roots = vec![EMPTY_HASH];
        for i in 0..37u32 {
            t.append(record_hash(&i.to_be_bytes())).unwrap();
            roots.push(t.root().unwrap());
        }
        for size in 1..=37u64 {
            for index in 0..size {
                let p = prove_record(size, index, &t).unwrap();
                let leaf = record_hash(&u32::try_from(index).unwrap().to_be_bytes());
                verify_inclusion(&p, size, roots[size as usize], index, leaf).unwrap();
                assert!(
                    verify_inclusion(&p, size, roots[size as usize], index, Hash([0; 32])).is_err()
                );
            }
            for old in 0..=size {
                let p = if old == 0 {
                    Vec::new()
                } else {
                    prove_tree(size, old, &t).unwrap()
                };
                verify_consistency(&p, old, roots[old as usize], size, roots[size as usize])
                    .unwrap();
            }
        }
        assert!(verify_consistency(&[], 5, roots[5], 4, roots[4]).is_err());
        assert!(verify_inclusion(&[], 3, roots[3], 3, roots[1]).is_err());
    }
}
