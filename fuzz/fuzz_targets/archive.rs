//! Fuzz target `archive`: see [`vouch_fuzz::core_checks::archive`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::archive(data);
});
