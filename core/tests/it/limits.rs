//! Nothing is issued that verifiers refuse, and a QR code PNG has a
//! bounded size.

use serde_json::{json, Map, Value};
use vouch_core::b64;
use vouch_core::envelope::{self, EnvelopeError};
use vouch_core::jws::PublicKey;
use vouch_core::qr::{self, QrError, MAX_PNG_SIDE};
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

// --- 5. PNG size --------------------------------------------------------

#[test]
fn fail_png_too_large_or_overflowing_is_refused() {
    let code = qr::qr_code("VCH1:HELLO", qr::EcLevel::M).unwrap();
    for (scale, quiet) in [
        (u32::MAX, u32::MAX),
        (1, u32::MAX / 2 + 1),
        (u32::MAX / 20, 4),
        (1000, 4),
        (1, MAX_PNG_SIDE),
    ] {
        assert!(
            matches!(
                qr::png(&code, scale, quiet),
                Err(QrError::ImageTooLarge { .. })
            ),
            "scale {scale}, quiet {quiet}"
        );
    }
    let side = code.width() as u32 + 8;
    assert!(qr::png(&code, MAX_PNG_SIDE / side, 4).is_ok());
    assert!(qr::png(&code, 0, 0).is_ok());
}

#[test]
fn fail_envelope_stats_and_structure_refuse_what_encode_refuses() {
    // Many distinct 32-byte tokens in many parts: work quadratic in the
    // size if it were packed at all.
    let part = b64::encode([7u8; 32]);
    let big = format!(
        "e30.e30.AA~{}",
        format!("{part}~").repeat(envelope::MAX_DECODED / 40)
    );
    assert!(big.len() > envelope::MAX_DECODED);
    let too_large = |r: Result<(), EnvelopeError>| {
        assert!(
            matches!(
                r,
                Err(EnvelopeError::TooLarge {
                    what: "presentation",
                    ..
                })
            ),
            "{r:?}"
        )
    };
    too_large(envelope::encode(&big).map(drop));
    too_large(envelope::stats(&big).map(drop));
    too_large(envelope::structure_text(&big).map(drop));
    assert!(matches!(
        qr::qr_code(&"A".repeat(1 << 20), qr::EcLevel::L),
        Err(QrError::TooLong { .. })
    ));
}

#[test]
fn fail_envelope_encode_refuses_what_decode_would_refuse() {
    // 513 parts, and a part of 9 segments: small, canonical base64url,
    // but more than an envelope holds.
    let many_parts = "AA~".repeat(512) + "AA";
    let many_segments = "e30.e30.AA.AA.AA.AA.AA.AA.AA~";
    for text in [many_parts.as_str(), many_segments] {
        assert!(text.len() < envelope::MAX_DECODED);
        match envelope::encode(text) {
            Err(EnvelopeError::TooManyParts { .. }) => {}
            Ok(env) => panic!("encoded, and decode says {:?}", envelope::decode(&env)),
            Err(e) => panic!("{e}"),
        }
    }
    // At the limits it round-trips.
    let parts = "AA~".repeat(511) + "AA";
    let segments = "e30.e30.AA.AA.AA.AA.AA.AA~";
    for text in [parts.as_str(), segments] {
        let env = envelope::encode(text).unwrap();
        assert_eq!(envelope::decode(&env).unwrap(), text);
    }
}
