//! A credential as the wallet holds it: the issuer's SD-JWT VC with every
//! disclosure, the index of the holder key it is bound to, and the anchor
//! proof when the issuer's manifest gave one. What the holder sees of it
//! (title, claims with labels, the paths `--disclose` takes) is computed
//! from the credential and the templates, never stored apart from it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vouch_core::path::Segment;
use vouch_core::sd_jwt::{KeyBinding, VerifyOptions};
use vouch_core::status_list::StatusRef;
use vouch_core::template::{Template, Templates};
use vouch_core::{AnchorProof, CheckName, ClaimPath, DidKey, Outcome, SdJwt};

/// The record stored per credential (sealed in the store).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCredential {
    /// The SD-JWT as issued (`<jwt>~<disclosure>~…~`), every disclosure kept.
    pub sd_jwt: String,
    /// Index of the holder key (`m/7652'/0'/index'`) its `cnf` names.
    pub key_index: u32,
    /// The credential's place in its anchored batch, from the issuer's
    /// manifest.
    pub anchor: Option<AnchorProof>,
    /// When it was imported, Unix seconds.
    pub imported_at: i64,
    /// What `list` shows, read from the credential once at import so a
    /// list does not re-parse every SD-JWT. A record without it (written
    /// before it existed) is read from the SD-JWT.
    #[serde(default)]
    pub listing: Option<Listing>,
}

/// The facts a list shows of a credential, kept beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// The issuer DID.
    pub issuer: String,
    /// `vct`.
    pub vct: String,
    /// `iat`.
    pub issued_at: Option<i64>,
    /// `exp`.
    pub expires_at: Option<i64>,
    /// `status.status_list`.
    pub status: Option<StatusRef>,
    /// The holder-facing title ([`title`]).
    pub title: String,
}

impl Listing {
    /// The listing of a credential with these facts.
    pub fn of(facts: &Facts, template: Option<&Template>) -> Listing {
        Listing {
            issuer: facts.issuer.clone(),
            vct: facts.vct.clone(),
            issued_at: facts.issued_at,
            expires_at: facts.expires_at,
            status: facts.status.clone(),
            title: title(facts, template),
        }
    }
}

