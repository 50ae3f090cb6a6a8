#![no_main]
//! Fuzz target `reader`: see [`card_relay_fuzz::reader`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::reader(data));
