//! Entries: their types, the canonical JSON they are parsed from, and the
//! signing input their author signs.

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};

use crate::did::DidKey;
use crate::log::{record_hash, Hash};

use super::state::RuleError;

/// Domain separation for entry signatures.
pub const ENTRY_CONTEXT: &[u8] = b"vouch-entry/v1\n";

/// Domain separation for a rotate-key entry's proof of possession of the
/// new key (see [`rotation_message`]).
pub const ROTATION_CONTEXT: &[u8] = b"vouch-rotate-key/v1\n";

/// The largest entry accepted, in bytes (a status list token for a million
/// random bits compresses to about 128 KiB).
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The path every status list URI has before its issuer and name.
pub const STATUS_PATH: &str = "/v1/status/";

/// Separates the issuer DID from the list name in a status list URI (a
/// did:key never contains it).
pub const LIST_NAME_SEPARATOR: char = '~';

/// Longest list name.
pub const MAX_LIST_NAME: usize = 32;

/// Longest status list URI.
pub const MAX_LIST_URI: usize = 512;

/// A status list URI, `<base>/v1/status/<issuer did>~<name>`: every list is
/// named inside its issuer's namespace, so one issuer cannot take (or
/// squat) another's list. `name` is 1 to [`MAX_LIST_NAME`] characters of
/// `a-z`, `0-9` and `-`; `base` is an `http://` or `https://` URL without
/// query or fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListUri<'a> {
    /// Everything before `/v1/status/`.
    pub base: &'a str,
    /// The issuer's did:key.
    pub issuer: &'a str,
    /// The list's name inside the issuer's namespace.
    pub name: &'a str,
}

impl<'a> ListUri<'a> {
    /// Parses a status list URI.
    ///
    /// # Errors
    /// [`RuleError::ListUri`] naming what is wrong.
    pub fn parse(uri: &'a str) -> Result<Self, RuleError> {
        Self::parse_known(uri, None)
    }

    /// As [`ListUri::parse`], where `known` is a did:key already parsed
    /// (an entry's author): an issuer spelled exactly like it is not
    /// decoded again (decoding a key is most of the cost of applying an
    /// anchor entry).
    ///
    /// # Errors
    /// [`RuleError::ListUri`] naming what is wrong.
    pub fn parse_known(uri: &'a str, known: Option<&DidKey>) -> Result<Self, RuleError> {
        let bad = |why: &str| RuleError::ListUri {
            uri: uri.chars().take(MAX_LIST_URI).collect(),
            why: why.to_owned(),
        };
        if uri.len() > MAX_LIST_URI {
            return Err(bad(&format!("longer than {MAX_LIST_URI} bytes")));
        }
        if !uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        {
            return Err(bad(
                "only printable ASCII without spaces, '?' or '#' is allowed",
            ));
        }
        // The last `/v1/status/` (as `rsplit_once` finds it), from the `/`s
        // at the end of the URI instead of a substring search.
        let status = uri
            .bytes()
            .enumerate()
            .rev()
            .filter(|&(_, b)| b == b'/')
            .map(|(i, _)| i)
            .find(|&i| {
                uri.get(i..)
                    .is_some_and(|rest| rest.starts_with(STATUS_PATH))
            })
            .ok_or_else(|| bad("no /v1/status/ path"))?;
        let (base, id) = (&uri[..status], &uri[status + STATUS_PATH.len()..]);
        let host = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or_else(|| bad("the base must start with http:// or https://"))?;
        if host.is_empty() || host.starts_with('/') {
            return Err(bad("the base has no host"));
        }
        let (issuer, name) = id
            .split_once(LIST_NAME_SEPARATOR)
            .ok_or_else(|| bad("the last path segment must be <issuer did>~<name>"))?;
        if known.is_none_or(|k| k.as_str() != issuer) {
            DidKey::parse(issuer).map_err(|e| bad(&format!("issuer: {e}")))?;
        }
        if name.is_empty()
            || name.len() > MAX_LIST_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(&format!(
                "the list name must be 1 to {MAX_LIST_NAME} characters of a-z, 0-9 and '-'"
            )));
        }
        Ok(Self { base, issuer, name })
    }

    /// The URI of list `name` of `issuer` on the registry at `base`
    /// (a trailing `/` on `base` is dropped). Check it with
    /// [`ListUri::parse`].
    pub fn format(base: &str, issuer: &str, name: &str) -> String {
        format!(
            "{}{STATUS_PATH}{issuer}{LIST_NAME_SEPARATOR}{name}",
            base.trim_end_matches('/')
        )
    }

    /// The list's id, `<issuer did>~<name>`: the last path segment, unique on
    /// a chain.
    pub fn id(&self) -> String {
        format!("{}{LIST_NAME_SEPARATOR}{}", self.issuer, self.name)
    }

    /// The list's id ([`ListUri::id`]) as a slice of `uri`, the URI this
    /// was parsed from (the id is its last path segment), without
    /// allocating; `None` when `uri` does not end with it.
    pub fn id_in<'u>(&self, uri: &'u str) -> Option<&'u str> {
        let len = self.issuer.len() + LIST_NAME_SEPARATOR.len_utf8() + self.name.len();
        let id = uri.get(uri.len().checked_sub(len)?..)?;
        let issuer = id
            .strip_suffix(self.name)?
            .strip_suffix(LIST_NAME_SEPARATOR)?;
        (issuer == self.issuer).then_some(id)
    }
}

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Entry 0: names the log and its accreditation authorities.
    Genesis {
        /// The log's origin (its checkpoint name).
        origin: String,
        /// did:keys that may accredit and withdraw.
        authorities: Vec<String>,
    },
    /// An authority accredits an issuer for kinds of credential.
    Accredit {
        /// The issuer's did:key.
        issuer: String,
        /// Display name.
        name: String,
        /// Credential kinds (template names), e.g. `transcript`.
        kinds: Vec<String>,
    },
    /// An authority withdraws an accreditation.
    Withdraw {
        /// The issuer's did:key.
        issuer: String,
        /// Why, for the record.
        reason: String,
    },
    /// An issuer anchors a batch of credentials.
    Anchor {
        /// Status list URI the batch's credentials point at.
        list: String,
        /// Hex SHA-256 Merkle root (RFC 9162) over the batch's credentials.
        root: String,
        /// Credentials in the batch.
        count: u64,
        /// Lowest status index used.
        first: u64,
        /// Highest status index used.
        last: u64,
    },
    /// An issuer publishes a Status List Token, replacing the previous one.
    Status {
        /// Status list URI (the token's `sub`).
        list: String,
        /// Grows with every publication of this list.
        sequence: u64,
        /// The compact Status List Token, signed by the author.
        token: String,
    },
    /// An issuer or authority moves to a new key.
    RotateKey {
        /// The new did:key.
        new_key: String,
        /// Base64url Ed25519 signature by the new key over
        /// [`rotation_message`] (the log, the old key, the new key and the
        /// entry's sequence number): proof that the author holds the new
        /// key, so nobody can rotate into a key that is not theirs. Build it
        /// with [`Action::rotate_key`].
        proof: String,
    },
}

