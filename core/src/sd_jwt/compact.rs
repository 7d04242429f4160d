//! The SD-JWT type: its compact and JSON serialisations and its parts.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::b64;
use crate::jws::{parse_json_object, Jws, JwsError};

use super::disclosure::{claims_nesting, Disclosure, DisclosureError};
use super::{MAX_DEPTH, MAX_DISCLOSURES, MAX_SD_JWT_BYTES, SD_ALG, SHA_256};
use crate::jws::MAX_JWS_BYTES;

/// Why a string is not a well-formed SD-JWT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdJwtError {
    /// No `~` at all.
    #[error("an SD-JWT has the form <jwt>~<disclosure>~…~[<kb-jwt>]; no '~' found")]
    NoTilde,
    /// An empty component between two `~`.
    #[error("empty disclosure at position {0}")]
    EmptyDisclosure(usize),
    /// The issuer-signed JWT.
    #[error("issuer-signed JWT: {0}")]
    Jwt(JwsError),
    /// The issuer-signed JWT payload is not a JSON object.
    #[error("issuer-signed JWT payload is not a JSON object: {0}")]
    Payload(String),
    /// An unsupported `_sd_alg`.
    #[error("unsupported _sd_alg {0:?} (only sha-256)")]
    SdAlg(String),
    /// A disclosure that is not base64url of `[salt, name, value]` or `[salt, value]`.
    #[error("disclosure {index} is malformed: {reason}")]
    Disclosure {
        /// Position among the disclosures (0-based).
        index: usize,
        /// What is wrong.
        #[source]
        reason: DisclosureError,
    },
    /// The KB-JWT (last component) is not a compact JWS.
    #[error("KB-JWT: {0}")]
    KbJwt(JwsError),
    /// The same disclosure twice.
    #[error("disclosure {0} appears twice")]
    DuplicateDisclosure(usize),
    /// Longer than [`MAX_SD_JWT_BYTES`].
    #[error("SD-JWT of {len} bytes is longer than the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_DISCLOSURES`] disclosures.
    #[error("SD-JWT has {0} disclosures, more than the limit of {MAX_DISCLOSURES}")]
    TooManyDisclosures(usize),
    /// The payload nests deeper than [`MAX_DEPTH`].
    #[error("issuer-signed JWT payload nests deeper than {MAX_DEPTH} levels")]
    PayloadTooDeep,
}

/// A parsed SD-JWT: issuer-signed JWT, disclosures, optional KB-JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct SdJwt {
    pub(super) jwt: Jws,
    pub(super) payload: Map<String, Value>,
    pub(super) disclosures: Vec<Disclosure>,
    pub(super) kb: Option<Jws>,
    /// SHA-256 of `<jwt>~<d1>~…~<dn>~`, when whoever made this value had
    /// already hashed exactly those bytes (the QR envelope does, to render
    /// the KB-JWT's `sd_hash`).
    pub(super) known_sd_hash: KnownSdHash,
}

/// The SHA-256 behind [`SdJwt::sd_hash`], when it came with the parts.
///
/// It is a function of the other fields (the JWT and disclosure texts,
/// which never change once an `SdJwt` is made; a presentation made from
/// one is a new value without it), so it takes no part in equality: two
/// SD-JWTs of the same text are equal whether or not one carries it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KnownSdHash(pub(super) Option<[u8; 32]>);

