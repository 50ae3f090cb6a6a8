#![no_main]
//! Fuzz target `json`: see [`card_relay_fuzz::json`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::json(data));
