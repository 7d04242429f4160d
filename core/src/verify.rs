//! Verification in one call: [`verify`] checks a presentation the way a
//! verifier must, offline, against what a replica knows ([`ChainView`]) and
//! what the verifier accepts ([`Policy`]).
//!
//! On top of the SD-JWT VC checks ([`crate::vc::verify_with`]: issuer
//! signature, format, disclosures, validity, holder binding, `aud`,
//! `nonce`) it checks that the claims asked for are disclosed, that the
//! credential's `vct` is a known and accepted kind, that the issuer was
//! accredited for that kind at issuance, that its key had not been rotated
//! out by then, the credential's status as of the view's block, that the
//! view is fresh enough and cosigned by enough witnesses, and the anchor.
//! Every check is filled in, or says `NotChecked` and why.
//!
//! Status index: when the view holds anchors of the credential's status
//! list, an index outside every anchored batch's range (`first..=last`)
//! fails the status check (no anchored batch holds such a credential);
//! when it holds none, the anchor check's `NotChecked` says so.
//!
//! Issuance time: `iat` is the issuer's own word, so a withdrawn issuer, or
//! whoever holds a rotated-out key, could backdate a credential. When the
//! [`Presentation`] carries an [`AnchorProof`] that holds against the view's
//! anchor record (same issuer, same batch size, the credential's
//! issuer-signed JWT a leaf of the anchored root), the issuance time is the
//! time of the block that sealed the anchor entry. Otherwise it is `iat`,
//! the [`CheckName::Anchor`] check says the anchor was not checked, and a
//! credential whose issuer has been withdrawn since, or whose key has been
//! rotated out since, fails: only an anchor sealed before that event shows
//! it was issued before it.

use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::anchor::{self, AnchorError, AnchorProof};
use crate::did::DidKey;
use crate::jws::PublicKey;
use crate::log::{Block, TrustPolicy};
use crate::path::{ClaimPath, Segment};
pub use crate::sd_jwt::{check_batch, Signatures};
use crate::sd_jwt::{Deferral, KeyBinding, SdJwt, VerifyOptions};
use crate::status_list::StatusRef;
use crate::template::{Field, FieldType, Template, Templates};
use crate::vc::RESERVED_CLAIMS;
use crate::verdict::{CheckName, Outcome, Verdict, VerifyError};
use crate::view::{shown_uri, AnchorRecord, ChainView, Status};

/// What the holder presents: the credential in any form
/// [`crate::presentation::Presentation::read`] reads (a compact SD-JWT+KB
/// presentation, a `VCH1:` envelope of one, or the presentation file form;
/// the last two may carry an anchor proof) and, optionally, an anchor proof
/// given apart from it.
///
/// The anchor proof belongs to the presentation, not to the verifier's
/// [`Request`] or [`Policy`]: the holder got it from the issuer with the
/// credential and shows it along. A plain `&str` or `&String` converts into
/// a presentation without a separate proof, so `verify(&text, …)` reads as
/// before, and uses the proof the text carries, if any. A proof given with
/// [`Presentation::with_anchor`] is used instead of a carried one.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// The presentation text, in any form.
    pub text: &'a str,
    /// An anchor proof given apart from the text, if any.
    pub anchor: Option<&'a AnchorProof>,
}

impl<'a> Presentation<'a> {
    /// A presentation `text` with the anchor proof `anchor`.
    pub fn with_anchor(text: &'a str, anchor: &'a AnchorProof) -> Self {
        Self {
            text,
            anchor: Some(anchor),
        }
    }
}

impl<'a> From<&'a str> for Presentation<'a> {
    fn from(text: &'a str) -> Self {
        Self { text, anchor: None }
    }
}

impl<'a> From<&'a String> for Presentation<'a> {
    fn from(text: &'a String) -> Self {
        Self::from(text.as_str())
    }
}

impl<'a> From<&'a crate::presentation::Presentation> for Presentation<'a> {
    fn from(p: &'a crate::presentation::Presentation) -> Self {
        Self {
            text: &p.sd_jwt,
            anchor: p.anchor_proof.as_ref(),
        }
    }
}

/// What the verifier asked the holder for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Expected KB-JWT `aud`: who the presentation is for. Empty: the
    /// audience check fails.
    pub aud: String,
    /// Expected KB-JWT `nonce`; `None` (or empty) when none was issued
    /// (then the check is not performed, or fails if the [`Policy`]
    /// requires a nonce). [`verify`] does not track nonces: refusing a
    /// nonce seen before is the caller's job.
    pub nonce: Option<String>,
    /// Claims the verifier wants disclosed, as paths with array indexes as
    /// issued (the paths a wallet presents): `/student_name`, `/courses`
    /// (the list, whichever items), `/courses/3` (that item).
    pub claims: Vec<ClaimPath>,
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The node key, the witnesses' keys and how many of their
    /// cosignatures (k) the view's block must carry.
    pub trust: TrustPolicy,
    /// The templates known: `vct` → kind and display labels.
    pub templates: Templates,
    /// Kinds accepted; empty: every kind of a known template.
    pub accepted_kinds: Vec<String>,
    /// Accreditation authorities trusted (did:keys); empty: whatever
    /// authorities the chain names. When set, every authority of the chain
    /// must be one of them, since any of them may accredit.
    pub trusted_authorities: Vec<String>,
    /// How old the view's block may be, in seconds.
    pub max_replica_age: u64,
    /// How old the KB-JWT may be, in seconds.
    pub max_presentation_age: u64,
    /// Whether a request without a nonce fails.
    pub require_nonce: bool,
    /// Whether a presentation without an anchor proof fails.
    pub require_anchor: bool,
    /// Whether a credential that names no status list fails: such a
    /// credential can never be revoked or suspended.
    pub require_status: bool,
    /// Clock skew tolerated, in seconds.
    pub leeway: u64,
}

impl Policy {
    /// A policy trusting `trust`, knowing `templates`, accepting every kind
    /// and the chain's own authorities, with a replica at most an hour old,
    /// presentations at most five minutes old, a nonce required, a status
    /// list required, anchor proofs not required, and 60 s of clock leeway.
    pub fn new(trust: TrustPolicy, templates: Templates) -> Policy {
        Policy {
            trust,
            templates,
            accepted_kinds: Vec::new(),
            trusted_authorities: Vec::new(),
            max_replica_age: 3600,
            max_presentation_age: 300,
            require_nonce: true,
            require_anchor: false,
            require_status: true,
            leeway: 60,
        }
    }
}

