//! The QR envelope on a real presentation.

use qrcode::{EcLevel, Version};
use vouch_core::envelope;

use crate::common::*;

#[test]
fn presentation_round_trips_through_the_envelope_and_fits_version_25() {
    let text = presentation();
    let env = envelope::encode(&text).unwrap();
    assert_eq!(envelope::decode(&env).unwrap(), text);
    let code = envelope::qr_code(&env, EcLevel::M).unwrap();
    let Version::Normal(v) = code.version() else {
        panic!("micro QR")
    };
    assert!(v <= 25, "version {v} for {} envelope chars", env.len());
    // Alphanumeric only.
    assert!(env
        .bytes()
        .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)));
}

#[test]
fn every_truncation_of_an_envelope_is_refused() {
    let env = envelope::encode(&presentation()).unwrap();
    for end in 0..env.len() {
        let cut = &env[..end];
        assert!(
            envelope::decode(cut).is_err(),
            "prefix of {end} chars decoded"
        );
    }
}

/// A small deterministic fuzz loop: random base45 bodies and single-character
/// mutations of a real envelope never panic the decoder.
#[test]
fn decoder_survives_garbage_and_mutations() {
    use rand::{Rng, SeedableRng};
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let mut rng = rand::rngs::StdRng::seed_from_u64(45);
    for _ in 0..5_000 {
        let len = rng.gen_range(0..300);
        let body: String = (0..len)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        let _ = envelope::decode(&format!("{}{body}", envelope::PREFIX));
    }
    let env = envelope::encode(&presentation()).unwrap();
    let mut changed = 0;
    for pos in envelope::PREFIX.len()..env.len() {
        let mut bytes = env.clone().into_bytes();
        bytes[pos] = ALPHABET
            [(ALPHABET.iter().position(|&c| c == bytes[pos]).unwrap() + 1) % ALPHABET.len()];
        let mutated = String::from_utf8(bytes).unwrap();
        // Refused, or decoded to a presentation the verifier then checks
        // (deflate padding bits can change without changing the output).
        let _ = envelope::decode(&mutated);
        changed += 1;
    }
    assert!(changed > 1000);
}
