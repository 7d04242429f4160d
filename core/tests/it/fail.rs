//! `fail_*`: presentations that must not verify, each for one reason.

use serde_json::{json, Value};
use vouch_core::jws::Jws;
use vouch_core::sd_jwt::{Disclosure, SdJwt, KB_JWT_TYP};
use vouch_core::vc::{self, PresentationRequest};
use vouch_core::{CheckName, Outcome, Verdict, VerifyError};

use crate::common::*;

/// An SD-JWT VC with this payload (iss, kid, vct, cnf added) and these
/// disclosures, bound by the holder.
fn craft(mut payload: Value, disclosures: &[&Disclosure]) -> String {
    let issuer = issuer();
    let obj = payload.as_object_mut().unwrap();
    obj.insert("iss".into(), json!(issuer.did().as_str()));
    obj.insert("vct".into(), json!("https://vouch.example/vct/test"));
    obj.insert("iat".into(), json!(NOW - 10));
    obj.insert(
        "cnf".into(),
        json!({"jwk": vouch_core::jws::PublicKey::Ed25519(holder().verifying_key()).to_jwk()}),
    );
    let jws = Jws::sign_eddsa(
        &serde_json::to_vec(&payload).unwrap(),
        Some("dc+sd-jwt"),
        Some(&issuer.did().verification_method()),
        issuer.signing_key(),
    );
    let mut text = format!("{}~", jws.as_str());
    for d in disclosures {
        text.push_str(d.as_str());
        text.push('~');
    }
    SdJwt::parse(&text)
        .unwrap()
        .bind(&holder(), AUD, NONCE, NOW)
        .serialize()
}

fn verdict(text: &str) -> Verdict {
    vc::verify_presentation(text, &request(), NOW).unwrap()
}

fn assert_fails(text: &str, check: CheckName, needle: &str) {
    let v = verdict(text);
    assert!(!v.is_valid());
    match v.check(check) {
        Some(Outcome::Fail(why)) => {
            assert!(why.contains(needle), "{check:?}: {why:?} lacks {needle:?}")
        }
        other => panic!("{check:?} did not fail: {other:?}; {:?}", v.checks),
    }
}

fn obj_disclosure(name: &str, value: Value) -> Disclosure {
    Disclosure::new(Some(name.into()), value, &mut rng(name.len() as u64))
}

#[test]
fn control_crafted_presentation_is_valid() {
    let d = obj_disclosure("given_name", json!("Ada"));
    let text = craft(json!({"_sd": [d.digest()]}), &[&d]);
    let v = verdict(&text);
    assert!(v.is_valid(), "{:?}", v.first_failure());
    assert_eq!(v.claims["given_name"], "Ada");
}

#[test]
fn fail_unreferenced_disclosure() {
    let d = obj_disclosure("given_name", json!("Ada"));
    assert_fails(
        &craft(json!({}), &[&d]),
        CheckName::Disclosures,
        "not referenced",
    );
}

#[test]
fn fail_digest_listed_twice() {
    let d = obj_disclosure("given_name", json!("Ada"));
    assert_fails(
        &craft(json!({"_sd": [d.digest(), d.digest()]}), &[&d]),
        CheckName::Disclosures,
        "more than once",
    );
}

#[test]
fn fail_undisclosed_digest_listed_twice() {
    let digest = vouch_core::sd_jwt::digest(b"decoy");
    assert_fails(
        &craft(json!({"_sd": [digest, digest]}), &[]),
        CheckName::Disclosures,
        "more than once",
    );
}

#[test]
fn fail_digest_in_two_places() {
    let d = obj_disclosure("given_name", json!("Ada"));
    let text = craft(
        json!({"_sd": [d.digest()], "address": {"_sd": [d.digest()]}}),
        &[&d],
    );
    assert_fails(&text, CheckName::Disclosures, "more than once");
}

#[test]
fn fail_reserved_name_in_disclosure() {
    let d = obj_disclosure("_sd", json!(["x"]));
    assert_fails(
        &craft(json!({"_sd": [d.digest()]}), &[&d]),
        CheckName::Disclosures,
        "reserved",
    );
    let d = obj_disclosure("...", json!("x"));
    assert_fails(
        &craft(json!({"_sd": [d.digest()]}), &[&d]),
        CheckName::Disclosures,
        "reserved",
    );
}

