//! Fuzz target `policy_file`: see [`vouch_fuzz::verifier_checks::policy_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::verifier_checks::policy_file(data);
});