/// The issuer as the chain names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerInfo {
    /// Its did:key (`iss`).
    pub did: String,
    /// Its accredited name: set only when the [`CheckName::Accreditation`]
    /// check passed (the chain knows the key and it was accredited for the
    /// credential's kind at issuance); `None` otherwise, so a page never
    /// shows an accredited name beside a failed accreditation.
    pub name: Option<String>,
}

/// The template a credential was recognised by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateInfo {
    /// Template name.
    pub name: String,
    /// Accreditation kind.
    pub kind: String,
    /// Display title.
    pub title: String,
}

/// A disclosed claim, labelled for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisclosedClaim {
    /// Claim name.
    pub name: String,
    /// Display label from the template; the claim name when the template
    /// does not list it.
    pub label: String,
    /// The value as disclosed.
    pub value: Value,
    /// For a list of records: each disclosed item's fields, labelled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Vec<DisclosedClaim>>,
}

/// Where on the chain the checks were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsOf {
    /// Block height.
    pub height: u64,
    /// Block time (Unix seconds).
    pub time: i64,
    /// Entries sealed.
    pub size: u64,
    /// Age of the block at verification, in seconds.
    pub age: i64,
    /// Witnesses whose cosignatures verified under the [`Policy`].
    pub cosigned_by: Vec<String>,
}

/// The outcome of [`verify`]: every check, and what a page or an app shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// Every check, in order. Its `claims` are the raw processed claims,
    /// internal fields included.
    pub verdict: Verdict,
    /// The issuer, with its accredited name when accreditation passed.
    pub issuer: Option<IssuerInfo>,
    /// The template of the credential's `vct`, if known.
    pub template: Option<TemplateInfo>,
    /// The disclosed subject claims the template lists, labelled, in
    /// template order. When no template is known (`template` is `None`),
    /// every subject claim, labelled with its own name.
    pub claims: Vec<DisclosedClaim>,
    /// When a template is known: the disclosed subject claims it does not
    /// list, labelled with their own names, as they come. They are the
    /// issuer's word but not part of the kind of credential the template
    /// describes: a page shows them apart and flagged, never under the
    /// template's title.
    pub unlisted_claims: Vec<DisclosedClaim>,
    /// The holder's key (`cnf.jwk`) as did:key, when it is Ed25519.
    pub holder: Option<String>,
    /// The SD-JWT's internal fields (`iss`, `vct`, `iat`, `exp`, `cnf`,
    /// `status`, …): not disclosed claims, shown apart.
    pub internal: Map<String, Value>,
    /// Issuance time used for accreditation and key checks: the time of
    /// the block that sealed the anchor when the anchor proof holds, else
    /// the credential's `iat`.
    pub issued_at: Option<i64>,
    /// The chain's anchor the proof held against (with the block that
    /// sealed it), when it held.
    pub anchor: Option<AnchorRecord>,
    /// The credential's status, when it was read.
    pub status: Option<Status>,
    /// The chain position the checks were made at.
    pub as_of: AsOf,
}

impl Verification {
    /// True when no check failed.
    pub fn is_valid(&self) -> bool {
        self.verdict.is_valid()
    }

    /// The outcome of a named check.
    pub fn check(&self, name: CheckName) -> Option<&Outcome> {
        self.verdict.check(name)
    }

    /// The disclosed claim named `name`, among those the template lists.
    pub fn claim(&self, name: &str) -> Option<&DisclosedClaim> {
        self.claims.iter().find(|c| c.name == name)
    }

    /// The disclosed claim named `name`, among those the template does not
    /// list.
    pub fn unlisted_claim(&self, name: &str) -> Option<&DisclosedClaim> {
        self.unlisted_claims.iter().find(|c| c.name == name)
    }
}

/// Verifies `input` (a [`Presentation`]: a compact SD-JWT+KB
/// presentation, a `VCH1:` envelope of one with or without an anchor part,
/// or the presentation file form, optionally with an anchor proof given
/// apart; a `&str` converts into one) for `request`, against `view`, under
/// `policy`, at `now` (Unix seconds). The anchor proof checked is the one
/// given apart, else the one the input carries.
///
/// An empty [`Request::nonce`] counts as none (so it fails when the policy
/// requires a nonce), and an empty [`Request::aud`] fails the audience
/// check.
///
/// Replay: `verify` is stateless, so it cannot tell whether a nonce was
/// already used. Issuing each nonce once and refusing a second
/// presentation with it is the caller's job (the verifier service), as is
/// choosing an unguessable nonce.
///
/// # Errors
/// [`VerifyError`] when the input cannot be checked at all: a bad envelope
/// (its anchor part included) or presentation file, a malformed SD-JWT, no
/// usable issuer key. Every other problem is a
/// failed check in the [`Verification`].
pub fn verify<'a>(
    input: impl Into<Presentation<'a>>,
    request: &Request,
    view: &ChainView,
    policy: &Policy,
    now: i64,
) -> Result<Verification, VerifyError> {
    run(
        Subject::Text(input.into()),
        request,
        view,
        policy,
        now,
        None,
    )
}

/// As [`verify`], for a presentation whose SD-JWT is parsed already (for
/// instance by [`crate::envelope::decode_sd_jwt`]), with the anchor proof
/// it carries or was given with, if any: the verification [`verify`]
/// gives for the presentation's text and that proof.
///
/// # Errors
/// As [`verify`], but for a presentation that does not read or parse,
/// which is the caller's to report.
pub fn verify_sd_jwt(
    sd_jwt: &SdJwt,
    anchor: Option<&AnchorProof>,
    request: &Request,
    view: &ChainView,
    policy: &Policy,
    now: i64,
) -> Result<Verification, VerifyError> {
    run(
        Subject::Parsed { sd_jwt, anchor },
        request,
        view,
        policy,
        now,
        None,
    )
}

