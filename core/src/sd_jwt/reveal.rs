//! Revealing the disclosed claims, and making a presentation.

use std::collections::HashSet;

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};

use crate::jws::{Jws, PRIVATE_TOKEN_START};
use crate::path::{ClaimPath, Segment};

use super::compact::{KnownSdHash, SdJwt};
use super::disclosure::Disclosure;
use super::{ELLIPSIS, KB_JWT_TYP, MAX_DEPTH, NOT_DISCLOSABLE, SD, SD_ALG};

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
    /// A disclosure names `_sd`, `...` or a name of serde_json's own
    /// (`$serde_json::private::…`), or `_sd_alg` appears below the top.
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
    /// The disclosures' digests with their positions, sorted by digest.
    by_digest: Vec<(&'a str, usize)>,
    paths: Vec<Option<ClaimPath>>,
    /// Every digest met so far: a set when checking as the walk goes, else
    /// a list checked for repeats once the walk is done.
    seen: Seen<'a>,
    disclosures: &'a [Disclosure],
    /// Where the walk is: borrowed keys, so descending allocates nothing; a
    /// `ClaimPath` is built only for a disclosure or an error.
    stack: Vec<Step<'a>>,
}

/// The digests a walk has met.
enum Seen<'a> {
    /// Checked for repeats as they come: the first repeat in walk order is
    /// the error.
    Set(HashSet<&'a str>),
    /// Collected, to be sorted and checked once at the end.
    List(Vec<&'a str>),
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
        match &mut self.seen {
            Seen::Set(set) => {
                if !set.insert(digest) {
                    return Err(RevealError::DuplicateDigest(digest.to_owned()));
                }
            }
            Seen::List(list) => list.push(digest),
        }
        let index = self
            .by_digest
            .binary_search_by(|(d, _)| (*d).cmp(digest))
            .ok()
            .map(|at| self.by_digest[at].1);
        // A disclosure met twice is a repeated digest: stop here rather
        // than reveal it again (each disclosure is walked at most once, so
        // the walk stays as bounded as the checked one).
        if let (Seen::List(_), Some(i)) = (&self.seen, index) {
            if self.paths[i].is_some() {
                return Err(RevealError::DuplicateDigest(digest.to_owned()));
            }
        }
        Ok(index)
    }

    fn object(
        &mut self,
        obj: &'a Map<String, Value>,
        top: bool,
    ) -> Result<Map<String, Value>, RevealError> {
        // Room for the plain members (`_sd` and `_sd_alg` are not kept, so
        // about as many claims disclosed from `_sd` fit without regrowing).
        let mut out = Map::with_capacity(obj.len());
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
                // A name of serde_json's own would be read as a number (or
                // raw JSON) by the next serde_json reading of the claims.
                if name == SD || name == ELLIPSIS || name.starts_with(PRIVATE_TOKEN_START) {
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

impl SdJwt {
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
        // The walk first collects the digests it meets and checks them for
        // repeats once, by sorting, instead of hashing each. When that walk
        // fails, or a digest repeats, the walk is made again checking as it
        // goes, so the error is the one met first in walk order.
        if let Ok((revealed, mut digests)) = self.walk(false) {
            digests.sort_unstable();
            if digests.windows(2).all(|pair| pair[0] != pair[1]) {
                return Ok(revealed);
            }
        }
        self.walk(true).map(|(revealed, _)| revealed)
    }

    /// Processes the payload; with `check_as_going`, refuses a repeated
    /// digest where the walk meets it, else returns every digest met.
    fn walk(&self, check_as_going: bool) -> Result<(Revealed, Vec<&str>), RevealError> {
        let mut by_digest: Vec<(&str, usize)> = self
            .disclosures
            .iter()
            .enumerate()
            .map(|(i, d)| (d.digest.as_str(), i))
            .collect();
        // Distinct: SdJwt::parse refuses a repeated disclosure, and
        // distinct disclosures have distinct SHA-256 digests.
        by_digest.sort_unstable();
        let mut r = Revealer {
            by_digest,
            paths: vec![None; self.disclosures.len()],
            seen: if check_as_going {
                Seen::Set(HashSet::new())
            } else {
                Seen::List(Vec::with_capacity(32))
            },
            disclosures: &self.disclosures,
            stack: Vec::with_capacity(8),
        };
        let claims = r.object(&self.payload, true)?;
        let mut paths = Vec::with_capacity(r.paths.len());
        for (i, path) in r.paths.into_iter().enumerate() {
            paths.push(path.ok_or(RevealError::Unreferenced(i))?);
        }
        let digests = match r.seen {
            Seen::List(list) => list,
            Seen::Set(_) => Vec::new(),
        };
        Ok((Revealed { claims, paths }, digests))
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
            known_sd_hash: KnownSdHash::default(),
        })
    }

    /// Adds (or replaces) a KB-JWT signed by the holder key over this
    /// presentation, for `aud` and `nonce`, at time `iat`.
    pub fn bind(mut self, holder: &SigningKey, aud: &str, nonce: &str, iat: i64) -> SdJwt {
        let sd_hash = self.sd_hash();
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
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;

    fn sd_jwt(payload: Value, disclosures: Vec<Disclosure>) -> SdJwt {
        let key = SigningKey::from_bytes(&[9; 32]);
        let Value::Object(payload) = payload else {
            unreachable!("an object literal")
        };
        SdJwt {
            jwt: Jws::sign_eddsa(b"{}", None, None, &key),
            payload,
            disclosures,
            kb: None,
            known_sd_hash: KnownSdHash::default(),
        }
    }

    #[test]
    fn fail_repeated_digest_is_the_first_error_in_walk_order() {
        let mut rng = StdRng::seed_from_u64(4);
        let d = Disclosure::new(Some("x".into()), json!(1), &mut rng);
        // The repeat (under "a") comes before the reserved name (under
        // "b"): the repeat is the error, as when checking as the walk goes.
        let text = sd_jwt(
            json!({"a": {"_sd": [d.digest(), d.digest()]}, "b": {"_sd_alg": "x"}}),
            vec![d.clone()],
        );
        assert_eq!(
            text.reveal().unwrap_err(),
            RevealError::DuplicateDigest(d.digest().to_owned())
        );
        // The other way round, the reserved name.
        let text = sd_jwt(
            json!({"a": {"_sd_alg": "x"}, "b": {"_sd": [d.digest(), d.digest()]}}),
            vec![d.clone()],
        );
        assert!(matches!(
            text.reveal().unwrap_err(),
            RevealError::Reserved { .. }
        ));
        // A repeated digest of no disclosure (a decoy listed twice).
        let decoy = super::super::disclosure::digest(b"decoy");
        let text = sd_jwt(json!({"_sd": [d.digest(), decoy, decoy]}), vec![d]);
        assert_eq!(
            text.reveal().unwrap_err(),
            RevealError::DuplicateDigest(decoy)
        );
    }

    /// A disclosed claim named with a name of serde_json's own (which the
    /// next serde_json reading of the claims would take as a number, or as
    /// raw JSON) is refused as reserved, at the top and below it.
    #[test]
    fn fail_a_disclosed_claim_named_as_serde_json_s_own() {
        let mut rng = StdRng::seed_from_u64(6);
        for name in [
            "$serde_json::private::Number",
            "$serde_json::private::RawValue",
        ] {
            let d = Disclosure::new(Some(name.into()), json!("5"), &mut rng);
            for payload in [
                json!({"_sd": [d.digest()]}),
                json!({"address": {"_sd": [d.digest()]}}),
            ] {
                let text = sd_jwt(payload, vec![d.clone()]);
                assert!(
                    matches!(
                        text.reveal().unwrap_err(),
                        RevealError::Reserved { name: n, .. } if n == name
                    ),
                    "{name}"
                );
            }
        }
        // The same text as a claim's value, or a name that only starts
        // like one, is a claim like any other.
        let value = Disclosure::new(
            Some("n".into()),
            json!("$serde_json::private::Number"),
            &mut rng,
        );
        let near = Disclosure::new(Some("$serde_json::private".into()), json!(1), &mut rng);
        let text = sd_jwt(
            json!({"_sd": [value.digest(), near.digest()]}),
            vec![value, near],
        );
        assert!(text.reveal().is_ok());
    }

    #[test]
    fn fail_disclosure_referenced_from_two_places_is_walked_once() {
        let mut rng = StdRng::seed_from_u64(5);
        let inner = Disclosure::new(None, json!("leaf"), &mut rng);
        let item = json!({ "...": inner.digest() });
        // Each outer element lists the inner disclosure twice; were it
        // revealed each time it is met, n levels would cost 2^n.
        let outer = Disclosure::new(None, json!([item, item]), &mut rng);
        let text = sd_jwt(
            json!({"list": [{"...": outer.digest()}]}),
            vec![outer, inner.clone()],
        );
        assert_eq!(
            text.reveal().unwrap_err(),
            RevealError::DuplicateDigest(inner.digest().to_owned())
        );
    }
}
