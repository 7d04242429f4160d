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

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use qrcode::bits::Bits;
use qrcode::{EcLevel, QrCode, Version};

use crate::b64;

/// The envelope prefix (format version 1).
pub const PREFIX: &str = "VCH1:";
/// Largest presentation an envelope may decode to, and largest structure
/// stream it may inflate to, in bytes.
pub const MAX_DECODED: usize = 64 * 1024;
/// Longest envelope text [`decode`] reads. Base45 takes 3 characters for 2
/// bytes, and the envelope body is no larger than what it decodes to, bar
/// deflate overhead, so twice [`MAX_DECODED`] is ample.
pub const MAX_ENVELOPE_CHARS: usize = 2 * MAX_DECODED;

/// Widest (and tallest) PNG [`png`] draws, in pixels: a version-40 code
/// (177 modules) with a 4-module quiet zone at 22 pixels per module fits.
/// The image is built in memory at one byte per pixel, so this bounds what a
/// caller's `scale` and `quiet` can make it allocate (about 16 MiB).
pub const MAX_PNG_SIDE: u32 = 4096;

const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// The preset deflate dictionary of format 1: the structure stream of SD-JWT
/// VC, disclosure and KB-JWT JSON as Vouch writes it (keys sorted, markers
/// in place of random tokens), plus template vocabulary. Never change it; a
/// new dictionary needs a new prefix.
pub const DICTIONARY: &[u8] = b"\
{\"employer\":\"\",\"employee\":\"\",\"title\":\"\",\"department\":\"\",\"start_date\":\"20\",\"end_date\":\"20\"}\
{\"insurer\":\"\",\"policyholder\":\"\",\"policy_number\":\"\",\"cover_type\":\"\",\"sum_insured\":\"\",\"currency\":\"EUR\"}\
https://vouch.example/vct/employment\"https://vouch.example/vct/insurance-policy\"\
[\xF7,\"student_name\",\"[\xF7,\"student_id\",\"[\xF7,\"programme\",\"Computer Science\"]\
[\xF7,\"degree\",\"Bachelor of Science\"][\xF7,\"degree\",\"Master of Science\"]\
[\xF7,\"award_date\",\"20[\xF7,\"gpa\",\"3.\
[\xF7,{\"code\":\"\",\"credits\":6,\"grade\":\"A\",\"term\":\"2024-S2\",\"title\":\"Introduction to \"}]\
[\xF7,{\"code\":\"\",\"credits\":5,\"grade\":\"B\",\"term\":\"2025-S1\",\"title\":\"Advanced \"}]\
{\"alg\":\"EdDSA\",\"typ\":\"kb+jwt\"}{\"aud\":\"https://\",\"iat\":17,\"nonce\":\"\",\"sd_hash\":\xFA}\
\"institution\":\"University of \",\"iss\":\"did:key:\xFB\x00\",\
\"status\":{\"status_list\":{\"idx\":,\"uri\":\"https://\"}},\"vct\":\"https://vouch.example/vct/transcript\"}\
{\"_sd\":[\xF5,\xF5,\xF5,\xF5,\xF5,\xF5],\"_sd_alg\":\"sha-256\",\"cnf\":{\"jwk\":{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\xF5}},\
\"courses\":[{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5},{\"...\":\xF5}],\"exp\":17,\"iat\":17\
{\"alg\":\"EdDSA\",\"kid\":\"did:key:\xF6#\xFB\x00\",\"typ\":\"dc+sd-jwt\"}";

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
    /// Too long for any QR code.
    #[error("envelope of {0} characters does not fit a QR code at this error correction level")]
    TooLong(usize),
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
    /// A PNG of this scale and quiet zone would be wider than
    /// [`MAX_PNG_SIDE`] pixels.
    #[error(
        "a QR code of {modules} modules with a quiet zone of {quiet} at scale {scale} \
         is wider than {MAX_PNG_SIDE} pixels"
    )]
    ImageTooLarge {
        /// Modules across the code.
        modules: usize,
        /// Quiet-zone modules on each side.
        quiet: u32,
        /// Pixels per module.
        scale: u32,
    },
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
    let (structure, binary) = pack(presentation)?;
    let compressed = deflate(&structure)?;
    let mut body = Vec::with_capacity(compressed.len() + binary.len() + 4);
    push_varint(&mut body, compressed.len());
    body.extend_from_slice(&compressed);
    body.extend_from_slice(&binary);
    let mut out = String::with_capacity(PREFIX.len() + body.len() * 3 / 2 + 2);
    out.push_str(PREFIX);
    base45_encode(&body, &mut out);
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
/// # Errors
/// [`EnvelopeError`] naming what is wrong.
pub fn decode(envelope: &str) -> Result<String, EnvelopeError> {
    decode_counting(envelope).map(|(text, _)| text)
}

