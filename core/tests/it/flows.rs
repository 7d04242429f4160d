//! EdDSA round trips: issue, present, bind, verify.

use serde_json::{json, Value};
use vouch_core::jws::PublicKey;
use vouch_core::sd_jwt::{self, Concealment, KeyBinding, PresentError, SdJwt, VerifyOptions};
use vouch_core::vc::{self, CredentialRequest, IssueError};
use vouch_core::{CheckName, ClaimPath, Outcome};

use crate::common::*;

#[test]
fn transcript_presentation_verifies_and_discloses_only_chosen_courses() {
    let text = presentation();
    let verdict = vc::verify_presentation(&text, &request(), NOW).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    for check in [
        CheckName::IssuerSignature,
        CheckName::Format,
        CheckName::Disclosures,
        CheckName::Validity,
        CheckName::HolderBinding,
        CheckName::Audience,
        CheckName::Nonce,
    ] {
        assert_eq!(verdict.check(check), Some(&Outcome::Pass), "{check:?}");
    }
    let courses = verdict.claims["courses"].as_array().unwrap();
    let codes: Vec<&str> = courses
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CS101", "CS201", "CS204"]);
    assert_eq!(verdict.claims["institution"], "University of Example");
    for hidden in vouch_core::sample::TRANSCRIPT_SUBJECT_SD {
        assert!(
            !verdict.claims.contains_key(hidden),
            "{hidden} must stay hidden"
        );
    }
    assert_eq!(verdict.issuer.as_deref(), Some(issuer().did().as_str()));
    assert_eq!(
        verdict.vct.as_deref(),
        Some(vouch_core::sample::TRANSCRIPT_VCT)
    );
    assert_eq!(verdict.status.as_ref().unwrap().idx, 4711);
    // The text is canonical: parse → serialize is the identity.
    assert_eq!(SdJwt::parse(&text).unwrap().serialize(), text);
}

#[test]
fn full_credential_reveals_everything() {
    let cred = transcript(2);
    assert_eq!(cred.disclosures().len(), 18);
    let revealed = cred.reveal().unwrap();
    let mut expected = vouch_core::sample::transcript_claims(7);
    for (k, v) in &expected.clone() {
        assert_eq!(revealed.claims.get(k), Some(v), "{k}");
    }
    expected.clear();
    // The issuer-signed payload shows no claim value that was concealed.
    let payload = String::from_utf8(cred.jwt().payload().to_vec()).unwrap();
    assert!(!payload.contains("Student 7") && !payload.contains("CS101"));
    // _sd digests are sorted, so their order says nothing.
    let sd: Vec<&str> = cred.payload()["_sd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut sorted = sd.clone();
    sorted.sort_unstable();
    assert_eq!(sd, sorted);
}

#[test]
fn nested_and_decoys() {
    let claims = json!({
        "address": {"street": "Main St 1", "city": "Utrecht", "country": "NL"},
        "tags": ["a", "b", "c"],
        "name": "Ada"
    });
    let spec = Concealment {
        paths: [
            "/address",
            "/address/street",
            "/address/city",
            "/tags/1",
            "/name",
        ]
        .iter()
        .map(|p| ClaimPath::parse(p).unwrap())
        .collect(),
        max_decoys: 5,
    };
    let Value::Object(claims) = claims else {
        unreachable!()
    };
    let issuer = issuer();
    let cred = SdJwt::issue(
        claims,
        &spec,
        "example+sd-jwt",
        &issuer.did().verification_method(),
        issuer.signing_key(),
        &mut rng(9),
    )
    .unwrap();
    assert_eq!(cred.disclosures().len(), 5);
    // Disclose only the city: the address disclosure comes along, the street does not.
    let p = cred
        .present(&[ClaimPath::parse("/address/city").unwrap()])
        .unwrap();
    assert_eq!(p.disclosures().len(), 2);
    let mut options = VerifyOptions::new(NOW, KeyBinding::Optional);
    options.issuer_key = Some(PublicKey::Ed25519(issuer.signing_key().verifying_key()));
    let verdict = sd_jwt::verify_parsed(&p, &options).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    assert_eq!(
        Value::Object(verdict.claims.clone()),
        json!({"address": {"city": "Utrecht", "country": "NL"}, "tags": ["a", "c"]})
    );
    // Disclosing the address discloses everything beneath it.
    let p = cred
        .present(&[ClaimPath::parse("/address").unwrap()])
        .unwrap();
    assert_eq!(p.disclosures().len(), 3);
}

#[test]
fn present_rejects_unknown_paths() {
    let cred = transcript(3);
    let err = cred.present(&paths(&["/courses/12"])).unwrap_err();
    assert_eq!(
        err,
        PresentError::NoSuchClaim(ClaimPath::parse("/courses/12").unwrap())
    );
    assert!(cred.present(&paths(&["/nickname"])).is_err());
}

#[test]
fn issue_rejects_reserved_and_missing() {
    let mut req = CredentialRequest {
        vct: "x".into(),
        iat: NOW,
        exp: None,
        holder: PublicKey::Ed25519(holder().verifying_key()),
        status: None,
        claims: serde_json::Map::new(),
        concealment: Concealment {
            paths: paths(&["/nope"]),
            max_decoys: 0,
        },
    };
    assert!(matches!(
        vc::issue(req.clone(), &issuer(), &mut rng(1)),
        Err(IssueError::Conceal(
            vouch_core::sd_jwt::ConcealError::NotFound(_)
        ))
    ));
    req.concealment.paths.clear();
    req.claims.insert("cnf".into(), json!(1));
    assert_eq!(
        vc::issue(req.clone(), &issuer(), &mut rng(1)).unwrap_err(),
        IssueError::ReservedClaim("cnf".into())
    );
    req.claims.clear();
    req.claims.insert("a".into(), json!(1));
    req.concealment.paths = paths(&["/iss"]);
    assert_eq!(
        vc::issue(req.clone(), &issuer(), &mut rng(1)).unwrap_err(),
        IssueError::ReservedClaim("iss".into())
    );
}

#[test]
fn issuance_is_deterministic_for_a_seed() {
    assert_eq!(transcript(5).serialize(), transcript(5).serialize());
    assert_ne!(transcript(5).serialize(), transcript(6).serialize());
}
