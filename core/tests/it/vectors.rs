//! Published vectors: did:key, RFC 9901 (reference implementation), Token
//! Status List. Read unmodified from tests/vectors/.

use std::fs;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use vouch_core::did::DidKey;
use vouch_core::jws::{Jws, PublicKey};
use vouch_core::sd_jwt::{self, KeyBinding, SdJwt, VerifyOptions};
use vouch_core::status_list::{EncodedStatusList, StatusList, StatusListClaims};
use vouch_core::{vc, CheckName, Outcome};

use crate::common::vectors_dir;

#[test]
fn did_key_ed25519_vectors() {
    let text = fs::read_to_string(vectors_dir().join("did-key/ed25519-x25519.json")).unwrap();
    let vectors: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 5);
    for (did, v) in &vectors {
        let seed: [u8; 32] = hex(v["seed"].as_str().unwrap()).try_into().unwrap();
        let key = SigningKey::from_bytes(&seed).verifying_key();
        let ours = DidKey::from_public_key(&key);
        assert_eq!(ours.as_str(), did, "seed {}", v["seed"]);
        let parsed = DidKey::parse(did).unwrap();
        assert_eq!(parsed.verifying_key(), &key);
        // Key material in either form the file uses: base58 or JWK.
        let vm = &v["verificationKeyPair"];
        let public = match vm["publicKeyBase58"].as_str() {
            Some(b58) => multibase::Base::Base58Btc.decode(b58).unwrap(),
            None => vouch_core::b64::decode(vm["publicKeyJwk"]["x"].as_str().unwrap()).unwrap(),
        };
        assert_eq!(public, key.as_bytes());
        let ka = &v["keyAgreementKeyPair"];
        let x25519 = match ka["publicKeyBase58"].as_str() {
            Some(b58) => multibase::Base::Base58Btc.decode(b58).unwrap(),
            None => vouch_core::b64::decode(ka["publicKeyJwk"]["x"].as_str().unwrap()).unwrap(),
        };
        assert_eq!(x25519, key.to_montgomery().as_bytes());
        let x25519_id = ka["id"].as_str().unwrap();
        assert!(
            x25519_id.ends_with(&parsed.x25519_multibase()),
            "{x25519_id}"
        );
        // The document resolves with the same key material.
        let doc = parsed
            .document(vouch_core::did::DocumentForm::Multikey)
            .unwrap();
        assert_eq!(doc["id"], did.as_str());
        assert_eq!(
            doc["verificationMethod"][0]["publicKeyMultibase"],
            parsed.method_specific_id()
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Issuer key of the RFC 9901 cases (`settings.yml`, `issuer_key`).
fn rfc_issuer_key() -> PublicKey {
    PublicKey::from_jwk(&serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "x": "b28d4MwZMjw8-00CG4xfnn9SLMVMM19SlqZpVb_uNtQ",
        "y": "Xv5zWwuoaTgdS6hV43yI6gBwTnjukmFQQnJ_kCxzqk8"
    }))
    .unwrap()
}

const RFC_NONCE: &str = "1234567890";
const RFC_AUD: &str = "https://verifier.example.org";

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference implementation writes the JSON serialization as a JSON
/// string holding the JSON text.
fn read_sd_jwt(dir: &std::path::Path, stem: &str) -> SdJwt {
    let txt = dir.join(format!("{stem}.txt"));
    if txt.exists() {
        return SdJwt::parse(fs::read_to_string(txt).unwrap().trim()).unwrap();
    }
    let json = fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap();
    let inner = match serde_json::from_str::<Value>(&json).unwrap() {
        Value::String(s) => s,
        _ => json,
    };
    SdJwt::from_json_serialization(&inner).unwrap()
}

