//! The core flow end to end, in memory: a university issues a 12-course
//! transcript (SD-JWT VC, did:key), the graduate presents three courses with a
//! KB-JWT as a QR envelope, HR decodes and verifies it; then a tampered copy
//! is refused.
//!
//! `cargo run -p vouch-core --example demo`

#![allow(clippy::expect_used, missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use qrcode::render::unicode::Dense1x2;
use rand::rngs::OsRng;
use rand::RngCore;
use vouch_core::jws::PublicKey;
use vouch_core::status_list::StatusRef;
use vouch_core::vc::{self, CredentialRequest, IssuerKey, PresentationRequest};
use vouch_core::{b64, envelope, sample, ClaimPath, Outcome};

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let mut rng = OsRng;

    // Issuer and holder keys.
    let university = IssuerKey::new(SigningKey::generate(&mut rng));
    let graduate = SigningKey::generate(&mut rng);
    println!("issuer  {}", university.did());
    println!(
        "holder  {}",
        vouch_core::DidKey::from_public_key(&graduate.verifying_key())
    );

    // Issue.
    let request = CredentialRequest {
        vct: sample::TRANSCRIPT_VCT.into(),
        iat: now,
        exp: Some(now + 5 * 365 * 86_400),
        holder: PublicKey::Ed25519(graduate.verifying_key()),
        status: Some(StatusRef {
            idx: rng.next_u32() as u64 % 131_072,
            uri: "https://registry.example/status/1".into(),
        }),
        claims: sample::transcript_claims(42),
        concealment: sample::transcript_concealment(),
    };
    let credential = vc::issue(request, &university, &mut rng).expect("issue");
    println!(
        "issued  transcript with {} selectively disclosable claims ({} chars)",
        credential.disclosures().len(),
        credential.serialize().len()
    );

    // The verifier's request: audience and a fresh nonce.
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    let hr = PresentationRequest {
        aud: "https://hr.example.com".into(),
        nonce: b64::encode(nonce),
        max_age: 300,
    };

    // Present three courses.
    let chosen: Vec<ClaimPath> = ["/courses/0", "/courses/4", "/courses/9"]
        .iter()
        .map(|p| p.parse().expect("path"))
        .collect();
    let presentation = credential
        .present(&chosen)
        .expect("present")
        .bind(&graduate, &hr.aud, &hr.nonce, now)
        .serialize();
    let qr_text = envelope::encode(&presentation).expect("envelope");
    let code = vouch_core::qr::qr_code(&qr_text, vouch_core::qr::EcLevel::M).expect("qr");
    println!(
        "present 3 courses: {} chars -> envelope {} chars -> QR {:?}, EC level M",
        presentation.len(),
        qr_text.len(),
        code.version()
    );
    println!("{}", code.render::<Dense1x2>().quiet_zone(true).build());

    // Verify what the camera read.
    let scanned = envelope::decode(&qr_text).expect("decode");
    assert_eq!(scanned, presentation, "the envelope is lossless");
    let verdict = vc::verify_presentation(&scanned, &hr, now).expect("checkable");
    for check in &verdict.checks {
        let (mark, why) = match &check.outcome {
            Outcome::Pass => ("pass", String::new()),
            Outcome::Fail(why) => ("FAIL", why.clone()),
            Outcome::NotChecked(why) => ("skip", why.clone()),
        };
        println!("  {mark}  {:?} {why}", check.name);
    }
    println!(
        "verdict {}",
        if verdict.is_valid() {
            "VALID"
        } else {
            "INVALID"
        }
    );
    println!(
        "disclosed {}",
        serde_json::to_string_pretty(&verdict.claims).expect("json")
    );

    // A tampered copy: one character of the issuer signature changed.
    let sig_start = presentation.find('~').expect("tilde") - 10;
    let mut tampered = presentation.into_bytes();
    tampered[sig_start] = if tampered[sig_start] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).expect("ascii");
    match vc::verify_presentation(&tampered, &hr, now) {
        Ok(v) => println!(
            "tampered copy: {}",
            if v.is_valid() {
                "VALID (bug!)"
            } else {
                "INVALID, as it must be"
            }
        ),
        Err(e) => println!("tampered copy: refused ({e})"),
    }
    assert!(verdict.is_valid());
}
