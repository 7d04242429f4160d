//! The SD-JWT VC profile (IETF draft-ietf-oauth-sd-jwt-vc): `typ: dc+sd-jwt`,
//! `vct`, `iss` = the issuer's did:key, `iat`, `exp`, `cnf.jwk` = the holder
//! key, `status.status_list {idx, uri}`.

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::did::DidKey;
use crate::jws::PublicKey;
use crate::path::{ClaimPath, Segment};
use crate::sd_jwt::{
    self, write_json, write_json_str, ConcealError, ConcealPlan, Concealment, IssueBuffers,
    KeyBinding, SdJwt, VerifyOptions,
};
use crate::status_list::StatusRef;
use crate::verdict::{CheckName, Outcome, Verdict, VerifyError};

/// `typ` of an SD-JWT VC.
pub const SD_JWT_VC_TYP: &str = "dc+sd-jwt";
/// The earlier `typ`, still accepted when verifying.
pub const LEGACY_TYP: &str = "vc+sd-jwt";

/// Claims the profile sets itself; they are never selectively disclosable.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "iat",
    "nbf",
    "exp",
    "vct",
    "vct#integrity",
    "cnf",
    "status",
    "_sd",
    "_sd_alg",
    "...",
];

/// An issuer's signing identity.
#[derive(Clone)]
pub struct IssuerKey {
    key: SigningKey,
    did: DidKey,
}

impl IssuerKey {
    /// From an Ed25519 signing key.
    pub fn new(key: SigningKey) -> Self {
        let did = DidKey::from_public_key(&key.verifying_key());
        Self { key, did }
    }
    /// The issuer DID.
    pub fn did(&self) -> &DidKey {
        &self.did
    }
    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerKey({})", self.did)
    }
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct CredentialRequest {
    /// Credential type.
    pub vct: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry, if any.
    pub exp: Option<i64>,
    /// The holder key for `cnf.jwk`.
    pub holder: PublicKey,
    /// The credential's status list entry.
    pub status: Option<StatusRef>,
    /// Subject claims (no reserved names).
    pub claims: Map<String, Value>,
    /// Which claims the holder may withhold, and decoys.
    pub concealment: Concealment,
}

/// Why a credential could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A subject claim uses a name the profile sets itself.
    #[error("claim {0:?} is set by the SD-JWT VC profile and cannot be given")]
    ReservedClaim(String),
    /// Concealment failed.
    #[error(transparent)]
    Conceal(#[from] ConcealError),
}

/// Issues an SD-JWT VC. Takes the request by value: its claims move into the
/// disclosures without a copy.
///
/// # Errors
/// [`IssueError`] for a reserved claim name or a path that names no claim.
pub fn issue(
    request: CredentialRequest,
    issuer: &IssuerKey,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<SdJwt, IssueError> {
    check_reserved(
        request.claims.keys().map(String::as_str),
        &request.concealment,
    )?;
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(issuer.did.as_str()));
    claims.insert("iat".into(), Value::from(request.iat));
    if let Some(exp) = request.exp {
        claims.insert("exp".into(), Value::from(exp));
    }
    claims.insert("vct".into(), Value::from(request.vct.as_str()));
    claims.insert(
        "cnf".into(),
        serde_json::json!({ "jwk": request.holder.to_jwk() }),
    );
    if let Some(status) = &request.status {
        claims.insert(
            "status".into(),
            serde_json::json!({ "status_list": { "idx": status.idx, "uri": status.uri } }),
        );
    }
    claims.extend(request.claims);
    let kid = issuer.did.verification_method();
    Ok(SdJwt::issue(
        claims,
        &request.concealment,
        SD_JWT_VC_TYP,
        &kid,
        &issuer.key,
        rng,
    )?)
}

/// Refuses a claim, or a concealed path's first key, that is one of the
/// profile's own ([`RESERVED_CLAIMS`]): the first such claim in the order
/// a `serde_json::Map` of `names` keeps, then the first such path.
fn check_reserved<'n>(
    names: impl Iterator<Item = &'n str>,
    concealment: &Concealment,
) -> Result<(), IssueError> {
    check_names(names)?;
    match reserved_path(concealment) {
        Some(first) => Err(IssueError::ReservedClaim(first.to_owned())),
        None => Ok(()),
    }
}

