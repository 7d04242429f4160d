//! Token Status List (draft-ietf-oauth-status-list): a compressed bit array,
//! one entry per credential, and the issuer-signed Status List Token
//! (`typ: statuslist+jwt`) that carries it.

use std::io::{Read as _, Write as _};

use ed25519_dalek::SigningKey;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::b64;
use crate::jws::{Jws, JwsError, PublicKey, SignatureError};

/// `typ` of a Status List Token.
pub const STATUS_LIST_TYP: &str = "statuslist+jwt";
/// Largest decompressed list accepted (2^27 one-bit entries).
pub const MAX_LIST_BYTES: usize = 16 << 20;

/// Status values (draft §7.1).
pub mod status {
    /// The credential is valid.
    pub const VALID: u8 = 0x00;
    /// Revoked, permanently.
    pub const INVALID: u8 = 0x01;
    /// Suspended, may be reinstated (needs 2 or more bits).
    pub const SUSPENDED: u8 = 0x02;
}

/// A credential's pointer into a status list: `status.status_list`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusRef {
    /// Index into the list.
    pub idx: u64,
    /// URI of the Status List Token.
    pub uri: String,
}

/// Why a status list could not be decoded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// `bits` is not 1, 2, 4 or 8.
    #[error("status list bits must be 1, 2, 4 or 8, not {0}")]
    Bits(u64),
    /// `lst` is not base64url.
    #[error("status list lst is not canonical base64url")]
    Base64,
    /// `lst` does not inflate.
    #[error("status list lst is not valid zlib data: {0}")]
    Zlib(String),
    /// The inflated list is too large.
    #[error("status list inflates beyond {MAX_LIST_BYTES} bytes")]
    TooLarge,
    /// An index beyond the list.
    #[error("status index {idx} is outside the list of {len} entries")]
    Index {
        /// The index.
        idx: u64,
        /// Entries in the list.
        len: u64,
    },
    /// A value that does not fit in `bits`.
    #[error("status value {value} does not fit in {bits} bits")]
    Value {
        /// The value.
        value: u8,
        /// Bits per entry.
        bits: u8,
    },
}

/// A status list: `bits` per entry, entry `i` in byte `i*bits/8` counted from
/// the least significant bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

/// The JSON form `{"bits": 1, "lst": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedStatusList {
    /// Bits per entry.
    pub bits: u64,
    /// base64url(zlib(bytes)).
    pub lst: String,
}

impl StatusList {
    /// An all-valid list of at least `len` entries (rounded up to whole bytes).
    ///
    /// # Errors
    /// [`StatusListError::Bits`] for a width other than 1, 2, 4, 8.
    pub fn new(bits: u8, len: u64) -> Result<Self, StatusListError> {
        check_bits(u64::from(bits))?;
        let bits_total = len
            .checked_mul(u64::from(bits))
            .ok_or(StatusListError::TooLarge)?;
        let bytes =
            usize::try_from(bits_total.div_ceil(8)).map_err(|_| StatusListError::TooLarge)?;
        if bytes > MAX_LIST_BYTES {
            return Err(StatusListError::TooLarge);
        }
        Ok(Self {
            bits,
            bytes: vec![0; bytes],
        })
    }

    /// A list from raw bytes.
    ///
    /// # Errors
    /// [`StatusListError::Bits`] for a bad width.
    pub fn from_bytes(bits: u8, bytes: Vec<u8>) -> Result<Self, StatusListError> {
        check_bits(u64::from(bits))?;
        Ok(Self { bits, bytes })
    }

