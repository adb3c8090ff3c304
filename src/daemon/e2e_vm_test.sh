#!/usr/bin/env bash
# End-to-end for the microvm kind: storevisord drives the VM engine (storevisor-vm) to boot a
# microVM, the guest-agent exec health check turns it healthy, `storevisor exec` runs in the
# guest, kill -9 of the daemon leaves QEMU running and it is re-adopted with the same pid, and
# an empty profile stops it.
set -euo pipefail
BIN="${1:?usage: e2e_vm_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GUEST="$ROOT/build/guest"
if [ ! -x "$BIN/storevisor-vm" ] || [ ! -e "$GUEST/vmlinuz" ] || [ ! -e "$GUEST/initrd.img" ]; then
  echo "SKIPPED: storevisor-vm or build/guest/{vmlinuz,initrd.img} missing (scripts/setup.sh)"; exit 0
fi
T="$(mktemp -d /tmp/sv-e2e-vm-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
start_daemon() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --vm-tool "$BIN/storevisor-vm" \
    >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 50); do SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; SV events 2>&1 | tail -20; tail -20 "$T/daemon.log"; exit 1; }
pid_of() { SV ps -o json | python3 -c "import json,sys; print([w['pid'] for w in json.load(sys.stdin) if w['name']=='$1'][0])"; }
cat > "$T/vm.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-vm}
spec:
  workloads:
    - name: pos
      kind: microvm
      kernel: $GUEST/vmlinuz
      initrd: $GUEST/initrd.img
      memory: 256Mi
      health: {exec: [/bin/true], interval: 2s, timeout: 1500ms, retries: 5}
YAML
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-vm}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

start_daemon
echo "== a microVM boots and its agent health check passes"
SV apply -f "$T/vm.yaml" --timeout 120 || fail "apply"
SV ps
[ -n "$(SV exec pos -- /bin/uname -r)" ] || fail "exec in the guest"
echo "== kill -9 of the daemon: QEMU keeps running and is re-adopted"
qemu=$(pid_of pos)
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
kill -0 "$qemu" || fail "QEMU died with the daemon"
start_daemon
[ "$(pid_of pos)" = "$qemu" ] || fail "pid changed"
SV events | grep -q "adopted pid $qemu" || fail "no adoption event"
echo "== an empty profile stops it"
SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
for _ in $(seq 50); do kill -0 "$qemu" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$qemu" 2>/dev/null || fail "QEMU still runs"
echo "e2e-vm: all checks passed"
