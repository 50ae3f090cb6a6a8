#![no_main]
//! Fuzz target `atr`: see [`card_relay_fuzz::atr`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::atr(data));
