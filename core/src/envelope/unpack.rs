//! Unpacking the structure and binary streams back to the presentation text.

use std::sync::{Mutex, PoisonError};

use crate::b64;
use crate::sd_jwt::{DecodedPart, SdJwt, SdJwtError};

use super::{marker, sha256, EnvelopeError, DID_ID_LEN, MAX_DECODED, MAX_PARTS, MAX_SEGMENTS};

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn varint(&mut self) -> Result<usize, EnvelopeError> {
        let mut v = 0usize;
        for i in 0..4 {
            let b = self.byte()?;
            v |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(EnvelopeError::Container("overlong length"));
                }
                return Ok(v);
            }
        }
        Err(EnvelopeError::Container("length too large"))
    }

    fn byte(&mut self) -> Result<u8, EnvelopeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(EnvelopeError::Container("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(EnvelopeError::Container("truncated part"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// A piece of a decoded segment.
enum Piece<'a> {
    /// A run of JSON text without markers.
    Text(&'a [u8]),
    Quoted32([u8; 32]),
    Quoted16([u8; 16]),
    /// A did:key id, by its index in the ids rendered so far.
    Did(usize),
    /// The digest of part k (disclosure k − 1), quoted.
    PartDigest(usize),
    SdHash,
}

impl Piece<'_> {
    /// Bytes the piece takes in the JSON text: known before anything is
    /// rendered or hashed.
    fn rendered_len(&self) -> usize {
        match self {
            Piece::Text(run) => run.len(),
            // A quoted 32-byte value: 43 base64url characters and 2 quotes.
            Piece::Quoted32(_) | Piece::PartDigest(_) | Piece::SdHash => 45,
            Piece::Quoted16(_) => 24,
            Piece::Did(_) => DID_ID_LEN,
        }
    }
}

enum Segment<'a> {
    Raw(&'a [u8]),
    /// Its pieces, a range of the one list all segments share.
    Json(std::ops::Range<usize>),
}

/// A 32-byte value seen in the binary stream, and the index of its did:key
/// id once one was rendered from it (each key is checked and rendered once).
struct Seen {
    raw: [u8; 32],
    did: Option<usize>,
}

/// Length of the unpadded base64url encoding of `n` bytes.
fn b64_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

/// Parses the container and renders it. Every size is known from the
/// structure: the output length is added up, and refused beyond
/// [`MAX_DECODED`], before anything is rendered or hashed. Each part is then
/// rendered once, hashed at most once (when referenced), and `sd_hash` is
/// computed at most once, so decoding costs time linear in the decoded size.
///
/// Returns the rendered parts; with `keep_decoded`, each part's segments
/// as they were before base64url encoding too.
pub(super) fn unpack(
    structure: &[u8],
    binary: &[u8],
    keep_decoded: bool,
) -> Result<Unpacked, EnvelopeError> {
    let mut r = Reader {
        bytes: structure,
        pos: 0,
    };
    let mut bin = Reader {
        bytes: binary,
        pos: 0,
    };
    let too_large = || EnvelopeError::TooLarge {
        what: "decoded presentation",
        max: MAX_DECODED,
    };
    // Each fresh 32-byte value takes 32 bytes of the binary stream.
    let mut seen: Vec<Seen> = Vec::with_capacity(binary.len() / 32);
    // The pieces of every JSON segment, one list.
    let mut pieces: Vec<Piece> = Vec::with_capacity(structure.len() / 8 + 8);
    let mut dids: Vec<String> = Vec::new();
    let count = r.varint()?;
    if count == 0 || count > MAX_PARTS {
        return Err(EnvelopeError::Container("bad number of parts"));
    }
    let last = count - 1;
    let mut parts: Vec<Vec<Segment>> = Vec::with_capacity(count);
    // Each part's decoded length, and the longest JSON text of a segment,
    // for rendering without reallocating.
    let mut lens: Vec<usize> = Vec::with_capacity(count);
    let mut longest_json = 0usize;
    // Parts each part's digest references point at.
    let mut references: Vec<Vec<usize>> = Vec::with_capacity(count);
    // The decoded length: the '~' separators, then each segment.
    let mut total = last;
    for i in 0..count {
        let segments = r.varint()?;
        if segments == 0 || segments > MAX_SEGMENTS {
            return Err(EnvelopeError::Container("bad number of segments"));
        }
        let part_start = total;
        total += segments - 1;
        let mut part = Vec::with_capacity(segments);
        let mut refs = Vec::new();
        for _ in 0..segments {
            let header = r.varint()?;
            let len = header >> 1;
            if header & 1 == 0 {
                let raw = bin.take(len)?;
                total += b64_len(raw.len());
                if total > MAX_DECODED {
                    return Err(too_large());
                }
                part.push(Segment::Raw(raw));
                continue;
            }
            let json = r.take(len)?;
            let mut text = Reader {
                bytes: json,
                pos: 0,
            };
            let first_piece = pieces.len();
            let mut json_len = 0usize;
            while !text.done() {
                let rest = json.get(text.pos..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|&b| b >= marker::FIRST)
                    .unwrap_or(rest.len());
                if run > 0 {
                    text.pos += run;
                    json_len += run;
                    pieces.push(Piece::Text(&rest[..run]));
                    continue;
                }
                let piece = match text.byte()? {
                    marker::B64_32 => {
                        let raw: [u8; 32] = bin.array()?;
                        seen.push(Seen { raw, did: None });
                        Piece::Quoted32(raw)
                    }
                    marker::DID => {
                        let raw: [u8; 32] = bin.array()?;
                        seen.push(Seen { raw, did: None });
                        let index = seen.len() - 1;
                        Piece::Did(did_id(&mut seen, &mut dids, index)?)
                    }
                    marker::B64_16 => Piece::Quoted16(bin.array()?),
                    marker::REPEAT_B64 => Piece::Quoted32(repeat(&seen, text.byte()?)?),
                    marker::REPEAT_DID => {
                        let index = usize::from(text.byte()?);
                        Piece::Did(did_id(&mut seen, &mut dids, index)?)
                    }
                    marker::DISCLOSURE_DIGEST => {
                        let target = usize::from(text.byte()?) + 1;
                        if target >= last || target == i {
                            return Err(EnvelopeError::Container("bad disclosure reference"));
                        }
                        refs.push(target);
                        Piece::PartDigest(target)
                    }
                    marker::SD_HASH if i == last => Piece::SdHash,
                    marker::SD_HASH => {
                        return Err(EnvelopeError::Container("sd_hash outside the KB-JWT"))
                    }
                    // Every byte below the first marker was taken in a run.
                    _ => return Err(EnvelopeError::Container("unknown marker")),
                };
                json_len += piece.rendered_len();
                pieces.push(piece);
            }
            longest_json = longest_json.max(json_len);
            total += b64_len(json_len);
            if total > MAX_DECODED {
                return Err(too_large());
            }
            part.push(Segment::Json(first_piece..pieces.len()));
        }
        parts.push(part);
        lens.push(total - part_start);
        references.push(refs);
    }
    if !r.done() || !bin.done() {
        return Err(EnvelopeError::Container("trailing bytes"));
    }

    let mut renderer = Renderer {
        parts: &parts,
        pieces: &pieces,
        lens: &lens,
        dids: &dids,
        json: Vec::with_capacity(longest_json),
        texts: vec![None; count],
        decoded: if keep_decoded {
            (0..count).map(|_| Vec::new()).collect()
        } else {
            Vec::new()
        },
        digests: vec![None; count],
        sd_hash: None,
        hashed: 0,
    };
    // Every part but the last, each after the parts it references (no part
    // before the last references the last, and none holds sd_hash).
    let mut state = vec![Visit::New; last];
    let mut stack: Vec<(usize, usize)> = Vec::with_capacity(last);
    for root in 0..last {
        if state[root] != Visit::New {
            continue;
        }
        state[root] = Visit::Open;
        stack.push((root, 0));
        while let Some(top) = stack.last_mut() {
            let (part, next) = *top;
            if let Some(&target) = references[part].get(next) {
                top.1 += 1;
                match state[target] {
                    Visit::Done => {}
                    Visit::Open => {
                        return Err(EnvelopeError::Container("circular digest reference"))
                    }
                    Visit::New => {
                        state[target] = Visit::Open;
                        stack.push((target, 0));
                    }
                }
            } else {
                renderer.render(part)?;
                state[part] = Visit::Done;
                stack.pop();
            }
        }
    }
    renderer.render(last)?;

    let texts: Vec<String> = renderer
        .texts
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    if texts.iter().map(String::len).sum::<usize>() + last != total {
        // The sizes above are exact; a mismatch is a bug, not bad input.
        return Err(EnvelopeError::Container("decoded size mismatch"));
    }
    Ok(Unpacked {
        texts,
        decoded: renderer.decoded,
        digests: renderer.digests,
        sd_hash: renderer.sd_hash,
        hashed: renderer.hashed,
        len: total,
    })
}

/// The parts of an unpacked presentation, rendered.
pub(super) struct Unpacked {
    /// Each `~`-separated part's text.
    texts: Vec<String>,
    /// When kept: each part's `.`-separated segments before base64url
    /// encoding (what decoding its text gives).
    decoded: Vec<Vec<Vec<u8>>>,
    /// SHA-256 of each part's text, for the parts a digest marker
    /// referenced.
    digests: Vec<Option<[u8; 32]>>,
    /// SHA-256 of `<part 0>~…~<part last-1>~`, when a marker asked for it.
    sd_hash: Option<[u8; 32]>,
    /// Bytes fed to SHA-256.
    pub(super) hashed: usize,
    /// Length of the joined text.
    len: usize,
}

impl Unpacked {
    /// The presentation text: the parts joined by `~`.
    pub(super) fn text(&self) -> String {
        let mut out = String::with_capacity(self.len);
        for (i, text) in self.texts.iter().enumerate() {
            if i > 0 {
                out.push('~');
            }
            out.push_str(text);
        }
        out
    }

    /// The presentation parsed from its parts without decoding them again
    /// (the [`SdJwt::parse`] of [`Unpacked::text`]); unpacked with
    /// `keep_decoded`.
    pub(super) fn sd_jwt(self) -> Result<SdJwt, SdJwtError> {
        let mut decoded = self.decoded.into_iter();
        let parts = self
            .texts
            .into_iter()
            .zip(self.digests)
            .map(|(text, digest)| DecodedPart {
                text,
                segments: decoded.next().unwrap_or_default(),
                digest,
            })
            .collect();
        SdJwt::from_decoded_parts(parts, self.sd_hash)
    }
}

/// A 32-byte value seen before, by its index.
fn repeat(seen: &[Seen], index: u8) -> Result<[u8; 32], EnvelopeError> {
    seen.get(usize::from(index))
        .map(|s| s.raw)
        .ok_or(EnvelopeError::Container("bad repeat"))
}

/// The index in `dids` of the did:key id of `seen[index]`: the key is
/// checked to be an Ed25519 point and its id rendered the first time only.
fn did_id(seen: &mut [Seen], dids: &mut Vec<String>, index: usize) -> Result<usize, EnvelopeError> {
    let entry = seen
        .get_mut(index)
        .ok_or(EnvelopeError::Container("bad repeat"))?;
    if let Some(id) = entry.did {
        return Ok(id);
    }
    dids.push(known_did_id(&entry.raw)?);
    entry.did = Some(dids.len() - 1);
    Ok(dids.len() - 1)
}

/// Most did:key ids [`known_did_id`] keeps.
const KNOWN_DIDS: usize = 64;

/// The did:key ids of keys already checked to be Ed25519 points, newest
/// last. The did:key tokens of a presentation are its issuer's (`iss`,
/// `kid`), and a verifier meets the same few issuers over and over, while
/// checking that 32 bytes are a point (a decompression) is about an eighth
/// of a decode. The list only saves work: an entry is exactly what
/// [`did_id_of`] gives for its bytes, and only keys that are points are
/// kept.
static KNOWN: Mutex<Vec<([u8; 32], String)>> = Mutex::new(Vec::new());

/// [`did_id_of`], remembered for the last [`KNOWN_DIDS`] keys.
fn known_did_id(raw: &[u8; 32]) -> Result<String, EnvelopeError> {
    // A panic elsewhere while holding the lock leaves the list whole
    // (pushes and removes do not panic halfway), so a poisoned lock is
    // used as it is.
    let found = |known: &Vec<([u8; 32], String)>| {
        known
            .iter()
            .rev()
            .find(|(k, _)| k == raw)
            .map(|(_, id)| id.clone())
    };
    if let Some(id) = found(&KNOWN.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(id);
    }
    let id = did_id_of(raw)?;
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if found(&known).is_none() {
        if known.len() >= KNOWN_DIDS {
            known.remove(0);
        }
        known.push((*raw, id.clone()));
    }
    Ok(id)
}

/// The did:key id (`z6Mk…`) of the Ed25519 key `raw`, which must be a
/// point.
fn did_id_of(raw: &[u8; 32]) -> Result<String, EnvelopeError> {
    let did = crate::did::DidKey::from_public_key(&ed25519_key(raw)?);
    let id = did.method_specific_id();
    if id.len() != DID_ID_LEN {
        return Err(EnvelopeError::Container(
            "did:key id of an unexpected length",
        ));
    }
    Ok(id.to_owned())
}

fn ed25519_key(raw: &[u8; 32]) -> Result<ed25519_dalek::VerifyingKey, EnvelopeError> {
    ed25519_dalek::VerifyingKey::from_bytes(raw)
        .map_err(|_| EnvelopeError::Container("did:key token is not an Ed25519 key"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Open,
    Done,
}

/// Renders parts back to base64url text, each once, in an order where every
/// referenced part comes first.
struct Renderer<'a> {
    parts: &'a [Vec<Segment<'a>>],
    pieces: &'a [Piece<'a>],
    /// Each part's decoded length.
    lens: &'a [usize],
    /// The did:key ids the pieces refer to.
    dids: &'a [String],
    /// The JSON text of the segment being rendered (reused).
    json: Vec<u8>,
    texts: Vec<Option<String>>,
    /// Each part's segments before encoding, when kept (else empty).
    decoded: Vec<Vec<Vec<u8>>>,
    /// SHA-256 of each part's text, computed when first referenced.
    digests: Vec<Option<[u8; 32]>>,
    sd_hash: Option<[u8; 32]>,
    /// Bytes fed to SHA-256 (each part at most twice: its digest and
    /// `sd_hash`).
    hashed: usize,
}

