#![no_main]
//! Fuzz target `descriptor`: see [`card_relay_fuzz::descriptor`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::descriptor(data));
