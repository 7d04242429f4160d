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
    let Version::Normal(v) = code.version() else { panic!("micro QR") };
    assert!(v <= 25, "version {v} for {} envelope chars", env.len());
    // Alphanumeric only.
    assert!(env.bytes().all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)));
}

#[test]
fn every_truncation_of_an_envelope_is_refused() {
    let env = envelope::encode(&presentation()).unwrap();
    for end in 0..env.len() {
        let cut = &env[..end];
        assert!(envelope::decode(cut).is_err(), "prefix of {end} chars decoded");
    }
}

#[test]
fn size_report() {
    let text = presentation();
    let sd = vouch_core::SdJwt::parse(&text).unwrap();
    println!("presentation {} chars; jwt {}; disclosures {:?}; kb {}", text.len(), sd.jwt().as_str().len(),
        sd.disclosures().iter().map(|d| d.as_str().len()).collect::<Vec<_>>(), sd.kb_jwt().unwrap().as_str().len());
    println!("payload {}", String::from_utf8_lossy(sd.jwt().payload()));
    println!("header {}", String::from_utf8_lossy(&vouch_core::b64::decode(sd.jwt().as_str().split('.').next().unwrap()).unwrap()));
    for d in sd.disclosures() { println!("disclosure {}", String::from_utf8_lossy(&vouch_core::b64::decode(d.as_str()).unwrap())); }
    println!("kb {}", String::from_utf8_lossy(sd.kb_jwt().unwrap().payload()));
    let env = envelope::encode(&text).unwrap();
    println!("envelope {} chars", env.len());
    for v in [20i16, 22, 23, 24, 25, 26, 27, 28, 29] {
        let mut lo = 0; let mut hi = 4000;
        while lo < hi { let mid = (lo + hi + 1) / 2; let s = "A".repeat(mid);
            let mut bits = qrcode::bits::Bits::new(Version::Normal(v));
            let ok = bits.push_alphanumeric_data(s.as_bytes()).is_ok() && bits.push_terminator(EcLevel::M).is_ok();
            if ok { lo = mid } else { hi = mid - 1 } }
        println!("v{v} M alnum capacity {lo} chars = {} bytes", lo * 2 / 3);
    }
}