impl Action {
    /// A rotate-key action moving `old` (the entry's author) to `new`'s
    /// did:key on the log named `origin`, in the author's entry number
    /// `seq`, with the proof signed by `new`.
    pub fn rotate_key(origin: &str, old: &str, new: &SigningKey, seq: u64) -> Self {
        let new_key = DidKey::from_public_key(&new.verifying_key())
            .as_str()
            .to_owned();
        let proof = new.sign(&rotation_message(origin, old, &new_key, seq));
        Action::RotateKey {
            new_key,
            proof: crate::b64::encode(proof.to_bytes()),
        }
    }

    /// The entry type as written on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Genesis { .. } => "genesis",
            Action::Accredit { .. } => "accredit",
            Action::Withdraw { .. } => "withdraw",
            Action::Anchor { .. } => "anchor",
            Action::Status { .. } => "status",
            Action::RotateKey { .. } => "rotate-key",
        }
    }
}

/// What canonical bytes end with after the signature's base64url.
const SIG_TAIL: &str = r#","sig":""}"#;

#[derive(Serialize, Deserialize)]
struct Wire {
    author: String,
    seq: u64,
    time: i64,
    action: Action,
    sig: String,
}

#[derive(Serialize)]
struct Unsigned<'a> {
    author: &'a str,
    seq: u64,
    time: i64,
    action: &'a Action,
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Larger than [`MAX_ENTRY_BYTES`].
    #[error("entry is {0} bytes; the limit is {MAX_ENTRY_BYTES}")]
    TooLarge(usize),
    /// Not the entry JSON shape.
    #[error("malformed entry: {0}")]
    Malformed(String),
    /// JSON, but not in the one canonical spelling.
    #[error("entry is not in canonical form (compact JSON, fields in order, no escapes beyond the minimum)")]
    NotCanonical,
    /// The author is not an Ed25519 did:key.
    #[error("entry author: {0}")]
    Author(String),
    /// The signature is not 64 bytes of base64url.
    #[error("entry signature is not 64 bytes of base64url")]
    SignatureEncoding,
    /// The signature does not verify under the author's key.
    #[error("entry signature does not verify under {0}")]
    BadSignature(String),
}

