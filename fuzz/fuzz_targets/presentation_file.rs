//! Fuzz target `presentation_file`: see [`vouch_fuzz::core_checks::presentation_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::presentation_file(data);
});
