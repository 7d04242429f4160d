//! `did:key` for Ed25519 keys: generate, parse, resolve offline.
//!
//! A did:key is `did:key:` + multibase base58btc (`z`) of the multicodec
//! `ed25519-pub` (0xed, varint `ed 01`) followed by the 32-byte public key.
//! Parsing is ours, so each malformed input gets a precise error; resolution
//! to a DID document goes through ssi's did:key resolver, and tests check that
//! our strings equal ssi's and the spec's vectors.

use std::fmt;
use std::str::FromStr;

use did_method_key::DIDKey;
use ed25519_dalek::VerifyingKey;
use ssi_dids_core::{resolution, DIDMethodResolver};
use ssi_jwk::JWK;

const PREFIX: &str = "did:key:";
/// Multicodec code of an Ed25519 public key.
pub const ED25519_PUB: u64 = 0xed;
/// Multicodec code of an X25519 public key.
pub const X25519_PUB: u64 = 0xec;
/// Longest string [`DidKey::parse`] looks at. An Ed25519 did:key is 56
/// characters; base58 decoding costs time quadratic in its length, so
/// longer input is refused before decoding.
pub const MAX_DID_LEN: usize = 64;

/// Why a string is not an Ed25519 did:key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidError {
    /// The string does not start with `did:`.
    #[error("not a DID: {0:?} does not start with \"did:\"")]
    NotADid(String),
    /// A DID of another method.
    #[error("unsupported DID method {0:?}: only did:key is supported")]
    UnsupportedMethod(String),
    /// Longer than [`MAX_DID_LEN`].
    #[error("did:key is {0} bytes; an Ed25519 did:key is at most {MAX_DID_LEN}")]
    TooLong(usize),
    /// The method-specific id is empty.
    #[error("empty did:key method-specific id")]
    Empty,
    /// The multibase prefix is not `z` (base58btc).
    #[error("did:key multibase prefix {0:?} is not 'z' (base58btc)")]
    NotBase58Btc(char),
    /// The body is not valid base58btc.
    #[error("did:key is not valid base58btc: {0}")]
    Base58(String),
    /// The multicodec varint is truncated or overlong.
    #[error("did:key has a malformed multicodec varint")]
    Varint,
    /// A key type other than Ed25519.
    #[error("did:key multicodec 0x{0:x} is not ed25519-pub (0xed)")]
    UnsupportedKeyType(u64),
    /// The key is not 32 bytes.
    #[error("did:key Ed25519 key is {0} bytes, expected 32")]
    KeyLength(usize),
    /// The 32 bytes are not a valid Ed25519 point.
    #[error("did:key bytes are not a valid Ed25519 public key")]
    InvalidKey,
    /// A DID URL whose fragment does not name the DID's own key.
    #[error("verification method {0:?} is not the did:key's own key")]
    Fragment(String),
    /// The offline resolver failed (should not happen for a parsed did:key).
    #[error("did:key resolution failed: {0}")]
    Resolution(String),
}

/// An Ed25519 `did:key`. Holds the parsed key, so it cannot be malformed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DidKey {
    did: String,
    key: VerifyingKey,
}

/// The form of a verification method in a resolved DID document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentForm {
    /// `Multikey` with `publicKeyMultibase` (the did:key default).
    Multikey,
    /// `JsonWebKey2020` with `publicKeyJwk`.
    JsonWebKey2020,
}

