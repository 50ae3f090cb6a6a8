#![no_main]
//! Fuzz target `tlv`: see [`card_relay_fuzz::tlv`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::tlv(data));
