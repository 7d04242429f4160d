//! The result of verification: `Result<Verdict, VerifyError>`.
//!
//! `Err` means the input could not be checked (malformed, unknown algorithm,
//! unresolvable key). `Ok(verdict)` means it was checked; each [`Check`] says
//! pass or fail and why, and [`Verdict::is_valid`] is true only when none
//! failed.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::envelope::EnvelopeError;
use crate::jws::PublicKey;
use crate::presentation::{FileError, ReadError};
use crate::sd_jwt::SdJwtError;
use crate::status_list::StatusRef;

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// The issuer's signature over the SD-JWT.
    IssuerSignature,
    /// Every disclosure is referenced exactly once, no digest repeats, no
    /// reserved names.
    Disclosures,
    /// The credential profile: `typ: dc+sd-jwt`, `vct`, `iss` matching the key.
    Format,
    /// `iat`, `nbf`, `exp` of the credential against the clock.
    Validity,
    /// The KB-JWT is present, signed by the `cnf` key, and covers this
    /// presentation (`sd_hash`), recently (`iat`).
    HolderBinding,
    /// The KB-JWT `aud` is the expected audience.
    Audience,
    /// The KB-JWT `nonce` is the expected nonce.
    Nonce,
    /// The claims the verifier asked for are disclosed
    /// ([`crate::verify::verify`]).
    RequestedClaims,
    /// The credential's `vct` is a known template whose kind the verifier
    /// accepts ([`crate::verify::verify`]).
    Kind,
    /// The issuer was accredited for this kind at issuance
    /// ([`crate::verify::verify`]).
    Accreditation,
    /// The issuer's key had not been rotated out before issuance
    /// ([`crate::verify::verify`]).
    IssuerKey,
    /// The credential's status list entry, as of the view's block
    /// ([`crate::verify::verify`]).
    Status,
    /// The replica's view is recent enough for the policy
    /// ([`crate::verify::verify`]).
    Freshness,
    /// The view's block carries enough witness cosignatures
    /// ([`crate::verify::verify`]).
    Cosignatures,
    /// The batch anchor inclusion proof ([`crate::verify::verify`]).
    Anchor,
}

/// How a check came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "kebab-case")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, and why.
    Fail(String),
    /// It was not performed, and why (e.g. no nonce was expected).
    NotChecked(String),
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: CheckName,
    /// How it came out.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The outcome of verifying a presentation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every check performed, in order.
    pub checks: Vec<Check>,
    /// The disclosed claims after processing (digests replaced by values).
    /// Only trustworthy when [`Verdict::is_valid`].
    pub claims: Map<String, Value>,
    /// The issuer (`iss`).
    pub issuer: Option<String>,
    /// The credential type (`vct`), for SD-JWT VCs.
    pub vct: Option<String>,
    /// The status list entry the credential points to, if any.
    pub status: Option<StatusRef>,
    /// The holder key of the issuer-signed payload's `cnf.jwk`, as the
    /// holder binding read it (whether or not the binding then passed);
    /// `None` when there is none or it is not a key.
    #[serde(skip)]
    pub holder_key: Option<PublicKey>,
}

impl Verdict {
    /// True when no check failed.
    pub fn is_valid(&self) -> bool {
        self.checks
            .iter()
            .all(|c| !matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The first failed check, if any.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks
            .iter()
            .find(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The outcome of a named check.
    pub fn check(&self, name: CheckName) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    /// Records a check.
    pub fn push(&mut self, name: CheckName, outcome: Outcome) {
        self.checks.push(Check { name, outcome });
    }
}

/// The input could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed SD-JWT.
    #[error("malformed SD-JWT: {0}")]
    Malformed(#[from] SdJwtError),
    /// No key to check the issuer signature with.
    #[error("cannot find the issuer key: {0}")]
    IssuerKey(String),
    /// A `VCH1:` envelope that does not decode.
    #[error("bad QR envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A presentation file ([`crate::presentation`]) that does not parse.
    #[error("bad presentation file: {0}")]
    PresentationFile(#[from] FileError),
}

impl From<ReadError> for VerifyError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Envelope(e) => VerifyError::Envelope(e),
            ReadError::File(e) => VerifyError::PresentationFile(e),
        }
    }
}
