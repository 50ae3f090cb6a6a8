#!/usr/bin/env bash
# Installs everything `npm start` and `npm test` need, skipping what is already present.
# Idempotent: safe to run before every start or test. Facts behind each step:
# ../shared/reference/toolchain.md (wasm32 target, wasm-bindgen-cli, wasm-pack, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
export PATH="$HOME/.cargo/bin:$PATH"

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ] && ! have sudo; then
    log "cannot install $* (not root and no sudo)"; return 1
  fi
  local SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  if [ "$apt_updated" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# 1. Rust components and the wasm32 target.
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt >&2; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy >&2; fi
if ! rustc --print sysroot >/dev/null 2>&1 || \
   [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
  log "adding the wasm32-unknown-unknown target"
  if ! timeout -k 5 120 rustup target add wasm32-unknown-unknown >&2; then
    log "rustup could not add the target; building it from Debian's rust-web sources"
    apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
    scratch="$(mktemp -d)"
    (cd "$scratch" && cargo new -q --lib stdbuild && cd stdbuild &&
      RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes /usr/bin/cargo build -q --release \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort,test)
    dest=/usr/lib/rustlib/wasm32-unknown-unknown/lib
    mkdir -p "$dest"
    find "$scratch/stdbuild/target/wasm32-unknown-unknown/release/deps" -name 'lib*.rlib' \
      ! -name 'libstdbuild*' -exec cp {} "$dest/" \;
    rm -rf "$scratch"
  fi
fi

# 1b. The pinned nightly the browser packages are built with (scripts/browser-toolchain.sh,
#     issue 18's bundle target): minimal profile, rust-src for -Zbuild-std and the wasm32
#     target (wasm-pack refuses a toolchain without it). When rustup cannot install it,
#     scripts/build.sh builds with stable and says so loudly.
# shellcheck source=scripts/browser-toolchain.sh
source scripts/browser-toolchain.sh
if ! browser_toolchain_ready; then
  log "installing $BROWSER_TOOLCHAIN (rust-src, wasm32-unknown-unknown) for the browser packages"
  timeout -k 5 300 rustup toolchain install "$BROWSER_TOOLCHAIN" --profile minimal \
    -c rust-src -t wasm32-unknown-unknown >&2 ||
    log "rustup could not install $BROWSER_TOOLCHAIN: scripts/build.sh will fall back to stable (bigger wasm)"
fi

# 2. wasm-bindgen-cli, exactly the version in Cargo.lock (wasm-pack uses the one on PATH
#    only when the versions are equal; otherwise it tries to download one, which fails here).
want_wb="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)"
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wb" != "$want_wb" ]; then
  log "installing wasm-bindgen-cli $want_wb"
  cargo install -q wasm-bindgen-cli --version "=$want_wb" --locked >&2 ||
    cargo install -q wasm-bindgen-cli --version "=$want_wb" >&2
fi

# 3. wasm-pack.
if ! have wasm-pack; then
  log "installing wasm-pack"
  cargo install -q wasm-pack --locked >&2
fi

# 4. Chromium and its driver, from Debian.
if ! have chromium || ! have chromedriver; then
  log "installing chromium and chromium-driver"
  apt_install chromium chromium-driver
fi

# 5. The PC/SC stack of the agent's tests (scripts/pcsc-test.sh) and pcsc-lite's headers for
#    the `pcsc` crate: Debian's pcscd, vsmartcard's virtual reader driver (vpcd) and virtual
#    card (vicc, which needs PyCryptodome).
pcsc_packages=(pcscd libpcsclite-dev vsmartcard-vpcd vsmartcard-vpicc python3-pycryptodome)
missing=()
for p in "${pcsc_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# 6. npm packages (TypeScript, Playwright's driver for the system Chromium, binaryen, esbuild).
#    A node_modules that is a symbolic link (a git worktree sharing another checkout's
#    packages) is left alone: `npm ci` empties the directory the link points to.
if [ -L node_modules ]; then
  log "node_modules links to $(readlink node_modules): not reinstalling npm packages there"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
fi
# 7. JSON-schema validation of the SERAM messages (tests/seram_schema.py), from Debian.
seram_python_ok() {
  local py
  for py in python3 /usr/bin/python3; do
    "$py" -c 'import jsonschema, yaml' >/dev/null 2>&1 && return 0
  done
  return 1
}
if ! seram_python_ok; then
  log "installing python3-jsonschema and python3-yaml"
  apt_install python3-jsonschema python3-yaml
fi
# 8. The agent's Windows check (scripts/test.sh): the rustup target, and MinGW's C compiler for
#    ring's C and assembly parts.
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/x86_64-pc-windows-gnu/lib" ]; then
  log "adding the x86_64-pc-windows-gnu target"
  timeout -k 5 300 rustup target add x86_64-pc-windows-gnu >&2 ||
    log "rustup could not add x86_64-pc-windows-gnu (the Windows check will fail)"
fi
if ! dpkg-query -W -f='${Status}' gcc-mingw-w64-x86-64 2>/dev/null | grep -q "install ok installed"; then
  log "installing gcc-mingw-w64-x86-64"
  apt_install gcc-mingw-w64-x86-64
fi
log "ready"
