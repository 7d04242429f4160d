//! Strict base64url without padding (RFC 4648 §5), as JOSE and SD-JWT use it.
//!
//! Strict means canonical: padding, characters outside the URL-safe alphabet and
//! non-zero trailing bits are all rejected, so one byte string has exactly one
//! encoding. The QR envelope relies on this to be lossless, and the mutation
//! test relies on it so that no altered character decodes to the same bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A base64url string that is not canonical unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not canonical base64url: {0}")]
pub struct Base64Error(String);

/// The base64url alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two characters of every 12 bits: one look-up per half of three
/// bytes.
static PAIRS: [[u8; 2]; 4096] = {
    let mut pairs = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        pairs[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    pairs
};

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the unpadded base64url of `bytes` to `out`, encoded a piece at
/// a time on the stack (no buffer allocated).
pub fn encode_to(bytes: impl AsRef<[u8]>, out: &mut String) {
    // 192 three-byte groups: 768 characters.
    const PIECE: usize = 576;
    let bytes = bytes.as_ref();
    out.reserve(encoded_len(bytes.len()));
    let mut room = [0u8; 768];
    for piece in bytes.chunks(PIECE) {
        let room = &mut room[..encoded_len(piece.len())];
        encode_slice(piece, room);
        // Base64url is ASCII.
        out.push_str(std::str::from_utf8(room).unwrap_or_default());
    }
}

/// Writes the unpadded base64url of `bytes` into `room`, which is
/// exactly [`encoded_len`] of it long. The same characters as [`encode`]
/// gives, written without allocating.
///
/// # Panics
/// When `room` is another length: a caller's bug, which would otherwise
/// leave bytes that are not base64url where the encoding was expected.
pub fn encode_slice(bytes: &[u8], room: &mut [u8]) {
    assert_eq!(
        room.len(),
        encoded_len(bytes.len()),
        "encode_slice: the room is not the encoding's length"
    );
    // Six bytes (two groups) at a time while there are, then the last
    // group, then what is left.
    let mut sixes = bytes.chunks_exact(6);
    let mut eights = room.chunks_exact_mut(8);
    for (six, eight) in (&mut sixes).zip(&mut eights) {
        let mut word = [0u8; 8];
        word[..6].copy_from_slice(six);
        let n = u64::from_be_bytes(word);
        let [a, b] = PAIRS[(n >> 52) as usize];
        let [c, d] = PAIRS[((n >> 40) & 0xfff) as usize];
        let [e, f] = PAIRS[((n >> 28) & 0xfff) as usize];
        let [g, h] = PAIRS[((n >> 16) & 0xfff) as usize];
        eight.copy_from_slice(&[a, b, c, d, e, f, g, h]);
    }
    let mut groups = sixes.remainder().chunks_exact(3);
    let mut quads = eights.into_remainder().chunks_exact_mut(4);
    for (group, quad) in (&mut groups).zip(&mut quads) {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        let [a, b] = PAIRS[(n >> 12) as usize];
        let [c, d] = PAIRS[(n & 0xfff) as usize];
        quad.copy_from_slice(&[a, b, c, d]);
    }
    let tail = quads.into_remainder();
    match *groups.remainder() {
        [x] => {
            tail[0] = ALPHABET[usize::from(x >> 2)];
            tail[1] = ALPHABET[usize::from(x & 3) << 4];
        }
        [x, y] => {
            let n = usize::from(x) << 8 | usize::from(y);
            tail[0] = ALPHABET[n >> 10];
            tail[1] = ALPHABET[(n >> 4) & 63];
            tail[2] = ALPHABET[(n & 15) << 2];
        }
        _ => {}
    }
}

/// Length of the unpadded base64url of `len` bytes.
pub fn encoded_len(len: usize) -> usize {
    len / 3 * 4 + [0, 2, 3][len % 3]
}

/// Decodes canonical unpadded base64url.
///
/// # Errors
/// [`Base64Error`] on padding, a character outside `A–Z a–z 0–9 - _`, an
/// impossible length, or non-zero trailing bits.
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    URL_SAFE_NO_PAD
        .decode(text.as_ref())
        .map_err(|e| Base64Error(e.to_string()))
}

/// Decodes canonical unpadded base64url into exactly `N` bytes.
///
/// # Errors
/// As [`decode`], and when the decoded length is not `N`.
pub fn decode_array<const N: usize>(text: impl AsRef<[u8]>) -> Result<[u8; N], Base64Error> {
    let bytes = decode(text)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| Base64Error(format!("expected {N} bytes, found {len}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn rejects_non_canonical() {
        // "QQ" is canonical for [0x41]; "QR" has non-zero trailing bits.
        assert_eq!(decode("QQ").unwrap(), vec![0x41]);
        assert!(decode("QR").is_err());
        assert!(decode("QQ==").is_err(), "padding");
        assert!(decode("Q").is_err(), "impossible length");
        assert!(decode("a+b/").is_err(), "standard alphabet");
        assert!(decode("ab c").is_err(), "whitespace");
    }

    #[test]
    fn encoded_len_and_encode_to() {
        let mut out = String::from("x.");
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(encoded_len(len), encode(&bytes).len());
            out.truncate(2);
            encode_to(&bytes, &mut out);
            assert_eq!(out, format!("x.{}", encode(&bytes)));
        }
        // Longer than one piece on the stack.
        for len in [575, 576, 577, 1152, 1153, 5000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            out.truncate(2);
            encode_to(&bytes, &mut out);
            assert_eq!(out, format!("x.{}", encode(&bytes)), "{len}");
        }
    }

    #[test]
    fn encode_slice_is_encode() {
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 151 + 7) as u8).collect();
            let mut room = vec![b'!'; encoded_len(len)];
            encode_slice(&bytes, &mut room);
            assert_eq!(room, encode(&bytes).as_bytes(), "{len}");
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut room = vec![0; encoded_len(all.len())];
        encode_slice(&all, &mut room);
        assert_eq!(room, encode(&all).as_bytes());
        // Room of another length: a caller's bug, refused loudly, the
        // room left as it is.
        let mut room = [b'!'; 5];
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode_slice(b"abc", &mut room);
        }));
        assert!(refused.is_err());
        assert_eq!(&room, b"!!!!!");
    }

    #[test]
    fn fixed_length() {
        assert!(decode_array::<2>("AAA").is_ok());
        assert!(decode_array::<3>("AAA").is_err());
    }
}
