use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use vouch_core::jws::PublicKey;
use vouch_core::sample;
use vouch_core::sd_jwt::{Concealment, KeyBinding, VerifyOptions};
use vouch_core::status_list::StatusRef;
use vouch_core::vc::{self, CredentialRequest, IssuerKey, PresentationRequest};
use vouch_core::{ClaimPath, SdJwt};

pub const NOW: i64 = 1_780_000_000;
pub const AUD: &str = "https://hr.example.com";
pub const NONCE: &str = "n-0S6_WzA2Mj";

pub fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn issuer() -> IssuerKey {
    IssuerKey::new(SigningKey::from_bytes(&[0x11; 32]))
}

pub fn holder() -> SigningKey {
    SigningKey::from_bytes(&[0x22; 32])
}

pub fn request() -> PresentationRequest {
    PresentationRequest {
        aud: AUD.into(),
        nonce: NONCE.into(),
        max_age: 300,
    }
}

/// The sample transcript, issued to `holder()`.
pub fn transcript(seed: u64) -> SdJwt {
    let req = CredentialRequest {
        vct: sample::TRANSCRIPT_VCT.into(),
        iat: NOW - 86_400,
        exp: Some(NOW + 365 * 86_400),
        holder: PublicKey::Ed25519(holder().verifying_key()),
        status: Some(StatusRef {
            idx: 4711,
            uri: "https://registry.example/status/1".into(),
        }),
        claims: sample::transcript_claims(7),
        concealment: sample::transcript_concealment(),
    };
    vc::issue(req, &issuer(), &mut rng(seed)).unwrap()
}

pub fn paths(list: &[&str]) -> Vec<ClaimPath> {
    list.iter().map(|p| ClaimPath::parse(p).unwrap()).collect()
}

/// Three courses of the transcript, bound for AUD/NONCE at NOW.
pub fn presentation() -> String {
    transcript(1)
        .present(&paths(&["/courses/0", "/courses/4", "/courses/7"]))
        .unwrap()
        .bind(&holder(), AUD, NONCE, NOW)
        .serialize()
}

/// The issuer's signing key.
pub fn issuer_key() -> SigningKey {
    issuer().signing_key().clone()
}

/// Options for `sd_jwt::verify` with the issuer key given.
pub fn options(key_binding: KeyBinding) -> VerifyOptions {
    let mut options = VerifyOptions::new(NOW, key_binding);
    options.issuer_key = Some(PublicKey::Ed25519(issuer_key().verifying_key()));
    options
}

/// Claims of a minimal credential issued at `iat`, plus a `name`.
pub fn minimal_claims(iat: Option<i64>) -> Map<String, Value> {
    let mut claims = json!({
        "iss": issuer().did().as_str(),
        "vct": "https://vouch.example/vct/test",
        "exp": NOW + 86_400,
        "name": "Erika",
        "cnf": {"jwk": PublicKey::Ed25519(holder().verifying_key()).to_jwk()},
    });
    if let Some(iat) = iat {
        claims["iat"] = json!(iat);
    }
    match claims {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// `claims` issued with `SdJwt::issue`, concealing `conceal`, no decoys.
pub fn issue_plain(claims: Map<String, Value>, conceal: &[&str]) -> SdJwt {
    let spec = Concealment {
        paths: paths(conceal),
        max_decoys: 0,
    };
    SdJwt::issue(
        claims,
        &spec,
        "dc+sd-jwt",
        "kid",
        &issuer_key(),
        &mut rng(3),
    )
    .unwrap()
}
