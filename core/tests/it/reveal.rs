//! Hostile disclosures (issue 8, finding 1 and the reserved-claims gap):
//! chains of deeply nested disclosures, signed by a fresh did:key, must be
//! refused with an error on a small thread stack, not abort it; claims that
//! must stay in the signed payload are refused as disclosures.

use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde_json::{json, Map, Value};
use vouch_core::envelope;
use vouch_core::jws::{Jws, PublicKey};
use vouch_core::sd_jwt::{
    self, ConcealError, Concealment, Disclosure, PresentError, RevealError, SdJwt, SdJwtError,
    MAX_DEPTH, MAX_DISCLOSURES, MAX_SD_JWT_BYTES,
};
use vouch_core::vc::{self, CredentialRequest, IssueError, IssuerKey};
use vouch_core::{CheckName, Outcome, VerifyError};

use crate::common::*;

/// The stack of a thread a verifier service might run on.
const SMALL_STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with a 2 MiB stack; a stack overflow aborts the test
/// binary, so returning at all is the first assertion.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `levels` arrays nested around `inner`, built without recursion.
fn nest(levels: usize, inner: Value) -> Value {
    (0..levels).fold(inner, |v, _| Value::Array(vec![v]))
}

/// A fresh issuer nobody has heard of: any did:key can sign.
fn fresh_issuer() -> IssuerKey {
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    IssuerKey::new(SigningKey::from_bytes(&seed))
}

/// An SD-JWT VC signed by `issuer` with `payload` (iss, vct, iat, cnf added)
/// and `disclosures`, bound by the holder for AUD/NONCE at NOW.
fn signed(
    issuer: &IssuerKey,
    mut payload: Map<String, Value>,
    disclosures: &[Disclosure],
) -> String {
    payload.insert("iss".into(), json!(issuer.did().as_str()));
    payload.insert("vct".into(), json!("https://vouch.example/vct/test"));
    payload.insert("iat".into(), json!(NOW - 10));
    payload.insert(
        "cnf".into(),
        json!({"jwk": PublicKey::Ed25519(holder().verifying_key()).to_jwk()}),
    );
    let jws = Jws::sign_eddsa(
        &serde_json::to_vec(&payload).unwrap(),
        Some(vc::SD_JWT_VC_TYP),
        Some(&issuer.did().verification_method()),
        issuer.signing_key(),
    );
    let mut text = format!("{}~", jws.as_str());
    for d in disclosures {
        text.push_str(d.as_str());
        text.push('~');
    }
    // Bound by hand: SdJwt::parse may (rightly) refuse the text.
    let sd_hash = sd_jwt::digest(text.as_bytes());
    let kb = Jws::sign_eddsa(
        &serde_json::to_vec(&json!({"nonce": NONCE, "aud": AUD, "iat": NOW, "sd_hash": sd_hash}))
            .unwrap(),
        Some(sd_jwt::KB_JWT_TYP),
        None,
        &holder(),
    );
    text.push_str(kb.as_str());
    text
}

/// `count` array-element disclosures, each `depth` arrays deep, each holding
/// the digest of the next; the payload's `chain` holds the first.
fn chain(count: usize, depth: usize) -> (Map<String, Value>, Vec<Disclosure>) {
    let mut rng = rng(60);
    let mut disclosures: Vec<Disclosure> = Vec::with_capacity(count);
    let mut inner = json!("bottom");
    for _ in 0..count {
        let d = Disclosure::new(None, nest(depth, inner), &mut rng);
        inner = json!({"...": d.digest()});
        disclosures.push(d);
    }
    disclosures.reverse();
    let mut payload = Map::new();
    payload.insert("chain".into(), Value::Array(vec![inner]));
    (payload, disclosures)
}

/// The attack as reported: 60 chained disclosures × 120 nested arrays.
fn reported_attack() -> String {
    let (payload, disclosures) = chain(60, 120);
    signed(&fresh_issuer(), payload, &disclosures)
}

#[test]
fn fail_reported_deep_disclosure_chain_is_refused_on_a_2_mib_stack() {
    let text = reported_attack();
    assert!(text.len() < 32 * 1024, "{} bytes", text.len());
    let result = on_small_stack(move || vc::verify_presentation(&text, &request(), NOW));
    // Each disclosure alone nests deeper than MAX_DEPTH: refused while parsing.
    match result {
        Err(VerifyError::Malformed(SdJwtError::Disclosure { reason, .. })) => {
            assert!(reason.to_string().contains("deeper"), "{reason}");
        }
        other => panic!("expected a malformed disclosure, got {other:?}"),
    }
}

