# The toolchain and size flags of the browser packages (pkg/ and pkg-sim/), in one place.
# Sourced by scripts/setup.sh (installs the toolchain) and scripts/build.sh (uses it).
#
# Issue 18 (bundle target, bench/run.mjs): the production wasm is built by a pinned nightly
# that rebuilds the standard library for it (cargo's -Zbuild-std) with
#   - optimize_for_size          std's smaller code paths (std feature of the sysroot crate)
#   - -Cpanic=immediate-abort    a panic is a bare `unreachable` trap: no message, no hook,
#                                no core::fmt reached from panicking paths
#   - -Zlocation-detail=none     no file/line/column strings of panic locations
# Each flag's share is measured in README "Benchmarks" (-Zfmt-debug=none too: 8 bytes once
# panics abort at once, not worth `{:?}` printing nothing). Nothing else changes toolchain:
# the native crates, `cargo test`, clippy and `wasm-pack test` stay on stable.

# The nightly of 2026-05-20 (rustc 1.97.0-nightly e50aa6fba 2026-05-19). A newer nightly may
# rename these unstable flags: move the date and the flags together, then re-measure.
BROWSER_TOOLCHAIN="${CARD_RELAY_BROWSER_TOOLCHAIN:-nightly-2026-05-20}"
# cargo flags (wasm-pack build passes its unknown arguments on to cargo build).
BROWSER_CARGO_ARGS=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
# rustc flags of the wasm32 target. Passed as CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS,
# which cargo ADDS to .cargo/config.toml's `--cfg=web_sys_unstable_apis` (RUSTFLAGS would
# replace it).
BROWSER_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none"

# True when the pinned nightly is installed with what the build needs: rust-src (for
# -Zbuild-std) and the wasm32 target (wasm-pack refuses to build without it in the sysroot).
browser_toolchain_ready() {
  local sysroot
  sysroot="$(rustup run "$BROWSER_TOOLCHAIN" rustc --print sysroot 2>/dev/null)" || return 1
  [ -d "$sysroot/lib/rustlib/src/rust/library/std" ] &&
    [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]
}