/// What [`run`] checks: a presentation's text in any form, or its SD-JWT
/// parsed already with its anchor proof.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Text(Presentation<'a>),
    Parsed {
        sd_jwt: &'a SdJwt,
        anchor: Option<&'a AnchorProof>,
    },
}

/// A presentation checked but for its two signatures (see [`prepare`]).
///
/// Its [`Prepared::signatures`] go into a [`check_batch`] with other
/// presentations' (or none); [`Prepared::finish`] then gives the
/// [`Verification`] that [`verify`] gives.
#[derive(Debug)]
pub struct Prepared<'a> {
    /// The verification, made as if the deferred signatures held.
    verification: Verification,
    /// The deferred signatures; `None`: checked already.
    signatures: Option<Signatures>,
    /// What was verified, to verify it again at once when the deferred
    /// signatures do not hold.
    input: Subject<'a>,
    request: &'a Request,
    view: &'a ChainView,
    policy: &'a Policy,
    now: i64,
}

impl Prepared<'_> {
    /// The issuer and KB-JWT signatures whose check was deferred: to be
    /// checked with other presentations' in one [`check_batch`]. `None`
    /// when they were checked already (signatures that cannot go in a
    /// batch, such as ES256 or an `R` of small order).
    pub fn signatures(&self) -> Option<&Signatures> {
        self.signatures.as_ref()
    }

    /// The verification, exactly as [`verify`] makes it. When a
    /// [`check_batch`] that held covered the signatures, it is the one
    /// already made; otherwise the two signatures are checked as one batch
    /// on their own (the check [`verify`] makes first), and when that does
    /// not hold either, the presentation is verified again at once, so
    /// each signature's failure is reported as [`verify`] reports it.
    ///
    /// # Errors
    /// Those of [`verify`] (which [`prepare`] already returned, so none in
    /// practice).
    pub fn finish(self) -> Result<Verification, VerifyError> {
        match &self.signatures {
            Some(s) if !s.verified() && !s.holds_alone() => run(
                self.input,
                self.request,
                self.view,
                self.policy,
                self.now,
                None,
            ),
            _ => Ok(self.verification),
        }
    }
}

/// [`verify`] in two steps, so that the signatures of many presentations
/// can be checked as one batch: every check but the two Ed25519
/// signatures (issuer JWT and KB-JWT) is made now, as if they held, and
/// they are left in the [`Prepared`] for a [`check_batch`]; then
/// [`Prepared::finish`] gives the verification [`verify`] gives.
///
/// A presentation whose signatures cannot go in a batch has them checked
/// here, and its `Prepared` carries none. A presentation with a bad
/// signature is verified again by [`Prepared::finish`]: its verdict is
/// [`verify`]'s, at about twice the work.
///
/// # Errors
/// Those of [`verify`].
pub fn prepare<'a>(
    input: impl Into<Presentation<'a>>,
    request: &'a Request,
    view: &'a ChainView,
    policy: &'a Policy,
    now: i64,
) -> Result<Prepared<'a>, VerifyError> {
    prepare_subject(Subject::Text(input.into()), request, view, policy, now)
}

/// [`prepare`] for a presentation whose SD-JWT is parsed already: see
/// [`verify_sd_jwt`].
///
/// # Errors
/// As [`verify_sd_jwt`].
pub fn prepare_sd_jwt<'a>(
    sd_jwt: &'a SdJwt,
    anchor: Option<&'a AnchorProof>,
    request: &'a Request,
    view: &'a ChainView,
    policy: &'a Policy,
    now: i64,
) -> Result<Prepared<'a>, VerifyError> {
    prepare_subject(
        Subject::Parsed { sd_jwt, anchor },
        request,
        view,
        policy,
        now,
    )
}

fn prepare_subject<'a>(
    input: Subject<'a>,
    request: &'a Request,
    view: &'a ChainView,
    policy: &'a Policy,
    now: i64,
) -> Result<Prepared<'a>, VerifyError> {
    let deferral = Deferral::default();
    let verification = run(input, request, view, policy, now, Some(deferral.clone()))?;
    Ok(Prepared {
        verification,
        signatures: deferral.taken(),
        input,
        request,
        view,
        policy,
        now,
    })
}

/// [`verify`], with the signature check deferred into `defer` when given.
fn run(
    subject: Subject<'_>,
    request: &Request,
    view: &ChainView,
    policy: &Policy,
    now: i64,
    defer: Option<Deferral>,
) -> Result<Verification, VerifyError> {
    match subject {
        Subject::Text(presentation) => {
            let read = crate::presentation::Presentation::read(presentation.text)?;
            let anchor = presentation.anchor.or(read.anchor_proof.as_ref());
            let sd_jwt = SdJwt::parse(&read.sd_jwt)?;
            run_parsed(&sd_jwt, anchor, request, view, policy, now, defer)
        }
        Subject::Parsed { sd_jwt, anchor } => {
            run_parsed(sd_jwt, anchor, request, view, policy, now, defer)
        }
    }
}

