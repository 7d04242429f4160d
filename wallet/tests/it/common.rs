//! An issuer for the wallet's tests: a 12-course transcript issued with the
//! built-in template's concealment, bound to a holder DID (core's `sample`).

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{Map, Value};
use vouch_core::sample;
use vouch_core::template::Templates;
use vouch_core::vc::IssuerKey;
use vouch_core::DidKey;

/// Course titles no test ever discloses, to grep for.
pub fn course_title(i: usize) -> String {
    format!("Hidden Topic Number {i}")
}

pub fn transcript_claims(student: &str) -> Map<String, Value> {
    sample::template_transcript_claims(student, "S00042", course_title)
}

pub fn issuer() -> IssuerKey {
    sample::issuer_key()
}

/// A transcript for `holder`, issued at `iat`.
pub fn transcript(holder: &DidKey, student: &str, iat: i64, seed: u64) -> String {
    transcript_of(holder, transcript_claims(student), iat, seed)
}

/// A transcript with these claims.
pub fn transcript_of(holder: &DidKey, claims: Map<String, Value>, iat: i64, seed: u64) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    sample::issue_as(
        template,
        claims,
        holder,
        iat,
        &mut StdRng::seed_from_u64(seed),
    )
    .unwrap()
}
