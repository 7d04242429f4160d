//! The QR envelope on a real presentation.

use vouch_core::envelope;
use vouch_core::qr::{self, EcLevel};

use crate::common::*;

#[test]
fn presentation_round_trips_through_the_envelope_and_fits_version_25() {
    let text = presentation();
    let env = envelope::encode(&text).unwrap();
    assert_eq!(envelope::decode(&env).unwrap(), text);
    let code = qr::qr_code(&env, EcLevel::M).unwrap();
    assert!(matches!(code.version(), qr::Version::Normal(_)), "micro QR");
    let v = qr::version(&code);
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

/// Issue 8 finding 5: 150 characters whose structure asks for 30 000
/// `sd_hash` values over a ~60 KB earlier part. The old decoder re-hashed
/// the earlier parts for each (gigabytes of SHA-256, seconds of CPU) before
/// checking the size. Built by `sd_hash_bomb` in core/src/envelope.rs.
const SD_HASH_BOMB: &str = "VCH1:2F8BMO/S1H12310 7PH1HVKI/+D2HHSFBQ39Z4N9HTX.2C4V*II:T3000000000000000000000000000000000000000%20.:8:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0:*0";

#[test]
fn fail_envelope_that_references_more_than_the_size_limit_is_refused_before_the_work() {
    assert_eq!(
        envelope::decode(SD_HASH_BOMB),
        Err(envelope::EnvelopeError::TooLarge {
            what: "decoded presentation",
            max: envelope::MAX_DECODED
        })
    );
}

/// Every envelope the encoder makes of a real presentation still decodes,
/// including one with a KB-JWT (sd_hash) and disclosure references.
#[test]
fn envelope_of_every_presentation_size_round_trips() {
    let credential = transcript(3);
    for n in [0usize, 1, 5, 12] {
        let chosen: Vec<String> = (0..n).map(|i| format!("/courses/{i}")).collect();
        let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
        let text = credential
            .present(&paths(&chosen))
            .unwrap()
            .bind(&holder(), AUD, NONCE, NOW)
            .serialize();
        assert_eq!(
            envelope::decode(&envelope::encode(&text).unwrap()).unwrap(),
            text
        );
    }
    let whole = credential.serialize();
    assert_eq!(
        envelope::decode(&envelope::encode(&whole).unwrap()).unwrap(),
        whole
    );
}