/// A parsed entry. Its signature is checked by [`Entry::verify_signature`]
/// or [`verify_signatures`](super::verify_signatures), not by parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Shared by the entries of one author parsed with one
    /// [`AuthorCache`]: a clone is a reference count, not a copy.
    pub(super) author: std::sync::Arc<DidKey>,
    pub(super) seq: u64,
    pub(super) time: i64,
    pub(super) action: Action,
    pub(super) signature: Signature,
    /// Length of the bytes before `,"sig":`: with [`ENTRY_CONTEXT`] before
    /// and `}` after, they are the signing input.
    signed: usize,
    bytes: Vec<u8>,
}

impl Entry {
    /// Signs an entry as `key`'s did:key.
    pub fn sign(key: &SigningKey, seq: u64, time: i64, action: Action) -> Self {
        let author = DidKey::from_public_key(&key.verifying_key());
        let signing_input = signing_input(author.as_str(), seq, time, &action);
        let signature = key.sign(&signing_input);
        let wire = Wire {
            author: author.as_str().to_owned(),
            seq,
            time,
            action,
            sig: crate::b64::encode(signature.to_bytes()),
        };
        // A struct of strings and integers always serialises.
        let bytes = serde_json::to_vec(&wire).unwrap_or_default();
        // The bytes end with `,"sig":"…"}` (base64url needs no escapes);
        // before it they are the unsigned JSON the signing input holds.
        let signed = bytes.len().saturating_sub(wire.sig.len() + SIG_TAIL.len());
        Self {
            author: std::sync::Arc::new(author),
            seq,
            time,
            action: wire.action,
            signature,
            signed,
            bytes,
        }
    }

    /// Parses the canonical bytes of an entry.
    ///
    /// # Errors
    /// [`EntryError`] naming what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        Self::parse_with(bytes, &mut AuthorCache::default())
    }

    /// As [`Entry::parse`], with parsed author keys remembered in `authors`
    /// (a chain has few authors; decoding a key costs more than the rest).
    ///
    /// # Errors
    /// [`EntryError`] naming what is wrong.
    pub fn parse_with(bytes: &[u8], authors: &mut AuthorCache) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        Self::parse_owned(bytes.to_vec(), authors)
    }

    /// As [`Entry::parse_with`], keeping `bytes` as the entry's bytes
    /// instead of copying them (a replica parses the lines it received).
    ///
    /// # Errors
    /// [`EntryError`] naming what is wrong.
    pub fn parse_owned(bytes: Vec<u8>, authors: &mut AuthorCache) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let (author, seq, time, action, signature, signed) = match canonical::read(&bytes) {
            Some(read) => {
                if cfg!(debug_assertions) {
                    let wire = read.to_wire();
                    debug_assert_eq!(
                        serde_json::to_vec(&wire).ok().as_deref(),
                        Some(&bytes[..]),
                        "the canonical reader accepted bytes serde_json does not write"
                    );
                }
                let author = authors.key(&read.author)?;
                let signature = signature_from_b64(&read.sig)?;
                (
                    author,
                    read.seq,
                    read.time,
                    read.action,
                    signature,
                    read.signed,
                )
            }
            None => {
                // Not read as canonical: serde_json says what is wrong, or
                // (should the reader ever miss a canonical spelling) reads
                // it and checks it the slow way, by writing it again.
                let wire: Wire = serde_json::from_slice(&bytes)
                    .map_err(|e| EntryError::Malformed(e.to_string()))?;
                if serde_json::to_vec(&wire).ok().as_deref() != Some(&bytes[..]) {
                    return Err(EntryError::NotCanonical);
                }
                // The canonical bytes end with `,"sig":"…"}`.
                let signed = bytes.len() - wire.sig.len() - SIG_TAIL.len();
                let author = authors.key(&wire.author)?;
                let signature = signature_from_b64(&wire.sig)?;
                (author, wire.seq, wire.time, wire.action, signature, signed)
            }
        };
        Ok(Self {
            author,
            seq,
            time,
            action,
            signature,
            signed,
            bytes,
        })
    }

    /// The signing input in its three parts: [`ENTRY_CONTEXT`], the
    /// canonical bytes before `,"sig":`, and `}`.
    pub(super) fn signing_input_parts(&self) -> [&[u8]; 3] {
        [
            ENTRY_CONTEXT,
            self.bytes.get(..self.signed).unwrap_or_default(),
            b"}",
        ]
    }

    /// Checks the author's signature.
    ///
    /// # Errors
    /// [`EntryError::BadSignature`].
    pub fn verify_signature(&self) -> Result<(), EntryError> {
        crate::ed25519::verify(
            self.author.verifying_key(),
            &self.signing_input_parts(),
            &self.signature.to_bytes(),
        )
        .map_err(|_| EntryError::BadSignature(self.author.as_str().to_owned()))
    }

    /// The author.
    pub fn author(&self) -> &DidKey {
        &self.author
    }

    /// The author's sequence number (0 for its first entry).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Unix seconds the author says it wrote the entry.
    pub fn time(&self) -> i64 {
        self.time
    }

    /// What it does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The canonical bytes (the Merkle leaf).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 9162 leaf hash of [`Entry::as_bytes`].
    pub fn leaf_hash(&self) -> Hash {
        record_hash(&self.bytes)
    }
}

