#!/usr/bin/env bash
# Builds the browser package (pkg/, ES module for the web) and the reference server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset RUSTFLAGS
wasm-pack build --release --target web --out-dir pkg --out-name card_relay . --locked
cargo build --release --locked -p card-relay-server
