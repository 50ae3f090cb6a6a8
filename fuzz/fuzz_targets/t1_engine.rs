#![no_main]
//! Fuzz target `t1_engine`: see [`card_relay_fuzz::t1_engine`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::t1_engine(data));