    /// Bits per entry.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64 * 8 / u64::from(self.bits)
    }

    /// True when the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn locate(&self, idx: u64) -> Result<(usize, u32), StatusListError> {
        if idx >= self.len() {
            return Err(StatusListError::Index {
                idx,
                len: self.len(),
            });
        }
        let bit = idx * u64::from(self.bits);
        // idx < len, and len fits a usize-sized Vec.
        Ok(((bit / 8) as usize, (bit % 8) as u32))
    }

    /// The status of entry `idx`.
    ///
    /// # Errors
    /// [`StatusListError::Index`] beyond the list.
    pub fn get(&self, idx: u64) -> Result<u8, StatusListError> {
        let (byte, shift) = self.locate(idx)?;
        let mask = ((1u16 << self.bits) - 1) as u8;
        Ok((self.bytes[byte] >> shift) & mask)
    }

    /// Sets the status of entry `idx`.
    ///
    /// # Errors
    /// [`StatusListError::Index`] beyond the list, [`StatusListError::Value`]
    /// for a value wider than `bits`.
    pub fn set(&mut self, idx: u64, value: u8) -> Result<(), StatusListError> {
        let mask = ((1u16 << self.bits) - 1) as u8;
        if value & !mask != 0 {
            return Err(StatusListError::Value {
                value,
                bits: self.bits,
            });
        }
        let (byte, shift) = self.locate(idx)?;
        self.bytes[byte] = (self.bytes[byte] & !(mask << shift)) | (value << shift);
        Ok(())
    }

    /// The JSON form, zlib at the best compression.
    pub fn encode(&self) -> EncodedStatusList {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let _ = z.write_all(&self.bytes);
        let compressed = z.finish().unwrap_or_default();
        EncodedStatusList {
            bits: u64::from(self.bits),
            lst: b64::encode(compressed),
        }
    }

    /// Decodes the JSON form, refusing lists that inflate past
    /// [`MAX_LIST_BYTES`].
    ///
    /// # Errors
    /// [`StatusListError`] for bad bits, base64url, zlib or size.
    pub fn decode(encoded: &EncodedStatusList) -> Result<Self, StatusListError> {
        let bits = check_bits(encoded.bits)?;
        let compressed = b64::decode(&encoded.lst).map_err(|_| StatusListError::Base64)?;
        let mut bytes = Vec::new();
        ZlibDecoder::new(compressed.as_slice())
            .take(MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StatusListError::Zlib(e.to_string()))?;
        if bytes.len() > MAX_LIST_BYTES {
            return Err(StatusListError::TooLarge);
        }
        Ok(Self { bits, bytes })
    }
}

fn check_bits(bits: u64) -> Result<u8, StatusListError> {
    match bits {
        1 | 2 | 4 | 8 => Ok(bits as u8),
        other => Err(StatusListError::Bits(other)),
    }
}

/// The claims of a Status List Token.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusListClaims {
    /// The list's URI (`sub`), as credentials name it in `status.status_list.uri`.
    pub sub: String,
    /// The issuer (`iss`), when present.
    pub iss: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Expiry, if any.
    pub exp: Option<i64>,
    /// Seconds a relying party may cache the token, if given.
    pub ttl: Option<u64>,
    /// The list.
    pub list: StatusList,
}

