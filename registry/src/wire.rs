//! What goes over HTTP between a node (`api`, behind the `server`
//! feature) and its clients ([`crate::client`]): the protocol's limits and
//! one typed value per JSON body, serialised by the server and parsed by
//! the client from the same definition.
//!
//! Bodies that are not JSON: `GET /v1/checkpoint` and `GET /v1/blocks/{h}`
//! are a signed note (text), `GET /v1/entries` is one entry's canonical
//! JSON per line ([`entry_lines`], [`parse_entry_lines`]), `GET
//! /v1/status/{id}` is a Status List Token (a JWT, text), `GET
//! /v1/relay/{id}` the stored bytes.

use serde::{Deserialize, Serialize};
use vouch_core::log::Hash;

/// Most blocks one range request returns.
pub const MAX_BLOCKS: u64 = 1_000;
/// Most entries one range request returns.
pub const MAX_RANGE: u64 = 10_000;
/// Most bytes of entries one range request returns (a single entry larger
/// than this, up to [`vouch_core::chain::MAX_ENTRY_BYTES`], is still served
/// alone).
pub const MAX_RANGE_BYTES: usize = 16 << 20;
/// Most bytes of notes (as JSON) one `GET /v1/blocks` returns (a single
/// larger note is still served alone).
pub const MAX_BLOCKS_BYTES: usize = 16 << 20;
/// Longest author DID accepted in a path.
pub const MAX_DID_CHARS: usize = 512;
/// Largest relay blob.
pub const MAX_RELAY_BYTES: usize = 64 << 10;
/// Longest a relay blob is kept, seconds.
pub const MAX_RELAY_TTL: u64 = 24 * 3600;
/// How long a relay blob is kept when the upload does not say, seconds.
pub const DEFAULT_RELAY_TTL: u64 = 600;

/// `GET /v1/info`: what a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Log origin.
    pub origin: String,
    /// Node verifier key.
    pub node_vkey: String,
    /// Witness verifier keys.
    pub witnesses: Vec<String>,
    /// Cosignatures the node's policy needs.
    pub need: usize,
    /// Entries in the log.
    pub size: u64,
}

/// `POST /v1/entries` (201): what the node returns for an accepted entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    /// Its index in the log.
    pub index: u64,
    /// Its RFC 9162 leaf hash, hex.
    pub leaf_hash: String,
}

/// `GET /v1/entries/by-hash/{hex}`: where an entry is in the log.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryIndex {
    /// Its index.
    pub index: u64,
}

/// `GET /v1/authors/{did}`: the sequence number an author's next entry
/// must carry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NextSeq {
    /// The author's DID.
    pub author: String,
    /// Its next sequence number (0 for an author with no entries).
    pub next_seq: u64,
}

/// `GET /v1/blocks?start=A&end=B`: the signed notes of consecutive blocks
/// from `A`, fewer at the head or beyond the byte cap.
pub type BlockNotes = Vec<String>;

/// `POST /v1/blocks/{h}/cosignature`: the witnesses that have now cosigned
/// the block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cosigned {
    /// Their key names.
    pub cosigned_by: Vec<String>,
}

/// `POST /v1/seal`: whether a block was sealed, and the latest checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    /// A new block was sealed (there were entries since the last one).
    pub sealed: bool,
    /// The latest block's signed note.
    pub checkpoint: String,
}

/// `GET /v1/proof/inclusion` and `GET /v1/proof/consistency`: an RFC 9162
/// proof, each hash in standard base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proof {
    /// The proof's hashes.
    #[serde(with = "base64_hashes")]
    pub proof: Vec<Hash>,
}

/// `PUT /v1/relay` (201): where the blob is kept, and until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelayStored {
    /// The item's id: 32 hex digits (16 random bytes).
    pub id: String,
    /// When it expires, Unix seconds.
    pub expires: i64,
}

/// Every 4xx and 5xx reply: a machine-readable code and a sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    /// The code (`bad_entry`, `rule`, `not_found`, `rate_limited`, …).
    pub error: String,
    /// What was wrong.
    pub detail: String,
}

/// The `start` and `end` of `GET /v1/entries` and `GET /v1/blocks`: the
/// range `[start, end)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    /// First index (or height).
    pub start: u64,
    /// One past the last.
    pub end: u64,
}

/// The query of `GET /v1/proof/inclusion`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct InclusionQuery {
    /// The leaf's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
}

/// The query of `GET /v1/proof/consistency`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub old: u64,
    /// The newer tree size.
    pub new: u64,
}

/// The query of `PUT /v1/relay`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelayQuery {
    /// Seconds to keep the blob ([`DEFAULT_RELAY_TTL`] when absent).
    pub ttl: Option<u64>,
    /// Serve it once, then delete it (the default), or until it expires.
    pub once: Option<bool>,
}

