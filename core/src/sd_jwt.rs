//! SD-JWT (RFC 9901): issuance with object-property and array-element
//! disclosures, nested and with decoys; presentation by claim path; KB-JWT;
//! strict verification.
//!
//! Disclosures are encoded and decoded with ssi's SD-JWT primitives
//! (`DecodedDisclosure`, `SdAlg`); the tree walks, the presentation selection
//! and every check ssi leaves to the caller (each digest referenced at most
//! once, reserved names, KB-JWT signature, `aud`, `nonce`, `sd_hash`, holder
//! key, times) are here.

use std::collections::{BTreeSet, HashMap, HashSet};

use ed25519_dalek::{Signature, SigningKey};
use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use ssi::claims::sd_jwt::{DecodedDisclosure, DisclosureDescription};

use crate::b64;
use crate::jws::{check_unique_members, parse_json_object, Alg, Jws, JwsError, PublicKey};
use crate::path::{ClaimPath, Segment};
use crate::verdict::{CheckName, Outcome, Verdict, VerifyError};

/// `_sd`: the digests of an object's selectively disclosable properties.
pub const SD: &str = "_sd";
/// `...`: the digest of a selectively disclosable array element.
pub const ELLIPSIS: &str = "...";
/// `_sd_alg`: the digest algorithm.
pub const SD_ALG: &str = "_sd_alg";
/// The only digest algorithm Vouch issues and accepts.
pub const SHA_256: &str = "sha-256";
/// `typ` of a KB-JWT.
pub const KB_JWT_TYP: &str = "kb+jwt";

/// Deepest nesting Vouch accepts. A claim path (object keys and array
/// indexes from the top of the claim set, counted through every disclosure
/// it passes) has at most this many segments, and no JSON value in an SD-JWT
/// (payload, disclosure value) nests more containers than this. Credentials
/// nest 3–5 levels; the bound keeps the recursive walks over claims, and the
/// drop of what they build, far inside a 2 MiB thread stack whatever the
/// input.
pub const MAX_DEPTH: usize = 32;
/// Most disclosures one SD-JWT may carry (issued or parsed).
pub const MAX_DISCLOSURES: usize = 1024;
/// Longest SD-JWT text accepted by [`SdJwt::parse`] and
/// [`SdJwt::from_json_serialization`], in bytes. Everything decoded from it
/// is smaller, and so are the revealed claims: each disclosure is revealed
/// at most once.
pub const MAX_SD_JWT_BYTES: usize = 1024 * 1024;
/// Registered claims whose meaning verification relies on: they must be in
/// the issuer-signed payload itself, never in or beneath a disclosure
/// (SD-JWT VC §3.2.2: `iss`, `nbf`, `exp`, `cnf`, `vct`, `vct#integrity` and
/// `status` must not be selectively disclosed). Otherwise a verifier would
/// take a withheld `exp` or `status` for an absent one. Refused when
/// concealing and when revealing.
pub const NOT_DISCLOSABLE: &[&str] =
    &["iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"];

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
        reason: String,
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

