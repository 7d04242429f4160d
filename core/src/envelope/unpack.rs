//! Unpacking the structure and binary streams back to the presentation text.

use crate::b64;

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
enum Piece {
    Text(u8),
    Quoted32([u8; 32]),
    Quoted16([u8; 16]),
    Did(ed25519_dalek::VerifyingKey),
    /// The digest of part k (disclosure k − 1), quoted.
    PartDigest(usize),
    SdHash,
}

impl Piece {
    /// Bytes the piece takes in the JSON text: known before anything is
    /// rendered or hashed.
    fn rendered_len(&self) -> usize {
        match self {
            Piece::Text(_) => 1,
            // A quoted 32-byte value: 43 base64url characters and 2 quotes.
            Piece::Quoted32(_) | Piece::PartDigest(_) | Piece::SdHash => 45,
            Piece::Quoted16(_) => 24,
            Piece::Did(_) => DID_ID_LEN,
        }
    }
}

enum Segment<'a> {
    Raw(&'a [u8]),
    Json(Vec<Piece>),
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
/// Returns the presentation and how many bytes were hashed.
pub(super) fn unpack(structure: &[u8], binary: &[u8]) -> Result<(String, usize), EnvelopeError> {
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
    let mut seen: Vec<[u8; 32]> = Vec::new();
    let count = r.varint()?;
    if count == 0 || count > MAX_PARTS {
        return Err(EnvelopeError::Container("bad number of parts"));
    }
    let last = count - 1;
    let mut parts: Vec<Vec<Segment>> = Vec::with_capacity(count);
    // Parts each part's digest references point at.
    let mut references: Vec<Vec<usize>> = Vec::with_capacity(count);
    // The decoded length: the '~' separators, then each segment.
    let mut total = last;
    for i in 0..count {
        let segments = r.varint()?;
        if segments == 0 || segments > MAX_SEGMENTS {
            return Err(EnvelopeError::Container("bad number of segments"));
        }
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
            let mut text = Reader {
                bytes: r.take(len)?,
                pos: 0,
            };
            let mut pieces = Vec::with_capacity(len);
            let mut json_len = 0usize;
            while !text.done() {
                let piece = match text.byte()? {
                    marker::B64_32 => {
                        let raw: [u8; 32] = bin.array()?;
                        seen.push(raw);
                        Piece::Quoted32(raw)
                    }
                    marker::DID => {
                        let raw: [u8; 32] = bin.array()?;
                        seen.push(raw);
                        Piece::Did(ed25519_key(&raw)?)
                    }
                    marker::B64_16 => Piece::Quoted16(bin.array()?),
                    marker::REPEAT_B64 => Piece::Quoted32(repeat(&seen, text.byte()?)?),
                    marker::REPEAT_DID => Piece::Did(ed25519_key(&repeat(&seen, text.byte()?)?)?),
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
                    b if b >= marker::FIRST => {
                        return Err(EnvelopeError::Container("unknown marker"))
                    }
                    b => Piece::Text(b),
                };
                json_len += piece.rendered_len();
                pieces.push(piece);
            }
            total += b64_len(json_len);
            if total > MAX_DECODED {
                return Err(too_large());
            }
            part.push(Segment::Json(pieces));
        }
        parts.push(part);
        references.push(refs);
    }
    if !r.done() || !bin.done() {
        return Err(EnvelopeError::Container("trailing bytes"));
    }

    let mut renderer = Renderer {
        parts: &parts,
        texts: vec![None; count],
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

    let mut out = String::with_capacity(total);
    for (i, text) in renderer.texts.iter().enumerate() {
        if i > 0 {
            out.push('~');
        }
        out.push_str(text.as_deref().unwrap_or_default());
    }
    if out.len() != total {
        // The sizes above are exact; a mismatch is a bug, not bad input.
        return Err(EnvelopeError::Container("decoded size mismatch"));
    }
    Ok((out, renderer.hashed))
}

/// A 32-byte value seen before, by its index.
fn repeat(seen: &[[u8; 32]], index: u8) -> Result<[u8; 32], EnvelopeError> {
    seen.get(usize::from(index))
        .copied()
        .ok_or(EnvelopeError::Container("bad repeat"))
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
    texts: Vec<Option<String>>,
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
        let mut text = String::new();
        for (s, segment) in parts[i].iter().enumerate() {
            if s > 0 {
                text.push('.');
            }
            match segment {
                Segment::Raw(bytes) => text.push_str(&b64::encode(bytes)),
                Segment::Json(pieces) => {
                    let mut bytes = Vec::with_capacity(pieces.len() * 2);
                    for piece in pieces {
                        match piece {
                            Piece::Text(b) => bytes.push(*b),
                            Piece::Quoted32(raw) => quote(&mut bytes, raw),
                            Piece::Quoted16(raw) => quote(&mut bytes, raw),
                            Piece::Did(key) => {
                                let did = crate::did::DidKey::from_public_key(key);
                                let id = did.method_specific_id().as_bytes();
                                if id.len() != DID_ID_LEN {
                                    return Err(EnvelopeError::Container(
                                        "did:key id of an unexpected length",
                                    ));
                                }
                                bytes.extend_from_slice(id);
                            }
                            Piece::PartDigest(target) => {
                                let d = self.digest(*target)?;
                                quote(&mut bytes, &d);
                            }
                            Piece::SdHash => {
                                let d = self.sd_hash()?;
                                quote(&mut bytes, &d);
                            }
                        }
                    }
                    text.push_str(&b64::encode(bytes));
                }
            }
        }
        self.texts[i] = Some(text);
        Ok(())
    }
}

fn quote(out: &mut Vec<u8>, raw: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(b64::encode(raw).as_bytes());
    out.push(b'"');
}
