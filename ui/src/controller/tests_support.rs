//! A transcript issued to a DID of a fresh wallet, for the controller
//! tests (as `wallet/tests/it/common.rs` does for the wallet's own).

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::sample;
use vouch_core::seal::Cost;
use vouch_core::template::Templates;
use vouch_core::DidKey;
use vouch_wallet::Wallet;

/// The time the tests run at.
pub const NOW: i64 = 1_780_000_000;

/// A 12-course transcript for `holder` (CS100 … CS111).
pub fn transcript(holder: &DidKey) -> String {
    transcript_titled(holder, |i| format!("Topic {i}"))
}

pub use vouch_core::sample::incompressible_title;

/// A 12-course transcript for `holder`, course `i` titled `title(i)`.
pub fn transcript_titled(holder: &DidKey, title: impl Fn(usize) -> String) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    let claims = sample::template_transcript_claims("Ada Lovelace", "S00042", title);
    sample::issue_as(
        template,
        claims,
        holder,
        NOW - 1000,
        &mut StdRng::seed_from_u64(7),
    )
    .unwrap()
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