/// A disclosure: a salted claim (`[salt, name, value]`) or array element
/// (`[salt, value]`), with its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    encoded: String,
    digest: String,
    salt: String,
    name: Option<String>,
    value: Value,
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
        let json = match &name {
            Some(name) => serde_json::to_vec(&(&salt, name, &value)),
            None => serde_json::to_vec(&(&salt, &value)),
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
    /// A reason when it is not canonical base64url of a JSON array of a salt
    /// string and a claim (name string and value) or an array element, when
    /// an object in it repeats a member name, or when its value nests deeper
    /// than [`MAX_DEPTH`].
    pub fn parse(encoded: &str) -> Result<Self, String> {
        // ssi decodes with the strict unpadded base64url engine.
        // serde_json (inside ssi) refuses more than 128 levels, so what is
        // built here stays shallow enough to walk and drop; the tighter
        // bound is checked before anything walks it.
        let decoded = DecodedDisclosure::new(encoded).map_err(|e| e.to_string())?;
        // ssi has accepted the text as base64url of JSON; refuse what
        // serde_json silently resolved (last member name wins).
        let json = b64::decode(encoded).map_err(|e| e.to_string())?;
        check_unique_members(&json).map_err(|e| e.to_string())?;
        let disclosure = Self::from_decoded(decoded);
        if nesting(&disclosure.value) > MAX_DEPTH {
            return Err(format!("its value nests deeper than {MAX_DEPTH} levels"));
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
fn nesting(value: &Value) -> usize {
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
fn claims_nesting(claims: &Map<String, Value>) -> usize {
    claims.values().map(nesting).max().unwrap_or(0)
}

/// What the issuer wants concealed, and how many decoys to add.
#[derive(Debug, Clone, Default)]
pub struct Concealment {
    /// Paths of the claims and array elements to make selectively disclosable.
    /// Nested paths are allowed (`/address` and `/address/street`).
    pub paths: Vec<ClaimPath>,
    /// Decoy digests added to each `_sd` array: a random number from 0 to
    /// this (RFC 9901 §4.2.5). 0 adds none.
    pub max_decoys: u8,
}

/// Why claims could not be concealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConcealError {
    /// A path names no claim.
    #[error("no claim at {0} to make selectively disclosable")]
    NotFound(ClaimPath),
    /// A claim uses a name SD-JWT reserves.
    #[error("claim name {0:?} is reserved by SD-JWT")]
    ReservedName(String),
    /// The root cannot be concealed.
    #[error("the whole claim set cannot be concealed")]
    Root,
    /// A claim that must stay in the signed payload ([`NOT_DISCLOSABLE`]),
    /// or one beneath it, was to be concealed.
    #[error("claim {0:?} must not be selectively disclosable")]
    NotDisclosable(String),
    /// The claims nest deeper than [`MAX_DEPTH`].
    #[error("claims nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More than [`MAX_DISCLOSURES`] paths to conceal.
    #[error("{0} claims to conceal, more than the limit of {MAX_DISCLOSURES}")]
    TooMany(usize),
    /// The issued SD-JWT would be longer than [`MAX_SD_JWT_BYTES`], which
    /// every verifier refuses ([`SdJwt::parse`]).
    #[error("the SD-JWT would be {len} bytes, longer than the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Conceals the claims at `spec.paths`; returns the payload (with `_sd_alg`)
/// and the disclosures, inner ones first.
///
/// # Errors
/// [`ConcealError`] when a path names no claim, a claim name is reserved, a
/// claim in [`NOT_DISCLOSABLE`] would be concealed, or the claims or paths
/// exceed [`MAX_DEPTH`] or [`MAX_DISCLOSURES`]. Checked before any work.
pub fn conceal(
    claims: Map<String, Value>,
    spec: &Concealment,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Map<String, Value>, Vec<Disclosure>), ConcealError> {
    if claims_nesting(&claims) > MAX_DEPTH {
        return Err(ConcealError::TooDeep);
    }
    let targets: BTreeSet<&ClaimPath> = spec.paths.iter().collect();
    if targets.len() > MAX_DISCLOSURES {
        return Err(ConcealError::TooMany(targets.len()));
    }
    for target in &targets {
        match target.segments().first() {
            None => return Err(ConcealError::Root),
            Some(Segment::Key(name)) if NOT_DISCLOSABLE.contains(&name.as_str()) => {
                return Err(ConcealError::NotDisclosable(name.clone()));
            }
            // Deeper than any claim: name nothing (and would cost a
            // quadratic ancestor set below).
            Some(_) if target.segments().len() > MAX_DEPTH => {
                return Err(ConcealError::NotFound((*target).clone()));
            }
            Some(_) => {}
        }
    }
    let ancestors = targets
        .iter()
        .flat_map(|t| {
            (0..t.segments().len()).map(|n| ClaimPath::from_segments(t.segments()[..n].to_vec()))
        })
        .collect();
    let mut concealer = Concealer {
        targets,
        ancestors,
        found: BTreeSet::new(),
        max_decoys: spec.max_decoys,
        disclosures: Vec::new(),
    };
    let mut payload = concealer.object(claims, &ClaimPath::root(), rng)?;
    if let Some(missing) = concealer
        .targets
        .iter()
        .find(|t| !concealer.found.contains(**t))
    {
        return Err(ConcealError::NotFound((*missing).clone()));
    }
    payload.insert(SD_ALG.into(), Value::from(SHA_256));
    Ok((payload, concealer.disclosures))
}

struct Concealer<'a> {
    targets: BTreeSet<&'a ClaimPath>,
    /// Strict ancestors of the targets: where the walk must descend.
    ancestors: HashSet<ClaimPath>,
    found: BTreeSet<ClaimPath>,
    max_decoys: u8,
    disclosures: Vec<Disclosure>,
}

impl Concealer<'_> {
    fn value(
        &mut self,
        value: Value,
        path: &ClaimPath,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Value, ConcealError> {
        // Only descend where some target lies beneath.
        if !self.ancestors.contains(path) {
            return Ok(value);
        }
        Ok(match value {
            Value::Object(map) => Value::Object(self.object(map, path, rng)?),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let child = path.child(Segment::Index(i));
                    let item = self.value(item, &child, rng)?;
                    if self.targets.contains(&child) {
                        self.found.insert(child);
                        let d = Disclosure::new(None, item, rng);
                        let mut obj = Map::new();
                        obj.insert(ELLIPSIS.into(), Value::from(d.digest.clone()));
                        self.disclosures.push(d);
                        out.push(Value::Object(obj));
                    } else {
                        out.push(item);
                    }
                }
                Value::Array(out)
            }
            other => other,
        })
    }

    fn object(
        &mut self,
        map: Map<String, Value>,
        path: &ClaimPath,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Map<String, Value>, ConcealError> {
        let mut out = Map::new();
        let mut digests = Vec::new();
        for (key, value) in map {
            if key == SD || key == ELLIPSIS || key == SD_ALG {
                return Err(ConcealError::ReservedName(key));
            }
            let child = path.child(Segment::Key(key.clone()));
            let value = self.value(value, &child, rng)?;
            if self.targets.contains(&child) {
                self.found.insert(child);
                let d = Disclosure::new(Some(key), value, rng);
                digests.push(d.digest.clone());
                self.disclosures.push(d);
            } else {
                out.insert(key, value);
            }
        }
        if !digests.is_empty() {
            if self.max_decoys > 0 {
                let decoys = rng.next_u32() % (u32::from(self.max_decoys) + 1);
                for _ in 0..decoys {
                    let mut noise = [0u8; 32];
                    rng.fill_bytes(&mut noise);
                    digests.push(digest(&noise));
                }
            }
            // Sorted, so the order of digests says nothing about the claims.
            digests.sort_unstable();
            out.insert(
                SD.into(),
                Value::Array(digests.into_iter().map(Value::from).collect()),
            );
        }
        Ok(out)
    }
}

/// A parsed SD-JWT: issuer-signed JWT, disclosures, optional KB-JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct SdJwt {
    jwt: Jws,
    payload: Map<String, Value>,
    disclosures: Vec<Disclosure>,
    kb: Option<Jws>,
}

impl SdJwt {
    /// Issues an SD-JWT: conceals `spec.paths` of `claims`, signs with EdDSA
    /// under header `typ` and `kid`.
    ///
    /// # Errors
    /// [`ConcealError`] as [`conceal`], and [`ConcealError::TooLarge`] when
    /// the result would be longer than [`MAX_SD_JWT_BYTES`] (so that nothing
    /// is issued that [`SdJwt::parse`] would refuse).
    pub fn issue(
        claims: Map<String, Value>,
        spec: &Concealment,
        typ: &str,
        kid: &str,
        key: &SigningKey,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, ConcealError> {
        let (payload, disclosures) = conceal(claims, spec, rng)?;
        // A map of JSON values always serialises.
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let jwt = Jws::sign_eddsa(&bytes, Some(typ), Some(kid), key);
        let issued = Self {
            jwt,
            payload,
            disclosures,
            kb: None,
        };
        let len = issued.compact_len();
        if len > MAX_SD_JWT_BYTES {
            return Err(ConcealError::TooLarge {
                len,
                max: MAX_SD_JWT_BYTES,
            });
        }
        Ok(issued)
    }

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
        let payload = parse_json_object(jwt.payload()).map_err(SdJwtError::Payload)?;
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
        let root = parse_json_object(json.as_bytes()).map_err(|e| bad(&e))?;
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
    fn compact_len(&self) -> usize {
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

    /// Processes the payload with every disclosure here (RFC 9901 §7.1 steps
    /// 3–5): the claims, and the path of each disclosure.
    ///
    /// Claims nest at most [`MAX_DEPTH`] levels, counted through the
    /// disclosures; the walk stops at the first level beyond, before building
    /// it, so nothing deep is ever built (or dropped).
    ///
    /// # Errors
    /// [`RevealError`] when a digest repeats, a disclosure is unreferenced or
    /// of the wrong kind, a name is reserved or collides, a claim in
    /// [`NOT_DISCLOSABLE`] is disclosed, or the claims nest too deep.
    pub fn reveal(&self) -> Result<Revealed, RevealError> {
        let mut r = Revealer {
            by_digest: self
                .disclosures
                .iter()
                .enumerate()
                .map(|(i, d)| (d.digest.as_str(), i))
                .collect(),
            paths: vec![None; self.disclosures.len()],
            seen: HashSet::new(),
            disclosures: &self.disclosures,
            stack: Vec::with_capacity(8),
        };
        let claims = r.object(&self.payload, true)?;
        let mut paths = Vec::with_capacity(r.paths.len());
        for (i, path) in r.paths.into_iter().enumerate() {
            paths.push(path.ok_or(RevealError::Unreferenced(i))?);
        }
        Ok(Revealed { claims, paths })
    }

    /// A presentation disclosing exactly the claims at `paths` (with their
    /// concealed ancestors and everything beneath them), without KB-JWT.
    ///
    /// # Errors
    /// [`PresentError`] when this SD-JWT does not process or a path names no
    /// claim.
    pub fn present(&self, paths: &[ClaimPath]) -> Result<SdJwt, PresentError> {
        let revealed = self.reveal()?;
        for path in paths {
            if !claim_exists(&revealed.claims, path) {
                return Err(PresentError::NoSuchClaim(path.clone()));
            }
        }
        let disclosures = self
            .disclosures
            .iter()
            .zip(&revealed.paths)
            .filter(|(_, dp)| {
                paths
                    .iter()
                    .any(|p| dp.is_prefix_of(p) || p.is_prefix_of(dp))
            })
            .map(|(d, _)| d.clone())
            .collect();
        Ok(SdJwt {
            jwt: self.jwt.clone(),
            payload: self.payload.clone(),
            disclosures,
            kb: None,
        })
    }

    /// Adds (or replaces) a KB-JWT signed by the holder key over this
    /// presentation, for `aud` and `nonce`, at time `iat`.
    pub fn bind(mut self, holder: &SigningKey, aud: &str, nonce: &str, iat: i64) -> SdJwt {
        let sd_hash = digest(self.without_kb().as_bytes());
        let payload =
            serde_json::json!({ "nonce": nonce, "aud": aud, "iat": iat, "sd_hash": sd_hash });
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        self.kb = Some(Jws::sign_eddsa(&bytes, Some(KB_JWT_TYP), None, holder));
        self
    }
}

/// Whether a claim exists at `path` in processed claims (array indexes are the
/// issuer's, which equal the processed ones when every disclosure is present).
fn claim_exists(claims: &Map<String, Value>, path: &ClaimPath) -> bool {
    let mut segments = path.segments().iter();
    let Some(Segment::Key(first)) = segments.next() else {
        return false;
    };
    let Some(mut current) = claims.get(first) else {
        return false;
    };
    for segment in segments {
        current = match (segment, current) {
            (Segment::Key(k), Value::Object(m)) => match m.get(k) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Index(i), Value::Array(a)) => match a.get(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    true
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

/// Processed claims and where each disclosure landed.
#[derive(Debug, Clone, PartialEq)]
pub struct Revealed {
    /// The claims with digests replaced by disclosed values and undisclosed
    /// ones removed; `_sd_alg` removed.
    pub claims: Map<String, Value>,
    /// For each disclosure (in order), the path of the claim it discloses
    /// (array indexes as issued).
    pub paths: Vec<ClaimPath>,
}

/// Why an SD-JWT's disclosures do not process (RFC 9901 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevealError {
    /// A digest occurs twice in the payload and disclosures.
    #[error("digest {0} occurs more than once")]
    DuplicateDigest(String),
    /// A disclosure no digest points at.
    #[error("disclosure {0} is not referenced by any digest")]
    Unreferenced(usize),
    /// `_sd` is not an array of strings.
    #[error("_sd at {0} is not an array of digest strings")]
    SdNotArray(ClaimPath),
    /// A `...` element that is not `{"...": "<digest>"}`.
    #[error("malformed array element digest at {0}")]
    Ellipsis(ClaimPath),
    /// An array-element disclosure referenced from `_sd`, or a claim
    /// disclosure referenced from `...`.
    #[error("disclosure {index} is the wrong kind for {at}")]
    WrongKind {
        /// The disclosure.
        index: usize,
        /// Where it was referenced.
        at: ClaimPath,
    },
    /// A disclosure names `_sd` or `...`, or `_sd_alg` appears below the top.
    #[error("reserved claim name {name:?} at {at}")]
    Reserved {
        /// The name.
        name: String,
        /// Where.
        at: ClaimPath,
    },
    /// A disclosed claim name already exists at that level.
    #[error("claim {0} is both disclosed and plain, or disclosed twice")]
    Collision(ClaimPath),
    /// A claim in [`NOT_DISCLOSABLE`] is disclosed, or has a disclosure
    /// beneath it.
    #[error(
        "disclosure {index} discloses {at}, but {name:?} must be in the issuer-signed payload"
    )]
    NotDisclosable {
        /// The top-level claim.
        name: String,
        /// The disclosure.
        index: usize,
        /// The path it discloses.
        at: ClaimPath,
    },
    /// The claims, counted through the disclosures, nest deeper than
    /// [`MAX_DEPTH`].
    #[error("claims nest deeper than {MAX_DEPTH} levels below {0}")]
    TooDeep(ClaimPath),
}

/// Why a presentation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresentError {
    /// The credential's disclosures do not process.
    #[error("credential does not process: {0}")]
    Reveal(#[from] RevealError),
    /// A requested path names no claim.
    #[error("no claim at {0}")]
    NoSuchClaim(ClaimPath),
}

struct Revealer<'a> {
    by_digest: HashMap<&'a str, usize>,
    paths: Vec<Option<ClaimPath>>,
    seen: HashSet<&'a str>,
    disclosures: &'a [Disclosure],
    /// Where the walk is: borrowed keys, so descending allocates nothing; a
    /// `ClaimPath` is built only for a disclosure or an error.
    stack: Vec<Step<'a>>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Revealer<'a> {
    fn here(&self) -> ClaimPath {
        ClaimPath::from_segments(
            self.stack
                .iter()
                .map(|s| match s {
                    Step::Key(k) => Segment::Key((*k).to_owned()),
                    Step::Index(i) => Segment::Index(*i),
                })
                .collect(),
        )
    }

    /// Descends one level, refusing to go beyond [`MAX_DEPTH`].
    fn enter(&mut self, step: Step<'a>) -> Result<(), RevealError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(RevealError::TooDeep(self.here()));
        }
        self.stack.push(step);
        Ok(())
    }

    /// Records that disclosure `index` lands here, refusing it beneath a
    /// claim that must not be disclosed.
    fn land(&mut self, index: usize) -> Result<(), RevealError> {
        if let Some(Step::Key(name)) = self.stack.first() {
            if NOT_DISCLOSABLE.contains(name) {
                return Err(RevealError::NotDisclosable {
                    name: (*name).to_owned(),
                    index,
                    at: self.here(),
                });
            }
        }
        self.paths[index] = Some(self.here());
        Ok(())
    }

    fn see(&mut self, digest: &'a str) -> Result<Option<usize>, RevealError> {
        if !self.seen.insert(digest) {
            return Err(RevealError::DuplicateDigest(digest.to_owned()));
        }
        Ok(self.by_digest.get(digest).copied())
    }

    fn object(
        &mut self,
        obj: &'a Map<String, Value>,
        top: bool,
    ) -> Result<Map<String, Value>, RevealError> {
        let mut out = Map::new();
        for (key, value) in obj {
            match key.as_str() {
                SD => {}
                SD_ALG if top => {}
                SD_ALG | ELLIPSIS => {
                    return Err(RevealError::Reserved {
                        name: key.clone(),
                        at: self.here(),
                    });
                }
                _ => {
                    self.enter(Step::Key(key))?;
                    let value = self.value(value)?;
                    self.stack.pop();
                    out.insert(key.clone(), value);
                }
            }
        }
        if let Some(sd) = obj.get(SD) {
            let digests = sd
                .as_array()
                .ok_or_else(|| RevealError::SdNotArray(self.here()))?;
            for d in digests {
                let d = d
                    .as_str()
                    .ok_or_else(|| RevealError::SdNotArray(self.here()))?;
                let Some(index) = self.see(d)? else { continue };
                let disclosure: &'a Disclosure = &self.disclosures[index];
                let Some(name) = disclosure.name.as_deref() else {
                    return Err(RevealError::WrongKind {
                        index,
                        at: self.here(),
                    });
                };
                if name == SD || name == ELLIPSIS {
                    return Err(RevealError::Reserved {
                        name: name.to_owned(),
                        at: self.here(),
                    });
                }
                self.enter(Step::Key(name))?;
                if out.contains_key(name) {
                    return Err(RevealError::Collision(self.here()));
                }
                self.land(index)?;
                let value = self.value(&disclosure.value)?;
                self.stack.pop();
                out.insert(name.to_owned(), value);
            }
        }
        Ok(out)
    }

    fn value(&mut self, value: &'a Value) -> Result<Value, RevealError> {
        match value {
            Value::Object(obj) => Ok(Value::Object(self.object(obj, false)?)),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.enter(Step::Index(i))?;
                    match item {
                        Value::Object(obj) if obj.contains_key(ELLIPSIS) => {
                            let (1, Some(Value::String(d))) = (obj.len(), obj.get(ELLIPSIS)) else {
                                return Err(RevealError::Ellipsis(self.here()));
                            };
                            if let Some(index) = self.see(d)? {
                                let disclosure: &'a Disclosure = &self.disclosures[index];
                                if disclosure.name.is_some() {
                                    return Err(RevealError::WrongKind {
                                        index,
                                        at: self.here(),
                                    });
                                }
                                self.land(index)?;
                                out.push(self.value(&disclosure.value)?);
                            }
                        }
                        other => out.push(self.value(other)?),
                    }
                    self.stack.pop();
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }
}

/// What a verifier expects of the KB-JWT.
#[derive(Debug, Clone)]
pub enum KeyBinding {
    /// A KB-JWT must be present, for this audience and nonce, issued no more
    /// than `max_age` seconds ago.
    Required {
        /// Expected `aud`.
        aud: String,
        /// Expected `nonce`.
        nonce: String,
        /// How old the KB-JWT may be, in seconds.
        max_age: u64,
    },
    /// No KB-JWT is expected (a plain SD-JWT); one present is still checked
    /// for signature and `sd_hash`, but not `aud`/`nonce`.
    Optional,
}

/// How to verify an SD-JWT.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Current time, Unix seconds (injected clock).
    pub now: i64,
    /// Clock skew tolerated, seconds.
    pub leeway: u64,
    /// The issuer key; `None` resolves the `kid` as a did:key verification
    /// method, which must belong to `iss`.
    pub issuer_key: Option<PublicKey>,
    /// KB-JWT expectations.
    pub key_binding: KeyBinding,
}

impl VerifyOptions {
    /// Defaults: 60 s leeway, issuer key from the did:key `kid`.
    pub fn new(now: i64, key_binding: KeyBinding) -> Self {
        Self {
            now,
            leeway: 60,
            issuer_key: None,
            key_binding,
        }
    }
}

/// Parses and verifies a compact SD-JWT presentation.
///
/// # Errors
/// [`VerifyError`] when it is malformed or the issuer key cannot be found;
/// every other problem is a failed check in the [`Verdict`].
pub fn verify(text: &str, options: &VerifyOptions) -> Result<Verdict, VerifyError> {
    let sd_jwt = SdJwt::parse(text)?;
    verify_parsed(&sd_jwt, options)
}

/// As [`verify`], on an already parsed SD-JWT.
///
/// # Errors
/// As [`verify`].
pub fn verify_parsed(sd_jwt: &SdJwt, options: &VerifyOptions) -> Result<Verdict, VerifyError> {
    let issuer = sd_jwt
        .payload
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let issuer_key = match &options.issuer_key {
        Some(key) => key.clone(),
        None => PublicKey::Ed25519(*issuer_did_key(sd_jwt, issuer.as_deref())?.verifying_key()),
    };
    let mut verdict = Verdict {
        checks: Vec::with_capacity(8),
        claims: Map::new(),
        issuer,
        vct: None,
        status: None,
    };

    // Holder key and KB-JWT, parsed up front so both signatures can be
    // checked in one batch.
    let holder_key = sd_jwt
        .payload
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .map(PublicKey::from_jwk);
    let kb = sd_jwt.kb.as_ref();

    // Signatures.
    let (issuer_ok, kb_sig_ok) = check_signatures(
        sd_jwt,
        &issuer_key,
        holder_key.as_ref().and_then(|k| k.as_ref().ok()),
    );
    verdict.push(
        CheckName::IssuerSignature,
        if issuer_ok {
            Outcome::Pass
        } else {
            Outcome::Fail("issuer signature does not verify".into())
        },
    );

    // Disclosures, only under a valid issuer signature: the walk over
    // attacker-chosen disclosures is bounded, but need not run at all for a
    // forgery.
    let mut top_level = TopLevel::NotProcessed;
    if issuer_ok {
        match sd_jwt.reveal() {
            Ok(revealed) => {
                top_level = if withholds_top_level_claims(&sd_jwt.payload, &revealed.paths) {
                    TopLevel::Withheld
                } else {
                    TopLevel::AllDisclosed
                };
                verdict.claims = revealed.claims;
                verdict.push(CheckName::Disclosures, Outcome::Pass);
            }
            Err(e) => verdict.push(CheckName::Disclosures, Outcome::Fail(e.to_string())),
        }
    } else {
        verdict.push(
            CheckName::Disclosures,
            Outcome::NotChecked("the issuer signature does not verify".into()),
        );
    }

    // Validity period.
    verdict.push(
        CheckName::Validity,
        check_times(&sd_jwt.payload, &verdict.claims, top_level, options),
    );

    // Holder binding.
    let (binding, aud, nonce) = check_kb(sd_jwt, kb, holder_key.as_ref(), kb_sig_ok, options);
    verdict.push(CheckName::HolderBinding, binding);
    verdict.push(CheckName::Audience, aud);
    verdict.push(CheckName::Nonce, nonce);
    Ok(verdict)
}

fn issuer_did_key(sd_jwt: &SdJwt, iss: Option<&str>) -> Result<crate::did::DidKey, VerifyError> {
    let kid = sd_jwt
        .jwt
        .header_str("kid")
        .ok_or_else(|| VerifyError::IssuerKey("no kid in the JWT header".into()))?;
    let did = crate::did::DidKey::parse_verification_method(kid)
        .or_else(|_| crate::did::DidKey::parse(kid))
        .map_err(|e| VerifyError::IssuerKey(format!("kid {kid:?}: {e}")))?;
    if iss != Some(did.as_str()) {
        return Err(VerifyError::IssuerKey(format!(
            "kid {kid:?} does not belong to iss {iss:?}"
        )));
    }
    Ok(did)
}

/// Checks the issuer signature and, when there is a KB-JWT and a usable
/// holder key, the KB-JWT signature; two Ed25519 signatures go in one batch.
fn check_signatures(
    sd_jwt: &SdJwt,
    issuer: &PublicKey,
    holder: Option<&PublicKey>,
) -> (bool, Option<bool>) {
    let kb = sd_jwt.kb.as_ref();
    if let (PublicKey::Ed25519(ik), Some(PublicKey::Ed25519(hk)), Some(kb)) = (issuer, holder, kb) {
        if sd_jwt.jwt.alg() == Alg::EdDSA
            && kb.alg() == Alg::EdDSA
            && !ik.is_weak()
            && !hk.is_weak()
        {
            if let (Ok(s1), Ok(s2)) = (
                Signature::from_slice(sd_jwt.jwt.signature()),
                Signature::from_slice(kb.signature()),
            ) {
                let messages: [&[u8]; 2] = [sd_jwt.jwt.signing_input(), kb.signing_input()];
                if ed25519_dalek::verify_batch(&messages, &[s1, s2], &[*ik, *hk]).is_ok() {
                    return (true, Some(true));
                }
            }
        }
    }
    let issuer_ok = sd_jwt.jwt.verify(issuer).is_ok();
    let kb_ok = match (kb, holder) {
        (Some(kb), Some(holder)) => Some(kb.verify(holder).is_ok()),
        _ => None,
    };
    (issuer_ok, kb_ok)
}

fn time_claim(payload: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{name} is not an integer NumericDate")),
    }
}

/// What is known about the top-level claims a presentation withholds.
#[derive(Clone, Copy)]
enum TopLevel {
    /// The disclosures were not processed (bad signature or disclosures).
    NotProcessed,
    /// Every top-level digest has its disclosure here: nothing is withheld.
    AllDisclosed,
    /// Some top-level digest has no disclosure here: a withheld claim or a
    /// decoy, which nobody but the issuer can tell apart.
    Withheld,
}

/// Whether some digest in the payload's top-level `_sd` has no disclosure
/// in this presentation. Each digest is referenced at most once (checked by
/// the reveal), so counting the disclosures that landed at the top suffices.
fn withholds_top_level_claims(payload: &Map<String, Value>, paths: &[ClaimPath]) -> bool {
    let digests = payload
        .get(SD)
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let disclosed = paths.iter().filter(|p| p.segments().len() == 1).count();
    disclosed < digests
}

/// `exp` and `nbf` are never selectively disclosable ([`NOT_DISCLOSABLE`]),
/// so they are read from the issuer-signed payload. `iat` may be (RFC 9901
/// §4.1, SD-JWT VC §3.2.2): it is checked from the payload, else from a
/// disclosure; when neither has it and a top-level claim is withheld, it may
/// be the withheld one, and the check says so (`NotChecked`) instead of
/// passing. A credential with no top-level `_sd` and no `iat` has none.
fn check_times(
    payload: &Map<String, Value>,
    disclosed: &Map<String, Value>,
    top_level: TopLevel,
    options: &VerifyOptions,
) -> Outcome {
    let leeway = i64::try_from(options.leeway).unwrap_or(i64::MAX);
    let now = options.now;
    let result = (|| {
        if let Some(exp) = time_claim(payload, "exp")? {
            if now.saturating_sub(leeway) >= exp {
                return Err(format!("expired at {exp} (now {now})"));
            }
        }
        if let Some(nbf) = time_claim(payload, "nbf")? {
            if now.saturating_add(leeway) < nbf {
                return Err(format!("not valid before {nbf} (now {now})"));
            }
        }
        let iat = match time_claim(payload, "iat")? {
            Some(iat) => Some(iat),
            None => time_claim(disclosed, "iat")?,
        };
        if let Some(iat) = iat {
            if now.saturating_add(leeway) < iat {
                return Err(format!("issued in the future at {iat} (now {now})"));
            }
            return Ok(None);
        }
        let withheld = payload
            .get(SD)
            .and_then(Value::as_array)
            .is_some_and(|digests| !digests.is_empty());
        Ok(match (withheld, top_level) {
            (false, _) | (true, TopLevel::AllDisclosed) => None,
            (true, TopLevel::Withheld) => Some(
                "exp and nbf pass; iat is not in the issuer-signed payload and not \
                 disclosed, and may be among the withheld claims, so whether the \
                 credential was issued in the future was not checked",
            ),
            (true, TopLevel::NotProcessed) => Some(
                "exp and nbf pass; iat is not in the issuer-signed payload and the \
                 disclosures were not processed, so iat was not checked",
            ),
        })
    })();
    match result {
        Ok(None) => Outcome::Pass,
        Ok(Some(why)) => Outcome::NotChecked(why.into()),
        Err(e) => Outcome::Fail(e),
    }
}

fn check_kb(
    sd_jwt: &SdJwt,
    kb: Option<&Jws>,
    holder_key: Option<&Result<PublicKey, crate::jws::JwkError>>,
    kb_sig_ok: Option<bool>,
    options: &VerifyOptions,
) -> (Outcome, Outcome, Outcome) {
    let required = matches!(options.key_binding, KeyBinding::Required { .. });
    let not_checked = || Outcome::NotChecked("no key binding expected".into());
    let Some(kb) = kb else {
        return if required {
            let skipped = || Outcome::NotChecked("no KB-JWT".into());
            (Outcome::Fail("no KB-JWT".into()), skipped(), skipped())
        } else {
            (
                Outcome::NotChecked("no KB-JWT".into()),
                not_checked(),
                not_checked(),
            )
        };
    };
    let aud_nonce_fail = || Outcome::NotChecked("the KB-JWT is not valid".into());
    let binding = (|| {
        // The signature itself was checked with the holder key up front.
        match holder_key {
            None => return Err("credential has no cnf.jwk holder key".to_owned()),
            Some(Err(e)) => return Err(format!("cnf.jwk: {e}")),
            Some(Ok(_)) => {}
        }
        if kb.header_str("typ") != Some(KB_JWT_TYP) {
            return Err(format!(
                "KB-JWT typ is {:?}, expected kb+jwt",
                kb.header_str("typ")
            ));
        }
        if kb_sig_ok != Some(true) {
            return Err("KB-JWT signature does not verify with cnf.jwk".into());
        }
        let payload =
            parse_json_object(kb.payload()).map_err(|e| format!("KB-JWT payload: {e}"))?;
        let sd_hash = payload
            .get("sd_hash")
            .and_then(Value::as_str)
            .ok_or("KB-JWT has no sd_hash")?;
        if sd_hash != digest(sd_jwt.without_kb().as_bytes()) {
            return Err("KB-JWT sd_hash does not match this presentation".into());
        }
        let iat = payload
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or("KB-JWT has no integer iat")?;
        let leeway = i64::try_from(options.leeway).unwrap_or(i64::MAX);
        if iat > options.now.saturating_add(leeway) {
            return Err(format!(
                "KB-JWT issued in the future at {iat} (now {})",
                options.now
            ));
        }
        if let KeyBinding::Required { max_age, .. } = &options.key_binding {
            let max_age = i64::try_from(*max_age).unwrap_or(i64::MAX);
            if iat < options.now.saturating_sub(max_age).saturating_sub(leeway) {
                return Err(format!("KB-JWT too old: iat {iat}, now {}", options.now));
            }
        }
        Ok(payload)
    })();
    match (binding, &options.key_binding) {
        (Err(e), _) => (Outcome::Fail(e), aud_nonce_fail(), aud_nonce_fail()),
        (Ok(_), KeyBinding::Optional) => (Outcome::Pass, not_checked(), not_checked()),
        (Ok(payload), KeyBinding::Required { aud, nonce, .. }) => {
            let aud_ok = match payload.get("aud") {
                Some(Value::String(a)) if a == aud => Outcome::Pass,
                other => Outcome::Fail(format!("KB-JWT aud is {}, expected {aud:?}", show(other))),
            };
            let nonce_ok = match payload.get("nonce") {
                Some(Value::String(n)) if n == nonce => Outcome::Pass,
                other => Outcome::Fail(format!(
                    "KB-JWT nonce is {}, expected {nonce:?}",
                    show(other)
                )),
            };
            (Outcome::Pass, aud_ok, nonce_ok)
        }
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "missing".to_owned(), Value::to_string)
}