impl DidKey {
    /// The did:key of an Ed25519 public key.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        let mut bytes = Vec::with_capacity(34);
        push_varint(&mut bytes, ED25519_PUB);
        bytes.extend_from_slice(key.as_bytes());
        let did = format!(
            "{PREFIX}{}",
            multibase::encode(multibase::Base::Base58Btc, bytes)
        );
        Self { did, key: *key }
    }

    /// Parses a did:key (no path, query or fragment).
    ///
    /// # Errors
    /// A [`DidError`] naming what is wrong: not a DID, another method, a
    /// non-`z` multibase, bad base58, another multicodec, wrong length, or
    /// bytes that are not an Ed25519 point.
    pub fn parse(did: &str) -> Result<Self, DidError> {
        if did.len() > MAX_DID_LEN {
            return Err(DidError::TooLong(did.len()));
        }
        let Some(rest) = did.strip_prefix("did:") else {
            return Err(DidError::NotADid(did.to_owned()));
        };
        let Some(id) = rest.strip_prefix("key:") else {
            let method = rest.split(':').next().unwrap_or_default();
            return Err(DidError::UnsupportedMethod(method.to_owned()));
        };
        let mut chars = id.chars();
        let prefix = chars.next().ok_or(DidError::Empty)?;
        if prefix != 'z' {
            return Err(DidError::NotBase58Btc(prefix));
        }
        let bytes = multibase::Base::Base58Btc
            .decode(chars.as_str())
            .map_err(|e| DidError::Base58(e.to_string()))?;
        let (code, key) = read_varint(&bytes).ok_or(DidError::Varint)?;
        if code != ED25519_PUB {
            return Err(DidError::UnsupportedKeyType(code));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| DidError::KeyLength(key.len()))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| DidError::InvalidKey)?;
        // base58btc without leading '1's (the multicodec prefix is not 0) has
        // exactly one encoding per byte string, so `did` is canonical.
        Ok(Self {
            did: did.to_owned(),
            key,
        })
    }

    /// Parses a verification method URL `did:key:z…#z…` whose fragment is the
    /// DID's own method-specific id, as used in a JWS `kid`.
    ///
    /// # Errors
    /// As [`DidKey::parse`], or [`DidError::Fragment`] when the fragment is
    /// missing or names another key.
    pub fn parse_verification_method(url: &str) -> Result<Self, DidError> {
        let (did, fragment) = url
            .split_once('#')
            .ok_or_else(|| DidError::Fragment(url.to_owned()))?;
        let parsed = Self::parse(did)?;
        if fragment != parsed.method_specific_id() {
            return Err(DidError::Fragment(url.to_owned()));
        }
        Ok(parsed)
    }

    /// The DID string.
    pub fn as_str(&self) -> &str {
        &self.did
    }

    /// The multibase part after `did:key:`.
    pub fn method_specific_id(&self) -> &str {
        &self.did[PREFIX.len()..]
    }

    /// `did:key:z…#z…`, the id of its one verification method (the JWS `kid`).
    pub fn verification_method(&self) -> String {
        format!("{}#{}", self.did, self.method_specific_id())
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key as an OKP JWK (`{"kty":"OKP","crv":"Ed25519","x":…}`).
    pub fn jwk(&self) -> JWK {
        JWK::from(self.key)
    }

    /// The X25519 key-agreement key derived from the Ed25519 key (birational
    /// map), as the multibase `z6LS…` string the did:key spec gives.
    pub fn x25519_multibase(&self) -> String {
        let mut bytes = Vec::with_capacity(34);
        push_varint(&mut bytes, X25519_PUB);
        bytes.extend_from_slice(self.key.to_montgomery().as_bytes());
        multibase::encode(multibase::Base::Base58Btc, bytes)
    }

    /// Resolves the DID offline to its DID document (JSON-LD), through ssi's
    /// did:key resolver.
    ///
    /// # Errors
    /// [`DidError::Resolution`] if ssi refuses the DID (not expected for a
    /// parsed did:key) or returns a document that is not JSON.
    pub fn document(&self, form: DocumentForm) -> Result<serde_json::Value, DidError> {
        let mut options = resolution::Options::default();
        options.parameters.public_key_format = Some(
            match form {
                DocumentForm::Multikey => "Multikey",
                DocumentForm::JsonWebKey2020 => "JsonWebKey2020",
            }
            .to_owned(),
        );
        // The did:key resolver does no I/O: its future completes on first poll.
        let output = futures_executor::block_on(
            DIDKey.resolve_method_representation(self.method_specific_id(), options),
        )
        .map_err(|e| DidError::Resolution(e.to_string()))?;
        serde_json::from_slice(&output.document).map_err(|e| DidError::Resolution(e.to_string()))
    }
}

impl FromStr for DidKey {
    type Err = DidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.did)
    }
}

impl fmt::Debug for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidKey({})", self.did)
    }
}

impl serde::Serialize for DidKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.did)
    }
}