/// [`run`] on the parsed SD-JWT, with the anchor proof checked.
fn run_parsed(
    sd_jwt: &SdJwt,
    anchor_proof: Option<&AnchorProof>,
    request: &Request,
    view: &ChainView,
    policy: &Policy,
    now: i64,
    defer: Option<Deferral>,
) -> Result<Verification, VerifyError> {
    // The credential: the issuer-signed JWT, the anchored leaf.
    let text = sd_jwt.jwt().as_str();
    // An empty nonce is no nonce: a presentation bound to "" must not pass
    // a request that "issued" "".
    let nonce = request.nonce.as_deref().filter(|n| !n.is_empty());
    let mut options = VerifyOptions::new(
        now,
        KeyBinding::Required {
            aud: request.aud.clone(),
            nonce: nonce.unwrap_or_default().to_owned(),
            max_age: policy.max_presentation_age,
        },
    );
    options.leeway = policy.leeway;
    options.defer = defer;
    let mut verdict = crate::vc::verify_sd_jwt(sd_jwt, &options)?;
    if request.aud.is_empty() {
        replace(
            &mut verdict,
            CheckName::Audience,
            Outcome::Fail("the request names no audience (its aud is empty)".into()),
        );
    }
    if nonce.is_none() {
        let outcome = if policy.require_nonce {
            Outcome::Fail("the policy requires a nonce, and the request has none".into())
        } else {
            Outcome::NotChecked("no nonce was asked for".into())
        };
        replace(&mut verdict, CheckName::Nonce, outcome);
    }

    let template = verdict
        .vct
        .as_deref()
        .and_then(|vct| policy.templates.by_vct(vct));
    let iat = verdict.claims.get("iat").and_then(Value::as_i64);

    // Claims asked for.
    verdict.push(
        CheckName::RequestedClaims,
        requested(sd_jwt, &verdict, request),
    );

    // Kind, accreditation, key, status: only for a credential whose
    // signature and format hold.
    let gate = gate(&verdict);
    let mut status = None;
    let mut anchored = None;
    let mut anchor_outcome;
    match (&gate, verdict.issuer.clone()) {
        (None, Some(iss)) => {
            anchor_outcome = match anchor_proof {
                Some(proof) => match check_anchor(view, &verdict, &iss, text, proof) {
                    Ok(record) => {
                        anchored = Some(record.clone());
                        Outcome::Pass
                    }
                    Err(why) => Outcome::Fail(why.to_string()),
                },
                None if policy.require_anchor => Outcome::Fail(
                    "the policy requires an anchor proof, and the presentation carries none".into(),
                ),
                None => Outcome::NotChecked(
                    "no anchor proof: the issuance time is the credential's own iat".into(),
                ),
            };
            let issued = match &anchored {
                Some(record) => Issued::Anchored(record),
                None => Issued::Claimed(iat),
            };
            let kind = check_kind(&verdict, template, policy);
            let kind_name = kind.as_ref().ok().map(|t| t.kind.as_str());
            verdict.push(CheckName::Kind, into_outcome(kind.map(|_| ())));
            let accreditation = match kind_name {
                Some(kind) => accreditation(view, policy, &iss, kind, issued),
                None => Outcome::NotChecked("the credential's kind is not accepted".into()),
            };
            verdict.push(CheckName::Accreditation, accreditation);
            verdict.push(CheckName::IssuerKey, key_in_use(view, &iss, issued));
            let (mut outcome, read) = check_status(view, policy, &verdict, &iss, now);
            status = read;
            match verdict.status.as_ref().map(|sref| in_batch(view, sref)) {
                Some(InBatch::Outside(why)) => {
                    outcome = match outcome {
                        Outcome::Fail(first) => Outcome::Fail(format!("{first}; {why}")),
                        _ => Outcome::Fail(why),
                    };
                }
                Some(InBatch::NoAnchors(why)) => {
                    if let Outcome::NotChecked(first) = anchor_outcome {
                        anchor_outcome = Outcome::NotChecked(format!("{first}; {why}"));
                    }
                }
                Some(InBatch::Inside) | None => {}
            }
            verdict.push(CheckName::Status, outcome);
        }
        (gate, _) => {
            let why = gate.clone().unwrap_or_else(|| "no iss".into());
            anchor_outcome = if anchor_proof.is_none() && policy.require_anchor {
                Outcome::Fail(
                    "the policy requires an anchor proof, and the presentation carries none".into(),
                )
            } else {
                Outcome::NotChecked(why.clone())
            };
            for name in [
                CheckName::Kind,
                CheckName::Accreditation,
                CheckName::IssuerKey,
                CheckName::Status,
            ] {
                verdict.push(name, Outcome::NotChecked(why.clone()));
            }
        }
    }

    // The view itself.
    let age = view.age(now);
    verdict.push(CheckName::Freshness, freshness(view, policy, now));
    let (outcome, cosigned_by) = cosignatures(view, &policy.trust);
    verdict.push(CheckName::Cosignatures, outcome);
    verdict.push(CheckName::Anchor, anchor_outcome);

    let Split {
        listed: claims,
        unlisted: unlisted_claims,
        internal,
    } = split_claims(&verdict.claims, template);
    // The holder key as the processed claims show it. `cnf` cannot be
    // disclosed, so it is the payload's (whose key the KB-JWT was checked
    // with, read once), unless the reveal took SD-JWT machinery out of it.
    let holder = holder_did(sd_jwt, &verdict, &internal);
    // The name is the chain's word for an accredited issuer: shown only
    // when the accreditation check passed, never next to a failed one.
    let accredited = verdict.check(CheckName::Accreditation) == Some(&Outcome::Pass);
    let issuer = verdict.issuer.as_ref().map(|did| IssuerInfo {
        did: did.clone(),
        name: view
            .issuer(did)
            .filter(|_| accredited)
            .map(|i| i.name.clone()),
    });
    Ok(Verification {
        issuer,
        template: template.map(|t| TemplateInfo {
            name: t.name.clone(),
            kind: t.kind.clone(),
            title: t.title.clone(),
        }),
        claims,
        unlisted_claims,
        holder,
        internal,
        issued_at: anchored.as_ref().map(|a| a.sealed_time).or(iat),
        anchor: anchored,
        status,
        as_of: AsOf {
            height: view.height(),
            time: view.time(),
            size: view.block().size,
            age,
            cosigned_by,
        },
        verdict,
    })
}

/// The holder key (`cnf.jwk` of the processed claims, `internal`) as a
/// did:key, when it is an Ed25519 key. `cnf` cannot be disclosed, so the
/// processed `cnf` is the payload's, whose key the holder binding already
/// read ([`Verdict::holder_key`]: not decompressed again), unless the
/// reveal took SD-JWT machinery out of it; then its JWK is read.
fn holder_did(sd_jwt: &SdJwt, verdict: &Verdict, internal: &Map<String, Value>) -> Option<String> {
    let cnf = internal.get("cnf")?;
    let key = if sd_jwt.payload().get("cnf") == Some(cnf) {
        verdict.holder_key.clone()?
    } else {
        PublicKey::from_jwk(cnf.get("jwk")?).ok()?
    };
    match key {
        PublicKey::Ed25519(k) => Some(DidKey::from_public_key(&k).as_str().to_owned()),
        PublicKey::P256(_) => None,
    }
}