/// Refuses a claim that is one of the profile's own: the first in the
/// order a `serde_json::Map` of `names` keeps.
fn check_names<'n>(names: impl Iterator<Item = &'n str>) -> Result<(), IssueError> {
    let mut reserved = names.filter(|name| RESERVED_CLAIMS.contains(name));
    let first = if sd_jwt::map_sorts_keys() {
        reserved.min()
    } else {
        reserved.next()
    };
    match first {
        Some(name) => Err(IssueError::ReservedClaim(name.to_owned())),
        None => Ok(()),
    }
}

/// The first key of the first concealed path that names one of the
/// profile's claims, if any.
fn reserved_path(concealment: &Concealment) -> Option<&str> {
    concealment
        .paths
        .iter()
        .find_map(|path| match path.segments().first() {
            Some(Segment::Key(first)) if RESERVED_CLAIMS.contains(&first.as_str()) => {
                Some(first.as_str())
            }
            _ => None,
        })
}

/// A claim value borrowed from where it was read (a CSV row's cells, a
/// template's claim names), so that a credential is issued without
/// building a `serde_json` tree ([`issue_claims`]). It stands for the JSON
/// value [`Claim::to_value`] builds, and issuing it gives byte for byte
/// what [`issue`] gives for that value with the same random numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Claim<'a> {
    /// A string.
    Str(&'a str),
    /// A whole number.
    Int(i64),
    /// Any JSON value.
    Json(&'a Value),
    /// An object: its members, as they would be inserted into a
    /// `serde_json::Map` (so written in the order that map keeps). A name
    /// may appear once: issuing refuses a repeated one
    /// ([`ConcealError::RepeatedName`]).
    Object(&'a [(&'a str, Claim<'a>)]),
    /// An array.
    Array(&'a [Claim<'a>]),
}

impl Claim<'_> {
    /// The JSON value this claim stands for (an object's members inserted
    /// into a map in order).
    pub fn to_value(&self) -> Value {
        match *self {
            Claim::Str(s) => Value::from(s),
            Claim::Int(n) => Value::from(n),
            Claim::Json(v) => v.clone(),
            Claim::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_value()))
                    .collect(),
            ),
            Claim::Array(items) => Value::Array(items.iter().map(Claim::to_value).collect()),
        }
    }
}

impl<'a> Claim<'a> {
    /// The objects whose members are `members` cut at `ends` (object `i`
    /// holds `members[ends[i-1]..ends[i]]`): how a row's list of objects is
    /// borrowed from one flat list of members.
    ///
    /// # Panics
    /// When `ends` is not increasing within `members.len()`.
    pub fn objects(members: &'a [(&'a str, Claim<'a>)], ends: &[usize]) -> Vec<Claim<'a>> {
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let item = Claim::Object(&members[start..end]);
                start = end;
                item
            })
            .collect()
    }
}

impl CredentialRequest {
    /// This request, borrowed, with `claims` and `concealment` in place of
    /// its own.
    pub fn borrowed<'a>(
        &'a self,
        claims: &'a [(&'a str, Claim<'a>)],
        concealment: &'a Concealment,
    ) -> ClaimsRequest<'a> {
        ClaimsRequest {
            vct: &self.vct,
            iat: self.iat,
            exp: self.exp,
            holder: &self.holder,
            status: self.status.as_ref(),
            claims,
            concealment,
        }
    }
}

/// What to issue, borrowed: [`issue_claims`]. The same fields as
/// [`CredentialRequest`], none of them copied.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsRequest<'a> {
    /// Credential type.
    pub vct: &'a str,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry, if any.
    pub exp: Option<i64>,
    /// The holder key for `cnf.jwk`.
    pub holder: &'a PublicKey,
    /// The credential's status list entry.
    pub status: Option<&'a StatusRef>,
    /// Subject claims (no reserved names), as members of the claim set.
    pub claims: &'a [(&'a str, Claim<'a>)],
    /// Which claims the holder may withhold, and decoys.
    pub concealment: &'a Concealment,
}

