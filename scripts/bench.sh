#!/usr/bin/env bash
# The benchmarks (npm run bench): builds what they measure (pkg/, pkg-sim/, the reader
# profiles, the reference server), then runs bench/run.mjs in headless Chromium, which writes
# bench/results.json and the table in README.md. Arguments go to bench/run.mjs
# (`--smoke`: a few iterations, nothing written).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# INVARIANT: RUSTFLAGS stays unset: it would replace the wasm32 rustflags of .cargo/config.toml.
unset RUSTFLAGS
bash scripts/setup.sh
bash scripts/build.sh
# The agent's figures (bench/agent.mjs): the release binary, pcsc-bench and the virtual card.
cargo build --release -p card-relay-agent --bins --examples --locked
# The Vite consumer app whose production bundle the bench reports (examples/vite-app/dist).
bash scripts/consumer.sh
node bench/run.mjs "$@"
