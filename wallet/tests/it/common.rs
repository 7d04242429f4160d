//! An issuer for the wallet's tests: a 12-course transcript issued with the
//! built-in template's concealment, bound to a holder DID.

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use vouch_core::jws::PublicKey;
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::DidKey;

/// Course titles no test ever discloses, to grep for.
pub fn course_title(i: usize) -> String {
    format!("Hidden Topic Number {i}")
}

pub fn transcript_claims(student: &str) -> Map<String, Value> {
    let courses: Vec<Value> = (0..12)
        .map(|i| {
            let grade = ["A", "B", "C"][i % 3];
            json!({"code": format!("CS{:03}", 100 + i), "title": course_title(i),
                   "credits": 6, "grade": grade, "term": "2025-S1"})
        })
        .collect();
    let claims = json!({
        "institution": "State University", "student_name": student, "student_id": "S00042",
        "programme": "Computer Science", "degree": "BSc", "award_date": "2025-07-15",
        "gpa": 3.4, "courses": courses,
    });
    claims.as_object().unwrap().clone()
}

pub fn issuer() -> IssuerKey {
    IssuerKey::new(SigningKey::from_bytes(&[42; 32]))
}

/// A transcript for `holder`, issued at `iat`.
pub fn transcript(holder: &DidKey, student: &str, iat: i64, seed: u64) -> String {
    transcript_of(holder, transcript_claims(student), iat, seed)
}

/// A transcript with these claims.
pub fn transcript_of(holder: &DidKey, claims: Map<String, Value>, iat: i64, seed: u64) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    let request = CredentialRequest {
        vct: template.vct.clone(),
        iat,
        exp: None,
        holder: PublicKey::Ed25519(*holder.verifying_key()),
        status: None,
        concealment: template.concealment(&claims),
        claims,
    };
    vc::issue(request, &issuer(), &mut StdRng::seed_from_u64(seed))
        .unwrap()
        .serialize()
}