/// As [`issue_compact`], from borrowed claims: the text [`issue`] gives
/// for the claims' [`Claim::to_value`] with the same random numbers,
/// without building, copying or dropping a `serde_json` tree. What a batch
/// issuer uses for each CSV row.
///
/// # Errors
/// As [`issue`], and [`ConcealError::RepeatedName`] for an object (or the
/// claim set) that names a member twice.
pub fn issue_claims(
    request: &ClaimsRequest<'_>,
    issuer: &IssuerKey,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, IssueError> {
    check_reserved(
        request.claims.iter().map(|(name, _)| *name),
        request.concealment,
    )?;
    issue_text(request, request.claims, issuer, rng)
}

/// As [`issue`], returning the compact serialisation
/// `<issuer JWT>~<disclosure>~…~`: what a batch issuer writes out.
///
/// # Errors
/// As [`issue`].
pub fn issue_compact(
    request: CredentialRequest,
    issuer: &IssuerKey,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, IssueError> {
    // The same checks as `issue`.
    check_reserved(
        request.claims.keys().map(String::as_str),
        &request.concealment,
    )?;
    let members: Vec<(&str, Claim<'_>)> = request
        .claims
        .iter()
        .map(|(name, value)| (name.as_str(), Claim::Json(value)))
        .collect();
    let borrowed = request.borrowed(&members, &request.concealment);
    issue_text(&borrowed, &members, issuer, rng)
}

/// The compact text of `request` with subject claims `claims`: the
/// profile's claims written as text in the order [`issue`] inserts them.
fn issue_text(
    request: &ClaimsRequest<'_>,
    claims: &[(&str, Claim<'_>)],
    issuer: &IssuerKey,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, IssueError> {
    let mut text = String::with_capacity(512);
    let head = Head::write(request, issuer, &mut text);
    let members = head.members(&text);
    Ok(sd_jwt::issue_compact(
        &members[..head.len],
        claims,
        request.concealment,
        SD_JWT_VC_TYP,
        &text[head.kid.clone()],
        &issuer.key,
        rng,
    )?)
}

/// The profile's members of the payload, written as JSON text one after
/// the other, in the order [`issue`] inserts them: each one's name and
/// where its value lies in the text; then the `kid`.
struct Head {
    members: [(&'static str, std::ops::Range<usize>); 6],
    /// How many of `members` there are.
    len: usize,
    /// Where the `kid` lies in the text.
    kid: std::ops::Range<usize>,
}

impl Head {
    /// Writes the members of `request` and the `kid` of `issuer` into
    /// `text` (emptied first).
    fn write(request: &ClaimsRequest<'_>, issuer: &IssuerKey, text: &mut String) -> Self {
        use std::fmt::Write as _;
        text.clear();
        let mut head = Head {
            members: std::array::from_fn(|_| ("", 0..0)),
            len: 0,
            kid: 0..0,
        };
        let mut member = |name: &'static str, text: &mut String, write: &dyn Fn(&mut String)| {
            let start = text.len();
            write(text);
            head.members[head.len] = (name, start..text.len());
            head.len += 1;
        };
        member("iss", text, &|t| write_json_str(issuer.did.as_str(), t));
        // Writing to a `String` cannot fail.
        member("iat", text, &|t| {
            let _ = write!(t, "{}", request.iat);
        });
        if let Some(exp) = request.exp {
            member("exp", text, &|t| {
                let _ = write!(t, "{exp}");
            });
        }
        member("vct", text, &|t| write_json_str(request.vct, t));
        member("cnf", text, &|t| write_cnf(request.holder, t));
        if let Some(status) = request.status {
            member("status", text, &|t| {
                let _ = write!(t, "{{\"status_list\":{{\"idx\":{},\"uri\":", status.idx);
                write_json_str(&status.uri, t);
                t.push_str("}}");
            });
        }
        let start = text.len();
        text.push_str(issuer.did.as_str());
        text.push('#');
        text.push_str(issuer.did.method_specific_id());
        head.kid = start..text.len();
        head
    }

    /// The members as name and JSON text, the first [`Head::len`] of them
    /// in use.
    fn members<'t>(&self, text: &'t str) -> [(&'static str, &'t str); 6] {
        std::array::from_fn(|i| {
            let (name, range) = &self.members[i];
            (*name, &text[range.clone()])
        })
    }
}

/// Appends the `cnf` claim of `holder` as JSON: `{"jwk": …}`.
fn write_cnf(holder: &PublicKey, out: &mut String) {
    out.push_str("{\"jwk\":");
    match holder {
        PublicKey::Ed25519(key) => {
            // The members in the order `to_jwk`'s map keeps them.
            out.push_str(if sd_jwt::map_sorts_keys() {
                "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\""
            } else {
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\""
            });
            crate::b64::encode_to(key.as_bytes(), out);
            out.push_str("\"}");
        }
        other => write_json(&other.to_jwk(), out),
    }
    out.push('}');
}

/// A concealment made ready once for the many credentials that share it
/// ([`issue_planned`]): its paths checked against the profile's claims,
/// checked and sorted ([`ConcealPlan`]) once, not for each credential.
#[derive(Debug, Clone)]
pub struct IssuePlan {
    concealment: Concealment,
    /// The first concealed path's first key that the profile sets, if any.
    reserved: Option<String>,
    /// The paths checked and sorted, or why they cannot be.
    plan: Result<ConcealPlan, ConcealError>,
}

impl IssuePlan {
    /// The plan of `concealment`. Never fails: a concealment that issuing
    /// refuses gives a plan that refuses each credential as issuing would.
    pub fn new(concealment: Concealment) -> Self {
        let reserved = reserved_path(&concealment).map(str::to_owned);
        let plan = ConcealPlan::new(&concealment);
        Self {
            concealment,
            reserved,
            plan,
        }
    }

    /// The concealment it was made from: the one to name in each
    /// [`ClaimsRequest`] issued with it.
    pub fn concealment(&self) -> &Concealment {
        &self.concealment
    }
}

/// As [`issue_claims`], with the concealment planned once (`plan`; the
/// request's `concealment` is expected to be [`IssuePlan::concealment`],
/// else it is planned afresh), the text written into `out` (emptied
/// first) and `buffers` reused: what a signer thread calls for each row,
/// allocating (almost) nothing. The same text as [`issue_claims`] for the
/// same random numbers, and the same errors.
///
/// # Errors
/// As [`issue_claims`].
pub fn issue_planned(
    request: &ClaimsRequest<'_>,
    plan: &IssuePlan,
    issuer: &IssuerKey,
    buffers: &mut IssueBuffers,
    out: &mut String,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), IssueError> {
    // Emptied first, and again on a refusal: `out` never holds another
    // row's credential, nor one that was refused.
    out.clear();
    if !std::ptr::eq(request.concealment, &plan.concealment) {
        let own = IssuePlan::new(request.concealment.clone());
        let request = ClaimsRequest {
            concealment: &own.concealment,
            ..*request
        };
        return issue_planned(&request, &own, issuer, buffers, out, rng);
    }
    check_names(request.claims.iter().map(|(name, _)| *name))?;
    if let Some(name) = &plan.reserved {
        return Err(IssueError::ReservedClaim(name.clone()));
    }
    let mut text = std::mem::take(&mut buffers.head);
    let head = Head::write(request, issuer, &mut text);
    let members = head.members(&text);
    let issued = sd_jwt::issue_planned(
        &members[..head.len],
        request.claims,
        plan.plan.as_ref(),
        SD_JWT_VC_TYP,
        &text[head.kid.clone()],
        &issuer.key,
        buffers,
        out,
        rng,
    );
    buffers.head = text;
    if issued.is_err() {
        out.clear();
    }
    Ok(issued?)
}

/// What a verifier expects of a presentation.
#[derive(Debug, Clone)]
pub struct PresentationRequest {
    /// Expected KB-JWT `aud`.
    pub aud: String,
    /// Expected KB-JWT `nonce`.
    pub nonce: String,
    /// How old the KB-JWT may be, in seconds.
    pub max_age: u64,
}

/// Verifies an SD-JWT VC presentation: the SD-JWT checks, then the profile
/// (`typ`, `vct`, `iss` = did:key of `kid`, `cnf`, `status`). Issuer keys come
/// from the did:key `kid`.
///
/// # Errors
/// [`VerifyError`] when it is malformed or has no did:key issuer.
pub fn verify_presentation(
    text: &str,
    request: &PresentationRequest,
    now: i64,
) -> Result<Verdict, VerifyError> {
    let options = VerifyOptions::new(
        now,
        KeyBinding::Required {
            aud: request.aud.clone(),
            nonce: request.nonce.clone(),
            max_age: request.max_age,
        },
    );
    verify_with(text, &options)
}

/// Why a credential fails the [`CheckName::Format`] check.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("typ is {0:?}, expected {SD_JWT_VC_TYP:?}")]
    Typ(Option<String>),
    #[error("no vct string")]
    NoVct,
    #[error("no cnf (holder key)")]
    NoCnf,
    #[error("status without status_list")]
    NoStatusList,
    #[error("status.status_list: {0}")]
    StatusList(#[source] serde_json::Error),
}

/// As [`verify_presentation`], with full control over the options.
///
/// # Errors
/// As [`verify_presentation`].
pub fn verify_with(text: &str, options: &VerifyOptions) -> Result<Verdict, VerifyError> {
    verify_parsed(text, options).map(|(_, verdict)| verdict)
}

/// As [`verify_with`], also returning the parsed SD-JWT, so a caller with
/// more checks to make parses it once.
pub(crate) fn verify_parsed(
    text: &str,
    options: &VerifyOptions,
) -> Result<(SdJwt, Verdict), VerifyError> {
    let sd_jwt = SdJwt::parse(text)?;
    let verdict = verify_sd_jwt(&sd_jwt, options)?;
    Ok((sd_jwt, verdict))
}

/// As [`verify_with`], on an SD-JWT parsed already.
pub(crate) fn verify_sd_jwt(
    sd_jwt: &SdJwt,
    options: &VerifyOptions,
) -> Result<Verdict, VerifyError> {
    let mut verdict = sd_jwt::verify_parsed(sd_jwt, options)?;
    let payload = sd_jwt.payload();
    let format = (|| {
        match sd_jwt.jwt().header_str("typ") {
            Some(SD_JWT_VC_TYP | LEGACY_TYP) => {}
            other => return Err(FormatError::Typ(other.map(str::to_owned))),
        }
        let vct = payload
            .get("vct")
            .and_then(Value::as_str)
            .ok_or(FormatError::NoVct)?;
        verdict.vct = Some(vct.to_owned());
        if !payload.contains_key("cnf") {
            return Err(FormatError::NoCnf);
        }
        if let Some(status) = payload.get("status") {
            let list = status.get("status_list").ok_or(FormatError::NoStatusList)?;
            let status: StatusRef =
                StatusRef::deserialize(list).map_err(FormatError::StatusList)?;
            verdict.status = Some(status);
        }
        Ok(())
    })();
    let outcome = match format {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e.to_string()),
    };
    verdict.checks.insert(
        1,
        crate::verdict::Check {
            name: CheckName::Format,
            outcome,
        },
    );
    Ok(verdict)
}

/// Parses `--disclose` paths.
///
/// # Errors
/// The first path that does not parse.
pub fn parse_paths(text: &str) -> Result<Vec<ClaimPath>, crate::path::PathError> {
    text.split(',')
        .map(|p| ClaimPath::parse(p.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;
    use serde_json::json;

    fn paths(paths: &[&str], max_decoys: u8) -> Concealment {
        Concealment {
            paths: paths.iter().map(|p| ClaimPath::parse(p).unwrap()).collect(),
            max_decoys,
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    /// `value` as a borrowed [`Claim`]: strings and whole numbers as
    /// themselves, containers as slices (leaked: a test's few), anything
    /// else as JSON.
    fn claim_of(value: &Value) -> Claim<'_> {
        match value {
            Value::String(s) => Claim::Str(s),
            Value::Number(n) if n.as_i64().map(|i| i.to_string()) == Some(n.to_string()) => {
                Claim::Int(n.as_i64().unwrap())
            }
            Value::Object(map) => Claim::Object(Box::leak(
                map.iter()
                    .map(|(k, v)| (k.as_str(), claim_of(v)))
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            )),
            Value::Array(items) => Claim::Array(Box::leak(
                items
                    .iter()
                    .map(claim_of)
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            )),
            other => Claim::Json(other),
        }
    }

    /// `issue_claims` of `members` (with the rest of `request`) against
    /// `issue(..).serialize()` of their value, on the same random numbers.
    fn same_claims(request: &CredentialRequest, members: &[(&str, Claim<'_>)]) {
        let issuer = crate::sample::issuer_key();
        let Value::Object(claims) = Claim::Object(members).to_value() else {
            unreachable!("an object")
        };
        let whole = CredentialRequest {
            claims,
            ..request.clone()
        };
        let borrowed = request.borrowed(members, &request.concealment);
        let plan = IssuePlan::new(request.concealment.clone());
        let planned = request.borrowed(members, plan.concealment());
        // Reused from credential to credential, as a signer thread does.
        let (mut buffers, mut out) = (IssueBuffers::default(), String::from("left over"));
        for seed in 0..3 {
            let value = issue(whole.clone(), &issuer, &mut StdRng::seed_from_u64(seed))
                .map(|c| c.serialize());
            let text = issue_claims(&borrowed, &issuer, &mut StdRng::seed_from_u64(seed));
            assert_eq!(text, value, "{members:?}");
            // Planned once, and (naming another concealment) afresh.
            for request in [&planned, &borrowed] {
                let rng = &mut StdRng::seed_from_u64(seed);
                let done = issue_planned(request, &plan, &issuer, &mut buffers, &mut out, rng);
                assert_eq!(done.map(|()| out.clone()), value, "{members:?}");
            }
        }
    }

    /// `issue_compact` and `issue_claims` against `issue(..).serialize()`
    /// on the same random numbers: the same text, or the same error. The
    /// claims are given to `issue_claims` as borrowed trees, in their
    /// map's order and reversed.
    fn same(request: &CredentialRequest) {
        let issuer = crate::sample::issuer_key();
        for seed in 0..3 {
            let value = issue(request.clone(), &issuer, &mut StdRng::seed_from_u64(seed))
                .map(|c| c.serialize());
            let text = issue_compact(request.clone(), &issuer, &mut StdRng::seed_from_u64(seed));
            assert_eq!(text, value, "{request:?}");
        }
        let mut members: Vec<(&str, Claim<'_>)> = request
            .claims
            .iter()
            .map(|(k, v)| (k.as_str(), claim_of(v)))
            .collect();
        same_claims(request, &members);
        members.reverse();
        same_claims(request, &members);
        let json: Vec<(&str, Claim<'_>)> = request
            .claims
            .iter()
            .map(|(k, v)| (k.as_str(), Claim::Json(v)))
            .collect();
        same_claims(request, &json);
    }

    #[test]
    fn compact_issuance_is_the_serialised_sd_jwt() {
        let fixture = crate::sample::bench_fixture(&mut StdRng::seed_from_u64(1));
        let mut request = fixture.request;
        same(&request);
        // Decoys, no expiry, no status.
        request.concealment.max_decoys = 5;
        request.exp = None;
        request.status = None;
        same(&request);
        // Nested objects and arrays, escapes, concealed containers with
        // concealed members, a P-256 holder.
        request.claims = object(json!({
            "name": "A \"quoted\"\n\u{1}name ü",
            "address": {"street": "Main", "geo": [1.5, -2, {"x": [true, null]}]},
            "tags": ["a", ["b", "c"], {"d": 2.5e-3}],
            "empty": {},
        }));
        request.concealment = paths(
            &[
                "/address",
                "/address/street",
                "/address/geo/2",
                "/address/geo/2/x/1",
                "/tags/1",
                "/tags/1/0",
                "/tags/2/d",
                "/name",
            ],
            3,
        );
        same(&request);
        // RFC 7515 A.3's P-256 key.
        request.holder = PublicKey::from_jwk(&json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRjmX0gk2vi4fENalaC3bv5lYOJ1TVKkB1L2Pd4",
        }))
        .unwrap();
        same(&request);
        request.concealment = paths(&[], 0);
        same(&request);
    }

    #[test]
    fn fail_compact_issuance_refuses_what_issue_refuses() {
        let mut request = crate::sample::bench_fixture(&mut StdRng::seed_from_u64(1)).request;
        let good = request.clone();
        for (claims, concealed) in [
            (json!({"a": 1, "exp": 2}), vec!["/a"]),
            (json!({"a": 1}), vec!["/status"]),
            (json!({"a": {"_sd": 1}}), vec!["/a/_sd"]),
            (json!({"a": {"b": {"...": 1}}}), vec!["/a/b/c"]),
            (json!({"a": [1, 2]}), vec!["/a/2"]),
            (json!({"a": 1}), vec!["/b", "/a/0"]),
        ] {
            request.claims = object(claims);
            request.concealment = paths(&concealed, 0);
            let issuer = crate::sample::issuer_key();
            let want = issue(request.clone(), &issuer, &mut StdRng::seed_from_u64(0))
                .map(|c| c.serialize());
            assert!(want.is_err(), "{request:?}");
            same(&request);
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        request = good;
        request.claims = object(json!({ "deep": deep }));
        request.concealment = paths(&["/deep"], 0);
        same(&request);
        request.claims = object(json!({ "big": "x".repeat(crate::sd_jwt::MAX_SD_JWT_BYTES) }));
        request.concealment = paths(&[], 0);
        same(&request);
    }

    #[test]
    fn fail_plans_of_concealments_issuing_refuses() {
        let request = crate::sample::bench_fixture(&mut StdRng::seed_from_u64(1)).request;
        let issuer = crate::sample::issuer_key();
        let claims = [("a", Claim::Int(1)), ("b", Claim::Int(2))];
        let too_many: Vec<String> = (0..=crate::sd_jwt::MAX_DISCLOSURES)
            .map(|i| format!("/a/{i}"))
            .collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        let root = Concealment {
            paths: vec![ClaimPath::from_segments(Vec::new())],
            max_decoys: 0,
        };
        for (concealment, want) in [
            (
                paths(&["/b", "/iat"], 0),
                IssueError::ReservedClaim("iat".into()),
            ),
            (root.clone(), ConcealError::Root.into()),
            (
                paths(&["/a", "/_sd_alg/0"], 0),
                IssueError::ReservedClaim("_sd_alg".into()),
            ),
            (
                paths(&too_many, 0),
                ConcealError::TooMany(crate::sd_jwt::MAX_DISCLOSURES + 1).into(),
            ),
            (
                paths(&["/c"], 0),
                ConcealError::NotFound(ClaimPath::parse("/c").unwrap()).into(),
            ),
        ] {
            let plan = IssuePlan::new(concealment);
            let borrowed = request.borrowed(&claims, plan.concealment());
            let rng = &mut StdRng::seed_from_u64(0);
            // `out` held another row's credential: a refusal empties it.
            let mut buffers = IssueBuffers::default();
            let mut out = String::from("another row's credential");
            let planned = issue_planned(&borrowed, &plan, &issuer, &mut buffers, &mut out, rng);
            assert_eq!(planned, Err(want), "{:?}", plan.concealment());
            assert!(out.is_empty(), "{out}");
            assert!(!format!("{buffers:?}").contains("\"a\""), "{buffers:?}");
            let rng = &mut StdRng::seed_from_u64(0);
            assert_eq!(issue_claims(&borrowed, &issuer, rng), planned.map(|()| out));
        }
        // The claims' own faults come before the plan's, as in issuing.
        let plan = IssuePlan::new(root);
        let twice = [("x", Claim::Int(1)), ("x", Claim::Int(2))];
        let borrowed = request.borrowed(&twice, plan.concealment());
        let (mut buffers, mut out) = (IssueBuffers::default(), String::new());
        let rng = &mut StdRng::seed_from_u64(0);
        assert_eq!(
            issue_planned(&borrowed, &plan, &issuer, &mut buffers, &mut out, rng),
            Err(ConcealError::RepeatedName("x".into()).into())
        );
    }

    #[test]
    fn fail_borrowed_claims_that_name_a_member_twice() {
        let request = crate::sample::bench_fixture(&mut StdRng::seed_from_u64(1)).request;
        let issuer = crate::sample::issuer_key();
        let twice = |claims: &[(&str, Claim<'_>)], concealed: &[&str]| {
            let concealment = paths(concealed, 0);
            let borrowed = request.borrowed(claims, &concealment);
            issue_claims(&borrowed, &issuer, &mut StdRng::seed_from_u64(0))
        };
        let repeated = |name: &str| {
            Err(IssueError::Conceal(ConcealError::RepeatedName(
                name.to_owned(),
            )))
        };
        let inner = [
            ("b", Claim::Int(1)),
            ("a", Claim::Int(2)),
            ("b", Claim::Int(3)),
        ];
        // At the top, in an object the walk enters, and in one it only
        // writes (whole, or as a disclosure's value).
        assert_eq!(
            twice(&[("x", Claim::Int(1)), ("x", Claim::Str("y"))], &[]),
            repeated("x")
        );
        let nested = [("o", Claim::Object(&inner))];
        assert_eq!(twice(&nested, &["/o/a"]), repeated("b"));
        assert_eq!(twice(&nested, &[]), repeated("b"));
        assert_eq!(twice(&nested, &["/o"]), repeated("b"));
        let listed = [Claim::Int(0), Claim::Object(&inner)];
        assert_eq!(
            twice(&[("l", Claim::Array(&listed))], &["/l/0"]),
            repeated("b")
        );
        // Once each is fine.
        assert!(twice(&[("o", Claim::Object(&inner[..2]))], &["/o/a"]).is_ok());
    }
}