/// Why a Status List Token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusTokenError {
    /// Not a JWS.
    #[error("status list token: {0}")]
    Jws(#[from] JwsError),
    /// `typ` is not `statuslist+jwt`.
    #[error("status list token typ is {0:?}, expected statuslist+jwt")]
    Typ(Option<String>),
    /// A claim is missing or mistyped.
    #[error("status list token claim {0}")]
    Claim(String),
    /// The list inside is bad.
    #[error("status list token: {0}")]
    List(#[from] StatusListError),
    /// The signature does not verify.
    #[error("status list token: {0}")]
    Signature(#[from] SignatureError),
}

impl StatusListClaims {
    /// Signs a Status List Token with EdDSA under `kid`.
    pub fn sign(&self, kid: &str, key: &SigningKey) -> Jws {
        let mut payload = Map::new();
        if let Some(iss) = &self.iss {
            payload.insert("iss".into(), Value::from(iss.as_str()));
        }
        payload.insert("sub".into(), Value::from(self.sub.as_str()));
        payload.insert("iat".into(), Value::from(self.iat));
        if let Some(exp) = self.exp {
            payload.insert("exp".into(), Value::from(exp));
        }
        if let Some(ttl) = self.ttl {
            payload.insert("ttl".into(), Value::from(ttl));
        }
        let list = self.list.encode();
        payload.insert(
            "status_list".into(),
            serde_json::json!({ "bits": list.bits, "lst": list.lst }),
        );
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        Jws::sign_eddsa(&bytes, Some(STATUS_LIST_TYP), Some(kid), key)
    }

    /// Parses a Status List Token without checking its signature.
    ///
    /// # Errors
    /// [`StatusTokenError`] for a bad JWS, `typ`, claim or list.
    pub fn parse_unverified(jws: &Jws) -> Result<Self, StatusTokenError> {
        if jws.header_str("typ") != Some(STATUS_LIST_TYP) {
            return Err(StatusTokenError::Typ(
                jws.header_str("typ").map(str::to_owned),
            ));
        }
        // Repeated member names refused: another reader taking the first
        // `status_list` where serde_json takes the last would see other statuses.
        let payload = crate::jws::parse_json_object(jws.payload())
            .map_err(|e| StatusTokenError::Claim(format!("payload: {e}")))?;
        let claim = |name: &str| StatusTokenError::Claim(format!("{name} missing or mistyped"));
        let sub = payload
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| claim("sub"))?
            .to_owned();
        let iat = payload
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| claim("iat"))?;
        let opt_i64 = |name: &str| match payload.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| claim(name)),
        };
        let exp = opt_i64("exp")?;
        let ttl = match payload.get("ttl") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| claim("ttl"))?),
        };
        let iss = match payload.get("iss") {
            None => None,
            Some(v) => Some(v.as_str().ok_or_else(|| claim("iss"))?.to_owned()),
        };
        let encoded: EncodedStatusList = payload
            .get("status_list")
            .cloned()
            .ok_or_else(|| claim("status_list"))
            .and_then(|v| serde_json::from_value(v).map_err(|_| claim("status_list")))?;
        Ok(Self {
            sub,
            iss,
            iat,
            exp,
            ttl,
            list: StatusList::decode(&encoded)?,
        })
    }

    /// Parses a Status List Token and checks its signature with `key`.
    ///
    /// # Errors
    /// As [`StatusListClaims::parse_unverified`], and
    /// [`StatusTokenError::Signature`].
    pub fn verify(text: &str, key: &PublicKey) -> Result<Self, StatusTokenError> {
        let jws = Jws::parse(text)?;
        jws.verify(key)?;
        Self::parse_unverified(&jws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_two_bit() {
        let mut list = StatusList::new(2, 12).unwrap();
        list.set(0, 1).unwrap();
        list.set(1, 2).unwrap();
        list.set(11, 3).unwrap();
        assert_eq!(list.get(0).unwrap(), 1);
        assert_eq!(list.get(1).unwrap(), 2);
        assert_eq!(list.get(2).unwrap(), 0);
        assert_eq!(list.get(11).unwrap(), 3);
        assert!(list.set(3, 4).is_err());
        assert!(list.get(12).is_err());
        let round = StatusList::decode(&list.encode()).unwrap();
        assert_eq!(round, list);
    }

    #[test]
    fn broken_lists() {
        let bad = |bits, lst: &str| {
            StatusList::decode(&EncodedStatusList {
                bits,
                lst: lst.into(),
            })
        };
        assert_eq!(bad(3, "eNrbuRgAAhcBXQ"), Err(StatusListError::Bits(3)));
        assert_eq!(bad(1, "eNrbuRgAAhcBXQ=="), Err(StatusListError::Base64));
        assert!(matches!(bad(1, "AAAA"), Err(StatusListError::Zlib(_))));
    }

    #[test]
    fn a_length_that_overflows_is_too_large_not_empty() {
        // 2^61 entries of 8 bits is 2^64 bits: it used to wrap to 0.
        assert_eq!(StatusList::new(8, 1 << 61), Err(StatusListError::TooLarge));
        assert_eq!(StatusList::new(1, u64::MAX), Err(StatusListError::TooLarge));
    }

    #[test]
    fn zip_bomb_is_refused() {
        let huge = StatusList::from_bytes(1, vec![0; MAX_LIST_BYTES + 1]).unwrap();
        let encoded = huge.encode();
        assert!(encoded.lst.len() < 40_000);
        assert_eq!(StatusList::decode(&encoded), Err(StatusListError::TooLarge));
    }

    #[test]
    fn fail_token_with_a_repeated_member_is_refused() {
        // Two `status_list` members, correctly signed: serde_json alone would
        // read the last (index 0 revoked), a first-wins reader the first.
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut revoked = StatusList::new(1, 8).unwrap();
        revoked.set(0, status::INVALID).unwrap();
        let (valid, revoked) = (StatusList::new(1, 8).unwrap().encode(), revoked.encode());
        let payload = format!(
            r#"{{"sub":"s","iat":1,"status_list":{{"bits":1,"lst":"{}"}},"status_list":{{"bits":1,"lst":"{}"}}}}"#,
            valid.lst, revoked.lst
        );
        let jws = Jws::sign_eddsa(payload.as_bytes(), Some(STATUS_LIST_TYP), Some("kid"), &key);
        let err = StatusListClaims::verify(jws.as_str(), &PublicKey::Ed25519(key.verifying_key()))
            .unwrap_err();
        assert!(
            matches!(&err, StatusTokenError::Claim(m) if m.contains("status_list")),
            "{err}"
        );
    }

    #[test]
    fn token_sign_verify() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut list = StatusList::new(1, 1024).unwrap();
        list.set(42, status::INVALID).unwrap();
        let claims = StatusListClaims {
            sub: "https://registry.example/status/1".into(),
            iss: Some("did:key:z".into()),
            iat: 1_700_000_000,
            exp: None,
            ttl: Some(300),
            list,
        };
        let jws = claims.sign("kid", &key);
        let back = StatusListClaims::verify(jws.as_str(), &PublicKey::Ed25519(key.verifying_key()))
            .unwrap();
        assert_eq!(back, claims);
        let other = PublicKey::Ed25519(SigningKey::from_bytes(&[4u8; 32]).verifying_key());
        assert!(StatusListClaims::verify(jws.as_str(), &other).is_err());
    }
}