fn replace(verdict: &mut Verdict, name: CheckName, outcome: Outcome) {
    match verdict.checks.iter_mut().find(|c| c.name == name) {
        Some(check) => check.outcome = outcome,
        None => verdict.push(name, outcome),
    }
}

fn into_outcome<E: std::fmt::Display>(result: Result<(), E>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(why) => Outcome::Fail(why.to_string()),
    }
}

/// Why the credential-level chain checks cannot be made, if they cannot.
fn gate(verdict: &Verdict) -> Option<String> {
    let failed = |name| matches!(verdict.check(name), Some(Outcome::Fail(_)) | None);
    if failed(CheckName::IssuerSignature) {
        Some("the issuer signature does not verify".into())
    } else if failed(CheckName::Format) {
        Some("the credential's format is invalid".into())
    } else if failed(CheckName::Disclosures) {
        Some("the disclosures do not process".into())
    } else {
        None
    }
}

fn requested(sd_jwt: &SdJwt, verdict: &Verdict, request: &Request) -> Outcome {
    if request.claims.is_empty() {
        return Outcome::NotChecked("the request names no claims".into());
    }
    // Claims were asked for: whatever keeps the check from running fails
    // it (fail closed), since they cannot be shown to be disclosed.
    if verdict.check(CheckName::Disclosures) != Some(&Outcome::Pass) {
        return Outcome::Fail(
            "the claims asked for cannot be checked: the disclosures did not process".into(),
        );
    }
    // Revealed again for the paths as issued, which the verdict's
    // processed claims (arrays closed up) no longer show. It succeeded once
    // already, within the SD-JWT size bounds.
    let paths = match sd_jwt.reveal() {
        Ok(revealed) => revealed.paths,
        Err(e) => {
            return Outcome::Fail(format!(
                "the claims asked for cannot be checked: disclosures: {e}"
            ))
        }
    };
    let missing: Vec<String> = request
        .claims
        .iter()
        .filter(|p| !disclosed(sd_jwt, &paths, p))
        .map(|p| {
            if p.segments().is_empty() {
                "(the empty path)".to_owned()
            } else {
                p.to_string()
            }
        })
        .collect();
    if missing.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("not disclosed: {}", missing.join(", ")))
    }
}

/// Whether the claim at `wanted` (indexes as issued) is in the
/// presentation: below the deepest disclosure at or above it (or the
/// issuer-signed payload, when there is none), every step is a plain
/// member or array element, not a digest. The empty path (the root) is
/// never disclosed.
fn disclosed(sd_jwt: &SdJwt, paths: &[ClaimPath], wanted: &ClaimPath) -> bool {
    let deepest = paths
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_prefix_of(wanted))
        .max_by_key(|(_, d)| d.segments().len());
    let (mut at, rest) = match deepest {
        Some((i, d)) => match sd_jwt.disclosures().get(i) {
            Some(disclosure) => (disclosure.value(), &wanted.segments()[d.segments().len()..]),
            None => return false,
        },
        None => {
            // The root (an empty path) is never disclosed: asking for it
            // must not pass for whatever the presentation holds.
            let Some((Segment::Key(first), rest)) = wanted.segments().split_first() else {
                return false;
            };
            match plain_member(sd_jwt.payload(), first) {
                Some(v) => (v, rest),
                None => return false,
            }
        }
    };
    for segment in rest {
        let next = match (segment, at) {
            (Segment::Key(k), Value::Object(o)) => plain_member(o, k),
            (Segment::Index(i), Value::Array(items)) => items.get(*i).filter(
                |item| !matches!(item, Value::Object(o) if o.contains_key(crate::sd_jwt::ELLIPSIS)),
            ),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    true
}

/// A member of an issuer-signed object that is not SD-JWT machinery.
fn plain_member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name == crate::sd_jwt::SD || name == crate::sd_jwt::SD_ALG {
        return None;
    }
    object.get(name)
}

/// Why the credential's kind fails the [`CheckName::Kind`] check.
#[derive(Debug, thiserror::Error)]
enum KindError {
    /// No known template has the credential's `vct`.
    #[error("vct {vct:?} is not a kind this verifier knows")]
    Unknown { vct: String },
    /// The template's kind is not among the policy's accepted kinds.
    #[error("kind {kind:?} (vct {vct:?}) is not accepted here; accepted: {}", .accepted.join(", "))]
    NotAccepted {
        kind: String,
        vct: String,
        accepted: Vec<String>,
    },
}

fn check_kind<'t>(
    verdict: &Verdict,
    template: Option<&'t Template>,
    policy: &Policy,
) -> Result<&'t Template, KindError> {
    let vct = verdict.vct.as_deref().unwrap_or_default();
    let template = template.ok_or_else(|| KindError::Unknown {
        vct: vct.to_owned(),
    })?;
    if !policy.accepted_kinds.is_empty() && !policy.accepted_kinds.contains(&template.kind) {
        return Err(KindError::NotAccepted {
            kind: template.kind.clone(),
            vct: vct.to_owned(),
            accepted: policy.accepted_kinds.clone(),
        });
    }
    Ok(template)
}

/// When the credential was issued, as far as the verifier knows.
#[derive(Debug, Clone, Copy)]
enum Issued<'a> {
    /// Proven by the chain: no later than the block that sealed the
    /// credential's anchor.
    Anchored(&'a AnchorRecord),
    /// The credential's own `iat` (the issuer's word), if it has one.
    Claimed(Option<i64>),
}

impl Issued<'_> {
    fn at(self) -> Option<i64> {
        match self {
            Issued::Anchored(record) => Some(record.sealed_time),
            Issued::Claimed(iat) => iat,
        }
    }

    fn describe(self) -> String {
        match self {
            Issued::Anchored(record) => format!(
                "anchored by entry {}, sealed in block {} at {}",
                record.index, record.sealed_height, record.sealed_time
            ),
            Issued::Claimed(Some(iat)) => format!("iat {iat}"),
            Issued::Claimed(None) => "no iat".to_owned(),
        }
    }
}