impl PartialEq for KnownSdHash {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One `~`-separated part of a compact SD-JWT whose `.`-separated
/// segments are already base64url-decoded: what the QR envelope renders
/// a presentation from ([`SdJwt::from_decoded_parts`]).
#[derive(Debug)]
pub(crate) struct DecodedPart {
    /// The part's text, as it appears in the compact SD-JWT.
    pub(crate) text: String,
    /// Each `.`-separated segment of `text`, decoded: exactly what
    /// base64url-decoding it gives.
    pub(crate) segments: Vec<Vec<u8>>,
    /// SHA-256 of `text`, when it was computed already.
    pub(crate) digest: Option<[u8; 32]>,
}

impl SdJwt {
    /// Parses the compact serialisation `<jwt>~<d1>~…~<dn>~[<kb-jwt>]`.
    ///
    /// # Errors
    /// [`SdJwtError`] naming the part that is malformed.
    /// Bounded before any work: at most [`MAX_SD_JWT_BYTES`], at most
    /// [`MAX_DISCLOSURES`] disclosures, no JSON nesting deeper than
    /// [`MAX_DEPTH`].
    pub fn parse(text: &str) -> Result<Self, SdJwtError> {
        if text.len() > MAX_SD_JWT_BYTES {
            return Err(SdJwtError::TooLarge {
                len: text.len(),
                max: MAX_SD_JWT_BYTES,
            });
        }
        let (jwt, rest) = text.split_once('~').ok_or(SdJwtError::NoTilde)?;
        // Every '~' after the JWT ends one disclosure.
        let count = rest.bytes().filter(|&b| b == b'~').count();
        if count > MAX_DISCLOSURES {
            return Err(SdJwtError::TooManyDisclosures(count));
        }
        let jwt = Jws::parse(jwt).map_err(SdJwtError::Jwt)?;
        let payload =
            parse_json_object(jwt.payload()).map_err(|e| SdJwtError::Payload(e.to_string()))?;
        if claims_nesting(&payload) > MAX_DEPTH {
            return Err(SdJwtError::PayloadTooDeep);
        }
        match payload.get(SD_ALG) {
            None => {}
            Some(Value::String(alg)) if alg == SHA_256 => {}
            Some(other) => return Err(SdJwtError::SdAlg(other.to_string())),
        }
        let mut parts: Vec<&str> = rest.split('~').collect();
        // `rest` ends with the KB-JWT, or is empty after the last '~'.
        let last = parts.pop().unwrap_or_default();
        let kb = if last.is_empty() {
            None
        } else {
            Some(Jws::parse(last).map_err(SdJwtError::KbJwt)?)
        };
        let mut disclosures = Vec::with_capacity(parts.len());
        let mut seen = HashSet::with_capacity(parts.len());
        for (index, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                return Err(SdJwtError::EmptyDisclosure(index));
            }
            if !seen.insert(part) {
                return Err(SdJwtError::DuplicateDisclosure(index));
            }
            disclosures.push(
                Disclosure::parse(part)
                    .map_err(|reason| SdJwtError::Disclosure { index, reason })?,
            );
        }
        Ok(Self {
            jwt,
            payload,
            disclosures,
            kb,
            known_sd_hash: KnownSdHash::default(),
        })
    }

    /// The SD-JWT whose compact text is `parts`' texts joined by `~`,
    /// parsed without decoding them again: the value [`SdJwt::parse`]
    /// gives for that text, or its error, with the same checks in the same
    /// order. `sd_hash` is SHA-256 of `<part 0>~…~<part n-2>~` (every part
    /// but the last, each followed by `~`) when it was computed already.
    ///
    /// Each part's `segments` must be what base64url-decoding its text's
    /// `.`-separated segments gives, and each `digest` and `sd_hash` what
    /// hashing those texts gives: the caller rendered the texts from these
    /// bytes (the QR envelope does), so nothing is decoded or hashed twice.
    ///
    /// # Errors
    /// As [`SdJwt::parse`] for the joined text.
    pub(crate) fn from_decoded_parts(
        parts: Vec<DecodedPart>,
        sd_hash: Option<[u8; 32]>,
    ) -> Result<Self, SdJwtError> {
        let len = parts.iter().map(|p| p.text.len()).sum::<usize>() + parts.len().saturating_sub(1);
        if len > MAX_SD_JWT_BYTES {
            return Err(SdJwtError::TooLarge {
                len,
                max: MAX_SD_JWT_BYTES,
            });
        }
        if parts.len() < 2 {
            return Err(SdJwtError::NoTilde);
        }
        // Every '~' after the JWT ends one disclosure.
        let count = parts.len() - 1;
        if count > MAX_DISCLOSURES {
            return Err(SdJwtError::TooManyDisclosures(count));
        }
        let mut parts = parts.into_iter();
        // Two parts at least, checked above.
        let Some(first) = parts.next() else {
            return Err(SdJwtError::NoTilde);
        };
        let jwt = decoded_jws(first).map_err(SdJwtError::Jwt)?;
        let payload =
            parse_json_object(jwt.payload()).map_err(|e| SdJwtError::Payload(e.to_string()))?;
        if claims_nesting(&payload) > MAX_DEPTH {
            return Err(SdJwtError::PayloadTooDeep);
        }
        match payload.get(SD_ALG) {
            None => {}
            Some(Value::String(alg)) if alg == SHA_256 => {}
            Some(other) => return Err(SdJwtError::SdAlg(other.to_string())),
        }
        let mut rest: Vec<DecodedPart> = parts.collect();
        // The last part is the KB-JWT, or empty after the last '~'.
        let kb = match rest.pop() {
            Some(last) if !last.text.is_empty() => {
                Some(decoded_jws(last).map_err(SdJwtError::KbJwt)?)
            }
            _ => None,
        };
        // The first part that is empty or repeats an earlier one: its error
        // comes when the disclosures before it have parsed, as in `parse`.
        let mut seen = HashSet::with_capacity(rest.len());
        let bad = rest.iter().enumerate().find_map(|(index, part)| {
            if part.text.is_empty() {
                Some((index, SdJwtError::EmptyDisclosure(index)))
            } else if !seen.insert(part.text.as_str()) {
                Some((index, SdJwtError::DuplicateDisclosure(index)))
            } else {
                None
            }
        });
        drop(seen);
        let mut disclosures = Vec::with_capacity(rest.len());
        for (index, part) in rest.into_iter().enumerate() {
            if let Some((at, error)) = &bad {
                if *at == index {
                    return Err(error.clone());
                }
            }
            let disclosure = match part.segments.as_slice() {
                // Base64url has no '.': a disclosure of several segments
                // does not decode, as `Disclosure::parse` finds.
                [json] => Disclosure::from_decoded(part.text, json, part.digest),
                _ => Err(DisclosureError::Shape),
            };
            disclosures
                .push(disclosure.map_err(|reason| SdJwtError::Disclosure { index, reason })?);
        }
        Ok(Self {
            jwt,
            payload,
            disclosures,
            kb,
            known_sd_hash: KnownSdHash(sd_hash),
        })
    }