#[test]
fn fail_array_disclosure_referenced_from_sd() {
    let d = Disclosure::new(None, json!("DE"), &mut rng(1));
    assert_fails(
        &craft(json!({"_sd": [d.digest()]}), &[&d]),
        CheckName::Disclosures,
        "wrong kind",
    );
}

#[test]
fn fail_claim_disclosure_referenced_from_array() {
    let d = obj_disclosure("nationality", json!("DE"));
    assert_fails(
        &craft(json!({"n": [{"...": d.digest()}]}), &[&d]),
        CheckName::Disclosures,
        "wrong kind",
    );
}

#[test]
fn fail_ellipsis_object_with_extra_key() {
    let d = Disclosure::new(None, json!("DE"), &mut rng(1));
    let text = craft(json!({"n": [{"...": d.digest(), "x": 1}]}), &[&d]);
    assert_fails(&text, CheckName::Disclosures, "malformed array element");
}

#[test]
fn fail_disclosed_name_collides_with_plain_claim() {
    let d = obj_disclosure("given_name", json!("Eve"));
    let text = craft(json!({"given_name": "Ada", "_sd": [d.digest()]}), &[&d]);
    assert_fails(&text, CheckName::Disclosures, "both disclosed and plain");
}

#[test]
fn fail_sd_not_an_array() {
    assert_fails(
        &craft(json!({"_sd": "abc"}), &[]),
        CheckName::Disclosures,
        "not an array",
    );
}

#[test]
fn fail_nested_sd_alg() {
    assert_fails(
        &craft(json!({"a": {"_sd_alg": "sha-256"}}), &[]),
        CheckName::Disclosures,
        "reserved",
    );
}

#[test]
fn fail_unknown_sd_alg_cannot_be_checked() {
    let text = craft(json!({"_sd_alg": "sha-256"}), &[]);
    assert!(verdict(&text).is_valid());
    // Same with sha-1: refused as input we cannot check.
    let issuer = issuer();
    let payload = json!({"_sd_alg": "sha-1", "iss": issuer.did().as_str()});
    let jws = Jws::sign_eddsa(
        &serde_json::to_vec(&payload).unwrap(),
        Some("dc+sd-jwt"),
        None,
        issuer.signing_key(),
    );
    let err = vc::verify_presentation(&format!("{}~", jws.as_str()), &request(), NOW).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::Malformed(vouch_core::sd_jwt::SdJwtError::SdAlg(_))
    ));
}

#[test]
fn fail_same_disclosure_sent_twice() {
    let d = obj_disclosure("given_name", json!("Ada"));
    let text = craft(json!({"_sd": [d.digest()]}), &[&d]);
    let (jwt, rest) = text.split_once('~').unwrap();
    let doubled = format!("{jwt}~{}~{rest}", d.as_str());
    assert!(matches!(
        vc::verify_presentation(&doubled, &request(), NOW),
        Err(VerifyError::Malformed(
            vouch_core::sd_jwt::SdJwtError::DuplicateDisclosure(_)
        ))
    ));
}

#[test]
fn fail_expired_and_not_yet_valid() {
    assert_fails(
        &craft(json!({"exp": NOW - 3600}), &[]),
        CheckName::Validity,
        "expired",
    );
    assert_fails(
        &craft(json!({"nbf": NOW + 3600}), &[]),
        CheckName::Validity,
        "not valid before",
    );
    assert_fails(
        &craft(json!({"exp": "soon"}), &[]),
        CheckName::Validity,
        "NumericDate",
    );
}

#[test]
fn fail_kid_of_another_issuer() {
    let text = presentation();
    let sd = SdJwt::parse(&text).unwrap();
    // Re-sign the same payload with another key under the original kid.
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x99; 32]);
    let jws = Jws::sign_eddsa(
        sd.jwt().payload(),
        Some("dc+sd-jwt"),
        sd.jwt().header_str("kid"),
        &other,
    );
    let forged = text.replacen(sd.jwt().as_str(), jws.as_str(), 1);
    assert_fails(&forged, CheckName::IssuerSignature, "does not verify");
}

#[test]
fn fail_kid_not_belonging_to_iss() {
    let sd = SdJwt::parse(&presentation()).unwrap();
    let other = vouch_core::vc::IssuerKey::new(ed25519_dalek::SigningKey::from_bytes(&[0x98; 32]));
    let jws = Jws::sign_eddsa(
        sd.jwt().payload(),
        Some("dc+sd-jwt"),
        Some(&other.did().verification_method()),
        other.signing_key(),
    );
    let forged = presentation().replacen(sd.jwt().as_str(), jws.as_str(), 1);
    assert!(matches!(
        vc::verify_presentation(&forged, &request(), NOW),
        Err(VerifyError::IssuerKey(_))
    ));
}

