#![no_main]
//! Fuzz target `ccid`: see [`card_relay_fuzz::ccid`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::ccid(data));
