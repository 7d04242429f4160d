//! Fuzz target `relay_link`: see [`vouch_fuzz::relay::relay_link`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::relay::relay_link(data);
});