impl<'de> serde::Deserialize<'de> for DidKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Appends an unsigned LEB128 varint (multiformats; also the envelope's lengths).
pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an unsigned varint (multiformats: at most 9 bytes, minimal).
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return None; // overlong
            }
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID0: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";

    #[test]
    fn parse_round_trip_and_matches_ssi() {
        let did = DidKey::parse(DID0).unwrap();
        assert_eq!(did.as_str(), DID0);
        assert_eq!(did.to_string().parse::<DidKey>().unwrap(), did);
        let ssi_did = DIDKey::generate(&did.jwk()).unwrap();
        assert_eq!(ssi_did.as_str(), DID0);
    }

    #[test]
    fn overlong_input_is_refused_before_base58_decoding() {
        // Base58 decoding is quadratic in length: refuse before decoding.
        let long = format!("did:key:z{}", "1".repeat(200_000));
        assert_eq!(DidKey::parse(&long), Err(DidError::TooLong(long.len())));
        let ok = DidKey::from_public_key(
            &ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
        );
        assert!(ok.as_str().len() <= MAX_DID_LEN);
        assert_eq!(DidKey::parse(ok.as_str()), Ok(ok));
    }

    #[test]
    fn precise_errors() {
        type Case = (&'static str, fn(&DidError) -> bool);
        let cases: &[Case] = &[
            ("key:z6Mk", |e| matches!(e, DidError::NotADid(_))),
            (
                "did:web:example.com",
                |e| matches!(e, DidError::UnsupportedMethod(m) if m == "web"),
            ),
            ("did:key:", |e| matches!(e, DidError::Empty)),
            ("did:key:u7QEg", |e| {
                matches!(e, DidError::NotBase58Btc('u'))
            }),
            ("did:key:z6Mk0OIl", |e| matches!(e, DidError::Base58(_))),
            // P-256 key (multicodec 0x1200)
            (
                "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
                |e| matches!(e, DidError::UnsupportedKeyType(0x1200)),
            ),
            // X25519 key (0xec)
            (
                "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
                |e| matches!(e, DidError::UnsupportedKeyType(0xec)),
            ),
        ];
        for (input, check) in cases {
            let err = DidKey::parse(input).unwrap_err();
            assert!(check(&err), "{input}: unexpected {err:?}");
        }
    }

    #[test]
    fn short_key_length_is_reported() {
        let mut bytes = vec![0xed, 0x01];
        bytes.extend_from_slice(&[7u8; 31]);
        let did = format!(
            "did:key:{}",
            multibase::encode(multibase::Base::Base58Btc, bytes)
        );
        assert_eq!(DidKey::parse(&did).unwrap_err(), DidError::KeyLength(31));
        let mut bytes = vec![0xed, 0x01];
        bytes.extend_from_slice(&[7u8; 33]);
        let did = format!(
            "did:key:{}",
            multibase::encode(multibase::Base::Base58Btc, bytes)
        );
        assert_eq!(DidKey::parse(&did).unwrap_err(), DidError::KeyLength(33));
    }

    #[test]
    fn verification_method_url() {
        let did = DidKey::parse(DID0).unwrap();
        let vm = did.verification_method();
        assert_eq!(DidKey::parse_verification_method(&vm).unwrap(), did);
        assert!(DidKey::parse_verification_method(DID0).is_err());
        assert!(DidKey::parse_verification_method(&format!("{DID0}#z6Mkother")).is_err());
    }

    #[test]
    fn documents_in_both_forms() {
        let did = DidKey::parse(DID0).unwrap();
        let doc = did.document(DocumentForm::Multikey).unwrap();
        assert_eq!(doc["id"], DID0);
        let vm = &doc["verificationMethod"][0];
        assert_eq!(vm["type"], "Multikey");
        assert_eq!(vm["publicKeyMultibase"], did.method_specific_id());
        let doc = did.document(DocumentForm::JsonWebKey2020).unwrap();
        let vm = &doc["verificationMethod"][0];
        assert_eq!(vm["type"], "JsonWebKey2020");
        assert_eq!(vm["publicKeyJwk"]["crv"], "Ed25519");
        assert_eq!(
            vm["publicKeyJwk"]["x"],
            crate::b64::encode(did.verifying_key().as_bytes())
        );
    }
}