/// Entries as `GET /v1/entries` sends them: each entry's bytes, then a
/// newline.
pub fn entry_lines<B: AsRef<[u8]>>(entries: &[B]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 1).sum());
    for e in entries {
        body.extend_from_slice(e.as_ref());
        body.push(b'\n');
    }
    body
}

/// The entries of a `GET /v1/entries` body: one per line, the last line
/// ending in a newline or not. An empty body is no entries. The entries
/// themselves are not parsed here (a replica checks each one).
pub fn parse_entry_lines(body: &[u8]) -> Vec<Vec<u8>> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return Vec::new();
    }
    // Counted first (vectorised): the vector of ten thousand lines is
    // allocated once, not grown by doubling.
    let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', body).count() + 1);
    let mut rest = body;
    while let Some(end) = newline(rest) {
        lines.push(rest[..end].to_vec());
        rest = &rest[end + 1..];
    }
    lines.push(rest.to_vec());
    lines
}

/// The position of the first `\n` in `bytes` (a reply holds megabytes of
/// entries).
fn newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Serde for a list of hashes as standard-base64 strings.
mod base64_hashes {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};
    use vouch_core::log::{self, Hash};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(log::hashes_to_base64(hashes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                log::hash_from_base64(text).ok_or_else(|| {
                    D::Error::custom(format!("{text:?} is not a base64 32-byte hash"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proofs_round_trip_as_base64_and_refuse_bad_hashes() {
        let p = Proof {
            proof: vec![Hash([1; 32]), Hash([2; 32])],
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.starts_with(r#"{"proof":["AQEB"#), "{json}");
        assert_eq!(serde_json::from_str::<Proof>(&json).unwrap(), p);
        for bad in [
            r#"{"proof":["AQID"]}"#,
            r#"{"proof":["not base64!"]}"#,
            r#"{"proof":[1]}"#,
            r#"{"proof":"AQID"}"#,
            r#"{}"#,
        ] {
            assert!(serde_json::from_str::<Proof>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_keep_their_json_shapes() {
        let info = NodeInfo {
            origin: "o".into(),
            node_vkey: "k".into(),
            witnesses: vec!["w".into()],
            need: 1,
            size: 7,
        };
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::json!({"origin": "o", "node_vkey": "k", "witnesses": ["w"], "need": 1, "size": 7})
        );
        assert_eq!(
            serde_json::to_value(Sealed {
                sealed: true,
                checkpoint: "c".into()
            })
            .unwrap(),
            serde_json::json!({"sealed": true, "checkpoint": "c"})
        );
        assert!(serde_json::from_str::<NodeInfo>(r#"{"origin":"o"}"#).is_err());
        assert!(serde_json::from_str::<NextSeq>(r#"{"author":"a","next_seq":-1}"#).is_err());
        assert!(serde_json::from_str::<Receipt>("[1]").is_err());
    }

    #[test]
    fn entry_lines_round_trip() {
        let entries = [b"{\"a\":1}".to_vec(), b"{}".to_vec()];
        let body = entry_lines(&entries);
        assert_eq!(body, b"{\"a\":1}\n{}\n");
        assert_eq!(parse_entry_lines(&body), entries);
        assert_eq!(parse_entry_lines(b"{}\n{}"), vec![b"{}".to_vec(); 2]);
        assert!(parse_entry_lines(b"").is_empty());
        assert!(parse_entry_lines(b"\n").is_empty());
        // A blank line in the middle is an (empty, unparseable) entry: the
        // replica refuses it rather than skipping it.
        assert_eq!(parse_entry_lines(b"{}\n\n{}\n").len(), 3);
    }

    #[test]
    fn lines_split_at_every_newline_wherever_it_falls_in_a_word() {
        // Lines of every length from 0 to 20, so that newlines fall at
        // every offset of the eight-byte words, and bytes just around
        // `\n` (0x09, 0x0b, 0x8a) that are not newlines.
        let lines: Vec<Vec<u8>> = (0..21u8)
            .map(|n| {
                (0..n)
                    .map(|i| [b'a', 0x09, 0x0b, 0x8a, 0xff, 0][usize::from(i) % 6])
                    .collect()
            })
            .collect();
        let body = entry_lines(&lines);
        assert_eq!(parse_entry_lines(&body), lines[..]);
        // Without the last newline too, when the last line is not empty.
        assert_eq!(parse_entry_lines(&body[..body.len() - 1]), lines[..]);
        for (i, _) in body.iter().enumerate() {
            assert_eq!(
                newline(&body[i..]),
                body[i..].iter().position(|&b| b == b'\n'),
                "from {i}"
            );
        }
        assert_eq!(newline(b""), None);
        assert_eq!(newline(&[b'x'; 17]), None);
    }
}
