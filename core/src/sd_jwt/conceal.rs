//! Concealing claims behind digests, and issuing an SD-JWT.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};

use crate::b64;
use crate::jws::Jws;
use crate::path::{ClaimPath, Segment};
use crate::vc::Claim;

use super::compact::SdJwt;
use super::disclosure::{
    claims_nesting, digest, digest_bytes, map_sorts_keys, nesting, write_json, write_json_str,
    Disclosure, DIGEST_LEN,
};
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
    /// An object given as [`Claim::Object`] names a member twice.
    #[error("claim name {0:?} is given twice in one object")]
    RepeatedName(String),
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
    let targets = checked_targets(spec)?;
    let mut concealer = Concealer {
        found: vec![false; targets.len()],
        max_decoys: spec.max_decoys,
        disclosures: Vec::with_capacity(targets.len()),
    };
    let all = Targets {
        run: &targets,
        start: 0,
        depth: 0,
    };
    let mut payload = concealer.object(claims, all, rng)?;
    if let Some(missing) = concealer.found.iter().position(|found| !found) {
        return Err(ConcealError::NotFound(targets[missing].clone()));
    }
    payload.insert(SD_ALG.into(), Value::from(SHA_256));
    Ok((payload, concealer.disclosures))
}

/// The targets of `spec`, sorted and without repeats, each checked: not
/// the root, not a claim in [`NOT_DISCLOSABLE`], not deeper than
/// [`MAX_DEPTH`], at most [`MAX_DISCLOSURES`] of them.
fn checked_targets(spec: &Concealment) -> Result<Vec<&ClaimPath>, ConcealError> {
    let mut targets: Vec<&ClaimPath> = spec.paths.iter().collect();
    targets.sort_unstable();
    targets.dedup();
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
    // Sorted: the first target that names no claim is reported whatever
    // order the paths came in, and the targets beneath any claim are one
    // run of the list.
    Ok(targets)
}

/// One step down the claims: an object member or an array element.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// How `segment` sorts against `step`, as [`Segment`]'s `Ord` does (keys
/// before indexes).
fn order(segment: &Segment, step: Step<'_>) -> Ordering {
    match (segment, step) {
        (Segment::Key(key), Step::Key(name)) => key.as_str().cmp(name),
        (Segment::Key(_), Step::Index(_)) => Ordering::Less,
        (Segment::Index(_), Step::Key(_)) => Ordering::Greater,
        (Segment::Index(i), Step::Index(j)) => i.cmp(&j),
    }
}

/// The targets at or beneath one claim `depth` segments down: sorted paths
/// that share a prefix are contiguous, so they are one run of the sorted
/// list, and a child's run is found by two binary searches. The walk never
/// builds a path for a claim it passes.
struct Targets<'t, P> {
    run: &'t [P],
    /// Position of `run` in the whole list (for [`Concealer::found`]).
    start: usize,
    depth: usize,
}

// Copy whatever the targets are: it holds a slice of them.
impl<P> Clone for Targets<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Targets<'_, P> {}

impl<'t, P: Borrow<ClaimPath>> Targets<'t, P> {
    /// The position of the target that is this claim itself, if any: it
    /// sorts before the targets beneath it.
    fn here(&self) -> Option<usize> {
        match self.run.first() {
            Some(t) if t.borrow().segments().len() == self.depth => Some(self.start),
            _ => None,
        }
    }