impl Renderer<'_> {
    fn digest(&mut self, part: usize) -> Result<[u8; 32], EnvelopeError> {
        if let Some(d) = self.digests.get(part).copied().flatten() {
            return Ok(d);
        }
        let text =
            self.texts
                .get(part)
                .and_then(Option::as_deref)
                .ok_or(EnvelopeError::Container(
                    "reference to a part not yet decoded",
                ))?;
        self.hashed += text.len();
        let d = sha256(text.as_bytes());
        self.digests[part] = Some(d);
        Ok(d)
    }

    /// SHA-256 of `<part 0>~…~<part last-1>~`, once.
    fn sd_hash(&mut self) -> Result<[u8; 32], EnvelopeError> {
        if let Some(d) = self.sd_hash {
            return Ok(d);
        }
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for text in &self.texts[..self.parts.len() - 1] {
            let text = text
                .as_deref()
                .ok_or(EnvelopeError::Container("sd_hash before its parts"))?;
            hasher.update(text.as_bytes());
            hasher.update(b"~");
            self.hashed += text.len() + 1;
        }
        let d: [u8; 32] = hasher.finalize().into();
        self.sd_hash = Some(d);
        Ok(d)
    }

    fn render(&mut self, i: usize) -> Result<(), EnvelopeError> {
        let parts = self.parts;
        let mut text = String::with_capacity(self.lens.get(i).copied().unwrap_or_default());
        let mut json = std::mem::take(&mut self.json);
        for (s, segment) in parts[i].iter().enumerate() {
            if s > 0 {
                text.push('.');
            }
            match segment {
                Segment::Raw(bytes) => {
                    b64::encode_to(bytes, &mut text);
                    if let Some(kept) = self.decoded.get_mut(i) {
                        kept.push(bytes.to_vec());
                    }
                }
                Segment::Json(range) => {
                    json.clear();
                    for piece in self.pieces.get(range.clone()).unwrap_or_default() {
                        match piece {
                            Piece::Text(run) => json.extend_from_slice(run),
                            Piece::Quoted32(raw) => quote(&mut json, raw),
                            Piece::Quoted16(raw) => quote(&mut json, raw),
                            Piece::Did(id) => {
                                let id = self.dids.get(*id).ok_or(EnvelopeError::Container(
                                    "reference to an unknown did:key id",
                                ))?;
                                json.extend_from_slice(id.as_bytes());
                            }
                            Piece::PartDigest(target) => {
                                let d = self.digest(*target)?;
                                quote(&mut json, &d);
                            }
                            Piece::SdHash => {
                                let d = self.sd_hash()?;
                                quote(&mut json, &d);
                            }
                        }
                    }
                    b64::encode_to(&json, &mut text);
                    if let Some(kept) = self.decoded.get_mut(i) {
                        kept.push(json.clone());
                    }
                }
            }
        }
        self.json = json;
        self.texts[i] = Some(text);
        Ok(())
    }
}

