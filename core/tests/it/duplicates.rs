//! Repeated JSON member names are refused wherever outside JSON is parsed
//! (JWS header, issuer-signed payload, disclosures, KB-JWT, JSON
//! serialization): serde_json keeps the last, another parser the first.
//! Also the JWS size limit.

use serde_json::Value;
use vouch_core::jws::{self, JsonObjectError, Jws, JwsError, MAX_JWS_BYTES};
use vouch_core::sd_jwt::{self, Disclosure, DisclosureError, KeyBinding, SdJwt, SdJwtError};
use vouch_core::vc;
use vouch_core::{b64, CheckName, Outcome, Verdict, VerifyError};

use crate::common::*;

// --- 2. Repeated JSON member names --------------------------------------

fn assert_duplicate(result: Result<(), String>, name: &str) {
    let err = result.expect_err("a repeated member name must be refused");
    assert!(err.contains("occurs twice") && err.contains(name), "{err}");
}

#[test]
fn fail_duplicate_member_in_jws_header() {
    for header in [
        r#"{"alg":"none","alg":"EdDSA"}"#,
        // The same name, escaped: serde_json reads both as "alg".
        r#"{"alg":"EdDSA","\u0061lg":"EdDSA"}"#,
        r#"{"alg":"EdDSA","kid":"a","x":{"y":1},"kid":"b"}"#,
    ] {
        let text = format!("{}.e30.AA", b64::encode(header));
        match Jws::parse(&text) {
            Err(JwsError::Header(why)) => {
                assert!(matches!(why, JsonObjectError::DuplicateMember(_)), "{why}");
                assert!(why.to_string().contains("occurs twice"), "{why}");
            }
            other => panic!("{header}: {other:?}"),
        }
    }
}

/// A compact SD-JWT whose issuer-signed payload is exactly `payload`.
fn signed_payload(payload: &str) -> String {
    let jws = Jws::sign_eddsa(
        payload.as_bytes(),
        Some(vc::SD_JWT_VC_TYP),
        Some("kid"),
        &issuer_key(),
    );
    format!("{}~", jws.as_str())
}

