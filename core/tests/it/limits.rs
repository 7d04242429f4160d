//! Nothing is issued that verifiers refuse.

use serde_json::{json, Map, Value};
use vouch_core::jws::PublicKey;
use vouch_core::sd_jwt::{ConcealError, Concealment, SdJwt, MAX_SD_JWT_BYTES};
use vouch_core::vc::{self, CredentialRequest, IssueError};

use crate::common::*;

// --- 4. Issuing what verifiers refuse -----------------------------------

#[test]
fn fail_issuing_an_sd_jwt_over_the_parse_limit() {
    let mut big = minimal_claims(Some(NOW));
    big.insert("blob".into(), json!("x".repeat(MAX_SD_JWT_BYTES)));
    let spec = Concealment::default();
    assert!(matches!(
        SdJwt::issue(big, &spec, "dc+sd-jwt", "kid", &issuer_key(), &mut rng(1)),
        Err(ConcealError::TooLarge {
            max: MAX_SD_JWT_BYTES,
            ..
        })
    ));
    // Also through the profile, and also when the bulk is in disclosures.
    let mut claims = sample_claims();
    claims.insert("blob".into(), json!("x".repeat(MAX_SD_JWT_BYTES * 3 / 4)));
    let req = CredentialRequest {
        vct: "https://vouch.example/vct/test".into(),
        iat: NOW,
        exp: None,
        holder: PublicKey::Ed25519(holder().verifying_key()),
        status: None,
        claims,
        concealment: Concealment {
            paths: paths(&["/blob"]),
            max_decoys: 0,
        },
    };
    assert!(matches!(
        vc::issue(req, &issuer(), &mut rng(1)),
        Err(IssueError::Conceal(ConcealError::TooLarge { .. }))
    ));
}

fn sample_claims() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!("Erika"));
    m
}

#[test]
fn an_sd_jwt_just_under_the_limit_issues_and_parses() {
    let mut c = minimal_claims(Some(NOW));
    c.insert("blob".into(), json!("x".repeat(MAX_SD_JWT_BYTES / 2)));
    let sd = issue_plain(c, &[]);
    assert!(sd.serialize().len() <= MAX_SD_JWT_BYTES);
    assert_eq!(SdJwt::parse(&sd.serialize()).unwrap(), sd);
}
