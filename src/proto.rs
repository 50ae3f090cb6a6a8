//! Pure codecs and protocol engines: no I/O, no clock, no wasm or JS types.
//!
//! Every decoder here is total: bytes from a reader, a card or a server never cause a
//! panic, only a typed error.

pub mod apdu;
pub mod atr;
pub mod bytes;
pub mod ccid;
pub mod descriptor;
pub mod hex;
pub mod json;
pub mod part10;
pub mod pps;
pub mod ram;
pub mod seram;
pub mod t0;
pub mod t1;
pub mod tlv;
pub mod trace;
