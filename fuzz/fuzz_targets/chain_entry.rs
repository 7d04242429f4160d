//! Fuzz target `chain_entry`: see [`vouch_fuzz::core_checks::chain_entry`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::chain_entry(data);
});
