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
        if !uri.bytes().all(|b| b.is_ascii_graphic()) || uri.contains(['?', '#']) {
            return Err(bad(
                "only printable ASCII without spaces, '?' or '#' is allowed",
            ));
        }
        let (base, id) = uri
            .rsplit_once(STATUS_PATH)
            .ok_or_else(|| bad("no /v1/status/ path"))?;
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
    pub(super) author: DidKey,
    pub(super) seq: u64,
    pub(super) time: i64,
    pub(super) action: Action,
    pub(super) signature: Signature,
    pub(super) signing_input: Vec<u8>,
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
        Self {
            author,
            seq,
            time,
            action: wire.action,
            signature,
            signing_input,
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
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if serde_json::to_vec(&wire).ok().as_deref() != Some(bytes) {
            return Err(EntryError::NotCanonical);
        }
        let author = match authors.0.get(&wire.author) {
            Some(did) => did.clone(),
            None => {
                let did =
                    DidKey::parse(&wire.author).map_err(|e| EntryError::Author(e.to_string()))?;
                if authors.0.len() < AuthorCache::CAPACITY {
                    authors.0.insert(wire.author.clone(), did.clone());
                }
                did
            }
        };
        let sig = crate::b64::decode(&wire.sig).map_err(|_| EntryError::SignatureEncoding)?;
        let signature = Signature::from_slice(&sig).map_err(|_| EntryError::SignatureEncoding)?;
        // The canonical bytes end with `,"sig":"…"}`; without it they are the
        // unsigned JSON the signature covers.
        let cut = bytes.len() - wire.sig.len() - r#","sig":""}"#.len();
        let mut signing_input = Vec::with_capacity(ENTRY_CONTEXT.len() + cut + 1);
        signing_input.extend_from_slice(ENTRY_CONTEXT);
        signing_input.extend_from_slice(&bytes[..cut]);
        signing_input.push(b'}');
        Ok(Self {
            author,
            seq: wire.seq,
            time: wire.time,
            action: wire.action,
            signature,
            signing_input,
            bytes: bytes.to_vec(),
        })
    }

    /// Checks the author's signature.
    ///
    /// # Errors
    /// [`EntryError::BadSignature`].
    pub fn verify_signature(&self) -> Result<(), EntryError> {
        self.author
            .verifying_key()
            .verify_strict(&self.signing_input, &self.signature)
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
pub struct AuthorCache(std::collections::HashMap<String, DidKey>);

impl AuthorCache {
    /// Keys remembered at most.
    pub const CAPACITY: usize = 10_000;
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
