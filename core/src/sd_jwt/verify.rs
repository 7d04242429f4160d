//! Verifying an SD-JWT presentation: signatures, disclosures, times, KB-JWT.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::{Map, Value};

use crate::did::{DidError, DidKey};
use crate::ed25519::{self, Term};
use crate::jws::{check_member_names, parse_json_object, Alg, JsonObjectError, Jws, PublicKey};
use crate::path::ClaimPath;
use crate::verdict::{CheckName, Outcome, Verdict, VerifyError};

use super::compact::SdJwt;
use super::{KB_JWT_TYP, SD};

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
    /// Where the two Ed25519 signatures go when their check is deferred
    /// (`crate::verify::prepare`); `None`: checked at once.
    pub(crate) defer: Option<Deferral>,
}

impl VerifyOptions {
    /// Defaults: 60 s leeway, issuer key from the did:key `kid`.
    pub fn new(now: i64, key_binding: KeyBinding) -> Self {
        Self {
            now,
            leeway: 60,
            issuer_key: None,
            key_binding,
            defer: None,
        }
    }
}

/// A deferred signature check: when an SD-JWT's issuer signature and
/// KB-JWT signature would be checked as one batch, verification takes them
/// as valid, and leaves them here for the caller, which must check them
/// before it uses the verdict ([`Signatures::holds_alone`], or a
/// [`check_batch`] that marks them). Only `crate::verify` makes one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deferral(Arc<OnceLock<Signatures>>);

impl Deferral {
    /// The signatures left here, if verification deferred them.
    pub(crate) fn taken(&self) -> Option<Signatures> {
        self.0.get().cloned()
    }
}

/// The issuer signature and the KB-JWT signature of one presentation,
/// read and ready to be checked in one batch equation with other
/// presentations' (see [`check_batch`]).
///
/// Made only by verification with a deferred signature check
/// (`vouch_core::verify::prepare`), for presentations whose two signatures
/// are Ed25519 with usable keys, an `R` that is a point of large order and
/// a canonical `s`; any other presentation has its signatures checked at
/// once. Cloning shares the set, and the mark [`check_batch`] leaves.
#[derive(Debug, Clone)]
pub struct Signatures(Arc<SignatureSet>);

#[derive(Debug)]
struct SignatureSet {
    terms: [Term; 2],
    /// Set by a [`check_batch`] when an equation holding this set held.
    verified: AtomicBool,
}

impl Signatures {
    /// Whether a [`check_batch`] checked these signatures in an equation
    /// that held (the whole batch, or the part of it they were narrowed
    /// to).
    pub fn verified(&self) -> bool {
        self.0.verified.load(Ordering::Acquire)
    }

    /// Whether the two signatures hold as one batch on their own: exactly
    /// the check an undeferred verification makes first (same terms, same
    /// weights), so its answer is that verification's.
    pub(crate) fn holds_alone(&self) -> bool {
        sets_hold(std::slice::from_ref(self))
    }
}

/// Checks the signatures of every set in `sets` as one Ed25519 batch
/// equation. When it holds, every set is marked [`Signatures::verified`]
/// and `true` is returned. When it does not (some signature in some set is
/// bad), `false` is returned and the bad sets are narrowed down: the
/// halves of the batch are checked as equations of their own, a half that
/// holds has its sets marked, and the other is halved again (a few bad
/// sets among many cost a few equations, not a check of every set alone);
/// when both halves fail, the bad sets are not few, and the narrowing
/// stops. A set left unmarked is checked alone when its presentation is
/// finished.
///
/// The equation is cofactored (as [`crate::ed25519`] explains), so it holds,
/// but for a chance of about 2⁻¹²⁵, exactly when every signature in it
/// satisfies the cofactored Ed25519 equation, which is also exactly when
/// each set's own two-signature batch holds: a set's verdict does not
/// depend on what other sets share the batch (or which part of it).
pub fn check_batch(sets: &[Signatures]) -> bool {
    if sets.is_empty() || !sets_hold(sets) {
        narrow(sets);
        return false;
    }
    mark(sets);
    true
}

