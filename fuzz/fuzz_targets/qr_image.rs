//! Fuzz target `qr_image`: see [`vouch_fuzz::verifier_checks::qr_image`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::verifier_checks::qr_image(data);
});
