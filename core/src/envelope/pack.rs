//! Packing a presentation into the structure and binary streams.

use crate::b64;

use super::dictionary::deflate;
use super::{
    marker, push_varint, sha256, EnvelopeError, DID_ID_LEN, MAX_DECODED, MAX_PARTS, MAX_SEGMENTS,
};

/// Splits a presentation into a compressible structure stream (lengths and
/// JSON text with markers) and a raw binary stream (signatures, digests,
/// keys, salts) that deflate could not shrink.
struct Packer {
    structure: Vec<u8>,
    binary: Vec<u8>,
    seen: Vec<[u8; 32]>,
    disclosure_digests: Vec<[u8; 32]>,
    sd_hash: Option<[u8; 32]>,
}

/// Container (inside the deflated structure stream): varint(#parts), then per
/// `~` part varint(#segments), then per `.` segment varint(len << 1 |
/// tokenised), followed, for tokenised JSON, by its text with markers; raw
/// segments' bytes go to the binary stream. Envelope body: varint(deflated
/// length), deflated structure, binary stream.
///
/// Refuses a presentation over [`MAX_DECODED`] bytes before any work: the
/// token tables are searched linearly, and [`decode`] would refuse it.
pub(super) fn pack(text: &str) -> Result<(Vec<u8>, Vec<u8>), EnvelopeError> {
    if text.len() > MAX_DECODED {
        return Err(EnvelopeError::TooLarge {
            what: "presentation",
            max: MAX_DECODED,
        });
    }
    let parts: Vec<&str> = text.split('~').collect();
    if parts.len() > MAX_PARTS {
        return Err(EnvelopeError::TooManyParts {
            what: "parts",
            max: MAX_PARTS,
        });
    }
    let disclosure_digests = if parts.len() > 2 {
        parts[1..parts.len() - 1]
            .iter()
            .map(|d| sha256(d.as_bytes()))
            .collect()
    } else {
        Vec::new()
    };
    let sd_hash = text.rfind('~').map(|end| sha256(&text.as_bytes()[..=end]));
    let mut p = Packer {
        structure: Vec::with_capacity(text.len() / 2),
        binary: Vec::with_capacity(text.len() / 2),
        seen: Vec::new(),
        disclosure_digests,
        sd_hash,
    };
    push_varint(&mut p.structure, parts.len());
    let last = parts.len() - 1;
    let mut index = 0;
    for (part_index, part) in parts.iter().enumerate() {
        let segments: Vec<&str> = part.split('.').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(EnvelopeError::TooManyParts {
                what: "segments in a part",
                max: MAX_SEGMENTS,
            });
        }
        push_varint(&mut p.structure, segments.len());
        for segment in segments {
            let bytes = b64::decode(segment).map_err(|_| EnvelopeError::NotBase64(index))?;
            index += 1;
            if let Some(t) = p.tokenise(&bytes, part_index, part_index == last) {
                push_varint(&mut p.structure, t.len() << 1 | 1);
                p.structure.extend_from_slice(&t);
            } else {
                push_varint(&mut p.structure, bytes.len() << 1);
                p.binary.extend_from_slice(&bytes);
            }
        }
    }
    Ok((p.structure, p.binary))
}

impl Packer {
    /// Replaces random tokens in JSON text by markers. `None` when the segment
    /// is not JSON text (it is stored raw).
    fn tokenise(&mut self, bytes: &[u8], part: usize, is_last: bool) -> Option<Vec<u8>> {
        if !matches!(bytes.first(), Some(b'{' | b'[')) || bytes.iter().any(|&b| b >= marker::FIRST)
        {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if let Some(raw) = quoted_b64::<32>(&bytes[i..], 43) {
                    self.token32(raw, part, is_last, &mut out);
                    i += 45;
                    continue;
                }
                if let Some(raw) = quoted_b64::<16>(&bytes[i..], 22) {
                    out.push(marker::B64_16);
                    self.binary.extend_from_slice(&raw);
                    i += 24;
                    continue;
                }
            }
            if bytes[i] == b'z' && i > 0 && matches!(bytes[i - 1], b':' | b'#') {
                if let Some(key) = did_key_id(&bytes[i..]) {
                    self.key32(key, marker::DID, marker::REPEAT_DID, &mut out);
                    i += DID_ID_LEN;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        Some(out)
    }

    fn token32(&mut self, raw: [u8; 32], part: usize, is_last: bool, out: &mut Vec<u8>) {
        if is_last && self.sd_hash == Some(raw) {
            out.push(marker::SD_HASH);
            return;
        }
        // Disclosure k is part k + 1; a part never refers to itself.
        let own = part.checked_sub(1);
        if let Some(k) = self
            .disclosure_digests
            .iter()
            .take(256)
            .position(|d| *d == raw)
            .filter(|&k| Some(k) != own)
        {
            out.extend_from_slice(&[marker::DISCLOSURE_DIGEST, k as u8]);
            return;
        }
        self.key32(raw, marker::B64_32, marker::REPEAT_B64, out);
    }

    /// A 32-byte token: a back-reference when seen before (among the first
    /// 256), else the `fresh` marker with its bytes in the binary stream.
    fn key32(&mut self, raw: [u8; 32], fresh: u8, repeat: u8, out: &mut Vec<u8>) {
        match self.seen.iter().take(256).position(|s| *s == raw) {
            Some(s) => out.extend_from_slice(&[repeat, s as u8]),
            None => {
                out.push(fresh);
                self.binary.extend_from_slice(&raw);
                self.seen.push(raw);
            }
        }
    }
}

fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `"<len base64url chars>"` decoding canonically to N bytes.
fn quoted_b64<const N: usize>(bytes: &[u8], len: usize) -> Option<[u8; N]> {
    let body = bytes.get(1..=len)?;
    if bytes.get(len + 1) != Some(&b'"') || !body.iter().all(|&b| is_b64_char(b)) {
        return None;
    }
    b64::decode_array::<N>(body).ok()
}

fn did_key_id(bytes: &[u8]) -> Option<[u8; 32]> {
    let id = std::str::from_utf8(bytes.get(..DID_ID_LEN)?).ok()?;
    // The next character must end the identifier.
    if bytes
        .get(DID_ID_LEN)
        .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let did = crate::did::DidKey::parse(&format!("did:key:{id}")).ok()?;
    Some(did.verifying_key().to_bytes())
}

/// Sizes of an envelope's streams, for the benchmark report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeStats {
    /// Structure stream before deflate.
    pub structure: usize,
    /// Structure stream after deflate.
    pub deflated: usize,
    /// Raw binary stream.
    pub binary: usize,
}

/// Measures how a presentation packs.
///
/// # Errors
/// As [`encode`](super::encode).
pub fn stats(presentation: &str) -> Result<EnvelopeStats, EnvelopeError> {
    let (structure, binary) = pack(presentation)?;
    Ok(EnvelopeStats {
        structure: structure.len(),
        deflated: deflate(&structure)?.len(),
        binary: binary.len(),
    })
}

/// The structure stream with markers shown as `<XX>` (for tuning the dictionary).
///
/// # Errors
/// As [`encode`](super::encode).
pub fn structure_text(presentation: &str) -> Result<String, EnvelopeError> {
    let (structure, _) = pack(presentation)?;
    Ok(structure
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b).to_string()
            } else {
                format!("<{b:02x}>")
            }
        })
        .collect())
}