/// Checks `proof` against the view's record of the anchor entry it names:
/// an anchor by the credential's issuer (a key of its rotation history),
/// of a batch of the proof's size, whose root the credential's
/// issuer-signed JWT leads to, on the credential's status list, whose
/// status index range holds the credential's index.
/// Why an anchor proof fails the [`CheckName::Anchor`] check.
#[derive(Debug, thiserror::Error)]
enum AnchorCheckError {
    /// The proof names an entry that is not an anchor in the view.
    #[error("chain entry {index} is not an anchor this view knows (as of height {height})")]
    Unknown { index: u64, height: u64 },
    /// The anchor is another issuer's.
    #[error("anchor entry {index} was written by {author}, not by the credential's issuer {iss}")]
    OtherIssuer {
        index: u64,
        author: String,
        iss: String,
    },
    /// The proof's batch size is not the anchor's count.
    #[error(
        "the proof is for a batch of {proof} credentials; anchor entry {index} anchors {anchored}"
    )]
    BatchSize {
        index: u64,
        proof: u64,
        anchored: u64,
    },
    /// The anchor entry's root is not 64 hex digits.
    #[error("anchor entry {index} has no valid batch root")]
    Root { index: u64 },
    /// The audit path does not lead from the credential to the root.
    #[error("{source}: the credential is not in the batch of anchor entry {index}")]
    NotInBatch {
        index: u64,
        #[source]
        source: AnchorError,
    },
    /// The credential names another status list than the anchor.
    #[error(
        "the credential's status list {list} is not the list {anchored} of anchor entry {index}"
    )]
    OtherList {
        index: u64,
        list: String,
        anchored: String,
    },
    /// The credential's status index is outside the anchored range.
    #[error(
        "the credential's status index {idx} is outside the batch of anchor entry {index} \
         (indexes {first}..={last})"
    )]
    OutsideRange {
        index: u64,
        idx: u64,
        first: u64,
        last: u64,
    },
}

fn check_anchor<'v>(
    view: &'v ChainView,
    verdict: &Verdict,
    iss: &str,
    text: &str,
    proof: &AnchorProof,
) -> Result<&'v AnchorRecord, AnchorCheckError> {
    let index = proof.entry_index();
    let record = view.anchor(index).ok_or(AnchorCheckError::Unknown {
        index,
        height: view.height(),
    })?;
    if !view.same_issuer(&record.issuer, iss) {
        return Err(AnchorCheckError::OtherIssuer {
            index,
            author: record.issuer.clone(),
            iss: iss.to_owned(),
        });
    }
    if proof.batch_size() != record.count {
        return Err(AnchorCheckError::BatchSize {
            index,
            proof: proof.batch_size(),
            anchored: record.count,
        });
    }
    let root = anchor::root_from_hex(&record.root).ok_or(AnchorCheckError::Root { index })?;
    proof
        .verify(anchor::leaf(text).as_bytes(), root)
        .map_err(|source| AnchorCheckError::NotInBatch { index, source })?;
    if let Some(sref) = verdict.status.as_ref().filter(|s| s.uri != record.list) {
        return Err(AnchorCheckError::OtherList {
            index,
            list: shown_uri(&sref.uri),
            anchored: shown_uri(&record.list),
        });
    }
    if let Some(sref) = verdict
        .status
        .as_ref()
        .filter(|s| !(record.first..=record.last).contains(&s.idx))
    {
        return Err(AnchorCheckError::OutsideRange {
            index,
            idx: sref.idx,
            first: record.first,
            last: record.last,
        });
    }
    Ok(record)
}

fn accreditation(
    view: &ChainView,
    policy: &Policy,
    iss: &str,
    kind: &str,
    issued: Issued<'_>,
) -> Outcome {
    let height = view.height();
    if !policy.trusted_authorities.is_empty() {
        if let Some(untrusted) = view
            .authorities()
            .iter()
            .find(|a| !policy.trusted_authorities.contains(a))
        {
            return Outcome::Fail(format!(
                "the chain's accreditation authority {untrusted} is not one this verifier trusts"
            ));
        }
    }
    let Some(at) = issued.at() else {
        return Outcome::Fail(
            "the credential has no iat, so when it was issued, and whether its issuer was \
             accredited then, is unknown"
                .into(),
        );
    };
    let Some(issuer) = view.issuer(iss) else {
        return Outcome::Fail(format!(
            "{iss} is not an issuer on the chain (as of height {height})"
        ));
    };
    if let Some(period) = view.accreditation(iss, kind, at) {
        // A claimed iat inside a period that has ended proves nothing: a
        // withdrawn issuer (or a rotated-out key) could write any iat.
        let still = issuer
            .periods
            .last()
            .is_some_and(|p| p.until.is_none() && p.kinds.iter().any(|k| k == kind));
        return match (issued, period.until) {
            (Issued::Claimed(_), Some(until)) if !still => Outcome::Fail(format!(
                "{} ({iss}) was accredited for {kind:?} at its iat {at}, but that \
                 accreditation ended at {until} and it is not accredited for {kind:?} as of \
                 height {height}; iat is the issuer's own word, so only an anchor proof sealed \
                 before {until} shows the credential was issued before",
                issuer.name
            )),
            _ => Outcome::Pass,
        };
    }
    let periods: Vec<String> = issuer
        .periods
        .iter()
        .map(|p| {
            let until = p.until.map_or("on".to_owned(), |u| format!("until {u}"));
            format!("{} from {} {until}", p.kinds.join("+"), p.from)
        })
        .collect();
    Outcome::Fail(format!(
        "{} ({iss}) was not accredited for {kind:?} at issuance ({}); its accreditation \
         periods as of height {height}: {}",
        issuer.name,
        issued.describe(),
        if periods.is_empty() {
            "none".to_owned()
        } else {
            periods.join("; ")
        }
    ))
}

