//! Browser tests of the JavaScript-facing module (run by `wasm-pack test --headless --chrome`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn version_matches_the_crate() {
    assert_eq!(card_relay::web::version(), env!("CARGO_PKG_VERSION"));
}
