//! Concealing claims behind digests, and issuing an SD-JWT.

use std::collections::{BTreeSet, HashSet};

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};

use crate::jws::Jws;
use crate::path::{ClaimPath, Segment};

use super::compact::SdJwt;
use super::disclosure::{claims_nesting, digest, Disclosure};
use super::{
    ELLIPSIS, MAX_DEPTH, MAX_DISCLOSURES, MAX_SD_JWT_BYTES, NOT_DISCLOSABLE, SD, SD_ALG, SHA_256,
};

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
}
