//! Fuzz target `sd_jwt_kb`: see [`vouch_fuzz::core_checks::sd_jwt_kb`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::sd_jwt_kb(data);
});
