//! Fuzz target `manifest`: see [`vouch_fuzz::core_checks::manifest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::manifest(data);
});
