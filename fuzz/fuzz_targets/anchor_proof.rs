//! Fuzz target `anchor_proof`: see [`vouch_fuzz::core_checks::anchor_proof`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::anchor_proof(data);
});