    /// The targets strictly beneath, each longer than `depth`.
    fn beneath(&self) -> &'t [P] {
        let skip = usize::from(self.here().is_some());
        &self.run[skip..]
    }

    /// Whether some target lies beneath an array element here.
    fn has_indexes(&self) -> bool {
        self.beneath()
            .last()
            .is_some_and(|t| matches!(t.borrow().segments()[self.depth], Segment::Index(_)))
    }

    /// The targets at or beneath the child `step`, if any.
    fn child(&self, step: Step<'_>) -> Option<Targets<'t, P>> {
        let beneath = self.beneath();
        let skipped = self.run.len() - beneath.len();
        let d = self.depth;
        let at = |t: &P| order(&t.borrow().segments()[d], step);
        let lo = beneath.partition_point(|t| at(t) == Ordering::Less);
        let len = beneath[lo..].partition_point(|t| at(t) == Ordering::Equal);
        (len > 0).then(|| Targets {
            run: &beneath[lo..lo + len],
            start: self.start + skipped + lo,
            depth: d + 1,
        })
    }
}

/// Adds a random number (0 to `max`) of decoy digests, each `hash` of 32
/// random bytes, to `digests`. Both concealers draw through this one
/// function, so [`issue_compact`] gives exactly the bytes [`conceal`] does
/// for the same random numbers.
fn add_decoys<T>(
    max: u8,
    rng: &mut (impl RngCore + CryptoRng),
    digests: &mut Vec<T>,
    hash: impl Fn(&[u8]) -> T,
) {
    if max == 0 {
        return;
    }
    let decoys = rng.next_u32() % (u32::from(max) + 1);
    for _ in 0..decoys {
        let mut noise = [0u8; 32];
        rng.fill_bytes(&mut noise);
        digests.push(hash(&noise));
    }
}

struct Concealer {
    /// Which targets the walk has met, by position.
    found: Vec<bool>,
    max_decoys: u8,
    disclosures: Vec<Disclosure>,
}

impl Concealer {
    /// Conceals the targets beneath `value`; only called where there are
    /// some.
    fn value(
        &mut self,
        value: Value,
        targets: Targets<'_, impl Borrow<ClaimPath>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Value, ConcealError> {
        Ok(match value {
            Value::Object(map) => Value::Object(self.object(map, targets, rng)?),
            Value::Array(mut items) if targets.has_indexes() => {
                for (i, slot) in items.iter_mut().enumerate() {
                    let Some(child) = targets.child(Step::Index(i)) else {
                        continue;
                    };
                    let mut item = std::mem::take(slot);
                    if !child.beneath().is_empty() {
                        item = self.value(item, child, rng)?;
                    }
                    *slot = match child.here() {
                        Some(target) => {
                            self.found[target] = true;
                            let d = Disclosure::new(None, item, rng);
                            let mut obj = Map::new();
                            obj.insert(ELLIPSIS.into(), Value::from(d.digest.clone()));
                            self.disclosures.push(d);
                            Value::Object(obj)
                        }
                        None => item,
                    };
                }
                Value::Array(items)
            }
            other => other,
        })
    }

    fn object(
        &mut self,
        map: Map<String, Value>,
        targets: Targets<'_, impl Borrow<ClaimPath>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Map<String, Value>, ConcealError> {
        let mut out = Map::new();
        let mut digests = Vec::new();
        for (key, value) in map {
            if key == SD || key == ELLIPSIS || key == SD_ALG {
                return Err(ConcealError::ReservedName(key));
            }
            let Some(child) = targets.child(Step::Key(&key)) else {
                out.insert(key, value);
                continue;
            };
            let value = if child.beneath().is_empty() {
                value
            } else {
                self.value(value, child, rng)?
            };
            match child.here() {
                Some(target) => {
                    self.found[target] = true;
                    let d = Disclosure::new(Some(key), value, rng);
                    digests.push(d.digest.clone());
                    self.disclosures.push(d);
                }
                None => {
                    out.insert(key, value);
                }
            }
        }
        if !digests.is_empty() {
            add_decoys(self.max_decoys, rng, &mut digests, digest);
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

/// The members of an object in the order a `serde_json::Map` holding them
/// keeps ([`map_sorts_keys`]): sorted by name, or as given. Borrowed when
/// they already are; refuses a name given twice (a map would keep one).
fn map_order<'s, 'v>(
    members: &'s [(&'v str, Claim<'v>)],
) -> Result<Cow<'s, [(&'v str, Claim<'v>)]>, ConcealError> {
    if members.windows(2).all(|w| w[0].0 < w[1].0) {
        return Ok(Cow::Borrowed(members));
    }
    if !map_sorts_keys() && members.len() <= 16 {
        for (i, (name, _)) in members.iter().enumerate() {
            if members[i + 1..].iter().any(|(other, _)| other == name) {
                return Err(ConcealError::RepeatedName((*name).to_owned()));
            }
        }
        return Ok(Cow::Borrowed(members));
    }
    let mut by_name: Vec<(&'v str, Claim<'v>)> = members.to_vec();
    by_name.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = by_name.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ConcealError::RepeatedName(w[0].0.to_owned()));
    }
    Ok(if map_sorts_keys() {
        Cow::Owned(by_name)
    } else {
        Cow::Borrowed(members)
    })
}

