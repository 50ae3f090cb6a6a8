#!/usr/bin/env bash
# Builds the browser packages and the reference server:
#   pkg/      the production npm package (no simulator)
#   pkg-sim/  the same with the simulated reader, for the demo and the tests
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset RUSTFLAGS
# wasm-pack leaves snippets of earlier builds behind; the bench counts every one.
rm -rf pkg/snippets pkg-sim/snippets
wasm-pack build --release --target web --out-dir pkg --out-name card_relay . --locked
# npm's binaryen (Debian's wasm-opt is too old for wasm-bindgen's output); wasm-pack's own
# wasm-opt step is off in Cargo.toml for the same reason.
node_modules/.bin/wasm-opt -Oz pkg/card_relay_bg.wasm -o pkg/card_relay_bg.wasm
node scripts/package.mjs pkg
wasm-pack build --release --target web --out-dir pkg-sim --out-name card_relay . --locked --features simulator
node_modules/.bin/wasm-opt -Oz pkg-sim/card_relay_bg.wasm -o pkg-sim/card_relay_bg.wasm
node scripts/package.mjs pkg-sim --simulator
node scripts/profiles.mjs
cargo build --release --locked -p card-relay-server
