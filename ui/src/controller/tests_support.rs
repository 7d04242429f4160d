//! A transcript issued to a DID of a fresh wallet, for the controller
//! tests (as `wallet/tests/it/common.rs` does for the wallet's own).

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng};
use serde_json::{json, Value};
use vouch_core::jws::PublicKey;
use vouch_core::seal::Cost;
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::DidKey;
use vouch_wallet::Wallet;

/// The time the tests run at.
pub const NOW: i64 = 1_780_000_000;

/// A 12-course transcript for `holder` (CS100 … CS111).
pub fn transcript(holder: &DidKey) -> String {
    transcript_titled(holder, |i| format!("Topic {i}"))
}

/// Course titles of 90 letters that deflate does not shrink much: every
/// claim of a transcript with them is too dense for one QR code.
pub fn incompressible_title(i: usize) -> String {
    let mut rng = StdRng::seed_from_u64(1000 + i as u64);
    (0..90)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz .,;"[(rng.next_u32() % 30) as usize]))
        .collect()
}

/// A 12-course transcript for `holder`, course `i` titled `title(i)`.
pub fn transcript_titled(holder: &DidKey, title: impl Fn(usize) -> String) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    let courses: Vec<Value> = (0..12)
        .map(|i| {
            let grade = ["A", "B", "C"][i % 3];
            json!({"code": format!("CS{}", 100 + i), "title": title(i),
                   "credits": 6, "grade": grade, "term": "2025-S1"})
        })
        .collect();
    let claims = json!({
        "institution": "State University", "student_name": "Ada Lovelace",
        "student_id": "S00042", "programme": "Computer Science", "degree": "BSc",
        "award_date": "2025-07-15", "gpa": 3.4, "courses": courses,
    })
    .as_object()
    .unwrap()
    .clone();
    let request = CredentialRequest {
        vct: template.vct.clone(),
        iat: NOW - 1000,
        exp: None,
        holder: PublicKey::Ed25519(*holder.verifying_key()),
        status: None,
        concealment: template.concealment(&claims),
        claims,
    };
    let issuer = IssuerKey::new(SigningKey::from_bytes(&[42; 32]));
    vc::issue(request, &issuer, &mut StdRng::seed_from_u64(7))
        .unwrap()
        .serialize()
}

/// A credential as issued, for tests that need any SD-JWT text.
pub fn credential_text() -> String {
    let key = SigningKey::from_bytes(&[3; 32]);
    transcript(&DidKey::from_public_key(&key.verifying_key()))
}

/// A wallet (in a temporary directory, kept alive by the first value)
/// holding one transcript; its id.
pub fn wallet_with_transcript() -> (tempfile::TempDir, Wallet, String) {
    wallet_holding(transcript)
}

/// A wallet holding the transcript `issue` makes for its first DID; its id.
pub fn wallet_holding(issue: impl Fn(&DidKey) -> String) -> (tempfile::TempDir, Wallet, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let (mut wallet, _) =
        Wallet::create(&tmp.path().join("w"), "long enough", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let id = wallet.import(&issue(&did), None, NOW, &mut rng).unwrap();
    (tmp, wallet, id)
}
