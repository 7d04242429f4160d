//! Fuzz target `status_list`: see [`vouch_fuzz::core_checks::status_list`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::core_checks::status_list(data);
});