/// As [`decode`], also returning how many bytes were hashed (for the test
/// that holds decoding to linear work).
fn decode_counting(envelope: &str) -> Result<(String, usize), EnvelopeError> {
    if envelope.len() > MAX_ENVELOPE_CHARS {
        return Err(EnvelopeError::TooLarge {
            what: "envelope",
            max: MAX_ENVELOPE_CHARS,
        });
    }
    let body = envelope.strip_prefix(PREFIX).ok_or(EnvelopeError::Prefix)?;
    let body = base45_decode(body)?;
    let mut r = Reader {
        bytes: &body,
        pos: 0,
    };
    let len = r.varint()?;
    let compressed = r.take(len)?;
    let structure = inflate(compressed)?;
    unpack(&structure, body.get(r.pos..).unwrap_or_default())
}

/// A QR code holding the envelope in alphanumeric mode, at the smallest
/// version that fits.
///
/// # Errors
/// [`EnvelopeError::TooLong`] beyond version 40, or for characters outside
/// the alphanumeric set.
pub fn qr_code(envelope: &str, ec: EcLevel) -> Result<QrCode, EnvelopeError> {
    // The most alphanumeric characters any QR code holds (version 40-L).
    if envelope.len() > 4296 {
        return Err(EnvelopeError::TooLong(envelope.len()));
    }
    for v in 1..=40 {
        let mut bits = Bits::new(Version::Normal(v));
        if bits.push_alphanumeric_data(envelope.as_bytes()).is_err()
            || bits.push_terminator(ec).is_err()
        {
            continue;
        }
        if let Ok(code) = QrCode::with_bits(bits, ec) {
            return Ok(code);
        }
    }
    Err(EnvelopeError::TooLong(envelope.len()))
}

fn push_varint(out: &mut Vec<u8>, v: usize) {
    crate::did::push_varint(out, v as u64);
}

