#![no_main]
//! Fuzz target `pin`: see [`card_relay_fuzz::pin`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::pin(data));