/// Why a credential was refused on import.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Not an SD-JWT at all.
    #[error("not an SD-JWT credential: {0}")]
    Parse(#[source] vouch_core::sd_jwt::SdJwtError),
    /// A presentation (it carries a KB-JWT): the wallet keeps credentials
    /// as issued.
    #[error("this is a presentation (it has a key-binding JWT), not a credential as issued")]
    Presentation,
    /// The issuer's signature or the SD-JWT's structure does not check.
    #[error("the credential does not verify: {0}")]
    Invalid(String),
    /// It could not be checked at all (no did:key issuer, bad header).
    #[error("the credential cannot be checked: {0}")]
    Unverifiable(#[source] vouch_core::VerifyError),
    /// A required claim is missing or has the wrong type.
    #[error("the credential has no {0}")]
    Missing(&'static str),
}

/// What the wallet reads from a credential it holds.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The issuer DID (`iss`).
    pub issuer: String,
    /// `vct`.
    pub vct: String,
    /// The holder DID the credential is bound to (`cnf.jwk`).
    pub holder: DidKey,
    /// `iat`, when the issuer wrote one.
    pub issued_at: Option<i64>,
    /// `exp`, when the issuer wrote one.
    pub expires_at: Option<i64>,
    /// `status.status_list`, when present.
    pub status: Option<StatusRef>,
    /// Every claim with every disclosure applied.
    pub claims: Map<String, Value>,
    /// The paths of the claims the holder may withhold, as issued.
    pub disclosable: Vec<ClaimPath>,
}

/// Checks a credential as issued and reads its facts: the issuer's signature
/// and every SD-JWT rule, the SD-JWT VC profile (`vct`, `cnf`), no KB-JWT.
/// Status, accreditation and the anchor are the chain's business and are
/// shown, not required, by the wallet.
///
/// # Errors
/// [`CredentialError`] naming what is wrong.
pub fn read(text: &str, now: i64) -> Result<(SdJwt, Facts), CredentialError> {
    let sd_jwt = SdJwt::parse(text.trim()).map_err(CredentialError::Parse)?;
    if sd_jwt.kb_jwt().is_some() {
        return Err(CredentialError::Presentation);
    }
    let verdict = vouch_core::vc::verify_with(
        &sd_jwt.serialize(),
        &VerifyOptions::new(now, KeyBinding::Optional),
    )
    .map_err(CredentialError::Unverifiable)?;
    // Validity (exp in the past) is shown as "expired", not refused: the
    // holder still owns the record. Every other check must pass.
    let failed: Vec<String> = verdict
        .checks
        .iter()
        .filter(|c| c.name != CheckName::Validity)
        .filter_map(|c| match &c.outcome {
            Outcome::Fail(why) => Some(format!("{:?}: {why}", c.name)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(CredentialError::Invalid(failed.join("; ")));
    }
    let facts = facts_of(&sd_jwt)?;
    Ok((sd_jwt, facts))
}

/// Reads the facts of a credential the wallet stored: it was checked in
/// full on import and its record is authenticated (sealed with its table
/// and id), so only parsing and revealing are repeated here.
///
/// # Errors
/// [`CredentialError`] when the stored text no longer parses.
pub fn read_stored(text: &str) -> Result<Facts, CredentialError> {
    let sd_jwt = SdJwt::parse(text).map_err(CredentialError::Parse)?;
    facts_of(&sd_jwt)
}

fn facts_of(sd_jwt: &SdJwt) -> Result<Facts, CredentialError> {
    let payload = sd_jwt.payload();
    let text_claim = |name: &'static str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(CredentialError::Missing(name))
    };
    let issuer = text_claim("iss")?;
    let vct = text_claim("vct")?;
    let holder =
        holder_did(payload).ok_or(CredentialError::Missing("cnf.jwk Ed25519 holder key"))?;
    let status = match payload.get("status").and_then(|s| s.get("status_list")) {
        None => None,
        Some(list) => Some(
            serde_json::from_value::<StatusRef>(list.clone())
                .map_err(|_| CredentialError::Missing("a well-formed status.status_list"))?,
        ),
    };
    let revealed = sd_jwt
        .reveal()
        .map_err(|e| CredentialError::Invalid(e.to_string()))?;
    Ok(Facts {
        issuer,
        vct,
        holder,
        issued_at: payload.get("iat").and_then(Value::as_i64),
        expires_at: payload.get("exp").and_then(Value::as_i64),
        status,
        claims: revealed.claims,
        disclosable: revealed.paths,
    })
}

/// The did:key of the `cnf.jwk` Ed25519 key.
fn holder_did(payload: &Map<String, Value>) -> Option<DidKey> {
    let jwk = payload.get("cnf")?.get("jwk")?;
    if jwk.get("kty")?.as_str()? != "OKP" || jwk.get("crv")?.as_str()? != "Ed25519" {
        return None;
    }
    let x = vouch_core::b64::decode(jwk.get("x")?.as_str()?).ok()?;
    let bytes: [u8; 32] = x.as_slice().try_into().ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()?;
    Some(DidKey::from_public_key(&key))
}

/// A claim the holder may show or withhold, as `show` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimLine {
    /// The name `--disclose` takes: `degree`, `courses[CS101]`,
    /// `address.city`.
    pub name: String,
    /// The JSON Pointer of the claim as issued.
    pub pointer: String,
    /// The template's label, else the claim name.
    pub label: String,
    /// The value.
    pub value: Value,
    /// Whether the holder may withhold it (else it is always shown).
    pub selective: bool,
}

/// The friendly name of `path`: keys joined by `.`, an array element by the
/// first string field of the item (a course's code) or its index:
/// `courses[CS101]`, `tags[2]`.
pub fn friendly_name(claims: &Map<String, Value>, path: &ClaimPath) -> String {
    let mut out = String::new();
    let mut current: Option<&Value> = None;
    for segment in path.segments() {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
                current = match current {
                    None => claims.get(k),
                    Some(v) => v.get(k),
                };
            }
            Segment::Index(i) => {
                let item = current.and_then(|v| v.get(*i));
                match item.and_then(item_key) {
                    Some(key) => out.push_str(&format!("[{key}]")),
                    None => out.push_str(&format!("[{i}]")),
                }
                current = item;
            }
        }
    }
    out
}

/// The first string member of an object item (a course's code).
fn item_key(item: &Value) -> Option<&str> {
    item.as_object()?.values().find_map(Value::as_str)
}