#[test]
fn fail_no_kb_jwt() {
    let sd = transcript(1).present(&paths(&["/courses/0"])).unwrap();
    assert_fails(&sd.serialize(), CheckName::HolderBinding, "no KB-JWT");
}

#[test]
fn fail_kb_signed_by_another_key() {
    let sd = transcript(1).present(&paths(&["/courses/0"])).unwrap();
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]);
    assert_fails(
        &sd.bind(&other, AUD, NONCE, NOW).serialize(),
        CheckName::HolderBinding,
        "signature",
    );
}

#[test]
fn fail_kb_for_another_presentation() {
    let cred = transcript(1);
    let bound = cred
        .present(&paths(&["/courses/0"]))
        .unwrap()
        .bind(&holder(), AUD, NONCE, NOW)
        .serialize();
    let kb = bound.rsplit('~').next().unwrap();
    let other = cred
        .present(&paths(&["/courses/0", "/gpa"]))
        .unwrap()
        .serialize();
    assert_fails(&format!("{other}{kb}"), CheckName::HolderBinding, "sd_hash");
}

#[test]
fn fail_kb_wrong_audience_nonce_age_typ() {
    let sd = transcript(1).present(&paths(&["/courses/0"])).unwrap();
    assert_fails(
        &sd.clone()
            .bind(&holder(), "https://evil.example", NONCE, NOW)
            .serialize(),
        CheckName::Audience,
        "evil",
    );
    assert_fails(
        &sd.clone().bind(&holder(), AUD, "replayed", NOW).serialize(),
        CheckName::Nonce,
        "replayed",
    );
    assert_fails(
        &sd.clone()
            .bind(&holder(), AUD, NONCE, NOW - 3600)
            .serialize(),
        CheckName::HolderBinding,
        "too old",
    );
    assert_fails(
        &sd.clone()
            .bind(&holder(), AUD, NONCE, NOW + 3600)
            .serialize(),
        CheckName::HolderBinding,
        "future",
    );
    // A KB-JWT with typ JWT.
    let base = sd.serialize();
    let sd_hash = vouch_core::sd_jwt::digest(base.as_bytes());
    let payload = json!({"nonce": NONCE, "aud": AUD, "iat": NOW, "sd_hash": sd_hash});
    let kb = Jws::sign_eddsa(
        &serde_json::to_vec(&payload).unwrap(),
        Some("JWT"),
        None,
        &holder(),
    );
    assert_ne!(Some("JWT"), Some(KB_JWT_TYP));
    assert_fails(
        &format!("{base}{}", kb.as_str()),
        CheckName::HolderBinding,
        "typ",
    );
}

#[test]
fn fail_wrong_typ_is_a_format_failure() {
    let sd = SdJwt::parse(&presentation()).unwrap();
    let issuer = issuer();
    let jws = Jws::sign_eddsa(
        sd.jwt().payload(),
        Some("JWT"),
        Some(&issuer.did().verification_method()),
        issuer.signing_key(),
    );
    let mut text = format!("{}~", jws.as_str());
    for d in sd.disclosures() {
        text.push_str(d.as_str());
        text.push('~');
    }
    let text = SdJwt::parse(&text)
        .unwrap()
        .bind(&holder(), AUD, NONCE, NOW)
        .serialize();
    assert_fails(&text, CheckName::Format, "typ");
}

#[test]
fn fail_request_mismatch_is_not_an_error() {
    let text = presentation();
    let other = PresentationRequest {
        aud: AUD.into(),
        nonce: "x".into(),
        max_age: 300,
    };
    assert!(!vc::verify_presentation(&text, &other, NOW)
        .unwrap()
        .is_valid());
}

#[test]
fn malformed_inputs_are_errors() {
    for bad in [
        "",
        "~",
        "abc",
        "a.b.c~",
        "e30.e30.AA~",
        "~~~",
        "\u{0}\u{ff}~",
    ] {
        assert!(
            vc::verify_presentation(bad, &request(), NOW).is_err(),
            "{bad:?}"
        );
    }
    let text = presentation();
    // An empty disclosure slot.
    let (jwt, rest) = text.split_once('~').unwrap();
    assert!(vc::verify_presentation(&format!("{jwt}~~{rest}"), &request(), NOW).is_err());
}
