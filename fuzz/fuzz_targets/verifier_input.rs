//! Fuzz target `verifier_input`: see [`vouch_fuzz::verifier_checks::verifier_input`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::verifier_checks::verifier_input(data);
});