/// How many containers nest in `claim` with `level` containers above it
/// (for a claim set given as [`Claim::Object`] at level 0: one more than
/// [`claims_nesting`] of its value), counting no further than one past
/// `MAX_DEPTH + 1`: the recursion stays that shallow whatever the claim.
fn claim_nesting(claim: Claim<'_>, level: usize) -> usize {
    let within = |children: &mut dyn Iterator<Item = Claim<'_>>| {
        if level > MAX_DEPTH {
            return level + 1;
        }
        children
            .map(|c| claim_nesting(c, level + 1))
            .max()
            .unwrap_or(level + 1)
    };
    match claim {
        Claim::Str(_) | Claim::Int(_) => level,
        Claim::Json(v) => level + nesting(v),
        Claim::Object(members) => within(&mut members.iter().map(|(_, c)| *c)),
        Claim::Array(items) => within(&mut items.iter().copied()),
    }
}

/// Appends `claim` as compact JSON: what `serde_json` writes for its
/// [`Claim::to_value`].
fn write_claim(claim: Claim<'_>, out: &mut String) -> Result<(), ConcealError> {
    match claim {
        Claim::Str(s) => write_json_str(s, out),
        Claim::Int(n) => write_int(n, out),
        Claim::Json(v) => write_json(v, out),
        Claim::Object(members) => {
            out.push('{');
            for (i, (name, item)) in map_order(members)?.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(name, out);
                out.push(':');
                write_claim(*item, out)?;
            }
            out.push('}');
        }
        Claim::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_claim(*item, out)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

/// Appends `n` in decimal, as `serde_json` writes an integer.
fn write_int(n: i64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        // A digit: 0–9.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Conceals and signs straight into the compact serialisation: the payload
/// JSON and each disclosure are written as text while the claims are
/// walked, never built as `serde_json` values. The walk is
/// [`Concealer`]'s, step for step (the same checks in the same order, the
/// same random draws), so for the same random numbers the text is
/// byte for byte [`SdJwt::issue`]'s serialisation (a test holds the two
/// together).
struct CompactConcealer<'b> {
    found: &'b mut Vec<bool>,
    max_decoys: u8,
    /// The encoded disclosures so far, each followed by `~` (ASCII only).
    disclosures: &'b mut Vec<u8>,
    /// Spare text buffers for JSON text, reused across disclosures (and
    /// credentials).
    spare: &'b mut Vec<String>,
}

impl CompactConcealer<'_> {
    /// Writes `value` with the targets beneath it concealed; only called
    /// where there are some.
    fn value<'v>(
        &mut self,
        value: Claim<'v>,
        targets: Targets<'_, impl Borrow<ClaimPath>>,
        out: &mut String,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), ConcealError> {
        match value {
            Claim::Json(Value::Object(map)) => {
                let members: Vec<(&str, Claim<'_>)> = map
                    .iter()
                    .map(|(k, v)| (k.as_str(), Claim::Json(v)))
                    .collect();
                self.object(&[], &members, targets, false, out, rng)?;
            }
            Claim::Object(members) => {
                let members = map_order(members)?;
                self.object(&[], &members, targets, false, out, rng)?;
            }
            Claim::Json(Value::Array(items)) if targets.has_indexes() => {
                self.array(items.iter().map(Claim::Json), targets, out, rng)?;
            }
            Claim::Array(items) if targets.has_indexes() => {
                self.array(items.iter().copied(), targets, out, rng)?;
            }
            other => write_claim(other, out)?,
        }
        Ok(())
    }

    /// Writes an array with the targets among (and beneath) its elements
    /// concealed.
    fn array<'v>(
        &mut self,
        items: impl Iterator<Item = Claim<'v>>,
        targets: Targets<'_, impl Borrow<ClaimPath>>,
        out: &mut String,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), ConcealError> {
        out.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let Some(child) = targets.child(Step::Index(i)) else {
                write_claim(item, out)?;
                continue;
            };
            match child.here() {
                Some(target) => {
                    self.found[target] = true;
                    let digest = self.disclose(None, item, child, rng)?;
                    out.push_str("{\"...\":\"");
                    out.push_str(digest_str(&digest));
                    out.push_str("\"}");
                }
                None => self.value(item, child, out, rng)?,
            }
        }
        out.push(']');
        Ok(())
    }

    /// Writes `value` with the targets strictly beneath `child` concealed.
    fn beneath(
        &mut self,
        value: Claim<'_>,
        child: Targets<'_, impl Borrow<ClaimPath>>,
        out: &mut String,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), ConcealError> {
        if child.beneath().is_empty() {
            write_claim(value, out)
        } else {
            self.value(value, child, out, rng)
        }
    }

    /// Writes an object: `head` (members already JSON, never walked), then
    /// `members` (in their map's order: [`map_order`]) with the concealed
    /// ones as digests in `_sd`, then (at the top, `top`) `_sd_alg`; each
    /// member in the order a `serde_json::Map` holding them would keep it
    /// ([`map_sorts_keys`]). Members are walked in their map's order, so
    /// random numbers are drawn as [`Concealer::object`] draws them.
    fn object<'v>(
        &mut self,
        head: &[(&'v str, &'v str)],
        members: &[(&'v str, Claim<'v>)],
        targets: Targets<'_, impl Borrow<ClaimPath>>,
        top: bool,
        out: &mut String,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), ConcealError> {
        let mut body = self.spare.pop().unwrap_or_default();
        body.clear();
        let mut entries: Vec<(&'v str, std::ops::Range<usize>)> =
            Vec::with_capacity(head.len() + members.len() + 2);
        for (key, json) in head {
            let start = body.len();
            body.push_str(json);
            entries.push((key, start..body.len()));
        }
        let mut digests: Vec<[u8; DIGEST_LEN]> = Vec::new();
        for &(key, value) in members {
            if key == SD || key == ELLIPSIS || key == SD_ALG {
                return Err(ConcealError::ReservedName(key.to_owned()));
            }
            let start = body.len();
            match targets.child(Step::Key(key)) {
                None => write_claim(value, &mut body)?,
                Some(child) => match child.here() {
                    Some(target) => {
                        self.found[target] = true;
                        digests.push(self.disclose(Some(key), value, child, rng)?);
                        continue;
                    }
                    None => self.value(value, child, &mut body, rng)?,
                },
            }
            entries.push((key, start..body.len()));
        }
        if !digests.is_empty() {
            add_decoys(self.max_decoys, rng, &mut digests, digest_bytes);
            // Sorted, so the order of digests says nothing about the claims.
            digests.sort_unstable();
            let start = body.len();
            body.push('[');
            for (i, d) in digests.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push('"');
                body.push_str(digest_str(d));
                body.push('"');
            }
            body.push(']');
            entries.push((SD, start..body.len()));
        }
        if top {
            let start = body.len();
            write_json_str(SHA_256, &mut body);
            entries.push((SD_ALG, start..body.len()));
        }
        if map_sorts_keys() {
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        out.reserve(body.len() + 16 * entries.len() + 2);
        out.push('{');
        for (i, (key, range)) in entries.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(key, out);
            out.push(':');
            out.push_str(&body[range]);
        }
        out.push('}');
        self.spare.push(body);
        Ok(())
    }

    /// Makes the disclosure of `value` (its own targets beneath concealed
    /// first, then its salt drawn, as [`Disclosure::new`] after the inner
    /// walk) and appends it; returns its digest.
    fn disclose(
        &mut self,
        name: Option<&str>,
        value: Claim<'_>,
        child: Targets<'_, impl Borrow<ClaimPath>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<[u8; DIGEST_LEN], ConcealError> {
        let mut json = self.spare.pop().unwrap_or_default();
        json.clear();
        if child.beneath().is_empty() {
            // Nothing beneath to conceal (so no random numbers drawn for
            // it): the salt first, the value written after it in place.
            disclosure_head(name, &mut json, rng);
            write_claim(value, &mut json)?;
        } else {
            let mut inner = self.spare.pop().unwrap_or_default();
            inner.clear();
            self.beneath(value, child, &mut inner, rng)?;
            json.reserve(inner.len() + 64);
            disclosure_head(name, &mut json, rng);
            json.push_str(&inner);
            self.spare.push(inner);
        }
        json.push(']');
        let start = self.disclosures.len();
        encode_bytes(json.as_bytes(), self.disclosures);
        let digest = digest_bytes(&self.disclosures[start..]);
        self.disclosures.push(b'~');
        self.spare.push(json);
        Ok(digest)
    }
}

