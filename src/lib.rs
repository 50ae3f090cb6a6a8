//! card-relay: remote smart card access from a web page.
//!
//! A server-side application (an OpenSCDP Scripting Server or a GlobalPlatform remote
//! application management server) drives a smart card in a USB reader on the user's desk:
//! this crate speaks CCID to the reader over WebUSB and runs the RAMOverHTTP loop over
//! `fetch`.
//!
//! Layers, from the bottom up (dependencies only point down):
//! - [`proto`]: pure codecs and protocol engines. No I/O, no clock, no async, no JS types.
//! - [`reader`] and [`session`]: pure state machines for a CCID reader and a RAMOverHTTP
//!   session. Bytes and time go in; messages, requests and deadlines come out.
//! - `web` (wasm32 only): the WebUSB and fetch adapters and the JavaScript API.
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod channel;
pub mod cookie;
pub mod driver;
pub mod pin;
pub mod proto;
pub mod reader;
pub mod session;

// The simulated reader and the fixtures it shares with the tests (libccid's reader dumps,
// the card side of T=1). In the browser build it is the `simulator` feature and stays out of
// the production bundle; natively it is always built, for the tests and the native agent.
#[cfg(any(feature = "simulator", test, not(target_arch = "wasm32")))]
pub mod sim;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// The one place unit tests learn which test harness runs them: natively the built-in
/// `#[test]`, on wasm32 `wasm-bindgen-test` in headless Chromium (which catches wasm-only
/// panics: a clock read, an overflow that only a 32-bit usize hits). Test modules write
/// `use crate::testing::test;`, so the protocol core names no wasm item even in its tests.
#[cfg(test)]
mod testing {
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) use core::prelude::v1::test;
    #[cfg(target_arch = "wasm32")]
    pub(crate) use wasm_bindgen_test::wasm_bindgen_test as test;

    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
}

/// The browser build's allocator: talc instead of the standard library's dlmalloc — about
/// 7 KB less raw wasm (3 KB gzipped) for the same work (issue 18's bundle target). It grows
/// the wasm memory on demand like dlmalloc and reuses freed chunks (the bench's heap-growth
/// figure after 100 000 APDUs checks that nothing accumulates).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