/// Reads the one spelling `serde_json` writes for an entry, straight from
/// the bytes, instead of parsing them and writing them again to compare.
/// It is *sound*: what it accepts is exactly what `serde_json::to_vec`
/// writes for the value it returns (debug builds check this on every
/// entry). It need not be complete: bytes it does not read go the slow
/// way, which names the error.
mod canonical {
    use std::borrow::Cow;

    use super::{Action, Wire};

    /// An entry as read from its canonical bytes: the author and the
    /// signature borrowed from them when they hold no escape.
    pub(super) struct Read<'a> {
        pub(super) author: Cow<'a, str>,
        pub(super) seq: u64,
        pub(super) time: i64,
        pub(super) action: Action,
        pub(super) sig: Cow<'a, str>,
        /// The length of the bytes before `,"sig":`.
        pub(super) signed: usize,
    }

    impl Read<'_> {
        /// The value `serde_json` writes back (to check the reader).
        pub(super) fn to_wire(&self) -> Wire {
            Wire {
                author: self.author.clone().into_owned(),
                seq: self.seq,
                time: self.time,
                action: self.action.clone(),
                sig: self.sig.clone().into_owned(),
            }
        }
    }

    /// The entry and the length of its bytes before `,"sig":`; `None`
    /// when the bytes are not read as canonical.
    #[cfg(test)]
    pub(super) fn parse(bytes: &[u8]) -> Option<(Wire, usize)> {
        read(bytes).map(|r| (r.to_wire(), r.signed))
    }

    /// The entry read from `bytes`; `None` when they are not read as
    /// canonical.
    pub(super) fn read(bytes: &[u8]) -> Option<Read<'_>> {
        let mut r = Reader { bytes, at: 0 };
        r.lit(b"{\"author\":")?;
        let author = r.string()?;
        r.lit(b",\"seq\":")?;
        let seq = r.u64()?;
        r.lit(b",\"time\":")?;
        let time = r.i64()?;
        r.lit(b",\"action\":{\"type\":")?;
        let action = r.action()?;
        let signed = r.at;
        r.lit(b",\"sig\":")?;
        let sig = r.string()?;
        r.lit(b"}")?;
        (r.at == bytes.len()).then_some(Read {
            author,
            seq,
            time,
            action,
            sig,
            signed,
        })
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn lit(&mut self, expected: &[u8]) -> Option<()> {
            let end = self.at.checked_add(expected.len())?;
            (self.bytes.get(self.at..end)? == expected).then(|| self.at = end)
        }

        /// A JSON string as `serde_json` writes it: `"` and `\\` escaped,
        /// control characters as `\b \t \n \f \r` or `\u00xx` (lower-case
        /// hex), nothing else escaped, valid UTF-8.
        fn string(&mut self) -> Option<Cow<'a, str>> {
            self.lit(b"\"")?;
            let bytes: &'a [u8] = self.bytes;
            let rest = bytes.get(self.at..)?;
            // The common case: no escape before the closing quote.
            let end = special(rest)?;
            if rest[end] == b'"' {
                let s = std::str::from_utf8(&rest[..end]).ok()?;
                self.at += end + 1;
                return Some(Cow::Borrowed(s));
            }
            let mut out = Vec::with_capacity(end + 16);
            let mut i = 0;
            loop {
                let b = *rest.get(i)?;
                i += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        let e = *rest.get(i)?;
                        i += 1;
                        out.push(match e {
                            b'"' => b'"',
                            b'\\' => b'\\',
                            b'b' => 0x08,
                            b't' => 0x09,
                            b'n' => 0x0a,
                            b'f' => 0x0c,
                            b'r' => 0x0d,
                            b'u' => {
                                let hex = rest.get(i..i + 4)?;
                                i += 4;
                                let v = match hex {
                                    [b'0', b'0', hi @ b'0'..=b'1', lo] => {
                                        (hi - b'0') << 4 | hex_digit(*lo)?
                                    }
                                    _ => return None,
                                };
                                // These have a short escape, which serde_json uses.
                                if matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                    return None;
                                }
                                v
                            }
                            _ => return None,
                        });
                    }
                    0x00..=0x1f => return None,
                    _ => out.push(b),
                }
            }
            self.at += i;
            String::from_utf8(out).ok().map(Cow::Owned)
        }

        /// A string, owned.
        fn owned(&mut self) -> Option<String> {
            self.string().map(Cow::into_owned)
        }

        /// An unsigned integer in its shortest decimal spelling.
        fn u64(&mut self) -> Option<u64> {
            let rest = self.bytes.get(self.at..)?;
            let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let digits = &rest[..len];
            if len == 0 || (len > 1 && digits[0] == b'0') {
                return None;
            }
            let mut v: u64 = 0;
            for &d in digits {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            self.at += len;
            Some(v)
        }

        /// A signed integer: `-` before a non-zero magnitude, or none.
        fn i64(&mut self) -> Option<i64> {
            if self.lit(b"-").is_some() {
                let magnitude = self.u64()?;
                if magnitude == 0 {
                    return None;
                }
                0i64.checked_sub_unsigned(magnitude)
            } else {
                i64::try_from(self.u64()?).ok()
            }
        }

        /// `[]` or `["…","…"]`.
        fn strings(&mut self) -> Option<Vec<String>> {
            self.lit(b"[")?;
            let mut out = Vec::new();
            if self.lit(b"]").is_some() {
                return Some(out);
            }
            loop {
                out.push(self.owned()?);
                if self.lit(b"]").is_some() {
                    return Some(out);
                }
                self.lit(b",")?;
            }
        }

        /// The action after `{"type":`, up to and with its closing `}`;
        /// fields in the order they are declared.
        fn action(&mut self) -> Option<Action> {
            let kind = self.string()?;
            let action = match &*kind {
                "genesis" => {
                    self.lit(b",\"origin\":")?;
                    let origin = self.owned()?;
                    self.lit(b",\"authorities\":")?;
                    let authorities = self.strings()?;
                    Action::Genesis {
                        origin,
                        authorities,
                    }
                }
                "accredit" => {
                    self.lit(b",\"issuer\":")?;
                    let issuer = self.owned()?;
                    self.lit(b",\"name\":")?;
                    let name = self.owned()?;
                    self.lit(b",\"kinds\":")?;
                    let kinds = self.strings()?;
                    Action::Accredit {
                        issuer,
                        name,
                        kinds,
                    }
                }
                "withdraw" => {
                    self.lit(b",\"issuer\":")?;
                    let issuer = self.owned()?;
                    self.lit(b",\"reason\":")?;
                    let reason = self.owned()?;
                    Action::Withdraw { issuer, reason }
                }
                "anchor" => {
                    self.lit(b",\"list\":")?;
                    let list = self.owned()?;
                    self.lit(b",\"root\":")?;
                    let root = self.owned()?;
                    self.lit(b",\"count\":")?;
                    let count = self.u64()?;
                    self.lit(b",\"first\":")?;
                    let first = self.u64()?;
                    self.lit(b",\"last\":")?;
                    let last = self.u64()?;
                    Action::Anchor {
                        list,
                        root,
                        count,
                        first,
                        last,
                    }
                }
                "status" => {
                    self.lit(b",\"list\":")?;
                    let list = self.owned()?;
                    self.lit(b",\"sequence\":")?;
                    let sequence = self.u64()?;
                    self.lit(b",\"token\":")?;
                    let token = self.owned()?;
                    Action::Status {
                        list,
                        sequence,
                        token,
                    }
                }
                "rotate-key" => {
                    self.lit(b",\"new_key\":")?;
                    let new_key = self.owned()?;
                    self.lit(b",\"proof\":")?;
                    let proof = self.owned()?;
                    Action::RotateKey { new_key, proof }
                }
                _ => return None,
            };
            self.lit(b"}")?;
            Some(action)
        }
    }

    /// The position of the first `"`, `\\` or control character in
    /// `bytes` (where a string ends or needs its slow reading), eight bytes
    /// at a time.
    pub(super) fn special(bytes: &[u8]) -> Option<usize> {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        // Flags the bytes of `x` below `n` (n ≤ 0x80); the lowest flagged
        // byte is the first one (a borrow only flags bytes above it).
        let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
        let mut words = bytes.chunks_exact(8);
        let mut at = 0;
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let x = u64::from_le_bytes(w);
            let found = below(x ^ (ONES * u64::from(b'"')), 1)
                | below(x ^ (ONES * u64::from(b'\\')), 1)
                | below(x, 0x20);
            if found != 0 {
                return Some(at + found.trailing_zeros() as usize / 8);
            }
            at += 8;
        }
        words
            .remainder()
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .map(|i| at + i)
    }

    fn hex_digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
}

