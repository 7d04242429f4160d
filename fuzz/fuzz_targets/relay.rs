//! Fuzz target `relay`: see [`vouch_fuzz::relay::relay`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vouch_fuzz::relay::relay(data);
});