/// Marks the sets of a batch that did not hold that hold in a half of it
/// (see [`check_batch`]). The left half is checked first; when it holds,
/// the bad sets are in the right half, which is narrowed without an
/// equation of its own (a set left unmarked is checked alone anyway, so
/// nothing is taken on trust). At most `2 ⌈log₂ n⌉` equations, of at most
/// half the batch each.
fn narrow(mut sets: &[Signatures]) {
    while sets.len() >= 2 {
        let (left, right) = sets.split_at(sets.len() / 2);
        if sets_hold(left) {
            mark(left);
            sets = right;
        } else if sets_hold(right) {
            mark(right);
            sets = left;
        } else {
            return;
        }
    }
}

fn sets_hold(sets: &[Signatures]) -> bool {
    let terms: Vec<&Term> = sets.iter().flat_map(|s| s.0.terms.iter()).collect();
    batch_holds(&terms)
}

fn mark(sets: &[Signatures]) {
    for set in sets {
        set.0.verified.store(true, Ordering::Release);
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
    // Holder key and KB-JWT, parsed up front so both signatures can be
    // checked in one batch.
    let holder_key = sd_jwt
        .payload
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .map(PublicKey::from_jwk);
    let mut verdict = Verdict {
        // Room for every check a full verification makes (`CheckName`
        // has 15), so the ones `crate::verify` adds do not regrow it.
        checks: Vec::with_capacity(15),
        claims: Map::new(),
        issuer,
        vct: None,
        status: None,
        holder_key: holder_key.as_ref().and_then(|k| k.as_ref().ok()).cloned(),
    };
    let kb = sd_jwt.kb.as_ref();

    // Signatures: checked now, or (deferred) taken as valid and left for
    // the caller to check.
    let holder = holder_key.as_ref().and_then(|k| k.as_ref().ok());
    let deferred = options.defer.as_ref().is_some_and(|slot| {
        batch_terms(sd_jwt, &issuer_key, holder).is_some_and(|terms| {
            slot.0
                .set(Signatures(Arc::new(SignatureSet {
                    terms,
                    verified: AtomicBool::new(false),
                })))
                .is_ok()
        })
    });
    let (issuer_ok, kb_sig_ok) = if deferred {
        (true, Some(true))
    } else {
        check_signatures(sd_jwt, &issuer_key, holder)
    };
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

/// Most issuer keys [`issuer_did_key`] keeps.
const KNOWN_ISSUERS: usize = 64;

/// Issuer keys already read from a `kid`, newest last. A verifier meets the
/// same few issuers over and over, and reading a did:key (base58, then the
/// point decompressed) is about 4% of verifying a presentation.
/// The cache only saves work: an entry is exactly what parsing its `kid`
/// gives, and only successful reads are kept.
static ISSUER_KEYS: Mutex<Vec<(String, DidKey)>> = Mutex::new(Vec::new());

/// The did:key of `kid` (a verification method, or a bare did:key).
fn read_kid(kid: &str) -> Result<DidKey, DidError> {
    // A panic elsewhere while holding the lock leaves the list whole
    // (pushes and removes do not panic halfway), so a poisoned lock is
    // used as it is.
    let known = |keys: &Vec<(String, DidKey)>| {
        keys.iter()
            .find(|(k, _)| k == kid)
            .map(|(_, did)| did.clone())
    };
    if let Some(did) = known(&ISSUER_KEYS.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(did);
    }
    let did = DidKey::parse_verification_method(kid).or_else(|_| DidKey::parse(kid))?;
    let mut keys = ISSUER_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if known(&keys).is_none() {
        if keys.len() >= KNOWN_ISSUERS {
            keys.remove(0);
        }
        keys.push((kid.to_owned(), did.clone()));
    }
    Ok(did)
}

fn issuer_did_key(sd_jwt: &SdJwt, iss: Option<&str>) -> Result<DidKey, VerifyError> {
    let kid = sd_jwt
        .jwt
        .header_str("kid")
        .ok_or_else(|| VerifyError::IssuerKey("no kid in the JWT header".into()))?;
    let did = read_kid(kid).map_err(|e| VerifyError::IssuerKey(format!("kid {kid:?}: {e}")))?;
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
    if let Some(terms) = batch_terms(sd_jwt, issuer, holder) {
        if batch_holds(&terms.iter().collect::<Vec<_>>()) {
            return (true, Some(true));
        }
    }
    let kb = sd_jwt.kb.as_ref();
    let issuer_ok = sd_jwt.jwt.verify(issuer).is_ok();
    let kb_ok = match (kb, holder) {
        (Some(kb), Some(holder)) => Some(kb.verify(holder).is_ok()),
        _ => None,
    };
    (issuer_ok, kb_ok)
}

/// The batch terms of the issuer signature and the KB-JWT signature, when
/// both are EdDSA under Ed25519 keys that are not weak, with an `R` that
/// decompresses to a point of large order and a canonical `s`; `None`
/// otherwise (then each is checked on its own, under the same rule).
fn batch_terms(
    sd_jwt: &SdJwt,
    issuer: &PublicKey,
    holder: Option<&PublicKey>,
) -> Option<[Term; 2]> {
    let (PublicKey::Ed25519(ik), Some(PublicKey::Ed25519(hk)), Some(kb)) =
        (issuer, holder, sd_jwt.kb.as_ref())
    else {
        return None;
    };
    if sd_jwt.jwt.alg() != Alg::EdDSA || kb.alg() != Alg::EdDSA {
        return None;
    }
    Some([
        Term::new(ik, &[sd_jwt.jwt.signing_input()], sd_jwt.jwt.signature()).ok()?,
        Term::new(hk, &[kb.signing_input()], kb.signature()).ok()?,
    ])
}

/// The batch equation of presentations' signatures ([`ed25519::batch_holds`]).
fn batch_holds(terms: &[&Term]) -> bool {
    ed25519::batch_holds(b"vouch-sd-jwt-batch/v3", terms)
}

/// Why the times fail the [`CheckName::Validity`] check.
#[derive(Debug, thiserror::Error)]
enum TimeError {
    /// A time claim that is not an integer.
    #[error("{0} is not an integer NumericDate")]
    NotNumericDate(&'static str),
    /// `exp` has passed.
    #[error("expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    /// `nbf` has not come.
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    /// `iat` is in the future.
    #[error("issued in the future at {iat} (now {now})")]
    Future { iat: i64, now: i64 },
}

fn time_claim(payload: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TimeError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(TimeError::NotNumericDate(name)),
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
                return Err(TimeError::Expired { exp, now });
            }
        }
        if let Some(nbf) = time_claim(payload, "nbf")? {
            if now.saturating_add(leeway) < nbf {
                return Err(TimeError::NotYetValid { nbf, now });
            }
        }
        let iat = match time_claim(payload, "iat")? {
            Some(iat) => Some(iat),
            None => time_claim(disclosed, "iat")?,
        };
        if let Some(iat) = iat {
            if now.saturating_add(leeway) < iat {
                return Err(TimeError::Future { iat, now });
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
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

/// Why the KB-JWT fails the [`CheckName::HolderBinding`] check.
#[derive(Debug, thiserror::Error)]
enum BindingError {
    #[error("credential has no cnf.jwk holder key")]
    NoHolderKey,
    #[error("cnf.jwk: {0}")]
    HolderKey(#[source] crate::jws::JwkError),
    #[error("KB-JWT typ is {0:?}, expected kb+jwt")]
    Typ(Option<String>),
    #[error("KB-JWT signature does not verify with cnf.jwk")]
    Signature,
    #[error("KB-JWT payload: {0}")]
    Payload(#[source] crate::jws::JsonObjectError),
    #[error("KB-JWT has no sd_hash")]
    NoSdHash,
    #[error("KB-JWT sd_hash does not match this presentation")]
    SdHash,
    #[error("KB-JWT has no integer iat")]
    NoIat,
    #[error("KB-JWT issued in the future at {iat} (now {now})")]
    Future { iat: i64, now: i64 },
    #[error("KB-JWT too old: iat {iat}, now {now}")]
    TooOld { iat: i64, now: i64 },
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
            None => return Err(BindingError::NoHolderKey),
            Some(Err(e)) => return Err(BindingError::HolderKey(e.clone())),
            Some(Ok(_)) => {}
        }
        if kb.header_str("typ") != Some(KB_JWT_TYP) {
            return Err(BindingError::Typ(kb.header_str("typ").map(str::to_owned)));
        }
        if kb_sig_ok != Some(true) {
            return Err(BindingError::Signature);
        }
        let payload = KbPayload::parse(kb.payload()).map_err(BindingError::Payload)?;
        let sd_hash = payload.string("sd_hash").ok_or(BindingError::NoSdHash)?;
        if sd_hash != sd_jwt.sd_hash() {
            return Err(BindingError::SdHash);
        }
        let iat = payload.iat().ok_or(BindingError::NoIat)?;
        let now = options.now;
        let leeway = i64::try_from(options.leeway).unwrap_or(i64::MAX);
        if iat > now.saturating_add(leeway) {
            return Err(BindingError::Future { iat, now });
        }
        if let KeyBinding::Required { max_age, .. } = &options.key_binding {
            let max_age = i64::try_from(*max_age).unwrap_or(i64::MAX);
            if iat < now.saturating_sub(max_age).saturating_sub(leeway) {
                return Err(BindingError::TooOld { iat, now });
            }
        }
        Ok(payload)
    })();
    match (binding, &options.key_binding) {
        (Err(e), _) => (
            Outcome::Fail(e.to_string()),
            aud_nonce_fail(),
            aud_nonce_fail(),
        ),
        (Ok(_), KeyBinding::Optional) => (Outcome::Pass, not_checked(), not_checked()),
        (Ok(payload), KeyBinding::Required { aud, nonce, .. }) => {
            let aud_ok = match payload.string("aud") {
                Some(a) if a == aud => Outcome::Pass,
                _ => Outcome::Fail(format!(
                    "KB-JWT aud is {}, expected {aud:?}",
                    payload.show("aud")
                )),
            };
            let nonce_ok = match payload.string("nonce") {
                Some(n) if n == nonce => Outcome::Pass,
                _ => Outcome::Fail(format!(
                    "KB-JWT nonce is {}, expected {nonce:?}",
                    payload.show("nonce")
                )),
            };
            (Outcome::Pass, aud_ok, nonce_ok)
        }
    }
}

/// A KB-JWT payload as the checks read it.
enum KbPayload<'a> {
    /// The usual payload, its four claims read straight into their types:
    /// no map, no copies, no number text.
    Typed(KbClaims<'a>),
    /// Anything else, as JSON values.
    Object(Map<String, Value>),
}

/// The claims of a KB-JWT (RFC 9901 §4.3), when each has its type.
#[derive(serde::Deserialize)]
struct KbClaims<'a> {
    #[serde(borrow)]
    nonce: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    iat: i64,
    #[serde(borrow)]
    sd_hash: Cow<'a, str>,
}

impl<'a> KbPayload<'a> {
    /// Reads the payload; accepts and refuses exactly what
    /// [`parse_json_object`] does, and reads the same values.
    ///
    /// The typed read takes an object with the four claims of their types
    /// (an `iat` only from an integer literal in range, which is what
    /// `as_i64` reads too) and member names checked unique and none of
    /// serde_json's own ([`check_member_names`]); every other
    /// payload, bad ones included, goes the general way, so its values and
    /// its errors are those of [`parse_json_object`].
    fn parse(json: &'a [u8]) -> Result<Self, JsonObjectError> {
        // serde reads a struct from an array as well; a payload is an object.
        let object = json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if object {
            if let Ok(claims) = serde_json::from_slice::<KbClaims<'a>>(json) {
                if check_member_names(json).is_ok() {
                    return Ok(Self::Typed(claims));
                }
            }
        }
        parse_json_object(json).map(Self::Object)
    }

    /// A string claim.
    fn string(&self, name: &str) -> Option<&str> {
        match self {
            Self::Typed(c) => match name {
                "nonce" => Some(&c.nonce),
                "aud" => Some(&c.aud),
                "sd_hash" => Some(&c.sd_hash),
                _ => None,
            },
            Self::Object(map) => map.get(name).and_then(Value::as_str),
        }
    }

    /// `iat`, when it is an integer.
    fn iat(&self) -> Option<i64> {
        match self {
            Self::Typed(c) => Some(c.iat),
            Self::Object(map) => map.get("iat").and_then(Value::as_i64),
        }
    }

    /// A claim as JSON text, or `missing`.
    fn show(&self, name: &str) -> String {
        match self {
            Self::Typed(_) => self
                .string(name)
                .map_or_else(|| "missing".to_owned(), |s| Value::from(s).to_string()),
            Self::Object(map) => map
                .get(name)
                .map_or_else(|| "missing".to_owned(), Value::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Signer as _};

    use crate::ed25519::{
        forged_term, signed_term as good, test_key as signing, torsion_signature,
    };

    use super::*;

    /// The KB-JWT payload's typed read accepts and refuses what
    /// `parse_json_object` does, names of serde_json's own included (the
    /// typed read skips the members it does not know).
    #[test]
    fn the_kb_payload_read_refuses_what_parse_json_object_refuses() {
        let base = r#""nonce":"n","aud":"a","iat":1,"sd_hash":"h""#;
        for text in [
            format!("{{{base}}}"),
            format!(r#"{{{base},"x":{{"a":1}}}}"#),
            format!(r#"{{{base},"x":{{"a":1,"a":2}}}}"#),
            format!(r#"{{{base},"x":{{"$serde_json::private::RawValue":"{{\"a\":1,\"a\":2}}"}}}}"#),
            format!(r#"{{{base},"$serde_json::private::Number":"1"}}"#),
            format!(r#"{{{base},"x":"$serde_json::private::Number"}}"#),
        ] {
            let typed =
                KbPayload::parse(text.as_bytes()).map(|p| p.string("nonce").map(str::to_owned));
            let general = parse_json_object(text.as_bytes())
                .map(|o| o.get("nonce").and_then(Value::as_str).map(str::to_owned));
            assert_eq!(typed, general, "{text}");
        }
        assert!(matches!(
            KbPayload::parse(
                format!(r#"{{{base},"$serde_json::private::Number":"1"}}"#).as_bytes()
            ),
            Err(JsonObjectError::PrivateMember(_))
        ));
    }

    fn set(a: Term, b: Term) -> Signatures {
        Signatures(Arc::new(SignatureSet {
            terms: [a, b],
            verified: AtomicBool::new(false),
        }))
    }

    #[test]
    fn a_small_order_component_in_r_is_judged_alike_alone_and_in_any_batch() {
        let (issuer, holder) = (signing(1), signing(2));
        let kb = b"kb-jwt signing input";
        let tweaked = torsion_signature(&holder, kb);
        assert!(holder
            .verifying_key()
            .verify_strict(kb, &Signature::from_bytes(&tweaked))
            .is_err());
        let own = || {
            set(
                good(&issuer, b"issuer jwt"),
                Term::new(&holder.verifying_key(), &[kb], &tweaked).unwrap(),
            )
        };
        let alone = own().holds_alone();
        // Cofactored: the signature's own check takes it, and so does every
        // batch it is in, whatever else shares it, and however the weights
        // fall (a cofactorless equation would take it in some batches and
        // not in others).
        assert!(alone);
        for others in 0..12u8 {
            let mut sets = vec![own()];
            for i in 0..others {
                sets.push(set(good(&issuer, &[i]), good(&signing(10 + i), &[i, 1])));
            }
            assert_eq!(check_batch(&sets), alone, "{others} other presentation(s)");
        }
    }

    #[test]
    fn a_bad_signature_fails_every_batch_it_is_in_and_is_never_marked() {
        let issuer = signing(1);
        // A real signature on another message.
        let forged = forged_term(&signing(2));
        let bad = set(good(&issuer, b"jwt"), forged);
        assert!(!bad.holds_alone());
        let goods: Vec<Signatures> = (0..5u8)
            .map(|i| set(good(&issuer, &[i]), good(&signing(20 + i), &[i])))
            .collect();
        // A bad set in each half: the batch fails, both halves fail, and
        // nothing is marked (each is checked alone when finished).
        let fresh = |v: &[Signatures]| -> Vec<Signatures> {
            v.iter()
                .map(|s| set(s.0.terms[0].clone(), s.0.terms[1].clone()))
                .collect()
        };
        let bad2 = set(good(&issuer, b"jwt2"), forged_term(&signing(3)));
        let mut sets = fresh(&goods);
        sets.insert(1, bad.clone());
        sets.insert(5, bad2.clone());
        assert!(!check_batch(&sets));
        assert!(sets.iter().all(|s| !s.verified()));
        // One bad set: the batch fails, and is narrowed down to it: every
        // other set is marked, the bad one is not.
        let mut sets = fresh(&goods);
        sets.insert(2, bad.clone());
        assert!(!check_batch(&sets));
        for (i, s) in sets.iter().enumerate() {
            assert_eq!(s.verified(), i != 2, "set {i}");
        }
        assert!(!bad.verified());
        // Each good one still holds alone, and all of them together.
        assert!(goods.iter().all(Signatures::holds_alone));
        assert!(check_batch(&goods));
        assert!(goods.iter().all(Signatures::verified));
        assert!(!bad.verified());
        assert!(!check_batch(&[]));
    }

    #[test]
    fn one_bad_set_anywhere_in_a_batch_of_any_size_is_the_only_one_left_unmarked() {
        let issuer = signing(1);
        let goods: Vec<(Term, Term)> = (0..9u8)
            .map(|i| (good(&issuer, &[i]), good(&signing(40 + i), &[i])))
            .collect();
        for n in 1..=goods.len() {
            for bad_at in 0..n {
                let sets: Vec<Signatures> = goods[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, (a, b))| {
                        let b = if i == bad_at {
                            forged_term(&signing(2))
                        } else {
                            b.clone()
                        };
                        set(a.clone(), b)
                    })
                    .collect();
                assert!(!check_batch(&sets), "{n} sets");
                for (i, s) in sets.iter().enumerate() {
                    assert_eq!(s.verified(), i != bad_at, "set {i} of {n}, bad at {bad_at}");
                }
            }
        }
    }

    #[test]
    fn an_r_of_small_order_or_a_non_canonical_s_is_not_batched() {
        let holder = signing(2);
        let mut sig = holder.sign(b"m").to_bytes();
        // R = the identity, a point of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        sig[..32].copy_from_slice(&identity);
        assert!(Term::new(&holder.verifying_key(), &[b"m"], &sig).is_err());
        let mut sig = holder.sign(b"m").to_bytes();
        sig[63] = 0xff;
        assert!(Term::new(&holder.verifying_key(), &[b"m"], &sig).is_err());
        assert!(Term::new(&holder.verifying_key(), &[b"m"], &sig[..63]).is_err());
    }
}