#[test]
fn fail_duplicate_member_in_issuer_signed_payload() {
    let iss = issuer().did().as_str().to_owned();
    for (payload, name) in [
        // Which exp holds depends on the parser: refuse both.
        (
            format!(r#"{{"iss":"{iss}","exp":1,"exp":99999999999}}"#),
            "exp",
        ),
        (
            format!(r#"{{"iss":"{iss}","cnf":{{"jwk":{{"x":"A","x":"B"}}}}}}"#),
            "x",
        ),
        (format!(r#"{{"iss":"{iss}","_sd":[],"_sd":["x"]}}"#), "_sd"),
    ] {
        let text = signed_payload(&payload);
        let result = SdJwt::parse(&text).map(drop).map_err(|e| match e {
            SdJwtError::Payload(why) => why,
            other => panic!("{payload}: {other:?}"),
        });
        assert_duplicate(result, name);
        assert!(matches!(
            sd_jwt::verify(&text, &options(KeyBinding::Optional)),
            Err(VerifyError::Malformed(SdJwtError::Payload(_)))
        ));
    }
}

#[test]
fn fail_duplicate_member_in_disclosure() {
    let iss = issuer().did().as_str().to_owned();
    for (json, name) in [
        (
            r#"["c2FsdHNhbHRzYWx0","address",{"city":"A","city":"B"}]"#,
            "city",
        ),
        (r#"["c2FsdHNhbHRzYWx0",[{"a":1},{"b":2,"b":3}]]"#, "b"),
    ] {
        let encoded = b64::encode(json);
        assert_duplicate(
            Disclosure::parse(&encoded)
                .map(drop)
                .map_err(|e| e.to_string()),
            name,
        );
        assert!(matches!(
            Disclosure::parse(&encoded),
            Err(DisclosureError::DuplicateMember(_))
        ));
        let payload = format!(
            r#"{{"iss":"{iss}","_sd":["{}"],"_sd_alg":"sha-256"}}"#,
            sd_jwt::digest(encoded.as_bytes())
        );
        let text = format!("{}{encoded}~", signed_payload(&payload));
        assert!(matches!(
            SdJwt::parse(&text),
            Err(SdJwtError::Disclosure { index: 0, reason }) if reason.to_string().contains("occurs twice")
        ));
    }
}

#[test]
fn fail_duplicate_member_in_kb_jwt_payload() {
    let presentation = transcript(1)
        .present(&paths(&["/courses/0"]))
        .unwrap()
        .without_kb();
    let sd_hash = sd_jwt::digest(presentation.as_bytes());
    // A verifier reading the first nonce sees another presentation.
    let payload = format!(
        r#"{{"nonce":"stale","aud":"{AUD}","iat":{NOW},"sd_hash":"{sd_hash}","nonce":"{NONCE}"}}"#
    );
    let kb = Jws::sign_eddsa(
        payload.as_bytes(),
        Some(sd_jwt::KB_JWT_TYP),
        None,
        &holder(),
    );
    let text = format!("{presentation}{}", kb.as_str());
    let verdict: Verdict = vc::verify_presentation(&text, &request(), NOW).unwrap();
    match verdict.check(CheckName::HolderBinding) {
        Some(Outcome::Fail(why)) => assert!(why.contains("occurs twice"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!verdict.is_valid());
}

#[test]
fn fail_duplicate_member_in_json_serialization() {
    let compact = transcript(1).present(&[]).unwrap().serialize();
    let mut parts = compact.split(['.', '~']);
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let good = format!(r#"{{"protected":"{h}","payload":"{p}","signature":"{s}"}}"#);
    assert!(SdJwt::from_json_serialization(&good).is_ok());
    let twice =
        format!(r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","payload":"e30"}}"#);
    assert!(matches!(
        SdJwt::from_json_serialization(&twice),
        Err(SdJwtError::Payload(why)) if why.contains("occurs twice")
    ));
}

#[test]
fn same_name_in_different_objects_and_inside_strings_is_fine() {
    for ok in [
        r#"{"a":{"x":1},"b":{"x":2},"x":3}"#,
        r#"[{"x":1},{"x":2}]"#,
        r#"{"a":"}\",{\"a\":1","b":["a","a"],"c":{"a":{"a":{}}}}"#,
        r#"{"a\\":1,"a":2}"#,
        r#"{"\ud83d\ude00":1,"😀x":2}"#,
        r#"{}"#,
        r#"[]"#,
        r#""a""#,
    ] {
        serde_json::from_str::<Value>(ok).unwrap();
        assert_eq!(jws::check_unique_members(ok.as_bytes()), Ok(()), "{ok}");
    }
    let err =
        jws::check_unique_members(br#"{"a":[{"b":1}],"\ud83d\ude00":1,"c":0,"\ud83d\ude00":2}"#)
            .unwrap_err();
    assert_eq!(err.name, "😀");
    // Never panics on what is not JSON.
    for junk in [&b"{\"a"[..], b"\"\\", b"}}]]{", b"{\"a\":1,\"a\\"] {
        let _ = jws::check_unique_members(junk);
    }
}

// --- 3. Jws::parse size -------------------------------------------------

#[test]
fn fail_oversized_jws_is_refused_before_decoding() {
    // Three parts, but the payload is not even base64url: the size is
    // checked first.
    let text = format!("e30.{}.AA", "!".repeat(MAX_JWS_BYTES));
    assert_eq!(
        Jws::parse(&text),
        Err(JwsError::TooLarge {
            len: text.len(),
            max: MAX_JWS_BYTES
        })
    );
}

/// The three JWS fields of a compact presentation.
fn jws_fields(compact: &str) -> (String, String, String) {
    let jwt = compact.split('~').next().unwrap();
    let mut parts = jwt.split('.').map(str::to_owned);
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

#[test]
fn fail_json_serialization_that_would_mean_another_compact_text() {
    let full = transcript(1)
        .present(&paths(&["/courses/0", "/courses/4"]))
        .unwrap();
    let compact = full.clone().bind(&holder(), AUD, NONCE, NOW).serialize();
    let (h, p, s) = jws_fields(&compact);
    let pieces: Vec<&str> = compact.split('~').collect();
    let (disclosures, kb) = (&pieces[1..pieces.len() - 1], pieces[pieces.len() - 1]);
    let list = serde_json::to_string(disclosures).unwrap();
    let good = format!(
        r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","disclosures":{list},"kb_jwt":"{kb}"}}"#
    );
    assert_eq!(
        SdJwt::from_json_serialization(&good).unwrap().serialize(),
        compact
    );
    // One JSON disclosure holding two compact ones.
    let joined = serde_json::to_string(&[disclosures.join("~")]).unwrap();
    let smuggled = format!(
        r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","disclosures":{joined},"kb_jwt":"{kb}"}}"#
    );
    // Disclosures in the header and at the top level.
    let both = format!(
        r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","header":{{"disclosures":[]}},"disclosures":{list}}}"#
    );
    // A kb_jwt that carries a disclosure in front of it.
    let kb_smuggled = format!(
        r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","kb_jwt":"{}~{kb}"}}"#,
        disclosures[0]
    );
    let bad_header =
        format!(r#"{{"protected":"{h}","payload":"{p}","signature":"{s}","header":[]}}"#);
    for (json, why) in [
        (smuggled, "outside base64url"),
        (both, "both in header and at the top level"),
        (kb_smuggled, "outside base64url"),
        (bad_header, "header is not an object"),
    ] {
        match SdJwt::from_json_serialization(&json) {
            Err(SdJwtError::Payload(e)) => assert!(e.contains(why), "{e}"),
            other => panic!("{why}: {:?}", other.map(|sd| sd.serialize())),
        }
    }
}

#[test]
fn fail_two_disclosures_of_one_claim_name() {
    // RFC 9901 7.1 step 3.2.2: a disclosed name that already exists in the
    // object is refused, whether plain (it/fail.rs) or disclosed twice.
    let mut rng = rng(5);
    let a = Disclosure::new(Some("name".into()), "Erika".into(), &mut rng);
    let b = Disclosure::new(Some("name".into()), "Mallory".into(), &mut rng);
    let iss = issuer().did().as_str().to_owned();
    let payload = format!(
        r#"{{"iss":"{iss}","_sd":["{}","{}"],"_sd_alg":"sha-256"}}"#,
        a.digest(),
        b.digest()
    );
    let text = format!("{}{}~{}~", signed_payload(&payload), a.as_str(), b.as_str());
    let verdict = sd_jwt::verify(&text, &options(KeyBinding::Optional)).unwrap();
    match verdict.check(CheckName::Disclosures) {
        Some(Outcome::Fail(why)) => assert!(why.contains("disclosed twice"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fail_duplicate_member_in_a_large_object() {
    // Past the pairwise comparison: 5000 members, the repeat far apart.
    let mut members: Vec<String> = (0..5000).map(|i| format!(r#""m{i}":{i}"#)).collect();
    members.push(r#""m17":"again""#.into());
    let text = format!("{{{}}}", members.join(","));
    serde_json::from_str::<Value>(&text).unwrap();
    let err = jws::check_unique_members(text.as_bytes()).unwrap_err();
    assert_eq!(err.name, "m17");
    assert_eq!(err.at, text.rfind(r#""m17""#).unwrap());
    members.pop();
    let text = format!(r#"[{{{}}},{{"m1":{{"m1":1}}}}]"#, members.join(","));
    assert_eq!(jws::check_unique_members(text.as_bytes()), Ok(()));
}
