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
use crate::sd_jwt::{self, ConcealError, Concealment, KeyBinding, SdJwt, VerifyOptions};
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
    for (name, value) in request.claims {
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(IssueError::ReservedClaim(name));
        }
        claims.insert(name, value);
    }
    for path in &request.concealment.paths {
        if let Some(Segment::Key(first)) = path.segments().first() {
            if RESERVED_CLAIMS.contains(&first.as_str()) {
                return Err(IssueError::ReservedClaim(first.clone()));
            }
        }
    }
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
    let mut verdict = sd_jwt::verify_parsed(&sd_jwt, options)?;
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
    Ok((sd_jwt, verdict))
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