#[test]
fn rfc9901_reference_cases() {
    let root = vectors_dir().join("sd-jwt");
    let mut cases = 0;
    for entry in fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let presentation = read_sd_jwt(&dir, "sd_jwt_presentation");
        let expected = read_json(&dir.join("verified_contents.json"));
        let (now, binding) = match presentation.kb_jwt() {
            Some(kb) => {
                let payload: Value = serde_json::from_slice(kb.payload()).unwrap();
                let iat = payload["iat"].as_i64().unwrap();
                (
                    iat,
                    KeyBinding::Required {
                        aud: RFC_AUD.into(),
                        nonce: RFC_NONCE.into(),
                        max_age: 300,
                    },
                )
            }
            None => (1_683_000_000 + 3600, KeyBinding::Optional),
        };
        let mut options = VerifyOptions::new(now, binding);
        options.issuer_key = Some(rfc_issuer_key());
        let verdict = sd_jwt::verify_parsed(&presentation, &options).unwrap();
        if name.starts_with("json_serialization") {
            // sd-jwt 0.10.4 hashes its own JSON issuance text for sd_hash
            // instead of the compact form RFC 9901 §8 requires (see
            // tests/vectors/NOTES.md): that one check must fail, all else pass.
            assert_eq!(
                verdict
                    .checks
                    .iter()
                    .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
                    .count(),
                1
            );
            assert!(
                matches!(verdict.check(CheckName::HolderBinding), Some(Outcome::Fail(why)) if why.contains("sd_hash"))
            );
            assert_eq!(
                Value::Object(verdict.claims.clone()),
                expected,
                "{name}: verified contents"
            );
            let issuance = fs::read_to_string(dir.join("sd_jwt_issuance.json")).unwrap();
            let issuance: String = serde_json::from_str(&issuance).unwrap();
            let mut quirk = issuance;
            for d in presentation.disclosures() {
                quirk.push('~');
                quirk.push_str(d.as_str());
            }
            quirk.push('~');
            let kb: Value =
                serde_json::from_slice(presentation.kb_jwt().unwrap().payload()).unwrap();
            assert_eq!(
                kb["sd_hash"],
                sd_jwt::digest(quirk.as_bytes()),
                "{name}: the generator's sd_hash input"
            );
            cases += 1;
            continue;
        }
        assert!(verdict.is_valid(), "{name}: {:?}", verdict.first_failure());
        assert_eq!(
            Value::Object(verdict.claims.clone()),
            expected,
            "{name}: verified contents"
        );
        if presentation.kb_jwt().is_some() {
            assert_eq!(
                verdict.check(CheckName::HolderBinding),
                Some(&Outcome::Pass),
                "{name}"
            );
            assert_eq!(
                verdict.check(CheckName::Nonce),
                Some(&Outcome::Pass),
                "{name}"
            );
        }

        // The issued SD-JWT verifies too, and processes to all user claims.
        let issuance = read_sd_jwt(&dir, "sd_jwt_issuance");
        let mut options = VerifyOptions::new(now, KeyBinding::Optional);
        options.issuer_key = Some(rfc_issuer_key());
        let verdict = sd_jwt::verify_parsed(&issuance, &options).unwrap();
        assert!(
            verdict.is_valid(),
            "{name} issuance: {:?}",
            verdict.first_failure()
        );
        let user_claims = read_json(&dir.join("user_claims.json"));
        for (k, v) in user_claims.as_object().unwrap() {
            assert_eq!(verdict.claims.get(k), Some(v), "{name}: claim {k}");
        }

        // Compact text round-trips exactly.
        if dir.join("sd_jwt_presentation.txt").exists() {
            let text = fs::read_to_string(dir.join("sd_jwt_presentation.txt")).unwrap();
            assert_eq!(presentation.serialize(), text.trim(), "{name}");
        }

        // With the wrong nonce, holder binding still holds but nonce fails.
        if presentation.kb_jwt().is_some() {
            let mut options = VerifyOptions::new(
                now,
                KeyBinding::Required {
                    aud: RFC_AUD.into(),
                    nonce: "other".into(),
                    max_age: 300,
                },
            );
            options.issuer_key = Some(rfc_issuer_key());
            let verdict = sd_jwt::verify_parsed(&presentation, &options).unwrap();
            assert!(!verdict.is_valid(), "{name}");
            assert!(matches!(
                verdict.check(CheckName::Nonce),
                Some(Outcome::Fail(_))
            ));
        }
        cases += 1;
    }
    assert_eq!(cases, 15, "all 15 reference case folders ran");
}

#[test]
fn rfc9901_arf_pid_is_an_sd_jwt_vc() {
    let dir = vectors_dir().join("sd-jwt/arf-pid");
    let text = fs::read_to_string(dir.join("sd_jwt_presentation.txt")).unwrap();
    let presentation = SdJwt::parse(text.trim()).unwrap();
    let payload: Value = serde_json::from_slice(presentation.kb_jwt().unwrap().payload()).unwrap();
    let mut options = VerifyOptions::new(
        payload["iat"].as_i64().unwrap(),
        KeyBinding::Required {
            aud: RFC_AUD.into(),
            nonce: RFC_NONCE.into(),
            max_age: 60,
        },
    );
    options.issuer_key = Some(rfc_issuer_key());
    let verdict = vc::verify_with(text.trim(), &options).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    assert_eq!(verdict.vct.as_deref(), Some("urn:eudi:pid:de:1"));
    assert_eq!(verdict.check(CheckName::Format), Some(&Outcome::Pass));
}

/// The first JSON object in a Markdown vector file, whitespace removed (the
/// long `lst` is wrapped across lines).
fn md_json(name: &str) -> Value {
    let text = fs::read_to_string(vectors_dir().join("status-list").join(name)).unwrap();
    let start = text.find('{').unwrap();
    let end = text[start..].find('}').unwrap() + start + 1;
    let compact: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    serde_json::from_str(&compact).unwrap()
}

