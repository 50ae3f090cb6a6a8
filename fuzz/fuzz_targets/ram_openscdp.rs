#![no_main]
//! Fuzz target `ram_openscdp`: see [`card_relay_fuzz::ram_openscdp`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::ram_openscdp(data));
