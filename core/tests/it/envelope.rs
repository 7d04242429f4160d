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

