//! Disclosures: salted claims and array elements, their encoding and digest.

use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use ssi::claims::sd_jwt::{DecodeError, DecodedDisclosure, DisclosureDescription};

use crate::b64::{self, Base64Error};
use crate::jws::{check_unique_members, DuplicateMember};

use super::MAX_DEPTH;

/// Why a string is not an encoded disclosure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    /// Not base64url of a JSON array of a salt string and a claim (name
    /// string and value) or of a salt string and an array element.
    #[error(
        "not base64url of a JSON array [salt, name, value] or [salt, value] with string salt and name"
    )]
    Shape,
    /// Base64url of text that is not JSON.
    #[error("not JSON (line {line}, column {column})")]
    Json {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
    },
    /// Not canonical unpadded base64url.
    #[error("{0}")]
    Base64(#[from] Base64Error),
    /// An object in it repeats a member name.
    #[error("{0}")]
    DuplicateMember(#[from] DuplicateMember),
    /// Its value nests deeper than [`MAX_DEPTH`].
    #[error("its value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A disclosure: a salted claim (`[salt, name, value]`) or array element
/// (`[salt, value]`), with its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    pub(super) encoded: String,
    pub(super) digest: String,
    pub(super) salt: String,
    pub(super) name: Option<String>,
    pub(super) value: Value,
}

impl Disclosure {
    /// A new disclosure with a 128-bit random salt.
    ///
    /// The encoding is the compact JSON array `[salt, name, value]` (or
    /// `[salt, value]`), byte for byte what ssi's `DisclosureBuf` produces
    /// (a unit test holds us to that), serialised without cloning the value.
    pub fn new(name: Option<String>, value: Value, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = b64::encode(salt);
        // Serialising strings and a JSON value into a Vec cannot fail.
        let mut json = Vec::with_capacity(256);
        match &name {
            Some(name) => serde_json::to_writer(&mut json, &(&salt, name, &value)),
            None => serde_json::to_writer(&mut json, &(&salt, &value)),
        }
        .unwrap_or_default();
        let encoded = b64::encode(json);
        let digest = digest(encoded.as_bytes());
        Self {
            encoded,
            digest,
            salt,
            name,
            value,
        }
    }

    /// Parses an encoded disclosure.
    ///
    /// # Errors
    /// [`DisclosureError`] when it is not canonical base64url of a JSON
    /// array of a salt string and a claim (name string and value) or an
    /// array element, when an object in it repeats a member name, or when
    /// its value nests deeper than [`MAX_DEPTH`].
    pub fn parse(encoded: &str) -> Result<Self, DisclosureError> {
        // ssi decodes with the strict unpadded base64url engine.
        // serde_json (inside ssi) refuses more than 128 levels, so what is
        // built here stays shallow enough to walk and drop; the tighter
        // bound is checked before anything walks it.
        let decoded = DecodedDisclosure::new(encoded).map_err(|e| match e {
            DecodeError::JsonDeserialization(e) => DisclosureError::Json {
                line: e.line(),
                column: e.column(),
            },
            _ => DisclosureError::Shape,
        })?;
        // ssi has accepted the text as base64url of JSON; refuse what
        // serde_json silently resolved (last member name wins).
        let json = b64::decode(encoded)?;
        check_unique_members(&json)?;
        let disclosure = Self::from_decoded(decoded);
        if nesting(&disclosure.value) > MAX_DEPTH {
            return Err(DisclosureError::TooDeep);
        }
        Ok(disclosure)
    }

    fn from_decoded(decoded: DecodedDisclosure<'_>) -> Self {
        let encoded = decoded.encoded.as_str().to_owned();
        let digest = digest(encoded.as_bytes());
        let (name, value) = match decoded.desc {
            DisclosureDescription::ObjectEntry { key, value } => (Some(key), value),
            DisclosureDescription::ArrayItem(value) => (None, value),
        };
        Self {
            encoded,
            digest,
            salt: decoded.salt,
            name,
            value,
        }
    }

    /// The base64url text as it travels.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }
    /// base64url(SHA-256(encoded)), as it appears in `_sd` or `...`.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }
    /// The claim name, or `None` for an array element.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The claim value (possibly holding digests of nested disclosures).
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// base64url(SHA-256(bytes)).
pub fn digest(bytes: &[u8]) -> String {
    b64::encode(Sha256::digest(bytes))
}

/// How many containers nest in `value` (a scalar is 0, `[]` is 1, `[[1]]`
/// is 2), counted without recursion.
pub(super) fn nesting(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, level)) = pending.pop() {
        match value {
            Value::Array(items) => {
                deepest = deepest.max(level);
                pending.extend(items.iter().map(|v| (v, level + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(level);
                pending.extend(map.values().map(|v| (v, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// How many containers nest beneath the top of a claim set.
pub(super) fn claims_nesting(claims: &Map<String, Value>) -> usize {
    claims.values().map(nesting).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi::claims::sd_jwt::DisclosureBuf;

    #[test]
    fn disclosure_encoding_matches_ssi() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(8);
        let value = serde_json::json!({"code": "CS101", "credits": 6, "nested": [1, "ü", null]});
        let ours = Disclosure::new(Some("course".into()), value.clone(), &mut rng);
        let desc = DisclosureDescription::ObjectEntry {
            key: "course".into(),
            value,
        };
        assert_eq!(
            ours.as_str(),
            DisclosureBuf::encode_from_parts(ours.salt(), &desc).to_string()
        );
        let ours = Disclosure::new(None, serde_json::json!("DE"), &mut rng);
        let desc = DisclosureDescription::ArrayItem(serde_json::json!("DE"));
        assert_eq!(
            ours.as_str(),
            DisclosureBuf::encode_from_parts(ours.salt(), &desc).to_string()
        );
        assert_eq!(Disclosure::parse(ours.as_str()).unwrap(), ours);
    }
}