    /// Reads the JWS JSON Serialization of an SD-JWT (RFC 9901 §8): flattened
    /// (`protected`, `payload`, `signature`) or general (`signatures[0]`), with
    /// `disclosures` and `kb_jwt` in the unprotected `header` or, as the
    /// reference implementation writes them, at the top level. Returns the
    /// equivalent compact SD-JWT, over which `sd_hash` is computed.
    ///
    /// # Errors
    /// [`SdJwtError::Payload`] when the JSON does not have that shape (also:
    /// a repeated member name, `disclosures` or `kb_jwt` both in `header`
    /// and at the top level, a field with a character that base64url, or
    /// for `kb_jwt` a compact JWS, does not have), or any error of
    /// [`SdJwt::parse`] for its parts.
    pub fn from_json_serialization(json: &str) -> Result<Self, SdJwtError> {
        if json.len() > MAX_SD_JWT_BYTES {
            return Err(SdJwtError::TooLarge {
                len: json.len(),
                max: MAX_SD_JWT_BYTES,
            });
        }
        let bad = |what: &str| SdJwtError::Payload(format!("JSON serialization: {what}"));
        let root = parse_json_object(json.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let payload = root
            .get("payload")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no payload"))?;
        let signer = match root.get("signatures") {
            Some(Value::Array(sigs)) => sigs
                .first()
                .and_then(Value::as_object)
                .ok_or_else(|| bad("empty signatures"))?,
            Some(_) => return Err(bad("signatures is not an array")),
            None => &root,
        };
        let protected = signer
            .get("protected")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no protected header"))?;
        let signature = signer
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no signature"))?;
        let header = match signer.get("header") {
            None => None,
            Some(Value::Object(header)) => Some(header),
            Some(_) => return Err(bad("header is not an object")),
        };
        // In the unprotected header or at the top level, not both: two lists
        // of disclosures would leave the choice to the parser.
        let field = |name: &str| match (header.and_then(|h| h.get(name)), root.get(name)) {
            (Some(_), Some(_)) => Err(bad(&format!("{name} both in header and at the top level"))),
            (in_header, at_top) => Ok(in_header.or(at_top)),
        };
        // Each field becomes one component of the compact form: a '~' (or a
        // '.' where the compact form has none) inside one would split it
        // into several, so the compact text would say something else.
        let component = |name: &str, value: &str, dots: bool| {
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dots && b == b'.'))
            {
                Ok(())
            } else {
                Err(bad(&format!("{name} has a character outside base64url")))
            }
        };
        component("protected", protected, false)?;
        component("payload", payload, false)?;
        component("signature", signature, false)?;
        let mut text = format!("{protected}.{payload}.{signature}~");
        if let Some(disclosures) = field("disclosures")? {
            for d in disclosures
                .as_array()
                .ok_or_else(|| bad("disclosures is not an array"))?
            {
                let d = d
                    .as_str()
                    .ok_or_else(|| bad("a disclosure is not a string"))?;
                component("a disclosure", d, false)?;
                text.push_str(d);
                text.push('~');
            }
        }
        if let Some(kb) = field("kb_jwt")? {
            let kb = kb.as_str().ok_or_else(|| bad("kb_jwt is not a string"))?;
            component("kb_jwt", kb, true)?;
            text.push_str(kb);
        }
        Self::parse(&text)
    }

    /// The compact serialisation; exactly the parsed text for a parsed SD-JWT.
    pub fn serialize(&self) -> String {
        let mut out = self.without_kb();
        if let Some(kb) = &self.kb {
            out.push_str(kb.as_str());
        }
        out
    }

    /// Length of `<jwt>~<d1>~…~<dn>~`.
    pub(super) fn compact_len(&self) -> usize {
        self.jwt.as_str().len()
            + self
                .disclosures
                .iter()
                .map(|d| d.encoded.len() + 1)
                .sum::<usize>()
            + 1
    }

    /// `<jwt>~<d1>~…~<dn>~`, the string `sd_hash` covers.
    pub fn without_kb(&self) -> String {
        let len = self.compact_len();
        let mut out = String::with_capacity(len + 300);
        out.push_str(self.jwt.as_str());
        out.push('~');
        for d in &self.disclosures {
            out.push_str(&d.encoded);
            out.push('~');
        }
        out
    }

    /// base64url(SHA-256(`<jwt>~<d1>~…~<dn>~`)): the `sd_hash` of a KB-JWT
    /// over this SD-JWT, hashed part by part without building the string.
    pub(super) fn sd_hash(&self) -> String {
        if let KnownSdHash(Some(known)) = self.known_sd_hash {
            // Every test and fuzz run (debug builds) checks that a hash
            // carried with the parts is the one hashing them gives.
            debug_assert_eq!(
                known,
                self.hash_parts(),
                "a carried sd_hash differs from the parts"
            );
            return b64::encode(known);
        }
        b64::encode(self.hash_parts())
    }

    /// SHA-256 of `<jwt>~<d1>~…~<dn>~`, part by part.
    fn hash_parts(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.jwt.as_str());
        hash.update(b"~");
        for d in &self.disclosures {
            hash.update(&d.encoded);
            hash.update(b"~");
        }
        hash.finalize().into()
    }

    /// The issuer-signed JWT.
    pub fn jwt(&self) -> &Jws {
        &self.jwt
    }
    /// The issuer-signed payload, digests and all.
    pub fn payload(&self) -> &Map<String, Value> {
        &self.payload
    }
    /// The disclosures, in order.
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }
    /// The KB-JWT, if any.
    pub fn kb_jwt(&self) -> Option<&Jws> {
        self.kb.as_ref()
    }
}

