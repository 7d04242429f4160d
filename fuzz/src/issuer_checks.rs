//! Checks of vouch-issuer's parser of outside input: a CSV of credential
//! subjects read against a template. Shared by the fuzz target and the
//! replay test issuer/tests/it/fuzz_cases.rs, which includes this file.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use vouch_core::jws::PublicKey;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_issuer::input;
use vouch_issuer::template::{self, Template};

/// Rows of one input issued as credentials, at most (issuing is the slow
/// part; the parser is what is under test).
const ISSUE_AT_MOST: usize = 4;

fn templates() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| template::builtins().expect("the built-in templates are valid"))
}

/// The first byte picks a built-in template (modulo their number: 0
/// transcript, 1 employment, 2 insurance-policy), the rest is the CSV file.
/// `input::parse` must not panic (a panic in its row-checking threads shows
/// as the "failed unexpectedly" error, which fails here too); each data row
/// is reported once, valid or not; and a valid row must issue: the claims
/// and concealment the template derives from it are accepted by `vc::issue`.
pub fn csv_row(data: &[u8]) {
    let Some((&pick, csv)) = data.split_first() else {
        return;
    };
    let templates = templates();
    let template = &templates[usize::from(pick) % templates.len()];
    let (rows, errors) = match input::parse(csv, template) {
        Ok(parsed) => parsed,
        Err(why) => {
            assert!(
                !matches!(why, input::CsvError::Panicked),
                "row checking panicked"
            );
            return;
        }
    };
    let mut numbers: Vec<usize> = rows
        .iter()
        .map(|r| r.number)
        .chain(errors.iter().map(|e| e.number))
        .collect();
    numbers.sort_unstable();
    let count = numbers.len();
    numbers.dedup();
    assert_eq!(numbers.len(), count, "a row is reported twice");
    assert!(
        numbers.first().is_none_or(|&n| n >= 1),
        "row numbers start at 1"
    );

    let issuer = IssuerKey::new(SigningKey::from_bytes(&[0x11; 32]));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for row in rows.iter().take(ISSUE_AT_MOST) {
        let request = CredentialRequest {
            vct: template.vct.clone(),
            iat: 1_780_000_000,
            exp: None,
            holder: PublicKey::Ed25519(*row.holder.verifying_key()),
            status: None,
            concealment: template.concealment(&row.claims),
            claims: row.claims.clone(),
        };
        if let Err(e) = vc::issue(request, &issuer, &mut rng) {
            panic!(
                "row {} passed the checks but does not issue: {e}",
                row.number
            );
        }
    }
}
