//! Fuzz target `json_object`: see [`vouch_fuzz::core_checks::json_object`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::json_object(data);
});
