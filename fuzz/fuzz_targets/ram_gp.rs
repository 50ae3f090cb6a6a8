#![no_main]
//! Fuzz target `ram_gp`: see [`card_relay_fuzz::ram_gp`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::ram_gp(data));
