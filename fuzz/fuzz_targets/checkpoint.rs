//! Fuzz target `checkpoint`: see [`vouch_fuzz::core_checks::checkpoint`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::checkpoint(data);
});
