//! Fuzz target `presentation_request`: see [`vouch_fuzz::core_checks::presentation_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::presentation_request(data);
});
