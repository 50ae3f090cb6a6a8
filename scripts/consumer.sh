#!/usr/bin/env bash
# The npm packages as a consumer gets them (after scripts/build.sh):
#   1. `npm pack` pkg/ (card-relay) and pkg-sim/ (card-relay-simulator) into target/npm/;
#   2. publint (strict) and @arethetypeswrong/cli (ESM-only profile) on both tarballs;
#   3. installs the tarballs into examples/vite-app and examples/plain-page (npm install from
#      the local tarballs; other packages come from npm's cache when it has them);
#   4. builds the Vite app for production (tsc strict, then vite build → dist/) and its test
#      build (→ dist-test/, "card-relay" resolved to the simulator package).
# tests/e2e/consumer.test.mjs then runs both apps in Chromium against the reference server.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/npm
rm -rf "$out" && mkdir -p "$out"
npm pack ./pkg ./pkg-sim --pack-destination "$out" --silent >/dev/null
# Fixed names for the examples' package.json ("file:../../target/npm/card-relay.tgz").
version=$(node -p 'require("./pkg/package.json").version')
mv "$out/card-relay-$version.tgz" "$out/card-relay.tgz"
mv "$out/card-relay-simulator-$version.tgz" "$out/card-relay-simulator.tgz"
for tgz in "$out/card-relay.tgz" "$out/card-relay-simulator.tgz"; do
  node_modules/.bin/publint run --strict "$tgz"
  # The packages are ESM only (wasm-bindgen's glue is ESM): CommonJS `require` is out of scope.
  node_modules/.bin/attw --pack "$tgz" --profile esm-only --format table-flipped
done
for app in examples/vite-app examples/plain-page; do
  rm -rf "$app/node_modules/card-relay" "$app/node_modules/card-relay-simulator"
  (cd "$app" && npm install --prefer-offline --no-audit --no-fund --no-package-lock --loglevel=error)
done
(cd examples/vite-app && npm run --silent build && npm run --silent build:test)
