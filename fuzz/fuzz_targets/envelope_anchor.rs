//! Fuzz target `envelope_anchor`: see [`vouch_fuzz::core_checks::envelope_anchor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::envelope_anchor(data);
});