/// Draws a salt and writes a disclosure's JSON up to its value:
/// `["<salt>",` and, for an object member, `"<name>",`.
fn disclosure_head(name: Option<&str>, json: &mut String, rng: &mut (impl RngCore + CryptoRng)) {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    json.push_str("[\"");
    let mut encoded = [0u8; 22];
    b64::encode_slice(&salt, &mut encoded);
    // Base64url: ASCII.
    json.push_str(std::str::from_utf8(&encoded).unwrap_or_default());
    json.push_str("\",");
    if let Some(name) = name {
        write_json_str(name, json);
        json.push(',');
    }
}

/// Appends the unpadded base64url of `bytes` to `out`, encoding straight
/// into its spare room (no intermediate buffer).
fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + b64::encoded_len(bytes.len()), 0);
    b64::encode_slice(bytes, &mut out[start..]);
}

/// A digest's characters (base64url, so ASCII).
fn digest_str(digest: &[u8; DIGEST_LEN]) -> &str {
    std::str::from_utf8(digest).unwrap_or_default()
}

/// A [`Concealment`] checked, its paths sorted and without repeats: made
/// once for the credentials of one shape (a batch issues thousands with
/// the same paths), then used for each ([`crate::vc::issue_planned`]),
/// rather than checking and sorting the paths again for every one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcealPlan {
    /// The paths, sorted, each once, each checked.
    targets: Vec<ClaimPath>,
    max_decoys: u8,
}

