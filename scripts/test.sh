#!/usr/bin/env bash
# Every test of the project, in order of cost: formatting, lints for native and wasm32,
# native unit/property/integration tests, then the browser tests in headless Chromium.
# Stops at the first failure. Set-up (tools, browser, npm packages) runs first and is
# skipped where already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh

passed=0
failed=0
step() {
  local name="$1"; shift
  printf '\n=== %s\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); printf -- '--- ok: %s (%ss)\n' "$name" $((SECONDS - t0))
  else
    failed=$((failed + 1)); printf -- '--- FAILED: %s\n' "$name"
    printf '\nsteps: %d passed, %d failed\n' "$passed" "$failed"
    exit 1
  fi
}

export CHROMEDRIVER=/usr/bin/chromedriver
# INVARIANT: RUSTFLAGS stays unset: it would replace the wasm32 rustflags of .cargo/config.toml.
unset RUSTFLAGS

step "cargo fmt --check" cargo fmt --all -- --check
step "clippy (native)" cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
step "clippy (wasm32)" cargo clippy -p card-relay --all-targets --all-features --locked \
  --target wasm32-unknown-unknown -- -D warnings
# macOS cannot be checked here: ring's build needs the macOS SDK.
step "agent for Windows (cargo check, x86_64-pc-windows-gnu)" \
  cargo check -p card-relay-agent --target x86_64-pc-windows-gnu --locked
step "cargo test (native)" cargo test --workspace --locked
step "cargo test (native, simulator feature)" cargo test -p card-relay --all-features --locked
step "TypeScript consumer (tsc --noEmit)" npx --no-install tsc -p tests/ts/tsconfig.json
# Electron cannot be installed here: its recipe (and the IWA's scripts) are syntax-checked only.
step "recipes: node --check examples/electron, examples/iwa" \
  bash -c 'for f in examples/electron/main.js examples/electron/renderer.mjs examples/iwa/app.js examples/iwa/serve.mjs; do node --check "$f" || exit 1; done'
step "API reference (npm run docs: TypeDoc, every name documented with an example)" npm run --silent docs
step "wasm-pack test --headless --chrome" wasm-pack test --headless --chrome . --locked --features simulator
step "build (wasm package + reference server)" bash scripts/build.sh
# Needs pkg/ and pkg-sim/: the JS layer is checked against wasm-bindgen's own types too.
step "JS layer vs published types (tsc, checkJs)" npx --no-install tsc -p tests/ts/tsconfig.layer.json
step "build (agent + its virtual PC/SC card)" cargo build -p card-relay-agent --bins --examples --locked
step "agent through PC/SC (private pcscd + vpcd)" bash scripts/pcsc-test.sh
step "npm packages as consumers get them (pack, publint, attw, examples/ builds)" bash scripts/consumer.sh
step "benchmarks (smoke)" node bench/run.mjs --smoke
step "end-to-end (demo page in Chromium)" node --test --test-concurrency=1 tests/e2e/

printf '\nsteps: %d passed, %d failed\n' "$passed" "$failed"
