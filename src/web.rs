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

/// Installs the panic hook once, when the module is instantiated, so a bug shows a Rust
/// message in the console instead of `unreachable executed`.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version, e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
