//! The browser side (wasm32 only): WebUSB and fetch adapters and the JavaScript API.
//!
//! This is the one `cfg` boundary of the crate: everything below `proto`, `reader`,
//! `session` and `driver` is platform-free and tested natively.

pub mod bindings;
pub mod clock;
pub mod fetch;
pub mod pin;
pub mod promise;
pub mod smartcard;
pub mod usb;

use wasm_bindgen::prelude::*;

/// The crate version, e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
