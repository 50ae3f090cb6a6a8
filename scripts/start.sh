#!/usr/bin/env bash
# Builds the wasm package and the reference server, then serves the demo until killed.
# Prints one line `card-relay: http://127.0.0.1:<port>/` (port 8080 unless PORT is set).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
unset RUSTFLAGS
bash scripts/setup.sh
bash scripts/build.sh >&2
exec target/release/card-relay-server --www www --pkg pkg --port "${PORT:-8080}"