#[test]
fn fail_reported_attack_through_the_envelope_is_refused_on_a_2_mib_stack() {
    let text = reported_attack();
    let qr = envelope::encode(&text).unwrap();
    let result = on_small_stack(move || {
        let scanned = envelope::decode(&qr).map_err(|e| e.to_string())?;
        vc::verify_presentation(&scanned, &request(), NOW).map_err(|e| e.to_string())
    });
    let err = result.unwrap_err();
    assert!(err.contains("deeper"), "{err}");
}

/// Each disclosure within the bound, the chain far beyond it: the depth is
/// counted through the disclosures and the walk stops before building more.
#[test]
fn fail_chain_of_shallow_disclosures_is_refused_when_revealing() {
    let (payload, disclosures) = chain(60, MAX_DEPTH - 2);
    let text = signed(&fresh_issuer(), payload, &disclosures);
    let for_verify = text.clone();
    let verdict =
        on_small_stack(move || vc::verify_presentation(&for_verify, &request(), NOW)).unwrap();
    assert!(!verdict.is_valid());
    assert_eq!(
        verdict.check(CheckName::IssuerSignature),
        Some(&Outcome::Pass)
    );
    match verdict.check(CheckName::Disclosures) {
        Some(Outcome::Fail(why)) => assert!(why.contains("nest deeper"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(verdict.claims.is_empty());

    // The holder side (present) and reveal itself stop too.
    let outcome = on_small_stack(move || {
        let sd = SdJwt::parse(&text).unwrap();
        (
            sd.reveal().map(|_| ()),
            sd.present(&paths(&["/chain"])).map(|_| ()),
        )
    });
    assert!(
        matches!(outcome.0, Err(RevealError::TooDeep(_))),
        "{outcome:?}"
    );
    assert!(
        matches!(
            outcome.1,
            Err(PresentError::Reveal(RevealError::TooDeep(_)))
        ),
        "{outcome:?}"
    );
}

#[test]
fn nesting_up_to_max_depth_reveals() {
    // Two disclosures, the claim at exactly MAX_DEPTH segments.
    let (payload, disclosures) = chain(2, MAX_DEPTH / 2 - 1);
    let text = signed(&issuer(), payload, &disclosures);
    let verdict = vc::verify_presentation(&text, &request(), NOW).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
}

#[test]
fn forged_signature_is_not_revealed() {
    let (payload, disclosures) = chain(60, MAX_DEPTH - 2);
    let text = signed(&fresh_issuer(), payload, &disclosures);
    // A zero signature in place of the issuer's.
    let (jwt, rest) = text.split_once('~').unwrap();
    let sig_at = jwt.rfind('.').unwrap() + 1;
    let mut forged = text[..sig_at].to_owned();
    forged.push_str(&"A".repeat(86));
    forged.push('~');
    forged.push_str(rest);
    let verdict = vc::verify_presentation(&forged, &request(), NOW).unwrap();
    assert!(matches!(
        verdict.check(CheckName::IssuerSignature),
        Some(Outcome::Fail(_))
    ));
    assert!(matches!(
        verdict.check(CheckName::Disclosures),
        Some(Outcome::NotChecked(_))
    ));
    assert!(verdict.claims.is_empty());
}

#[test]
fn fail_too_many_disclosures_or_bytes_or_a_deep_payload() {
    let mut rng = rng(3);
    let disclosures: Vec<Disclosure> = (0..=MAX_DISCLOSURES)
        .map(|i| Disclosure::new(Some(format!("c{i}")), json!(i), &mut rng))
        .collect();
    let mut payload = Map::new();
    payload.insert(
        "_sd".into(),
        disclosures.iter().map(|d| json!(d.digest())).collect(),
    );
    let text = signed(&issuer(), payload, &disclosures);
    assert_eq!(
        vc::verify_presentation(&text, &request(), NOW),
        Err(VerifyError::Malformed(SdJwtError::TooManyDisclosures(
            MAX_DISCLOSURES + 1
        )))
    );

    let big = format!("{}~", "A".repeat(MAX_SD_JWT_BYTES));
    assert!(matches!(
        SdJwt::parse(&big),
        Err(SdJwtError::TooLarge { .. })
    ));

    let mut payload = Map::new();
    payload.insert("deep".into(), nest(MAX_DEPTH + 1, json!(1)));
    let text = signed(&issuer(), payload, &[]);
    assert_eq!(
        vc::verify_presentation(&text, &request(), NOW),
        Err(VerifyError::Malformed(SdJwtError::PayloadTooDeep))
    );
}

/// A credential whose `status` (or `exp`, or the key beneath `cnf`) is a
/// disclosure: a holder could withhold it and look unrevoked (or unexpired).
#[test]
fn fail_status_as_a_disclosure() {
    let mut rng = rng(9);
    let status = Disclosure::new(
        Some("status".into()),
        json!({"status_list": {"idx": 1, "uri": "https://registry.example/status/1"}}),
        &mut rng,
    );
    let mut payload = Map::new();
    payload.insert("_sd".into(), json!([status.digest()]));
    let text = signed(&issuer(), payload, &[status]);
    let verdict = vc::verify_presentation(&text, &request(), NOW).unwrap();
    assert!(!verdict.is_valid());
    match verdict.check(CheckName::Disclosures) {
        Some(Outcome::Fail(why)) => assert!(why.contains("\"status\""), "{why}"),
        other => panic!("{other:?}"),
    }

    // Beneath a reserved claim counts too: status.status_list concealed.
    let list = Disclosure::new(
        Some("status_list".into()),
        json!({"idx": 1, "uri": "https://registry.example/status/1"}),
        &mut rng,
    );
    let mut payload = Map::new();
    payload.insert("status".into(), json!({"_sd": [list.digest()]}));
    let text = signed(&issuer(), payload, &[list]);
    let sd = SdJwt::parse(&text).unwrap();
    assert!(matches!(
        sd.reveal(),
        Err(RevealError::NotDisclosable { name, .. }) if name == "status"
    ));
    assert!(!vc::verify_presentation(&text, &request(), NOW)
        .unwrap()
        .is_valid());

    // exp as a disclosure: the validity check must not see it as absent.
    let exp = Disclosure::new(Some("exp".into()), json!(NOW - 1000), &mut rng);
    let mut payload = Map::new();
    payload.insert("_sd".into(), json!([exp.digest()]));
    let text = signed(&issuer(), payload, &[exp]);
    assert!(!vc::verify_presentation(&text, &request(), NOW)
        .unwrap()
        .is_valid());
}

#[test]
fn fail_conceal_reserved_claims_at_issue() {
    let mut req = CredentialRequest {
        vct: "x".into(),
        iat: NOW,
        exp: Some(NOW + 10),
        holder: PublicKey::Ed25519(holder().verifying_key()),
        status: Some(vouch_core::status_list::StatusRef {
            idx: 1,
            uri: "https://registry.example/status/1".into(),
        }),
        claims: Map::new(),
        concealment: Concealment {
            paths: paths(&["/status"]),
            max_decoys: 0,
        },
    };
    assert_eq!(
        vc::issue(req.clone(), &issuer(), &mut rng(1)).unwrap_err(),
        IssueError::ReservedClaim("status".into())
    );
    req.concealment.paths = paths(&["/status/status_list"]);
    assert_eq!(
        vc::issue(req, &issuer(), &mut rng(1)).unwrap_err(),
        IssueError::ReservedClaim("status".into())
    );

    // The plain SD-JWT layer refuses them too.
    let claims: Map<String, Value> =
        serde_json::from_value(json!({"exp": 1, "cnf": {"jwk": {}}, "a": 1})).unwrap();
    for path in ["/exp", "/cnf/jwk"] {
        let spec = Concealment {
            paths: paths(&[path]),
            max_decoys: 0,
        };
        let err = SdJwt::issue(
            claims.clone(),
            &spec,
            "x",
            "k",
            issuer().signing_key(),
            &mut rng(1),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConcealError::NotDisclosable(_)),
            "{path}: {err:?}"
        );
    }
    // Too deep to issue.
    let mut deep = Map::new();
    deep.insert("a".into(), nest(MAX_DEPTH + 1, json!(1)));
    let spec = Concealment {
        paths: paths(&["/a"]),
        max_decoys: 0,
    };
    assert_eq!(
        SdJwt::issue(deep, &spec, "x", "k", issuer().signing_key(), &mut rng(1)).unwrap_err(),
        ConcealError::TooDeep
    );
}
