#![no_main]
//! Fuzz target `session`: see [`card_relay_fuzz::session`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::session(data));