/// Every claim of the credential as `show` lists it: the top-level claims
/// and each array element, with labels from `template`. Internal SD-JWT
/// fields (`iss`, `iat`, `cnf`, `vct`, `status`, …) are left out.
pub fn claim_lines(facts: &Facts, template: Option<&Template>) -> Vec<ClaimLine> {
    let mut lines = Vec::new();
    for (name, value) in &facts.claims {
        if INTERNAL.contains(&name.as_str()) {
            continue;
        }
        let field = template.and_then(|t| t.field(name));
        let label = field.map_or_else(|| name.clone(), |f| f.label.clone());
        let path = ClaimPath::from_segments(vec![Segment::Key(name.clone())]);
        lines.push(ClaimLine {
            name: name.clone(),
            pointer: path.to_string(),
            label: label.clone(),
            value: value.clone(),
            selective: facts.disclosable.contains(&path),
        });
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                let item_path = path.child(Segment::Index(i));
                lines.push(ClaimLine {
                    name: friendly_name(&facts.claims, &item_path),
                    pointer: item_path.to_string(),
                    label: label.clone(),
                    value: item.clone(),
                    selective: facts.disclosable.contains(&item_path),
                });
            }
        }
    }
    lines
}

/// Claims the SD-JWT and SD-JWT VC formats use for themselves.
pub const INTERNAL: &[&str] = &[
    "iss", "iat", "nbf", "exp", "cnf", "vct", "status", "sub", "jti", "_sd_alg",
];

/// Why a `--disclose` name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscloseError {
    /// No claim by that name; `show` lists the names.
    #[error("no claim {0:?} in this credential (`vouch-wallet show ID` lists them)")]
    NoSuchClaim(String),
    /// An internal field, which the holder cannot choose.
    #[error("{0:?} is not a claim the holder chooses")]
    Internal(String),
}

/// Resolves `--disclose` names (friendly names or JSON Pointers) to claim
/// paths.
///
/// # Errors
/// [`DiscloseError`] for the first name that names no claim.
pub fn resolve(facts: &Facts, names: &[String]) -> Result<Vec<ClaimPath>, DiscloseError> {
    let lines = claim_lines(facts, None);
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            if INTERNAL.contains(&name.trim_start_matches('/')) {
                return Err(DiscloseError::Internal(name.to_owned()));
            }
            lines
                .iter()
                .find(|l| l.name == name || l.pointer == name)
                .and_then(|l| ClaimPath::parse(&l.pointer).ok())
                .ok_or_else(|| DiscloseError::NoSuchClaim(name.to_owned()))
        })
        .collect()
}

/// The holder-facing title: "<degree> <programme> — <institution>" style,
/// from the first present of the template's naming claims, else the
/// template's title, else the `vct`.
pub fn title(facts: &Facts, template: Option<&Template>) -> String {
    let text = |name: &str| facts.claims.get(name).and_then(Value::as_str);
    let what = match (text("degree"), text("programme")) {
        (Some(d), Some(p)) => Some(format!("{d} {p}")),
        _ => ["title", "cover_type"]
            .iter()
            .find_map(|n| text(n).map(str::to_owned)),
    };
    let base = what.or_else(|| template.map(|t| t.title.clone()));
    let from = ["institution", "employer", "insurer"]
        .iter()
        .find_map(|n| text(n));
    let whole = match (base, from) {
        (Some(b), Some(f)) => format!("{b} — {f}"),
        (Some(b), None) => b,
        (None, Some(f)) => f.to_owned(),
        (None, None) => facts.vct.clone(),
    };
    clipped(whole, MAX_TITLE_CHARS)
}

/// The most characters of a title kept (the issuer chooses the claims it
/// is made of, and the wallet stores it beside the credential).
pub const MAX_TITLE_CHARS: usize = 200;

/// `text` cut to `max` characters, the cut marked with `…`.
fn clipped(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((end, _)) => {
            let cut = text[..end]
                .char_indices()
                .next_back()
                .map_or(0, |(last, _)| last);
            format!("{}…", &text[..cut])
        }
    }
}

/// The template for the credential's `vct`, if one is known.
pub fn template_of<'t>(templates: &'t Templates, facts: &Facts) -> Option<&'t Template> {
    templates.by_vct(&facts.vct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_title_is_clipped_on_a_character_boundary() {
        assert_eq!(clipped("short".into(), 10), "short");
        assert_eq!(clipped("exactly10!".into(), 10), "exactly10!");
        assert_eq!(clipped("elevenchars".into(), 10), "elevencha…");
        let wide = "é".repeat(12);
        let cut = clipped(wide, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }
}
