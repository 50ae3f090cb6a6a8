#!/usr/bin/env bash
# A private PC/SC stack for the agent's tests and benchmark: Debian's pcscd with vsmartcard's
# virtual reader driver (vpcd), started privately, and <command> run next to it.
#
# Debian 12's pcscd ignores PCSCLITE_CSOCK_NAME and always serves /run/pcscd/pcscd.comm, so
# everything runs in a mount and network namespace of its own (as root): a private tmpfs on
# /run/pcscd, a private reader configuration (vpcd on port 40059, not the default 35963),
# pcscd in the foreground ended by its PID, and <command> (the agent, the reference server,
# the virtual cards) in the same namespace. Nothing of it is visible outside; a system pcscd
# is not disturbed. Details: ../shared/reference/toolchain.md.
#
# Usage: scripts/pcsc-ns.sh <command> [arguments]   (CARD_RELAY_VPCD_PORT is set for it)
# Needs: root, pcscd, vsmartcard-vpcd (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

VPCD=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
if [ "${1:-}" != "--inside" ]; then
  if [ "$(id -u)" != 0 ]; then echo "pcsc-ns: needs root (namespaces, mounts)" >&2; exit 1; fi
  for need in pcscd unshare ip; do
    command -v "$need" >/dev/null || { echo "pcsc-ns: $need missing (run scripts/setup.sh)" >&2; exit 1; }
  done
  [ -e "$VPCD" ] || { echo "pcsc-ns: vsmartcard-vpcd missing (run scripts/setup.sh)" >&2; exit 1; }
  # The mount point must exist before the namespace can mount over it (empty otherwise).
  mkdir -p /run/pcscd
  exec unshare -m -n --propagation private bash "$0" --inside "$@"
fi
shift

ip link set lo up
mount -t tmpfs tmpfs /run/pcscd
conf="$(mktemp -d)"
# CHANNELID 0x9C7B: vpcd waits for its cards on port 40059 (reader "Virtual PCD 00 00") and
# 40060 ("Virtual PCD 00 01").
cat >"$conf/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME /dev/null:0x9C7B
LIBPATH $VPCD
CHANNELID 0x9C7B
EOF
mount --bind "$conf" /etc/reader.conf.d

pcscd -f -a ${PCSCD_DEBUG:+-d} >"${PCSCD_LOG:-$conf/pcscd.log}" 2>&1 &
pcscd_pid=$!
cleanup() {
  kill "$pcscd_pid" 2>/dev/null || true
  wait "$pcscd_pid" 2>/dev/null || true
  umount /etc/reader.conf.d 2>/dev/null || true
  rm -rf "$conf"
}
trap cleanup EXIT
for _ in $(seq 100); do
  [ -S /run/pcscd/pcscd.comm ] && break
  sleep 0.1
done
[ -S /run/pcscd/pcscd.comm ] || { echo "pcsc-ns: pcscd did not start" >&2; cat "$conf/pcscd.log" >&2; exit 1; }

export CARD_RELAY_VPCD_PORT=40059
"$@"
