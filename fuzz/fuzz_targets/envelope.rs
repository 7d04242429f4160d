//! Fuzz target `envelope`: see [`vouch_fuzz::core_checks::envelope`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::envelope(data);
});