fn key_in_use(view: &ChainView, iss: &str, issued: Issued<'_>) -> Outcome {
    let Some(rotation) = view.rotation(iss) else {
        return if view.issuer(iss).is_some() {
            Outcome::Pass
        } else {
            Outcome::NotChecked(format!("{iss} is not an issuer key on the chain"))
        };
    };
    match issued {
        Issued::Claimed(None) => Outcome::Fail(format!(
            "the key was rotated to {} at {}, and the credential has no iat to show it was \
             issued before",
            rotation.new_key, rotation.time
        )),
        Issued::Claimed(Some(at)) if at >= rotation.time => Outcome::Fail(format!(
            "the key was rotated out (to {}) at {}, before issuance (iat {at})",
            rotation.new_key, rotation.time
        )),
        Issued::Claimed(Some(at)) => Outcome::Fail(format!(
            "the key was rotated out (to {}) at {}; the credential's iat {at} is before, but \
             iat is the key holder's own word, so only an anchor proof sealed before {} shows \
             it was issued before the rotation",
            rotation.new_key, rotation.time, rotation.time
        )),
        Issued::Anchored(record) if record.sealed_time >= rotation.time => Outcome::Fail(format!(
            "the key was rotated out (to {}) at {}, before issuance ({})",
            rotation.new_key,
            rotation.time,
            issued.describe()
        )),
        Issued::Anchored(_) => Outcome::Pass,
    }
}

fn check_status(
    view: &ChainView,
    policy: &Policy,
    verdict: &Verdict,
    iss: &str,
    now: i64,
) -> (Outcome, Option<Status>) {
    let Some(sref) = &verdict.status else {
        let outcome = if policy.require_status {
            Outcome::Fail("no status list: cannot be revoked".into())
        } else {
            Outcome::NotChecked("the credential names no status list".into())
        };
        return (outcome, None);
    };
    // Written only for a failure.
    let at = || {
        format!(
            "list {} index {} as of height {}, time {}",
            shown_uri(&sref.uri),
            sref.idx,
            view.height(),
            view.time()
        )
    };
    match view.status(iss, &sref.uri, sref.idx, now) {
        Ok(status) => {
            let outcome = match status {
                Status::Valid => Outcome::Pass,
                Status::Revoked => Outcome::Fail(format!("revoked: {}", at())),
                Status::Suspended => Outcome::Fail(format!("suspended: {}", at())),
                Status::UnknownList => Outcome::Fail(format!(
                    "unknown: no status token is published for the {}",
                    at()
                )),
                Status::Other(v) => Outcome::Fail(format!("status value {v}: {}", at())),
            };
            (outcome, Some(status))
        }
        Err(e) => (
            Outcome::Fail(format!("{e} (as of height {})", view.height())),
            None,
        ),
    }
}

/// Whether a credential's status index lies in an anchored batch of its
/// list.
enum InBatch {
    /// In the range of some anchor of the list the view holds.
    Inside,
    /// The view holds anchors of the list, and the index is in none of
    /// their ranges: no anchored batch holds such a credential.
    Outside(String),
    /// The view holds no anchor of the list, so the index cannot be tied
    /// to an anchored batch.
    NoAnchors(String),
}

/// Most anchored ranges a message lists.
const MAX_SHOWN_RANGES: usize = 5;

fn in_batch(view: &ChainView, sref: &StatusRef) -> InBatch {
    let mut ranges = Vec::new();
    let mut total = 0usize;
    for record in view.anchors_of(&sref.uri) {
        if (record.first..=record.last).contains(&sref.idx) {
            return InBatch::Inside;
        }
        total += 1;
        if ranges.len() < MAX_SHOWN_RANGES {
            ranges.push(format!(
                "{}..={} (entry {})",
                record.first, record.last, record.index
            ));
        }
    }
    let list = shown_uri(&sref.uri);
    if total == 0 {
        return InBatch::NoAnchors(format!(
            "the view holds no anchor of list {list}, so index {} is tied to no anchored batch",
            sref.idx
        ));
    }
    let more = if total > ranges.len() {
        format!(" and {} more", total - ranges.len())
    } else {
        String::new()
    };
    InBatch::Outside(format!(
        "index {} of list {list} is in no anchored batch: the list's {total} anchor(s) as of \
         height {} use indexes {}{more}",
        sref.idx,
        view.height(),
        ranges.join(", ")
    ))
}

fn freshness(view: &ChainView, policy: &Policy, now: i64) -> Outcome {
    let age = view.age(now);
    let leeway = i64::try_from(policy.leeway).unwrap_or(i64::MAX);
    let max = i64::try_from(policy.max_replica_age).unwrap_or(i64::MAX);
    let at = format!("block {} sealed at {}", view.height(), view.time());
    if age < leeway.saturating_neg() {
        Outcome::Fail(format!("{at} is {} s in the future", age.saturating_neg()))
    } else if age > max {
        Outcome::Fail(format!(
            "the replica is stale: {at} is {age} s old; the policy allows {max} s"
        ))
    } else {
        Outcome::Pass
    }
}

/// Most (view, trust policy) pairs [`cosignatures`] remembers.
const KNOWN_VIEWS: usize = 8;

/// A view's cosignature check under one trust policy, remembered.
struct CosignedView {
    note: String,
    block: Block,
    trust: TrustPolicy,
    outcome: Outcome,
    cosigned_by: Vec<String>,
}

/// The cosignature checks of the views verified against last, newest
/// last. Checking a block's signatures (the node's and each witness's) is
/// about a third of the curve work of verifying a presentation, and every
/// presentation checked against one view would repeat it. An entry is
/// found only for the same signed note, the same block and the same trust
/// policy (node key, witnesses, need), which is everything the check reads,
/// so a remembered result is exactly the one checking again gives, and no
/// result made under one policy is ever used under another.
static COSIGNED: Mutex<Vec<CosignedView>> = Mutex::new(Vec::new());

fn same_trust(a: &TrustPolicy, b: &TrustPolicy) -> bool {
    a.origin() == b.origin()
        && a.node_key() == b.node_key()
        && a.witnesses() == b.witnesses()
        && a.need() == b.need()
}

/// The view's cosignature check under `trust`: [`check_cosignatures`],
/// made once per view and policy.
fn cosignatures(view: &ChainView, trust: &TrustPolicy) -> (Outcome, Vec<String>) {
    let found = |known: &Vec<CosignedView>| {
        known
            .iter()
            .find(|c| {
                c.note == view.note() && c.block == *view.block() && same_trust(&c.trust, trust)
            })
            .map(|c| (c.outcome.clone(), c.cosigned_by.clone()))
    };
    // A panic elsewhere while holding the lock leaves the list whole
    // (pushes and removes do not panic halfway): a poisoned lock is used as
    // it is.
    if let Some(known) = found(&COSIGNED.lock().unwrap_or_else(PoisonError::into_inner)) {
        return known;
    }
    let (outcome, cosigned_by) = check_cosignatures(view, trust);
    let mut known = COSIGNED.lock().unwrap_or_else(PoisonError::into_inner);
    if found(&known).is_none() {
        if known.len() >= KNOWN_VIEWS {
            known.remove(0);
        }
        known.push(CosignedView {
            note: view.note().to_owned(),
            block: view.block().clone(),
            trust: trust.clone(),
            outcome: outcome.clone(),
            cosigned_by: cosigned_by.clone(),
        });
    }
    (outcome, cosigned_by)
}