impl ConcealPlan {
    /// Checks and sorts `spec`'s paths as issuing does.
    ///
    /// # Errors
    /// [`ConcealError::TooMany`], [`ConcealError::Root`],
    /// [`ConcealError::NotDisclosable`], or [`ConcealError::NotFound`] for
    /// a path deeper than [`MAX_DEPTH`]: what issuing with `spec` refuses
    /// whatever the claims.
    pub fn new(spec: &Concealment) -> Result<Self, ConcealError> {
        let targets = checked_targets(spec)?.into_iter().cloned().collect();
        Ok(Self {
            targets,
            max_decoys: spec.max_decoys,
        })
    }

    /// The paths to conceal, sorted, each once.
    pub fn paths(&self) -> &[ClaimPath] {
        &self.targets
    }
}

/// Buffers one issuing thread keeps from credential to credential, so
/// that issuing one allocates (almost) nothing: the payload, the
/// disclosures and their JSON are written into these, emptied each time
/// ([`crate::vc::issue_planned`]). They hold the last credential's
/// claims in the clear, so their `Debug` shows only their sizes.
#[derive(Default)]
pub struct IssueBuffers {
    /// Which targets the walk has met.
    found: Vec<bool>,
    /// The encoded disclosures, each followed by `~`.
    disclosures: Vec<u8>,
    /// Spare text for JSON being written.
    spare: Vec<String>,
    /// The payload JSON.
    payload: String,
    /// The profile's members of the payload, as JSON text (filled by
    /// [`crate::vc`]).
    pub(crate) head: String,
    /// The issuer's `kid`, and the base64url JWT header for it (with the
    /// `typ` it was made for): one issuer's, made once.
    header: Option<(String, String, String)>,
}

