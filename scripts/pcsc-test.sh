#!/usr/bin/env bash
# The agent's tests through a real PC/SC stack (tests/pcsc/), in the private pcscd + vpcd
# namespace of scripts/pcsc-ns.sh: the agent talks to that pcscd only.
#
# Usage: scripts/pcsc-test.sh [node --test arguments, default tests/pcsc/]
# Needs: what scripts/pcsc-ns.sh needs, vsmartcard-vpicc, target/debug/card-relay and
# target/debug/examples/vpcd-card (cargo build -p card-relay-agent --examples),
# target/release/card-relay-server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then set -- tests/pcsc/; fi
exec bash scripts/pcsc-ns.sh node --test --test-concurrency=1 "$@"
