//! Fuzz target `csv_row`: see [`vouch_fuzz::issuer_checks::csv_row`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::issuer_checks::csv_row(data);
});