#[test]
fn status_list_vectors() {
    let short: EncodedStatusList =
        serde_json::from_value(md_json("status_list_encoding_json.md")).unwrap();
    let list = StatusList::decode(&short).unwrap();
    assert_eq!(list.as_bytes(), &[0xb9, 0xa3]);
    // 0xb9 = 1011_1001: entries 0..8 read from the least significant bit.
    let bits: Vec<u8> = (0..16).map(|i| list.get(i).unwrap()).collect();
    assert_eq!(bits, [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]);
    // Our encoder produces the same lst.
    assert_eq!(
        StatusList::from_bytes(1, vec![0xb9, 0xa3])
            .unwrap()
            .encode(),
        short
    );

    let two: EncodedStatusList =
        serde_json::from_value(md_json("status_list_encoding2_json.md")).unwrap();
    let list = StatusList::decode(&two).unwrap();
    assert_eq!(list.as_bytes(), &[0xc9, 0x44, 0xf9]);
    assert_eq!(list.get(0).unwrap(), 1);
    assert_eq!(list.get(1).unwrap(), 2);
    assert_eq!(list.get(3).unwrap(), 3);

    let long: EncodedStatusList =
        serde_json::from_value(md_json("status_list_encoding1_long_json.md")).unwrap();
    let list = StatusList::decode(&long).unwrap();
    assert_eq!(list.len(), 1 << 20);
    let set = [
        0, 1993, 25460, 159495, 495669, 554353, 645645, 723232, 854545, 934534, 1000345,
    ];
    let ones: Vec<u64> = (0..list.len())
        .filter(|&i| list.get(i).unwrap() == 1)
        .collect();
    assert_eq!(ones, set);
}

#[test]
fn status_list_token_vector() {
    let text =
        fs::read_to_string(vectors_dir().join("status-list/status_list_jwt_raw.md")).unwrap();
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let jws = Jws::parse(&compact).unwrap();
    let claims = StatusListClaims::parse_unverified(&jws).unwrap();
    assert_eq!(claims.sub, "https://example.com/statuslists/1");
    assert_eq!(claims.ttl, Some(43200));
    assert_eq!(claims.list.as_bytes(), &[0xb9, 0xa3]);
    // The decoded form in status_list_jwt.md says the same.
    let decoded = fs::read_to_string(vectors_dir().join("status-list/status_list_jwt.md")).unwrap();
    assert!(decoded.contains("\"ttl\": 43200") && decoded.contains("statuslist+jwt"));
}

/// The ed25519-speccheck edge cases (`tests/vectors/ed25519-speccheck`):
/// Vouch's one Ed25519 rule (cofactored, canonical encodings, no point of
/// small order) accepts exactly cases 6, 7 and 8, alone and in batches of
/// every size; `verify_strict`, which it replaced, accepts only case 6.
#[test]
fn ed25519_speccheck_cases() {
    use vouch_core::ed25519::{self, Refusal, Term};

    let text = fs::read_to_string(vectors_dir().join("ed25519-speccheck/cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 15);
    let expected: [Result<(), Refusal>; 15] = [
        Err(Refusal::WeakKey),
        Err(Refusal::WeakKey),
        Err(Refusal::WeakKey),
        Err(Refusal::WeakKey),
        Err(Refusal::SmallOrderR),
        Err(Refusal::SmallOrderR),
        Ok(()),
        Ok(()),
        Ok(()),
        Err(Refusal::NonCanonicalS),
        Err(Refusal::NonCanonicalS),
        // `R` = (0, −1) spelled with the sign bit of a zero `x`.
        Err(Refusal::SmallOrderR),
        Err(Refusal::SmallOrderR),
        Err(Refusal::WeakKey),
        Err(Refusal::WeakKey),
    ];
    let mut accepted = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let message = hex(case["message"].as_str().unwrap());
        let key_bytes: [u8; 32] = hex(case["pub_key"].as_str().unwrap()).try_into().unwrap();
        let signature = hex(case["signature"].as_str().unwrap());
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).unwrap();
        assert_eq!(
            ed25519::verify(&key, &[&message], &signature),
            expected[i],
            "case {i}"
        );
        let strict = ed25519_dalek::Signature::from_slice(&signature)
            .is_ok_and(|s| key.verify_strict(&message, &s).is_ok());
        assert_eq!(strict, i == 6, "verify_strict on case {i}");
        if let Ok(term) = Term::new(&key, &[&message], &signature) {
            assert_eq!(term.holds(), expected[i].is_ok(), "case {i}");
            if expected[i].is_ok() {
                accepted.push(term);
            }
        }
    }
    assert_eq!(accepted.len(), 3);
    for n in 1..=3 {
        let batch: Vec<&Term> = accepted.iter().take(n).collect();
        assert!(ed25519::batch_holds(b"speccheck", &batch), "first {n}");
    }
}