/// [`Jws::parse`] of a part whose segments are decoded already.
fn decoded_jws(part: DecodedPart) -> Result<Jws, JwsError> {
    if part.text.len() > MAX_JWS_BYTES {
        return Err(JwsError::TooLarge {
            len: part.text.len(),
            max: MAX_JWS_BYTES,
        });
    }
    let mut segments = part.segments.into_iter();
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(JwsError::Parts(part.text.split('.').count()));
    };
    Jws::from_decoded(part.text, &header, payload, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sd_hash_and_digests_an_envelope_carries_are_the_ones_hashing_gives() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let text = crate::sample::bench_fixture(&mut rng).presentation;
        let parsed = SdJwt::parse(&text).unwrap();
        assert_eq!(parsed.known_sd_hash.0, None);
        let env = crate::envelope::encode(&text).unwrap();
        let decoded = crate::envelope::decode_sd_jwt(&env)
            .unwrap()
            .sd_jwt
            .unwrap();
        // The envelope's KB-JWT names sd_hash by a marker, so the decoder
        // hashed the same bytes: carried, and equal to hashing them.
        assert!(decoded.known_sd_hash.0.is_some());
        assert_eq!(decoded.sd_hash(), parsed.sd_hash());
        assert_eq!(decoded, parsed);
        for (d, p) in decoded.disclosures.iter().zip(&parsed.disclosures) {
            assert_eq!(d.digest(), p.digest());
            assert_eq!(d.digest(), super::super::digest(d.as_str().as_bytes()));
        }
        // A presentation made from it hashes its own parts again.
        let fewer = decoded
            .present(&[crate::path::ClaimPath::parse("/courses/0").unwrap()])
            .unwrap();
        assert_eq!(fewer.known_sd_hash.0, None);
        assert_ne!(fewer.sd_hash(), decoded.sd_hash());
    }
}