fn check_cosignatures(view: &ChainView, trust: &TrustPolicy) -> (Outcome, Vec<String>) {
    let signed = match trust.with_need(0).verify(view.note().as_bytes()) {
        Ok(signed) => signed,
        Err(e) => {
            return (
                Outcome::Fail(format!(
                    "block {} does not verify under this verifier's trust: {e}",
                    view.height()
                )),
                Vec::new(),
            )
        }
    };
    if signed.block != *view.block() {
        return (
            Outcome::Fail(format!(
                "the view's signed note is not its block {}",
                view.height()
            )),
            Vec::new(),
        );
    }
    let need = trust.need();
    let got = signed.cosigned_by.len();
    let outcome = if got < need {
        Outcome::Fail(format!(
            "block {} carries {got} valid witness cosignature(s) ({}); {need} needed",
            view.height(),
            if got == 0 {
                "none".to_owned()
            } else {
                signed.cosigned_by.join(", ")
            }
        ))
    } else if need == 0 {
        Outcome::NotChecked("the policy needs no witness cosignature".into())
    } else {
        Outcome::Pass
    };
    (outcome, signed.cosigned_by)
}

/// The processed claims, split for display.
struct Split {
    /// Subject claims the template lists, labelled, in template order
    /// (every subject claim when there is no template).
    listed: Vec<DisclosedClaim>,
    /// Subject claims the template does not list, as they come.
    unlisted: Vec<DisclosedClaim>,
    /// The SD-JWT's internal fields.
    internal: Map<String, Value>,
}

/// Splits the processed claims into the subject claims the template lists
/// (labelled), those it does not list, and the SD-JWT's internal fields.
fn split_claims(claims: &Map<String, Value>, template: Option<&Template>) -> Split {
    // Each made once at its largest size rather than regrown.
    let mut internal = Map::with_capacity(RESERVED_CLAIMS.len().min(claims.len()));
    let mut listed: Vec<(usize, DisclosedClaim)> = Vec::with_capacity(claims.len());
    let mut unlisted = Vec::new();
    for (name, value) in claims {
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            internal.insert(name.clone(), value.clone());
            continue;
        }
        let field =
            template.and_then(|t| t.fields.iter().enumerate().find(|(_, f)| f.claim == *name));
        let bare = || DisclosedClaim {
            name: name.clone(),
            label: name.clone(),
            value: value.clone(),
            items: Vec::new(),
        };
        match (template, field) {
            (_, Some((position, f))) => listed.push((position, labelled(name, value, f))),
            // No template, no title to show them under: all are plain.
            (None, None) => listed.push((usize::MAX, bare())),
            (Some(_), None) => unlisted.push(bare()),
        }
    }
    // Template order.
    listed.sort_by_key(|(position, _)| *position);
    Split {
        listed: listed.into_iter().map(|(_, c)| c).collect(),
        unlisted,
        internal,
    }
}

/// The claim `name` with its template field `field`'s labels.
fn labelled(name: &str, value: &Value, field: &Field) -> DisclosedClaim {
    let items = match value {
        Value::Array(items) if field.kind == FieldType::List => items
            .iter()
            .filter_map(Value::as_object)
            .map(|item| {
                item.iter()
                    .map(|(k, v)| DisclosedClaim {
                        name: k.clone(),
                        label: field.item(k).map_or_else(|| k.clone(), |i| i.label.clone()),
                        value: v.clone(),
                        items: Vec::new(),
                    })
                    .collect()
            })
            .collect(),
        _ => Vec::new(),
    };
    DisclosedClaim {
        name: name.to_owned(),
        label: field.label.clone(),
        value: value.clone(),
        items,
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn the_holder_did_is_the_one_its_jwk_reads_as_whether_or_not_the_binding_read_it() {
        let fixture = crate::sample::bench_fixture(&mut StdRng::seed_from_u64(3));
        let expected = DidKey::from_public_key(&fixture.holder.verifying_key())
            .as_str()
            .to_owned();
        let options = VerifyOptions::new(
            crate::sample::BENCH_NOW,
            KeyBinding::Required {
                aud: crate::sample::BENCH_AUD.into(),
                nonce: crate::sample::BENCH_NONCE.into(),
                max_age: 300,
            },
        );
        let (sd_jwt, verdict) = crate::vc::verify_parsed(&fixture.presentation, &options).unwrap();
        assert_eq!(
            verdict.check(CheckName::HolderBinding),
            Some(&Outcome::Pass)
        );
        let internal = split_claims(&verdict.claims, None).internal;
        // The binding read the key: its x, not decompressed again.
        assert_eq!(
            holder_did(&sd_jwt, &verdict, &internal),
            Some(expected.clone())
        );
        // It did not: read from the JWK, the same did.
        let mut failed = verdict.clone();
        replace(
            &mut failed,
            CheckName::HolderBinding,
            Outcome::Fail("for the test".into()),
        );
        assert_eq!(holder_did(&sd_jwt, &failed, &internal), Some(expected));
        // A processed cnf other than the payload's is read on its own: here
        // one whose x is not a point, which gives no holder.
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|raw| ed25519_dalek::VerifyingKey::from_bytes(raw).is_err())
            .unwrap();
        let mut other = internal.clone();
        other.insert(
            "cnf".into(),
            serde_json::json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": crate::b64::encode(not_a_point)}}),
        );
        assert_eq!(holder_did(&sd_jwt, &verdict, &other), None);
        // No cnf, no holder.
        let mut none = internal;
        none.remove("cnf");
        assert_eq!(holder_did(&sd_jwt, &verdict, &none), None);
    }
}
