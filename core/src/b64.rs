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

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the unpadded base64url of `bytes` to `out`.
pub fn encode_to(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
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
    }

    #[test]
    fn fixed_length() {
        assert!(decode_array::<2>("AAA").is_ok());
        assert!(decode_array::<3>("AAA").is_err());
    }
}
