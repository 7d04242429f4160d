//! Fuzz target `did_key`: see [`vouch_fuzz::core_checks::did_key`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::did_key(data);
});
