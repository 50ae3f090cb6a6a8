#![no_main]
//! Fuzz target `t1_block`: see [`card_relay_fuzz::t1_block`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::t1_block(data));
