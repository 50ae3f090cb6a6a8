#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for FUZZ_SECONDS each (default 30).
# Usage: npm run fuzz [-- TARGET...]   (FUZZ_SECONDS=300 npm run fuzz -- session)
#
# Installs what it needs, skipping what is there: the nightly toolchain (rustup, minimal
# profile) and cargo-fuzz (cargo install). Each target starts from its working corpus
# (fuzz/corpus/<target>, not committed) plus the committed regression inputs
# (tests/fuzz-regressions/<target>/). A crash, hang or out-of-memory input is copied into
# tests/fuzz-regressions/<target>/, where `cargo test --test fuzz_regressions` replays it,
# and the script fails once every target has run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'fuzz: %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

seconds="${FUZZ_SECONDS:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  log "FUZZ_SECONDS must be a positive whole number of seconds, not '$seconds'"; exit 2
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal >&2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked >&2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  regressions="tests/fuzz-regressions/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$regressions"
  rm -rf "$artifacts"
  log "$target for ${seconds} s"
  # Paths are relative to fuzz/, where cargo fuzz runs. -O: optimised; -a: with debug
  # assertions, so an integer overflow fails as it would in `cargo test`. -timeout turns a
  # hang into a failing input, -rss_limit_mb a runaway allocation.
  if (cd fuzz && cargo +nightly fuzz run -O -a "$target" "corpus/$target" "../$regressions" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1) 2>"fuzz/$target.log"; then
    grep -E '^stat::(number_of_executed_units|new_units_added)' "fuzz/$target.log" | sed "s/^/fuzz: $target /" >&2 || true
    rm -f "fuzz/$target.log"
    continue
  fi
  found=0
  for input in "$artifacts"/*; do
    [ -f "$input" ] || continue
    cp "$input" "$regressions/"
    log "$target failed on $regressions/$(basename "$input")"
    found=1
  done
  if [ "$found" = 0 ]; then
    log "$target failed without a crash input; see fuzz/$target.log"
  else
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "fuzz/$target.log" | head -5 | sed 's/^/fuzz:   /' >&2 || true
  fi
  failed+=("$target")
done

if [ "${#failed[@]}" -gt 0 ]; then
  log "failed: ${failed[*]} (inputs kept in tests/fuzz-regressions/; replay with cargo test --test fuzz_regressions)"
  exit 1
fi
log "no crash in ${#targets[@]} targets"
