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
/// Largest presentation an envelope may inflate to.
pub const MAX_DECODED: usize = 64 * 1024;

const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const TOKEN_32: u8 = 0xF5;
const TOKEN_DID: u8 = 0xF6;
const TOKEN_16: u8 = 0xF7;

/// The preset deflate dictionary of format 1: JSON fragments of SD-JWT VC,
/// KB-JWT and Vouch templates, most frequent last. Never change it; a new
/// dictionary needs a new prefix.
pub const DICTIONARY: &[u8] = concat!(
    r#"{"insurer":"policyholder":"policy_number":"cover_type":"sum_insured":"currency":"EUR","#,
    r#"{"employer":"employee":"department":"start_date":"end_date":"#,
    r#""student_name":"student_id":"programme":"degree":"award_date":"gpa":"institution":"#,
    r#"Bachelor of Science","Master of Science","Computer Science","Mathematics","Physics","#,
    r#""term":"2025-S1","term":"2024-S2","credits":6,"credits":5,"grade":"A","grade":"B","#,
    r#"{"code":"title":"Introduction to ","Advanced ","courses":[{"...":"#,
    r#"{"nonce":"aud":"https://","iat":17"sd_hash":"#,
    r#"{"alg":"EdDSA","typ":"kb+jwt"}"#,
    r#""vct":"https://vouch.example/vct/transcript","#,
    r#""status":{"status_list":{"idx":"uri":"https://"/status/"#,
    r#""cnf":{"jwk":{"crv":"Ed25519","kty":"OKP","x":"#,
    r#""exp":17"iat":17"iss":"did:key:"#,
    r#"{"_sd":["_sd_alg":"sha-256""#,
    r#"{"alg":"EdDSA","kid":"did:key:#","typ":"dc+sd-jwt"}"#,
)
.as_bytes();

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
}

/// Encodes a compact SD-JWT (or any `~`/`.`-joined base64url text) as an
/// envelope.
///
/// # Errors
/// [`EnvelopeError::NotBase64`] when a part is not canonical base64url.
pub fn encode(presentation: &str) -> Result<String, EnvelopeError> {
    let container = pack(presentation)?;
    let compressed = deflate(&container)?;
    let mut out = String::with_capacity(PREFIX.len() + compressed.len() * 3 / 2 + 2);
    out.push_str(PREFIX);
    base45_encode(&compressed, &mut out);
    Ok(out)
}

/// Decodes an envelope back to the exact presentation string.
///
/// # Errors
/// [`EnvelopeError`] naming what is wrong; never panics on any input.
pub fn decode(envelope: &str) -> Result<String, EnvelopeError> {
    let body = envelope.strip_prefix(PREFIX).ok_or(EnvelopeError::Prefix)?;
    let compressed = base45_decode(body)?;
    let container = inflate(&compressed)?;
    unpack(&container)
}

/// A QR code holding the envelope in alphanumeric mode, at the smallest
/// version that fits.
///
/// # Errors
/// [`EnvelopeError::TooLong`] beyond version 40, or for characters outside
/// the alphanumeric set.
pub fn qr_code(envelope: &str, ec: EcLevel) -> Result<QrCode, EnvelopeError> {
    for v in 1..=40 {
        let mut bits = Bits::new(Version::Normal(v));
        if bits.push_alphanumeric_data(envelope.as_bytes()).is_err() || bits.push_terminator(ec).is_err() {
            continue;
        }
        if let Ok(code) = QrCode::with_bits(bits, ec) {
            return Ok(code);
        }
    }
    Err(EnvelopeError::TooLong(envelope.len()))
}