/// Appends `"<base64url of raw>"` (at most 32 bytes) to `out`.
fn quote(out: &mut Vec<u8>, raw: &[u8]) {
    use base64::Engine as _;
    let mut buf = [0u8; 43];
    out.push(b'"');
    // 43 characters hold the base64url of up to 32 bytes, all `quote` is
    // given; were it more, the text would come out short and the final
    // size check would refuse it.
    if let Ok(n) = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(raw, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_did_id_is_the_one_rendering_gives_and_a_non_key_is_never_remembered() {
        let not_a_key = (0u8..=255)
            .map(|b| [b; 32])
            .find(|raw| ed25519_dalek::VerifyingKey::from_bytes(raw).is_err())
            .unwrap();
        let refused = Err(EnvelopeError::Container(
            "did:key token is not an Ed25519 key",
        ));
        // More keys than are remembered, twice over: each id is the one
        // rendered from its key, whether remembered or pushed out.
        let keys: Vec<[u8; 32]> = (0..KNOWN_DIDS as u64 + 8)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&i.to_le_bytes());
                ed25519_dalek::SigningKey::from_bytes(&seed)
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        for _ in 0..2 {
            for raw in &keys {
                let id = crate::did::DidKey::from_public_key(
                    &ed25519_dalek::VerifyingKey::from_bytes(raw).unwrap(),
                )
                .method_specific_id()
                .to_owned();
                assert_eq!(known_did_id(raw), Ok(id));
            }
            assert_eq!(known_did_id(&not_a_key), refused);
        }
        let known = KNOWN.lock().unwrap();
        assert!(known.len() <= KNOWN_DIDS);
        assert!(known.iter().all(|(k, _)| *k != not_a_key));
    }
}
