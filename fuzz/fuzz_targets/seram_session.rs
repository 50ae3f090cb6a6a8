#![no_main]
//! Fuzz target `seram_session`: see [`card_relay_fuzz::seram_session`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| card_relay_fuzz::seram_session(data));