/// Most `~` parts an envelope may hold.
const MAX_PARTS: usize = 512;
/// Most `.` segments a part may hold (a compact JWS has 3).
const MAX_SEGMENTS: usize = 8;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<usize, EnvelopeError> {
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

    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Container (inside the deflated structure stream): varint(#parts), then per
/// `~` part varint(#segments), then per `.` segment varint(len << 1 |
/// tokenised), followed, for tokenised JSON, by its text with markers; raw
/// segments' bytes go to the binary stream. Envelope body: varint(deflated
/// length), deflated structure, binary stream.
///
/// Refuses a presentation over [`MAX_DECODED`] bytes before any work: the
/// token tables are searched linearly, and [`decode`] would refuse it.
fn pack(text: &str) -> Result<(Vec<u8>, Vec<u8>), EnvelopeError> {
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
fn unpack(structure: &[u8], binary: &[u8]) -> Result<(String, usize), EnvelopeError> {
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

/// Length of `z6Mk…`: 'z' + base58 of 0xed 0x01 + 32 bytes.
const DID_ID_LEN: usize = 48;

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

fn deflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut c = Compress::new(Compression::best(), false);
    c.set_dictionary(DICTIONARY)
        .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
    let mut out = Vec::with_capacity(input.len() + 64);
    loop {
        let consumed = c.total_in() as usize;
        match c.compress_vec(&input[consumed..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) => out.reserve(out.capacity().max(64)),
            Err(e) => return Err(EnvelopeError::Inflate(e.to_string())),
        }
    }
}

/// Inflates at most [`MAX_DECODED`] bytes: the output buffer never grows
/// beyond one byte over the limit, which tells a stream that is too long
/// from one that just fits.
fn inflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let too_large = || EnvelopeError::TooLarge {
        what: "inflated structure",
        max: MAX_DECODED,
    };
    let cap = MAX_DECODED + 1;
    let mut d = Decompress::new(false);
    d.set_dictionary(DICTIONARY)
        .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
    let mut out = Vec::with_capacity(input.len().saturating_mul(3).clamp(256, cap));
    loop {
        // total_in never exceeds the input given.
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(rest, &mut out, FlushDecompress::Finish)
            .map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
        if out.len() > MAX_DECODED {
            return Err(too_large());
        }
        if status == Status::StreamEnd {
            if usize::try_from(d.total_in()).ok() != Some(input.len()) {
                return Err(EnvelopeError::Inflate(
                    "trailing data after the deflate stream".into(),
                ));
            }
            return Ok(out);
        }
        if out.len() < out.capacity() {
            if (d.total_in(), d.total_out()) == before {
                return Err(EnvelopeError::Inflate("truncated deflate stream".into()));
            }
        } else {
            let grown = out.capacity().saturating_mul(2).min(cap);
            out.reserve_exact(grown - out.len());
        }
    }
}

fn base45_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(2) {
        let (mut n, count) = match *chunk {
            [a, b] => (usize::from(a) * 256 + usize::from(b), 3),
            [a] => (usize::from(a), 2),
            _ => unreachable!("chunks(2) yields 1 or 2 bytes"),
        };
        for _ in 0..count {
            out.push(char::from(BASE45[n % 45]));
            n /= 45;
        }
    }
}

fn base45_decode(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let digits: Vec<usize> = text
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            BASE45
                .iter()
                .position(|&a| a == c)
                .ok_or(EnvelopeError::Base45(i))
        })
        .collect::<Result<_, _>>()?;
    if digits.len() % 3 == 1 {
        return Err(EnvelopeError::Base45(digits.len()));
    }
    let mut out = Vec::with_capacity(digits.len() * 2 / 3);
    for (i, chunk) in digits.chunks(3).enumerate() {
        match *chunk {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                if n > 0xFFFF {
                    return Err(EnvelopeError::Base45(i * 3));
                }
                out.push((n >> 8) as u8);
                out.push(n as u8);
            }
            [c, d] => {
                let n = c + d * 45;
                if n > 0xFF {
                    return Err(EnvelopeError::Base45(i * 3));
                }
                out.push(n as u8);
            }
            _ => return Err(EnvelopeError::Base45(i * 3)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base45_rfc9285_examples() {
        let mut s = String::new();
        base45_encode(b"AB", &mut s);
        assert_eq!(s, "BB8");
        s.clear();
        base45_encode(b"Hello!!", &mut s);
        assert_eq!(s, "%69 VD92EX0");
        s.clear();
        base45_encode(b"base-45", &mut s);
        assert_eq!(s, "UJCLQE7W581");
        assert_eq!(base45_decode("QED8WEX0").unwrap(), b"ietf!");
        assert!(base45_decode("GGW").is_err(), "65536 + is out of range");
        assert!(base45_decode("ZZZZ").is_err(), "length 1 mod 3");
        assert!(base45_decode("aa").is_err(), "lower case");
    }

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
        base45_encode(&body, &mut out);
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
        let (text, hashed) = decode_counting(&craft(&s, &binary)).unwrap();
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
/// As [`encode`].
pub fn stats(presentation: &str) -> Result<EnvelopeStats, EnvelopeError> {
    let (structure, binary) = pack(presentation)?;
    Ok(EnvelopeStats {
        structure: structure.len(),
        deflated: deflate(&structure)?.len(),
        binary: binary.len(),
    })
}

/// A QR code as a PNG image: 8-bit greyscale, `scale` pixels per module (0
/// counts as 1), a quiet zone of `quiet` modules on each side.
///
/// # Errors
/// [`EnvelopeError::ImageTooLarge`] when the image would be wider than
/// [`MAX_PNG_SIDE`] pixels; checked before anything is allocated.
pub fn png(code: &QrCode, scale: u32, quiet: u32) -> Result<Vec<u8>, EnvelopeError> {
    use std::io::Write as _;
    let too_large = || EnvelopeError::ImageTooLarge {
        modules: code.width(),
        quiet,
        scale,
    };
    let modules = u32::try_from(code.width()).map_err(|_| too_large())?;
    let side = quiet
        .checked_mul(2)
        .and_then(|q| q.checked_add(modules))
        .and_then(|m| m.checked_mul(scale.max(1)))
        .filter(|&side| side <= MAX_PNG_SIDE)
        .ok_or_else(too_large)?;
    let colors = code.to_colors();
    let dark = |x: u32, y: u32| -> bool {
        let (mx, my) = (x / scale.max(1), y / scale.max(1));
        if mx < quiet || my < quiet || mx >= quiet + modules || my >= quiet + modules {
            return false;
        }
        // Both below `modules` (≤ 177) here: no overflow.
        let i = ((my - quiet) * modules + (mx - quiet)) as usize;
        colors.get(i) == Some(&qrcode::Color::Dark)
    };
    let mut raw = Vec::with_capacity(((side + 1) * side) as usize);
    for y in 0..side {
        raw.push(0); // filter: none
        raw.extend((0..side).map(|x| if dark(x, y) { 0u8 } else { 255 }));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit, greyscale, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &idat), (b"IEND", &[])] {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(out)
}

/// The structure stream with markers shown as `<XX>` (for tuning the dictionary).
///
/// # Errors
/// As [`encode`].
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

#[cfg(test)]
mod png_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn png_of_a_qr_code() {
        let code = qr_code("VCH1:HELLO", EcLevel::M).unwrap();
        let image = png(&code, 4, 4).unwrap();
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks, checking each CRC.
        let mut at = 8;
        let mut idat = Vec::new();
        let mut side = 0;
        while at < image.len() {
            let len = u32::from_be_bytes(image[at..at + 4].try_into().unwrap()) as usize;
            let kind = &image[at + 4..at + 8];
            let data = &image[at + 8..at + 8 + len];
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            assert_eq!(crc.sum().to_be_bytes(), image[at + 8 + len..at + 12 + len]);
            match kind {
                b"IHDR" => side = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize,
                b"IDAT" => idat.extend_from_slice(data),
                _ => {}
            }
            at += 12 + len;
        }
        assert_eq!(side, (code.width() + 8) * 4);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut raw)
            .unwrap();
        assert_eq!(raw.len(), (side + 1) * side);
        let pixel = |x: usize, y: usize| raw[y * (side + 1) + 1 + x];
        assert_eq!(pixel(0, 0), 255, "quiet zone");
        assert_eq!(pixel(16, 16), 0, "finder pattern corner");
    }
}