/// What the new key signs in a rotate-key entry: [`ROTATION_CONTEXT`], then
/// the log's origin, the old did:key, the new did:key and the author's
/// sequence number of the entry, each on its own line. The origin and the
/// sequence number keep a proof from being replayed on another log or in a
/// later entry; neither DID can contain a newline.
pub fn rotation_message(origin: &str, old: &str, new: &str, seq: u64) -> Vec<u8> {
    let mut out = ROTATION_CONTEXT.to_vec();
    for part in [origin, old, new, &seq.to_string()] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parsed author keys, by DID string.
#[derive(Debug, Default)]
pub struct AuthorCache(std::collections::HashMap<String, std::sync::Arc<DidKey>>);

impl AuthorCache {
    /// Keys remembered at most.
    pub const CAPACITY: usize = 10_000;

    /// The key of `author`, decoded once and then remembered.
    fn key(&mut self, author: &str) -> Result<std::sync::Arc<DidKey>, EntryError> {
        if let Some(did) = self.0.get(author) {
            return Ok(did.clone());
        }
        let did = DidKey::parse(author).map_err(|e| EntryError::Author(e.to_string()))?;
        let did = std::sync::Arc::new(did);
        if self.0.len() < Self::CAPACITY {
            self.0.insert(author.to_owned(), did.clone());
        }
        Ok(did)
    }
}

/// The signature spelled as canonical unpadded base64url of 64 bytes,
/// decoded without a buffer of its own.
fn signature_from_b64(sig: &str) -> Result<Signature, EntryError> {
    use base64::Engine as _;
    // The decoder asks room for its estimate (66 bytes for 86 characters).
    let mut out = [0u8; 66];
    let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(sig, &mut out)
        .map_err(|_| EntryError::SignatureEncoding)?;
    let bytes: &[u8; 64] = out
        .get(..len)
        .and_then(|b| b.try_into().ok())
        .ok_or(EntryError::SignatureEncoding)?;
    Ok(Signature::from_bytes(bytes))
}

fn signing_input(author: &str, seq: u64, time: i64, action: &Action) -> Vec<u8> {
    let mut out = ENTRY_CONTEXT.to_vec();
    let unsigned = Unsigned {
        author,
        seq,
        time,
        action,
    };
    // Strings and integers always serialise.
    let _ = serde_json::to_writer(&mut out, &unsigned);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::chain::test_keys::{id, key};
    use crate::chain::verify_signatures;

    #[test]
    fn a_list_uri_of_a_known_author_skips_only_that_did() {
        let author = DidKey::parse(&id(&key(1))).unwrap();
        let other = DidKey::parse(&id(&key(2))).unwrap();
        let uri = ListUri::format("https://r.example", author.as_str(), "1");
        let parsed = ListUri::parse_known(&uri, Some(&author)).unwrap();
        assert_eq!(parsed, ListUri::parse(&uri).unwrap());
        assert_eq!(parsed.issuer, author.as_str());
        // The id is the URI's last segment, borrowed.
        assert_eq!(parsed.id_in(&uri), Some(parsed.id().as_str()));
        assert_eq!(parsed.id_in("https://r.example/v1/status/x~1"), None);
        assert_eq!(parsed.id_in("1"), None);
        // An issuer that is not the known DID is still decoded, and a
        // broken one refused.
        let broken = ListUri::format("https://r.example", "did:key:z6MkBROKEN", "1");
        for known in [None, Some(&author), Some(&other)] {
            assert!(matches!(
                ListUri::parse_known(&broken, known),
                Err(RuleError::ListUri { .. })
            ));
        }
        assert!(ListUri::parse_known(&uri, Some(&other)).is_ok());
    }

    #[test]
    fn entries_round_trip_and_only_canonical_bytes_parse() {
        let k = key(1);
        let e = Entry::sign(
            &k,
            0,
            100,
            Action::Genesis {
                origin: "reg".into(),
                authorities: vec![id(&k)],
            },
        );
        let parsed = Entry::parse(e.as_bytes()).unwrap();
        assert_eq!(
            parsed, e,
            "including the signing input taken from the bytes"
        );
        parsed.verify_signature().unwrap();
        let text = String::from_utf8(e.as_bytes().to_vec()).unwrap();
        for bad in [
            text.replace("\"seq\":0", "\"seq\": 0"),
            text.replace("{\"author\"", "{ \"author\""),
            text.replace("\"origin\":\"reg\"", "\"origin\":\"\\u0072eg\""),
            format!("{text}\n"),
        ] {
            assert_eq!(
                Entry::parse(bad.as_bytes()),
                Err(EntryError::NotCanonical),
                "{bad}"
            );
        }
        let tampered = text.replace("\"time\":100", "\"time\":101");
        let t = Entry::parse(tampered.as_bytes()).unwrap();
        assert!(t.verify_signature().is_err());
        assert!(verify_signatures(&[e.clone(), t]).is_err());
        verify_signatures(std::slice::from_ref(&e)).unwrap();
        // Many entries from a few authors, then one bad among them.
        let keys = [key(4), key(5), key(6)];
        let mut batch: Vec<Entry> = (0..40u8)
            .map(|i| {
                Entry::sign(
                    &keys[usize::from(i % 3)],
                    u64::from(i),
                    100,
                    Action::Withdraw {
                        issuer: id(&k),
                        reason: format!("r{i}"),
                    },
                )
            })
            .collect();
        verify_signatures(&batch).unwrap();
        let forged = String::from_utf8(batch[17].as_bytes().to_vec())
            .unwrap()
            .replace("r17", "r71");
        batch[17] = Entry::parse(forged.as_bytes()).unwrap();
        assert_eq!(verify_signatures(&batch).unwrap_err().0, 17);
        // A later entry refused before any equation (its s is not below
        // the group order) does not hide the earlier failure: the first
        // bad entry is named, as checking each alone would.
        let mut high_s = batch[30].clone();
        let mut sig = high_s.signature.to_bytes();
        sig[63] |= 0xf0;
        high_s.signature = Signature::from_bytes(&sig);
        assert!(high_s.verify_signature().is_err());
        let mut both = batch.clone();
        both[30] = high_s;
        assert_eq!(verify_signatures(&both).unwrap_err().0, 17);
        assert_eq!(verify_signatures(&both[18..]).unwrap_err().0, 12);
        // A signature moved to another author's entry fails too.
        let mut swapped = batch[..4].to_vec();
        let other = Entry::sign(&keys[0], 0, 100, swapped[1].action().clone());
        swapped[1] = Entry::parse(
            String::from_utf8(other.as_bytes().to_vec())
                .unwrap()
                .replace(&id(&keys[0]), &id(&keys[1]))
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(verify_signatures(&swapped).unwrap_err().0, 1);
        verify_signatures(&[]).unwrap();
        assert!(matches!(Entry::parse(b"{}"), Err(EntryError::Malformed(_))));
        assert!(matches!(
            Entry::parse(b"\xff"),
            Err(EntryError::Malformed(_))
        ));
    }

    #[test]
    fn a_signature_that_is_not_64_bytes_of_canonical_base64url_is_refused() {
        let e = Entry::sign(
            &key(3),
            0,
            100,
            Action::Withdraw {
                issuer: id(&key(4)),
                reason: "r".into(),
            },
        );
        let text = String::from_utf8(e.as_bytes().to_vec()).unwrap();
        let sig = crate::b64::encode(e.signature.to_bytes());
        // Owned and borrowed bytes parse alike.
        let mut authors = AuthorCache::default();
        assert_eq!(
            Entry::parse_owned(e.as_bytes().to_vec(), &mut authors).unwrap(),
            e
        );
        // The last character carries 4 bits of the signature and 2 zero bits.
        let mut trailing = sig.clone();
        let last = trailing.pop().unwrap();
        trailing.push(if last == 'B' { 'C' } else { 'B' });
        for bad in [
            sig[..84].to_owned(),
            format!("{sig}AA"),
            format!("{}==", &sig[..84]),
            sig.replacen(&sig[..1], "+", 1),
            trailing,
            String::new(),
        ] {
            let bytes = text.replace(&sig, &bad);
            assert_eq!(
                Entry::parse(bytes.as_bytes()),
                Err(EntryError::SignatureEncoding),
                "{bad}"
            );
            assert_eq!(
                Entry::parse_owned(bytes.into_bytes(), &mut authors),
                Err(EntryError::SignatureEncoding)
            );
        }
    }

    #[test]
    fn the_string_scan_finds_the_first_quote_backslash_or_control_byte() {
        let bytes: Vec<u8> = (0..=255u8)
            .chain(b"abc\"de\\f\x1f\x20\x7f\xa2\xdc".iter().copied())
            .chain(0..=255u8)
            .collect();
        let slow = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        for i in 0..bytes.len() {
            for j in [i, i + 1, i + 7, i + 8, i + 9, i + 40, bytes.len()] {
                let part = &bytes[i..j.min(bytes.len())];
                assert_eq!(canonical::special(part), slow(part), "{i}..{j}");
            }
        }
        let plain: Vec<u8> = (0x20..=0xffu8)
            .filter(|&b| b != b'"' && b != b'\\')
            .collect();
        assert_eq!(canonical::special(&plain), None);
    }

    /// Entries of every action, with strings that need escapes.
    fn entries_of_every_kind() -> Vec<Entry> {
        let k = key(9);
        let odd = "q\"uo\\te \u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f} / é 😀";
        let actions = vec![
            Action::Genesis {
                origin: "reg.example".into(),
                authorities: vec![id(&k), odd.into()],
            },
            Action::Genesis {
                origin: String::new(),
                authorities: vec![],
            },
            Action::Accredit {
                issuer: id(&k),
                name: odd.into(),
                kinds: vec!["transcript".into(), "x".into()],
            },
            Action::Withdraw {
                issuer: id(&k),
                reason: odd.into(),
            },
            Action::Anchor {
                list: "https://r.example/v1/status/a~1".into(),
                root: "ab".repeat(32),
                count: u64::MAX,
                first: 0,
                last: 10,
            },
            Action::Status {
                list: odd.into(),
                sequence: 7,
                token: "e.y.j".into(),
            },
            Action::rotate_key("reg", &id(&k), &key(10), 3),
        ];
        let times = [0, -1, 1, i64::MIN, i64::MAX, 1_795_000_000];
        actions
            .into_iter()
            .zip(times.iter().cycle())
            .enumerate()
            .map(|(seq, (a, &t))| Entry::sign(&k, [0, u64::MAX][seq % 2], t, a))
            .collect()
    }

    #[test]
    fn the_canonical_reader_reads_what_serde_json_writes_and_nothing_else() {
        for e in entries_of_every_kind() {
            let bytes = e.as_bytes();
            let (wire, signed) = canonical::parse(bytes).expect("canonical bytes read");
            assert_eq!(serde_json::to_vec(&wire).unwrap(), bytes);
            assert_eq!(&bytes[signed..signed + 7], b",\"sig\":");
            assert_eq!(Entry::parse(bytes).unwrap(), e);
            e.verify_signature().unwrap();
            // Every changed byte: what the reader accepts, serde_json
            // reads as the same entry and writes back byte for byte.
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x02, 0x08, 0x20, 0x40, 0x80] {
                    let mut m = bytes.to_vec();
                    m[i] ^= flip;
                    if let Some((w, _)) = canonical::parse(&m) {
                        assert_eq!(serde_json::to_vec(&w).unwrap(), m, "byte {i} ^ {flip:#x}");
                    }
                    let slow = serde_json::from_slice::<Wire>(&m)
                        .ok()
                        .filter(|w| serde_json::to_vec(w).ok().as_deref() == Some(&m[..]));
                    assert_eq!(
                        slow.is_some(),
                        canonical::parse(&m).is_some(),
                        "byte {i} ^ {flip:#x}: the reader and serde_json disagree"
                    );
                }
            }
        }
        // Spellings serde_json does not write.
        let e = Entry::sign(
            &key(9),
            0,
            0,
            Action::Anchor {
                list: "https://r.example/v1/status/a~1".into(),
                root: "ab".repeat(32),
                count: u64::MAX,
                first: 0,
                last: 10,
            },
        );
        let text = String::from_utf8(e.as_bytes().to_vec()).unwrap();
        for bad in [
            text.replace("\"seq\":0", "\"seq\":00"),
            text.replace("\"seq\":0", "\"seq\":-0"),
            text.replace("\"time\":0", "\"time\":-0"),
            text.replace("\"first\":0", "\"first\":0.0"),
            text.replace(
                "\"count\":18446744073709551615",
                "\"count\":18446744073709551616",
            ),
            text.replace("\"list\":\"https:", "\"list\":\"https\\u003a"),
            text.replace("\"list\":\"https:", "\"list\":\"https\\/"),
            text.replace("\"list\":\"https:", "\"list\":\"\\u000ahttps:"),
            text.replace("\"list\":\"https:", "\"list\":\"\\u001Fhttps:"),
            text.replace("}", "} "),
        ] {
            assert_ne!(bad, text);
            assert!(canonical::parse(bad.as_bytes()).is_none(), "{bad}");
            assert!(Entry::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_flipped_byte_of_an_entry_is_refused() {
        let k = key(7);
        let e = Entry::sign(
            &k,
            3,
            1_795_000_000,
            Action::Anchor {
                list: "https://r.example/v1/status/a-1".into(),
                root: "ab".repeat(32),
                count: 5,
                first: 10,
                last: 99,
            },
        );
        let bytes = e.as_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut m = bytes.to_vec();
                m[i] ^= flip;
                let refused = match Entry::parse(&m) {
                    Err(_) => true,
                    Ok(p) => p.verify_signature().is_err() && verify_signatures(&[p]).is_err(),
                };
                assert!(refused, "byte {i} ^ {flip:#x} was accepted");
            }
        }
    }
}
