//! The QR envelope: `VCH1:` + base45(deflate(the presentation's decoded parts)).
//!
//! The envelope is lossless transport, not a new format: [`decode`] returns
//! the exact SD-JWT string that [`encode`] was given, and the verifier checks
//! signatures over that string.
//!
//! To fit a transcript presentation in a scannable code, the encoder
//! 1. base64url-decodes every `.`/`~` separated part (strict base64url makes
//!    this reversible);
//! 2. inside JSON parts, replaces three kinds of random tokens by their bytes:
//!    quoted 32-byte base64url values (digests, keys, `sd_hash`), quoted 16-byte
//!    base64url values (salts) and Ed25519 did:key identifiers (`z6Mk…`),
//!    each behind a marker byte that valid UTF-8 never contains;
//! 3. compresses with raw deflate primed with a preset dictionary of the JSON
//!    vocabulary Vouch credentials use ([`DICTIONARY`]);
//! 4. encodes in base45 (RFC 9285), whose alphabet is the QR alphanumeric set,
//!    so the QR code is encoded in alphanumeric mode.
//!
//! Envelope body (before base45): varint(deflated length), the deflated
//! structure stream, the binary stream. An envelope that carries an anchor
//! proof ([`encode_presentation`]) puts its anchor part first:
//! `0x00`, varint(part length), the part (the proof's entry index, leaf
//! index and batch size as LEB128 varints, then its audit path, 32 bytes a
//! hash), then the body as above. A deflated length is never 0, so
//! envelopes without an anchor part read as before, and a part longer than
//! [`MAX_ANCHOR_PART`] is refused by its length, before anything else is
//! decoded.

mod anchor_part;
mod dictionary;
mod pack;
mod unpack;

pub use anchor_part::MAX_ANCHOR_PART;
pub use dictionary::DICTIONARY;
pub use pack::{stats, structure_text, EnvelopeStats};

use dictionary::{deflate, inflate};
use pack::pack;
use unpack::{unpack, Reader, Unpacked};

use crate::anchor::{AnchorError, AnchorProof};
use crate::presentation::Presentation;
use crate::sd_jwt::{SdJwt, SdJwtError};

/// The envelope prefix (format version 1).
pub const PREFIX: &str = "VCH1:";

/// Largest presentation an envelope may decode to, and largest structure
/// stream it may inflate to, in bytes.
pub const MAX_DECODED: usize = 64 * 1024;

/// Longest envelope text [`decode`] reads. Base45 takes 3 characters for 2
/// bytes, and the envelope body is no larger than what it decodes to, bar
/// deflate overhead, so twice [`MAX_DECODED`] is ample.
pub const MAX_ENVELOPE_CHARS: usize = 2 * MAX_DECODED;