fn push_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<usize, EnvelopeError> {
        let mut v = 0usize;
        for i in 0..4 {
            let b = *self.bytes.get(self.pos).ok_or(EnvelopeError::Container("truncated length"))?;
            self.pos += 1;
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

    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(EnvelopeError::Container("truncated part"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
}

/// Container: varint(#parts), then per `~` part varint(#segments), then per
/// `.` segment varint(len << 1 | tokenised) and the bytes.
fn pack(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::with_capacity(text.len());
    let parts: Vec<&str> = text.split('~').collect();
    push_varint(&mut out, parts.len());
    let mut index = 0;
    for part in parts {
        let segments: Vec<&str> = part.split('.').collect();
        push_varint(&mut out, segments.len());
        for segment in segments {
            let bytes = b64::decode(segment).map_err(|_| EnvelopeError::NotBase64(index))?;
            index += 1;
            match tokenise(&bytes) {
                Some(t) => {
                    push_varint(&mut out, t.len() << 1 | 1);
                    out.extend_from_slice(&t);
                }
                None => {
                    push_varint(&mut out, bytes.len() << 1);
                    out.extend_from_slice(&bytes);
                }
            }
        }
    }
    Ok(out)
}

fn unpack(bytes: &[u8]) -> Result<String, EnvelopeError> {
    let mut r = Reader { bytes, pos: 0 };
    let parts = r.varint()?;
    if parts == 0 {
        return Err(EnvelopeError::Container("no parts"));
    }
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 16);
    for p in 0..parts {
        if p > 0 {
            out.push('~');
        }
        let segments = r.varint()?;
        if segments == 0 {
            return Err(EnvelopeError::Container("part without segments"));
        }
        for s in 0..segments {
            if s > 0 {
                out.push('.');
            }
            let header = r.varint()?;
            let raw = r.take(header >> 1)?;
            if header & 1 == 1 {
                out.push_str(&b64::encode(detokenise(raw)?));
            } else {
                out.push_str(&b64::encode(raw));
            }
            if out.len() > MAX_DECODED {
                return Err(EnvelopeError::Container("presentation too large"));
            }
        }
    }
    if r.pos != bytes.len() {
        return Err(EnvelopeError::Container("trailing bytes"));
    }
    Ok(out)
}

fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Replaces random tokens in JSON text by marker + bytes. `None` when the
/// segment is not JSON text (it would be stored raw).
fn tokenise(bytes: &[u8]) -> Option<Vec<u8>> {
    if !matches!(bytes.first(), Some(b'{' | b'[')) || bytes.iter().any(|&b| b >= TOKEN_32) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if let Some(raw) = quoted_b64::<32>(&bytes[i..], 43) {
                out.push(TOKEN_32);
                out.extend_from_slice(&raw);
                i += 45;
                continue;
            }
            if let Some(raw) = quoted_b64::<16>(&bytes[i..], 22) {
                out.push(TOKEN_16);
                out.extend_from_slice(&raw);
                i += 24;
                continue;
            }
        }
        if bytes[i] == b'z' && i > 0 && matches!(bytes[i - 1], b':' | b'#') {
            if let Some(key) = did_key_id(&bytes[i..]) {
                out.push(TOKEN_DID);
                out.extend_from_slice(&key);
                i += DID_ID_LEN;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(out)
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
    if bytes.get(DID_ID_LEN).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let did = crate::did::DidKey::parse(&format!("did:key:{id}")).ok()?;
    Some(did.verifying_key().to_bytes())
}

fn detokenise(bytes: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::with_capacity(bytes.len() * 3 / 2);
    let mut r = Reader { bytes, pos: 0 };
    while r.pos < bytes.len() {
        let b = bytes[r.pos];
        r.pos += 1;
        match b {
            TOKEN_32 | TOKEN_16 => {
                let raw = r.take(if b == TOKEN_32 { 32 } else { 16 })?;
                out.push(b'"');
                out.extend_from_slice(b64::encode(raw).as_bytes());
                out.push(b'"');
            }
            TOKEN_DID => {
                let raw: [u8; 32] = r.take(32)?.try_into().map_err(|_| EnvelopeError::Container("did:key"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| EnvelopeError::Container("did:key token is not an Ed25519 key"))?;
                let did = crate::did::DidKey::from_public_key(&key);
                out.extend_from_slice(did.method_specific_id().as_bytes());
            }
            0xF8..=0xFF => return Err(EnvelopeError::Container("unknown token")),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn deflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut c = Compress::new(Compression::best(), false);
    c.set_dictionary(DICTIONARY).map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
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

fn inflate(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut d = Decompress::new(false);
    d.set_dictionary(DICTIONARY).map_err(|e| EnvelopeError::Inflate(e.to_string()))?;
    let mut out = Vec::with_capacity(input.len() * 3);
    loop {
        let consumed = d.total_in() as usize;
        let before = (d.total_in(), d.total_out());
        match d.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => {
                if d.total_in() as usize != input.len() {
                    return Err(EnvelopeError::Inflate("trailing data after the deflate stream".into()));
                }
                return Ok(out);
            }
            Ok(_) => {
                if out.len() >= MAX_DECODED {
                    return Err(EnvelopeError::Inflate("inflates beyond the size limit".into()));
                }
                if (d.total_in(), d.total_out()) == before && out.len() < out.capacity() {
                    return Err(EnvelopeError::Inflate("truncated deflate stream".into()));
                }
                out.reserve(out.capacity().max(256));
            }
            Err(e) => return Err(EnvelopeError::Inflate(e.to_string())),
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
        .map(|(i, c)| BASE45.iter().position(|&a| a == c).ok_or(EnvelopeError::Base45(i)))
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
        assert!(matches!(decode("VCH1:000"), Err(_)));
        assert!(matches!(encode("QQ.b=.c"), Err(EnvelopeError::NotBase64(1))));
    }

    #[test]
    fn tokens_survive() {
        let digest = b64::encode([9u8; 32]);
        let salt = b64::encode([7u8; 16]);
        let did = crate::did::DidKey::from_public_key(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let json = format!(r#"{{"_sd":["{digest}"],"s":"{salt}","iss":"{did}","kid":"{}"}}"#, did.verification_method());
        let text = format!("{}.{}.AA~", b64::encode(&json), b64::encode(&json));
        assert_eq!(decode(&encode(&text).unwrap()).unwrap(), text);
        let tokenised = tokenise(json.as_bytes()).unwrap();
        assert!(tokenised.len() < json.len() - 40);
    }
}