impl std::fmt::Debug for IssueBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueBuffers")
            .field("payload_bytes", &self.payload.len())
            .field("disclosure_bytes", &self.disclosures.len())
            .finish_non_exhaustive()
    }
}

/// The base64url JWT header for `typ` and `kid` kept in `cached`, made
/// there when it is another's (or none yet).
fn cached_header<'c>(
    cached: &'c mut Option<(String, String, String)>,
    typ: &str,
    kid: &str,
) -> &'c str {
    let fresh = match cached {
        Some((t, k, _)) => t != typ || k != kid,
        None => true,
    };
    if fresh {
        let mut header = String::with_capacity(128 + kid.len());
        Jws::eddsa_header(Some(typ), Some(kid), &mut header);
        *cached = Some((typ.to_owned(), kid.to_owned(), header));
    }
    cached.as_ref().map_or("", |(_, _, h)| h)
}

/// Issues an SD-JWT as its compact serialisation `<jwt>~<d1>~…~<dn>~`,
/// written as text: the payload holds the `head` members (name and JSON
/// text; not walked, so never concealed), the members of `claims` (as
/// inserted into a map: [`Claim::Object`]) with `spec.paths` concealed,
/// `_sd` and `_sd_alg`; signed with EdDSA under header `typ` and `kid`.
/// For the same random numbers, the text is [`SdJwt::issue`]'s (with the
/// `head` members inserted first into its claims) serialised.
///
/// # Errors
/// As [`SdJwt::issue`], and [`ConcealError::RepeatedName`] when an object
/// of `claims` names a member twice.
pub(crate) fn issue_compact(
    head: &[(&str, &str)],
    claims: &[(&str, Claim<'_>)],
    spec: &Concealment,
    typ: &str,
    kid: &str,
    key: &SigningKey,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, ConcealError> {
    let claims = checked_claims(claims)?;
    let targets = checked_targets(spec)?;
    let mut buffers = IssueBuffers::default();
    let mut text = String::new();
    let signing = Signing { typ, kid, key };
    write_compact(
        head,
        &claims,
        &targets,
        spec.max_decoys,
        &signing,
        &mut buffers,
        &mut text,
        rng,
    )?;
    Ok(text)
}

/// As [`issue_compact`], with the paths checked and sorted already
/// (`plan`), written into `out` (emptied first) with `buffers` reused.
/// `Err(plan_error)` for `plan`: that error, after the claims' own checks
/// (as [`issue_compact`] orders them).
///
/// # Errors
/// As [`issue_compact`].
#[allow(clippy::too_many_arguments)] // Each is needed; the buffers are reused.
pub(crate) fn issue_planned(
    head: &[(&str, &str)],
    claims: &[(&str, Claim<'_>)],
    plan: Result<&ConcealPlan, &ConcealError>,
    typ: &str,
    kid: &str,
    key: &SigningKey,
    buffers: &mut IssueBuffers,
    out: &mut String,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), ConcealError> {
    let claims = checked_claims(claims)?;
    let plan = plan.map_err(Clone::clone)?;
    let signing = Signing { typ, kid, key };
    write_compact(
        head,
        &claims,
        &plan.targets,
        plan.max_decoys,
        &signing,
        buffers,
        out,
        rng,
    )
}

/// The claims in their map's order, checked: not nested deeper than
/// [`MAX_DEPTH`], no member named twice.
fn checked_claims<'s, 'v>(
    claims: &'s [(&'v str, Claim<'v>)],
) -> Result<Cow<'s, [(&'v str, Claim<'v>)]>, ConcealError> {
    if claim_nesting(Claim::Object(claims), 0) > MAX_DEPTH + 1 {
        return Err(ConcealError::TooDeep);
    }
    map_order(claims)
}

/// How a compact SD-JWT is signed.
struct Signing<'a> {
    typ: &'a str,
    kid: &'a str,
    key: &'a SigningKey,
}

/// Writes the compact SD-JWT of `claims` (checked: [`checked_claims`])
/// with `targets` (checked and sorted: [`checked_targets`]) concealed
/// into `out`.
#[allow(clippy::too_many_arguments)] // Each is needed; the buffers are reused.
fn write_compact(
    head: &[(&str, &str)],
    claims: &[(&str, Claim<'_>)],
    targets: &[impl Borrow<ClaimPath>],
    max_decoys: u8,
    signing: &Signing<'_>,
    buffers: &mut IssueBuffers,
    out: &mut String,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), ConcealError> {
    buffers.found.clear();
    buffers.found.resize(targets.len(), false);
    buffers.disclosures.clear();
    buffers.disclosures.reserve(256 * targets.len());
    let mut payload = std::mem::take(&mut buffers.payload);
    payload.clear();
    payload.reserve(1024 + 48 * targets.len());
    let mut concealer = CompactConcealer {
        found: &mut buffers.found,
        max_decoys,
        disclosures: &mut buffers.disclosures,
        spare: &mut buffers.spare,
    };
    let all = Targets {
        run: targets,
        start: 0,
        depth: 0,
    };
    let walked = concealer.object(head, claims, all, true, &mut payload, rng);
    let missing = buffers.found.iter().position(|found| !found);
    if let Err(e) = walked {
        buffers.payload = payload;
        return Err(e);
    }
    if let Some(missing) = missing {
        buffers.payload = payload;
        return Err(ConcealError::NotFound(targets[missing].borrow().clone()));
    }
    // Base64url and `~` only: ASCII.
    let disclosures = std::str::from_utf8(&buffers.disclosures).unwrap_or_default();
    let header = cached_header(&mut buffers.header, signing.typ, signing.kid);
    Jws::sign_eddsa_compact_into(
        header,
        payload.as_bytes(),
        signing.key,
        disclosures.len() + 1,
        out,
    );
    buffers.payload = payload;
    out.push('~');
    out.push_str(disclosures);
    if out.len() > MAX_SD_JWT_BYTES {
        return Err(ConcealError::TooLarge {
            len: out.len(),
            max: MAX_SD_JWT_BYTES,
        });
    }
    Ok(())
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
        // A map of JSON values always serialises. The digests (43
        // characters each, quoted) are most of it.
        let mut bytes = Vec::with_capacity(1024 + 48 * disclosures.len());
        serde_json::to_writer(&mut bytes, &payload).unwrap_or_default();
        let jwt = Jws::sign_eddsa_owned(bytes, Some(typ), Some(kid), key);
        let issued = Self {
            jwt,
            payload,
            disclosures,
            kb: None,
            known_sd_hash: super::compact::KnownSdHash::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    fn spec(paths: &[&str]) -> Concealment {
        Concealment {
            paths: paths.iter().map(|p| ClaimPath::parse(p).unwrap()).collect(),
            max_decoys: 0,
        }
    }

    fn run(value: Value, paths: &[&str]) -> Result<(Value, Vec<Disclosure>), ConcealError> {
        conceal(claims(value), &spec(paths), &mut StdRng::seed_from_u64(3))
            .map(|(payload, disclosures)| (Value::Object(payload), disclosures))
    }

    #[test]
    fn walk_follows_the_targets_in_any_order() {
        let value = json!({
            "a": {"b": 1, "c": [10, {"d": 2}, 30]},
            "e": [1, 2],
            "f": "plain",
        });
        let paths = ["/a/c/1/d", "/a", "/e/1", "/a/c/0", "/a/b", "/a/c/1"];
        let (payload, disclosures) = run(value.clone(), &paths).unwrap();
        // Inner disclosures first, in walk order.
        let names: Vec<Option<&str>> = disclosures.iter().map(Disclosure::name).collect();
        assert_eq!(
            names,
            [Some("b"), None, Some("d"), None, Some("a"), None],
            "{disclosures:?}"
        );
        assert_eq!(payload["f"], "plain");
        assert_eq!(payload["e"][0], 1);
        assert!(payload["e"][1][ELLIPSIS].is_string());
        assert_eq!(payload[SD].as_array().unwrap().len(), 1);
        assert!(payload.get("a").is_none());
        // Repeated and reordered paths conceal the same, with the same salts.
        let mut reordered = paths.to_vec();
        reordered.reverse();
        reordered.push("/a/b");
        let again = run(value, &reordered).unwrap();
        assert_eq!(again.0, payload);
        assert_eq!(again.1, disclosures);
    }

    #[test]
    fn fail_paths_that_name_no_claim() {
        let value = json!({"o": {"0": 1}, "l": [{"k": 1}], "s": 5});
        for (path, others) in [
            // An index into an object, a key into an array, below a scalar,
            // past the end of an array.
            ("/o/0", vec!["/s"]),
            ("/l/k", vec![]),
            ("/s/x", vec!["/o"]),
            ("/l/1", vec!["/l/0/k"]),
        ] {
            let mut paths = others.clone();
            paths.push(path);
            assert_eq!(
                run(value.clone(), &paths).unwrap_err(),
                ConcealError::NotFound(ClaimPath::parse(path).unwrap()),
                "{path}"
            );
        }
        // The first missing in path order is named, whatever the order given.
        assert_eq!(
            run(value, &["/z", "/b", "/s"]).unwrap_err(),
            ConcealError::NotFound(ClaimPath::parse("/b").unwrap())
        );
    }

    #[test]
    fn plans_sort_and_check_the_paths_once() {
        let plan = ConcealPlan::new(&spec(&["/b/1", "/a", "/b/0", "/a"])).unwrap();
        let want: Vec<ClaimPath> = ["/a", "/b/0", "/b/1"]
            .iter()
            .map(|p| ClaimPath::parse(p).unwrap())
            .collect();
        assert_eq!(plan.paths(), want);
        // What `conceal` refuses for any claims, the plan refuses.
        let root = Concealment {
            paths: vec![ClaimPath::from_segments(Vec::new())],
            max_decoys: 0,
        };
        for spec in [root, spec(&["/exp"]), spec(&["/a", "/cnf/jwk"])] {
            let want = conceal(Map::new(), &spec, &mut StdRng::seed_from_u64(0)).unwrap_err();
            assert_eq!(ConcealPlan::new(&spec), Err(want), "{spec:?}");
        }
    }

    #[test]
    fn fail_reserved_names_where_the_walk_goes() {
        let value = json!({"a": {"_sd": [], "b": 1}, "c": {"...": 1}});
        assert_eq!(
            run(value.clone(), &["/a/b"]).unwrap_err(),
            ConcealError::ReservedName("_sd".into())
        );
        // An object the walk does not enter is left as it is.
        let (payload, _) = run(value, &["/c"]).unwrap();
        assert_eq!(payload["a"]["_sd"], json!([]));
    }
}