/// Why an envelope could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// No `VCH1:` prefix.
    #[error("not a Vouch QR envelope: it must start with {PREFIX}")]
    Prefix,
    /// Not base45.
    #[error("envelope is not valid base45 at character {0}")]
    Base45(usize),
    /// Deflate data that does not inflate, or inflates too far.
    #[error("envelope does not decompress: {0}")]
    Inflate(String),
    /// The inflated container is malformed.
    #[error("envelope content is malformed: {0}")]
    Container(&'static str),
    /// The input to encode has a part that is not canonical base64url.
    #[error("part {0} of the presentation is not canonical base64url")]
    NotBase64(usize),
    /// The envelope, its inflated structure or the presentation it decodes
    /// to is over its size limit; refused before the work is done.
    #[error("{what} is larger than the limit of {max} bytes")]
    TooLarge {
        /// Which one.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The presentation has more `~` parts or `.` segments than an envelope
    /// holds; [`decode`] would refuse the result.
    #[error("presentation has more than {max} {what}, more than an envelope holds")]
    TooManyParts {
        /// `parts` or `segments in a part`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The anchor part is declared longer than [`MAX_ANCHOR_PART`]; refused
    /// before it or anything after it is decoded.
    #[error("envelope anchor part of {len} bytes is larger than the limit of {max} bytes")]
    AnchorTooLarge {
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The anchor part is truncated, or its varints or audit path are
    /// malformed.
    #[error("envelope anchor part is malformed: {0}")]
    AnchorPart(&'static str),
    /// The anchor part's fields do not make an anchor proof.
    #[error("envelope anchor part: {0}")]
    Anchor(#[source] AnchorError),
}

/// Encodes a compact SD-JWT (or any `~`/`.`-joined base64url text) as an
/// envelope.
///
/// # Errors
/// [`EnvelopeError::NotBase64`] when a part is not canonical base64url;
/// [`EnvelopeError::TooLarge`] beyond [`MAX_DECODED`] bytes and
/// [`EnvelopeError::TooManyParts`] beyond 512 `~` parts or 8 `.` segments in
/// a part, which [`decode`] would refuse.
pub fn encode(presentation: &str) -> Result<String, EnvelopeError> {
    encode_parts(presentation, None)
}

/// Encodes a presentation and, when it has one, its anchor proof (in the
/// anchor part, see the module documentation) as an envelope.
///
/// # Errors
/// As [`encode`], for [`Presentation::sd_jwt`].
pub fn encode_presentation(presentation: &Presentation) -> Result<String, EnvelopeError> {
    encode_parts(&presentation.sd_jwt, presentation.anchor_proof.as_ref())
}

fn encode_parts(presentation: &str, anchor: Option<&AnchorProof>) -> Result<String, EnvelopeError> {
    let (structure, binary) = pack(presentation)?;
    let compressed = deflate(&structure)?;
    let mut body = Vec::with_capacity(compressed.len() + binary.len() + 4);
    if let Some(proof) = anchor {
        anchor_part::write(proof, &mut body);
    }
    push_varint(&mut body, compressed.len());
    body.extend_from_slice(&compressed);
    body.extend_from_slice(&binary);
    let mut out = String::with_capacity(PREFIX.len() + body.len() * 3 / 2 + 2);
    out.push_str(PREFIX);
    crate::base45::encode(&body, &mut out);
    Ok(out)
}

/// Decodes an envelope back to the exact presentation string.
///
/// Never panics, and costs time linear in the envelope's length: at most
/// [`MAX_ENVELOPE_CHARS`] are read, the structure inflates to at most
/// [`MAX_DECODED`] bytes, and the decoded length is added up from the
/// structure and refused beyond [`MAX_DECODED`] before anything is rendered
/// or hashed; each part is then hashed at most once.
///
/// An anchor part, if the envelope has one, is checked as
/// [`decode_presentation`] checks it, and left out of the result: use
/// [`decode_presentation`] to keep it.
///
/// # Errors
/// [`EnvelopeError`] naming what is wrong.
pub fn decode(envelope: &str) -> Result<String, EnvelopeError> {
    decode_presentation(envelope).map(|p| p.sd_jwt)
}

/// Decodes an envelope back to the exact presentation string and the
/// anchor proof its anchor part carries, if any. Costs and bounds as
/// [`decode`]; the anchor part is at most [`MAX_ANCHOR_PART`] bytes,
/// checked by its declared length before it is read.
///
/// # Errors
/// [`EnvelopeError`] naming what is wrong; for the anchor part,
/// [`EnvelopeError::AnchorTooLarge`], [`EnvelopeError::AnchorPart`] or
/// [`EnvelopeError::Anchor`].
pub fn decode_presentation(envelope: &str) -> Result<Presentation, EnvelopeError> {
    decode_counting(envelope).map(|(p, _)| p)
}

/// An envelope decoded straight into its SD-JWT ([`decode_sd_jwt`]).
#[derive(Debug)]
pub struct DecodedSdJwt {
    /// The presentation's SD-JWT, parsed from the envelope's parts as
    /// they were rendered: exactly what [`SdJwt::parse`] gives for the
    /// text [`decode`] returns (or its error: the envelope decoded, but
    /// what it holds is no SD-JWT).
    pub sd_jwt: Result<SdJwt, SdJwtError>,
    /// The anchor proof its anchor part carries, if any.
    pub anchor_proof: Option<AnchorProof>,
}

/// Decodes an envelope into the SD-JWT it holds, parsed once: the parts
/// are rendered as [`decode_presentation`] renders them, and parsed from
/// the bytes they were rendered from, so no base64url is decoded again,
/// and the digests and `sd_hash` the rendering computed over the same
/// text are not computed again. Costs and bounds as [`decode`].
///
/// # Errors
/// Those of [`decode_presentation`]. An SD-JWT that does not parse is
/// not an error here but [`DecodedSdJwt::sd_jwt`]'s.
pub fn decode_sd_jwt(envelope: &str) -> Result<DecodedSdJwt, EnvelopeError> {
    let (unpacked, anchor_proof) = unpack_envelope(envelope, true)?;
    Ok(DecodedSdJwt {
        sd_jwt: unpacked.sd_jwt(),
        anchor_proof,
    })
}

/// As [`decode_presentation`], also returning how many bytes were hashed
/// (for the test that holds decoding to linear work).
fn decode_counting(envelope: &str) -> Result<(Presentation, usize), EnvelopeError> {
    let (unpacked, anchor_proof) = unpack_envelope(envelope, false)?;
    Ok((
        Presentation {
            sd_jwt: unpacked.text(),
            anchor_proof,
        },
        unpacked.hashed,
    ))
}

/// The envelope's parts, rendered (with their decoded segments when
/// `keep_decoded`), and its anchor proof.
fn unpack_envelope(
    envelope: &str,
    keep_decoded: bool,
) -> Result<(Unpacked, Option<AnchorProof>), EnvelopeError> {
    if envelope.len() > MAX_ENVELOPE_CHARS {
        return Err(EnvelopeError::TooLarge {
            what: "envelope",
            max: MAX_ENVELOPE_CHARS,
        });
    }
    let body = envelope.strip_prefix(PREFIX).ok_or(EnvelopeError::Prefix)?;
    let body = crate::base45::decode(body).map_err(EnvelopeError::Base45)?;
    let mut r = Reader {
        bytes: &body,
        pos: 0,
    };
    let anchor_proof = if body.first() == Some(&anchor_part::ANCHOR_TAG) {
        r.pos = 1;
        Some(anchor_part::read(&mut r)?)
    } else {
        None
    };
    let len = r.varint()?;
    let compressed = r.take(len)?;
    let structure = inflate(compressed)?;
    let unpacked = unpack(
        &structure,
        body.get(r.pos..).unwrap_or_default(),
        keep_decoded,
    )?;
    Ok((unpacked, anchor_proof))
}

fn push_varint(out: &mut Vec<u8>, v: usize) {
    crate::did::push_varint(out, v as u64);
}

/// Most `~` parts an envelope may hold.
const MAX_PARTS: usize = 512;

/// Most `.` segments a part may hold (a compact JWS has 3).
const MAX_SEGMENTS: usize = 8;

/// Marker bytes in tokenised JSON text (bytes valid UTF-8 never contains).
mod marker {
    /// A quoted 32-byte base64url value; 32 bytes follow in the binary stream.
    pub const B64_32: u8 = 0xF5;
    /// An Ed25519 did:key id `z6Mk…`; 32 key bytes in the binary stream.
    pub const DID: u8 = 0xF6;
    /// A quoted 16-byte base64url value; 16 bytes in the binary stream.
    pub const B64_16: u8 = 0xF7;
    /// A quoted 32-byte value seen before; its index (1 byte) follows.
    pub const REPEAT_B64: u8 = 0xF8;
    /// The digest of disclosure k (1 byte follows), quoted.
    pub const DISCLOSURE_DIGEST: u8 = 0xF9;
    /// This presentation's `sd_hash`, quoted.
    pub const SD_HASH: u8 = 0xFA;
    /// A did:key id whose key was seen before; its index (1 byte) follows.
    pub const REPEAT_DID: u8 = 0xFB;
    /// The first marker value.
    pub const FIRST: u8 = B64_32;
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Length of `z6Mk…`: 'z' + base58 of 0xed 0x01 + 32 bytes.
const DID_ID_LEN: usize = 48;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;
    #[test]
    fn round_trip_simple() {
        let text = "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.AAEC~WyJzYWx0IiwibmFtZSIsInZhbHVlIl0~";
        let env = encode(text).unwrap();
        assert!(env.starts_with(PREFIX));
        assert_eq!(decode(&env).unwrap(), text);
    }

    #[test]
    fn broken_envelopes() {
        assert_eq!(decode("VCH2:AAA"), Err(EnvelopeError::Prefix));
        assert!(matches!(decode("VCH1:a"), Err(EnvelopeError::Base45(_))));
        assert!(decode("VCH1:000").is_err());
        assert!(matches!(
            encode("QQ.b=.c"),
            Err(EnvelopeError::NotBase64(1))
        ));
    }

    /// An envelope of this structure and binary stream, as [`encode`] lays
    /// one out.
    fn craft(structure: &[u8], binary: &[u8]) -> String {
        let compressed = deflate(structure).unwrap();
        let mut body = Vec::new();
        push_varint(&mut body, compressed.len());
        body.extend_from_slice(&compressed);
        body.extend_from_slice(binary);
        let mut out = PREFIX.to_owned();
        crate::base45::encode(&body, &mut out);
        out
    }

    /// A JSON segment header and text: `pieces` repeated `times`.
    fn json(structure: &mut Vec<u8>, pieces: &[u8], times: usize) {
        let text = pieces.repeat(times);
        push_varint(structure, text.len() << 1 | 1);
        structure.extend_from_slice(&text);
    }

    /// Issue 8 finding 5: a JWT part of ~60 KB and a last part of 30 000
    /// `sd_hash` markers. The old decoder re-concatenated and re-hashed the
    /// earlier parts for every marker (gigabytes of SHA-256) before noticing
    /// the size; now the decoded size is added up from the structure first.
    /// (core/tests/it/envelope.rs holds its text as `SD_HASH_BOMB`.)
    fn sd_hash_bomb() -> String {
        let mut s = Vec::new();
        push_varint(&mut s, 2);
        push_varint(&mut s, 1);
        let mut first = vec![marker::B64_32];
        first.extend([marker::REPEAT_B64, 0].repeat(1000));
        push_varint(&mut s, first.len() << 1 | 1);
        s.extend_from_slice(&first);
        push_varint(&mut s, 1);
        json(&mut s, &[marker::SD_HASH], 30_000);
        craft(&s, &[7u8; 32])
    }

    #[test]
    fn sd_hash_bomb_is_refused_by_its_size_before_hashing() {
        let env = sd_hash_bomb();
        assert!(env.len() < 200, "{} chars", env.len());
        assert_eq!(
            decode(&env),
            Err(EnvelopeError::TooLarge {
                what: "decoded presentation",
                max: MAX_DECODED
            })
        );
    }

    #[test]
    fn each_part_is_hashed_once_however_often_it_is_referenced() {
        // JWT (raw), one ~15 KB disclosure, and a KB-JWT referencing the
        // disclosure 200 times and sd_hash 200 times: under the size limit.
        let mut s = Vec::new();
        push_varint(&mut s, 3);
        push_varint(&mut s, 1);
        push_varint(&mut s, 3 << 1);
        push_varint(&mut s, 1);
        let mut disclosure = vec![marker::B64_32];
        disclosure.extend([marker::REPEAT_B64, 0].repeat(250));
        push_varint(&mut s, disclosure.len() << 1 | 1);
        s.extend_from_slice(&disclosure);
        push_varint(&mut s, 1);
        let mut kb = [marker::DISCLOSURE_DIGEST, 0].repeat(200);
        kb.extend([marker::SD_HASH].repeat(200));
        push_varint(&mut s, kb.len() << 1 | 1);
        s.extend_from_slice(&kb);
        let mut binary = vec![1u8, 2, 3];
        binary.extend([9u8; 32]);
        let (decoded, hashed) = decode_counting(&craft(&s, &binary)).unwrap();
        let text = decoded.sd_jwt;
        let parts: Vec<&str> = text.split('~').collect();
        assert_eq!(parts.len(), 3);
        let disclosure = parts[1].len();
        assert!(disclosure > 14_000, "{disclosure}");
        // The disclosure once for its digest, JWT and disclosure once for
        // sd_hash: not 400 times.
        assert_eq!(hashed, disclosure + (parts[0].len() + 1) + (disclosure + 1));
        // The references resolved to the right values.
        let kb = b64::decode(parts[2]).unwrap();
        let digest = format!("\"{}\"", b64::encode(sha256(parts[1].as_bytes())));
        let sd_hash = format!(
            "\"{}\"",
            b64::encode(sha256(format!("{}~{}~", parts[0], parts[1]).as_bytes()))
        );
        assert_eq!(
            String::from_utf8(kb).unwrap(),
            digest.repeat(200) + &sd_hash.repeat(200)
        );
    }

    #[test]
    fn circular_and_long_reference_chains() {
        // Parts 1 and 2 reference each other.
        let mut s = Vec::new();
        push_varint(&mut s, 4);
        push_varint(&mut s, 1);
        push_varint(&mut s, 0);
        for k in [1u8, 0] {
            push_varint(&mut s, 1);
            json(&mut s, &[marker::DISCLOSURE_DIGEST, k], 1);
        }
        push_varint(&mut s, 1);
        push_varint(&mut s, 0);
        assert_eq!(
            decode(&craft(&s, &[])),
            Err(EnvelopeError::Container("circular digest reference"))
        );

        // Part k references part k + 1 as far as a one-byte index reaches
        // (a chain 256 parts long): resolved without recursion, in reverse.
        let mut s = Vec::new();
        push_varint(&mut s, MAX_PARTS);
        push_varint(&mut s, 1);
        push_varint(&mut s, 0);
        for k in 1..MAX_PARTS - 1 {
            push_varint(&mut s, 1);
            if k < 256 {
                json(&mut s, &[b'[', marker::DISCLOSURE_DIGEST, k as u8, b']'], 1);
            } else {
                json(&mut s, b"[1]", 1);
            }
        }
        push_varint(&mut s, 1);
        push_varint(&mut s, 0);
        let text = decode(&craft(&s, &[])).unwrap();
        let parts: Vec<&str> = text.split('~').collect();
        assert_eq!(parts.len(), MAX_PARTS);
        let inner = b64::decode(parts[1]).unwrap();
        assert_eq!(
            inner,
            format!("[\"{}\"]", b64::encode(sha256(parts[2].as_bytes()))).into_bytes()
        );
    }

    #[test]
    fn inflate_and_envelope_are_capped_in_bytes() {
        // 1 MB of one byte deflates to about a kilobyte.
        let bomb = deflate(&vec![b'a'; 1 << 20]).unwrap();
        assert_eq!(
            inflate(&bomb),
            Err(EnvelopeError::TooLarge {
                what: "inflated structure",
                max: MAX_DECODED
            })
        );
        // Exactly at the limit inflates.
        let fits = deflate(&vec![b'a'; MAX_DECODED]).unwrap();
        assert_eq!(inflate(&fits).unwrap().len(), MAX_DECODED);
        let long = format!("{PREFIX}{}", "0".repeat(MAX_ENVELOPE_CHARS));
        assert!(matches!(
            decode(&long),
            Err(EnvelopeError::TooLarge {
                what: "envelope",
                ..
            })
        ));
        assert!(matches!(
            encode(&"A".repeat(MAX_DECODED + 1)),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_failed_inflate_leaves_the_next_one_whole() {
        // The inflater is kept per thread and reset for each envelope.
        let structure = b"{\"alg\":\"EdDSA\",\"typ\":\"kb+jwt\"}".repeat(20);
        let compressed = deflate(&structure).unwrap();
        assert_eq!(inflate(&compressed).unwrap(), structure);
        assert_eq!(
            inflate(&compressed[..compressed.len() / 2]),
            Err(EnvelopeError::Inflate("truncated deflate stream".into()))
        );
        assert!(matches!(
            inflate(&[0xff; 16]),
            Err(EnvelopeError::Inflate(_))
        ));
        let bomb = deflate(&vec![b'a'; 1 << 20]).unwrap();
        assert!(matches!(
            inflate(&bomb),
            Err(EnvelopeError::TooLarge { .. })
        ));
        assert_eq!(inflate(&compressed).unwrap(), structure);
        let mut trailing = compressed.clone();
        trailing.push(0);
        assert_eq!(
            inflate(&trailing),
            Err(EnvelopeError::Inflate(
                "trailing data after the deflate stream".into()
            ))
        );
        assert_eq!(inflate(&compressed).unwrap(), structure);
    }

    #[test]
    fn did_tokens_are_checked_once_each_and_refused_when_not_keys() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let not_a_key = (0u8..=255)
            .map(|b| [b; 32])
            .find(|raw| ed25519_dalek::VerifyingKey::from_bytes(raw).is_err())
            .unwrap();
        let one_part = |text: &[u8]| {
            let mut s = Vec::new();
            push_varint(&mut s, 1);
            push_varint(&mut s, 1);
            json(&mut s, text, 1);
            s
        };
        // A did:key, the same again, a 32-byte value then that value as a did:key.
        let text = [
            &b"[\""[..],
            &[marker::DID],
            b"\",\"",
            &[marker::REPEAT_DID, 0],
            b"\",",
            &[marker::B64_32],
            b",\"",
            &[marker::REPEAT_DID, 1],
            b"\"]",
        ]
        .concat();
        let binary = [key.to_bytes(), key.to_bytes()].concat();
        let decoded = decode(&craft(&one_part(&text), &binary)).unwrap();
        let id = crate::did::DidKey::from_public_key(&key)
            .method_specific_id()
            .to_owned();
        assert_eq!(
            String::from_utf8(b64::decode(&decoded).unwrap()).unwrap(),
            format!(
                "[\"{id}\",\"{id}\",\"{}\",\"{id}\"]",
                b64::encode(key.to_bytes())
            )
        );
        // Bytes that are no Ed25519 point, fresh or repeated, and a repeat
        // of a value never seen.
        let refused = EnvelopeError::Container("did:key token is not an Ed25519 key");
        let fresh = [&b"[\""[..], &[marker::DID], b"\"]"].concat();
        assert_eq!(
            decode(&craft(&one_part(&fresh), &not_a_key)),
            Err(refused.clone())
        );
        let repeated = [&b"["[..], &[marker::B64_32, marker::REPEAT_DID, 0], b"]"].concat();
        assert_eq!(
            decode(&craft(&one_part(&repeated), &not_a_key)),
            Err(refused)
        );
        let unseen = [&b"["[..], &[marker::B64_32, marker::REPEAT_DID, 1], b"]"].concat();
        assert_eq!(
            decode(&craft(&one_part(&unseen), &key.to_bytes())),
            Err(EnvelopeError::Container("bad repeat"))
        );
        // A marker byte that is no marker.
        assert_eq!(
            decode(&craft(&one_part(b"[\xFF]"), &[])),
            Err(EnvelopeError::Container("unknown marker"))
        );
    }

    #[test]
    fn tokens_survive() {
        let digest = b64::encode([9u8; 32]);
        let salt = b64::encode([7u8; 16]);
        let did = crate::did::DidKey::from_public_key(
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        );
        let json = format!(
            r#"{{"_sd":["{digest}"],"s":"{salt}","iss":"{did}","kid":"{}"}}"#,
            did.verification_method()
        );
        let text = format!("{}.{}.AA~", b64::encode(&json), b64::encode(&json));
        assert_eq!(decode(&encode(&text).unwrap()).unwrap(), text);
        let (structure, binary) = pack(&text).unwrap();
        assert!(structure.len() + binary.len() < text.len() * 3 / 4 - 80);
    }
}
