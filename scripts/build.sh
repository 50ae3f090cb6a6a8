#!/usr/bin/env bash
# Builds the browser packages and the reference server:
#   pkg/      the production npm package (no simulator)
#   pkg-sim/  the same with the simulated reader, for the demo and the tests
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset RUSTFLAGS
wasm-pack build --release --target web --out-dir pkg --out-name card_relay . --locked
node scripts/package.mjs pkg
wasm-pack build --release --target web --out-dir pkg-sim --out-name card_relay . --locked --features simulator
node scripts/package.mjs pkg-sim --simulator
node scripts/profiles.mjs
cargo build --release --locked -p card-relay-server
