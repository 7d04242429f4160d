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

/// `credential` presenting its first `n` courses, bound to the holder.
fn first_courses_bound(credential: &vouch_core::SdJwt, n: usize) -> String {
    let chosen: Vec<String> = (0..n).map(|i| format!("/courses/{i}")).collect();
    let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
    credential
        .present(&paths(&chosen))
        .unwrap()
        .bind(&holder(), AUD, NONCE, NOW)
        .serialize()
}

/// Every envelope the encoder makes of a real presentation still decodes,
/// including one with a KB-JWT (sd_hash) and disclosure references.
#[test]
fn envelope_of_every_presentation_size_round_trips() {
    let credential = transcript(3);
    for n in [0usize, 1, 5, 12] {
        let text = first_courses_bound(&credential, n);
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

/// `decode_sd_jwt` is `decode` then `SdJwt::parse`, without decoding
/// twice: the same SD-JWT or the same error for presentations of every
/// size, for texts that are no SD-JWT (each parse error in the order
/// `parse` finds them), for the sd_hash bomb, and for every one-character
/// mutation of a real envelope (refused alike, or decoded to the same
/// thing).
#[test]
fn an_envelope_decoded_into_its_sd_jwt_is_what_parsing_its_text_gives() {
    use vouch_core::SdJwt;
    let same = |env: &str| match envelope::decode(env) {
        Ok(text) => {
            let decoded = envelope::decode_sd_jwt(env).unwrap();
            assert_eq!(decoded.sd_jwt, SdJwt::parse(&text), "{text}");
            assert_eq!(decoded.anchor_proof, None);
        }
        Err(e) => assert_eq!(envelope::decode_sd_jwt(env).unwrap_err(), e),
    };
    let credential = transcript(3);
    for n in [0usize, 1, 5, 12] {
        let text = first_courses_bound(&credential, n);
        let decoded = envelope::decode_sd_jwt(&envelope::encode(&text).unwrap()).unwrap();
        assert_eq!(decoded.sd_jwt.unwrap().serialize(), text);
    }
    let whole = credential.serialize();
    same(&envelope::encode(&whole).unwrap());

    let text = presentation();
    let parts: Vec<&str> = text.split('~').collect();
    let (jwt, kb) = (parts[0], parts[parts.len() - 1]);
    let d = parts[1];
    let (header, _) = jwt.split_once('.').unwrap();
    let not_json = vouch_core::b64::encode("not json");
    let broken = [
        // No '~'; the JWT or the KB-JWT of two segments.
        jwt.to_owned(),
        format!("{header}.AA~{d}~{kb}"),
        format!("{jwt}~{d}~{header}.AA"),
        // A payload that is no JSON object.
        format!("{header}.{not_json}.AA~{d}~"),
        // Empty, repeated, or malformed disclosures, in either order.
        format!("{jwt}~~{d}~{kb}"),
        format!("{jwt}~{d}~{d}~{kb}"),
        format!("{jwt}~{not_json}~~{kb}"),
        format!("{jwt}~{d}~{not_json}~{d}~{kb}"),
        format!("{jwt}~{d}.{d}~{kb}"),
        format!("{jwt}~{d}~"),
    ];
    for text in &broken {
        let env = envelope::encode(text).unwrap();
        assert_eq!(envelope::decode(&env).unwrap(), *text);
        if text != &format!("{jwt}~{d}~") {
            assert!(SdJwt::parse(text).is_err(), "{text}");
        }
        same(&env);
    }

    // Bounded as decode is: the sd_hash bomb is refused by its size.
    same(SD_HASH_BOMB);
    assert!(matches!(
        envelope::decode_sd_jwt(SD_HASH_BOMB),
        Err(envelope::EnvelopeError::TooLarge { .. })
    ));

    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let env = envelope::encode(&text).unwrap();
    for pos in envelope::PREFIX.len()..env.len() {
        let mut bytes = env.clone().into_bytes();
        bytes[pos] = ALPHABET
            [(ALPHABET.iter().position(|&c| c == bytes[pos]).unwrap() + 1) % ALPHABET.len()];
        same(&String::from_utf8(bytes).unwrap());
    }
}
