#!/usr/bin/env bash
# Builds the browser packages and the reference server:
#   pkg/      the production npm package (no simulator)
#   pkg-sim/  the same with the simulated reader, for the demo and the tests
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTUP_TOOLCHAIN
# Both packages are built the same way (the tests and the demo run what ships): with the
# pinned nightly and the size flags of scripts/browser-toolchain.sh when it is installed
# (scripts/setup.sh), else with stable and a warning (the bench then reports the bigger size
# and names the toolchain it found in the wasm).
source scripts/browser-toolchain.sh
if browser_toolchain_ready; then
  wasm_env=(env RUSTUP_TOOLCHAIN="$BROWSER_TOOLCHAIN" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$BROWSER_RUSTFLAGS")
  wasm_args=("${BROWSER_CARGO_ARGS[@]}")
  echo "build: browser packages with $BROWSER_TOOLCHAIN, -Zbuild-std and the size flags" >&2
else
  wasm_env=(env)
  wasm_args=()
  cat >&2 <<WARN
build: ************************************************************************
build: WARNING: $BROWSER_TOOLCHAIN (with rust-src and wasm32-unknown-unknown) is not
build: installed: building the browser packages with STABLE, without -Zbuild-std and the
build: size flags. The wasm is about 6 KB (gzip) bigger than the one that ships.
build: Run scripts/setup.sh to install the pinned nightly.
build: ************************************************************************
WARN
fi
# wasm-pack leaves snippets of earlier builds behind (scripts/package.mjs bundles the
# current ones into card-relay.js and removes the folder).
rm -rf pkg/snippets pkg-sim/snippets
"${wasm_env[@]}" wasm-pack build --release --target web --out-dir pkg --out-name card_relay . --locked \
  ${wasm_args[@]+"${wasm_args[@]}"}
# npm's binaryen (Debian's wasm-opt is too old for wasm-bindgen's output); wasm-pack's own
# wasm-opt step is off in Cargo.toml for the same reason.
node_modules/.bin/wasm-opt -Oz pkg/card_relay_bg.wasm -o pkg/card_relay_bg.wasm
node scripts/package.mjs pkg
"${wasm_env[@]}" wasm-pack build --release --target web --out-dir pkg-sim --out-name card_relay . --locked \
  --features simulator ${wasm_args[@]+"${wasm_args[@]}"}
node_modules/.bin/wasm-opt -Oz pkg-sim/card_relay_bg.wasm -o pkg-sim/card_relay_bg.wasm
node scripts/package.mjs pkg-sim --simulator
node scripts/profiles.mjs
cargo build --release --locked -p card-relay-server
