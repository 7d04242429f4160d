//! `iat` may be selectively disclosed (RFC 9901 §4.1, SD-JWT VC §3.2.2):
//! a withheld `iat` is reported as not checked, never passed; a disclosed
//! one is checked.

use serde_json::json;
use vouch_core::sd_jwt::{self, KeyBinding};
use vouch_core::{CheckName, Outcome, SdJwt};

use crate::common::*;

fn validity(sd: &SdJwt, disclose: &[&str]) -> Outcome {
    let text = sd.present(&paths(disclose)).unwrap().serialize();
    let verdict = sd_jwt::verify(&text, &options(KeyBinding::Optional)).unwrap();
    assert_eq!(
        verdict.check(CheckName::Disclosures),
        Some(&Outcome::Pass),
        "{verdict:?}"
    );
    verdict.check(CheckName::Validity).unwrap().clone()
}

// --- 1. A withheld iat -------------------------------------------------

#[test]
fn fail_withheld_future_iat_is_reported_not_passed() {
    // Issued a day in the future, with iat selectively disclosable (which
    // RFC 9901 and SD-JWT VC allow).
    let sd = issue_plain(minimal_claims(Some(NOW + 86_400)), &["/iat", "/name"]);
    match validity(&sd, &[]) {
        Outcome::NotChecked(why) => assert!(why.contains("iat"), "{why}"),
        other => panic!("a withheld iat must not pass: {other:?}"),
    }
    // Withholding only the other claim still leaves iat unknown.
    assert!(matches!(validity(&sd, &["/name"]), Outcome::NotChecked(_)));
    // Disclosed, the future iat fails.
    match validity(&sd, &["/iat"]) {
        Outcome::Fail(why) => assert!(why.contains("issued in the future"), "{why}"),
        other => panic!("a disclosed future iat must fail: {other:?}"),
    }
}

#[test]
fn disclosed_or_plain_iat_is_checked_and_an_absent_one_is_absent() {
    let past = issue_plain(minimal_claims(Some(NOW - 10)), &["/iat", "/name"]);
    assert_eq!(validity(&past, &["/iat"]), Outcome::Pass);
    assert_eq!(validity(&past, &["/iat", "/name"]), Outcome::Pass);
    // A plain iat, with another claim withheld.
    let plain = issue_plain(minimal_claims(Some(NOW + 86_400)), &["/name"]);
    assert!(matches!(validity(&plain, &[]), Outcome::Fail(_)));
    let plain = issue_plain(minimal_claims(Some(NOW - 10)), &["/name"]);
    assert_eq!(validity(&plain, &[]), Outcome::Pass);
    // No iat and nothing concealed at the top: there is no iat to check.
    let none = issue_plain(minimal_claims(None), &[]);
    assert_eq!(validity(&none, &[]), Outcome::Pass);
    // No iat, and a claim withheld: it may be iat.
    let hidden = issue_plain(minimal_claims(None), &["/name"]);
    assert!(matches!(validity(&hidden, &[]), Outcome::NotChecked(_)));
    assert_eq!(validity(&hidden, &["/name"]), Outcome::Pass);
}

#[test]
fn fail_expired_credential_fails_even_when_iat_is_withheld() {
    let mut c = minimal_claims(Some(NOW - 10));
    c["exp"] = json!(NOW - 1000);
    let sd = issue_plain(c, &["/iat"]);
    assert!(matches!(validity(&sd, &[]), Outcome::Fail(why) if why.contains("expired")));
}
