#!/usr/bin/env bash
# End-to-end for the legacy-vm kind through the real daemon and CLI (docs/legacy-vm.md):
# bad legacy options are refused by `storevisor apply` with file, line and field; the example
# profile's POS VM boots (TCG) and turns healthy through the `screen` check (OCR); `storevisor
# screenshot` saves a PNG in which tesseract reads the POS title; QMP events (STOP/RESUME)
# become daemon events; the display is served only for the profile's token and speaks RFB;
# kill -9 of the daemon leaves QEMU running and the same pid is re-adopted, with its event
# listener; an empty profile powers the VM off and removes its tap.
set -euo pipefail
BIN="${1:?usage: daemon_e2e_test.sh BUILD_DIR}/bin"
BUILD="$1"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DISK="$BUILD/guest/legacy/legacy-pos.raw"
# A missing prerequisite is a skip, not a pass: exit 77 (SKIP_RETURN_CODE), naming each one.
missing=()
for tool in storevisord storevisor storevisor-legacy; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
[ -e "$DISK" ] || missing+=("legacy POS disk $DISK (scripts/setup.d/25-legacy-image.sh)")
command -v tesseract >/dev/null || missing+=("command tesseract (scripts/setup.sh)")
[ "$(id -u)" = 0 ] || missing+=("root (taps, cgroups)")
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED legacy.daemon_e2e (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-legacy-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
CLI=""
start_daemon() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" \
    --legacy-tool "$BIN/storevisor-legacy" >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 50); do SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
cleanup() {
  set +e
  [ -n "$CLI" ] && kill "$CLI" 2>/dev/null
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  # Whatever the daemon could not stop (a failed test) goes too.
  for run in "$T"/state/legacy/*/run; do
    [ -d "$run" ] && "$BIN/storevisor-legacy" stop --state-dir "$run" --timeout 1 >/dev/null 2>&1
  done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; SV events 2>&1 | tail -20; tail -20 "$T/daemon.log"; exit 1; }
pid_of() { SV ps -o json | python3 -c "import json,sys; print([w['pid'] for w in json.load(sys.stdin) if w['name']=='$1'][0])"; }

# The example profile, with its disk path made absolute for this build tree.
sed "s|path: ../build/guest/legacy/legacy-pos.raw|path: $DISK|" \
  "$ROOT/examples/legacy-pos-lane.yaml" > "$T/lane.yaml"
grep -q "path: $DISK" "$T/lane.yaml" || fail "could not point the example at $DISK"
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: legacy-pos-lane}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

start_daemon
echo "== bad legacy options are refused by apply, nothing starts"
refused() {  # FILE EXPECTED-TEXT
  set +e; out=$(SV apply -f "$1" --timeout 10 2>&1); rc=$?; set -e
  [ "$rc" = 2 ] || fail "$1: exit $rc, expected 2: $out"
  echo "$out" | grep -qF "$2" || fail "$1: message '$out' lacks '$2'"
  echo "  refused: $out"
}
sed 's|vga: std .*|vga: matrox|' "$T/lane.yaml" > "$T/bad-vga.yaml"
refused "$T/bad-vga.yaml" "bad-vga.yaml:22: spec.workloads[0].vga: expected one of std, cirrus, qxl, virtio, none, got 'matrox'"
sed 's|firmware: seabios .*|firmware: ovmf\n      firmwareCode: /nonexistent/OVMF_CODE.fd|' "$T/lane.yaml" > "$T/bad-fw.yaml"
refused "$T/bad-fw.yaml" "bad-fw.yaml:17: spec.workloads[0].firmwareCode: "
sed 's|usb: \[.*|usb: ["0c2e:0b6"]|' "$T/lane.yaml" > "$T/bad-usb.yaml"
refused "$T/bad-usb.yaml" "bad-usb.yaml:28: spec.workloads[0].usb[0]: \"0c2e:0b6\" is not vendor:product"
[ "$(SV ps -o json)" = "[]" ] || fail "a refused profile left workloads"

echo "== the POS VM boots and turns healthy through the screen check"
t0=$(date +%s%N)
SV apply -f "$T/lane.yaml" --timeout 240 || fail "apply"
echo "  apply -> healthy: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
SV ps
SV events | grep -q "pos-legacy is healthy" || fail "no healthy event"

echo "== QEMU runs pinned in the daemon's cgroup for it (the profile's cpuset)"
if [ -d /sys/fs/cgroup/cpuset ]; then CG=/sys/fs/cgroup/cpuset/storevisor/daemon/pos-legacy  # v1, hybrid
else CG=/sys/fs/cgroup/storevisor/daemon/pos-legacy; fi                                          # v2
if [ -e "$CG/cpuset.cpus" ]; then
  [ "$(cat "$CG/cpuset.cpus")" = 0 ] || fail "cpuset.cpus of $CG is $(cat "$CG/cpuset.cpus"), expected 0"
  grep -qx "$(pid_of pos-legacy)" "$CG/cgroup.procs" || fail "QEMU is not in $CG"
  grep -q "^Cpus_allowed_list:[[:space:]]*0$" "/proc/$(pid_of pos-legacy)/status" || fail "QEMU may run on other cores"
else
  echo "SKIPPED: no cpuset controller at $CG"
fi

echo "== storevisor screenshot: a PNG in which tesseract reads the POS title"
SV screenshot pos-legacy "$T/pos.png" || fail "screenshot"
[ "$(head -c 4 "$T/pos.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "not a PNG"
# Sauvola's adaptive threshold: the title is white on blue, which the default (global
# Otsu) threshold turns into one dark bar.
tesseract "$T/pos.png" - --psm 6 -c thresholding_method=2 2>/dev/null | tr -d ' ' | tr 'a-z' 'A-Z' | tee "$T/ocr.txt" | head -5
grep -q "STOREVISORPOS" "$T/ocr.txt" || fail "tesseract did not read STOREVISOR POS"
set +e; SV screenshot nosuch "$T/x.png" 2>/dev/null; rc=$?; set -e
[ "$rc" = 3 ] || fail "screenshot of a missing workload: exit $rc, expected 3"

echo "== QMP events become daemon events"
RUN="$T/state/legacy/pos-legacy/run"
"$BIN/storevisor-legacy" pause --state-dir "$RUN" 2>/dev/null
"$BIN/storevisor-legacy" resume --state-dir "$RUN" 2>/dev/null
for _ in $(seq 30); do SV events | grep -q "qmp-resume" && break; sleep 0.1; done
SV events | grep -q "qmp-stop .*pos-legacy: QMP STOP" || fail "no qmp-stop event"
SV events | grep -q "qmp-resume" || fail "no qmp-resume event"

echo "== USB hot-plug through the daemon (no USB hardware here: QEMU's own answers)"
# By current bus:address QEMU looks the device up at once and refuses; by vendor:product it
# accepts and waits for the device to appear, as in legacy_integration_test.
set +e; out=$(SV usb attach pos-legacy 9:9 2>&1); rc=$?; set -e
[ "$rc" != 0 ] && echo "$out" | grep -q "failed to find host usb device 9:9" || fail "usb attach 9:9: exit $rc: $out"
SV usb attach pos-legacy 0c2e:0b62 | grep -q "QEMU device usb-0c2e-0b62" || fail "usb attach 0c2e:0b62"
SV events | grep -q "usb-attached .*0c2e:0b62 attached to pos-legacy" || fail "no usb-attached event"
SV usb detach pos-legacy 0c2e:0b62 >/dev/null || fail "usb detach"
set +e; SV usb detach pos-legacy 0c2e:0b62 2>/dev/null; rc=$?
SV usb attach pos-legacy 0c2e:b62 2>/dev/null; rc2=$?; set -e
[ "$rc" != 0 ] || fail "a second detach of the same device succeeded"
[ "$rc2" = 2 ] || fail "a malformed USB id: exit $rc2, expected 2"

echo "== the display: only with the profile's token, then VNC's RFB stream"
display() {  # TOKEN -> first line of the answer
  python3 - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
s.sendall(("GET /v1/workloads/pos-legacy/display HTTP/1.1\r\nHost: x\r\nX-Display-Token: %s\r\n\r\n" % sys.argv[2]).encode())
data = b""
while b"\r\n\r\n" not in data or (data.startswith(b"HTTP/1.1 200") and len(data.split(b"\r\n\r\n", 1)[1]) < 12):
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), body[:12].decode(errors="replace").strip())
PY
}
display wrong-token-wrong-token | grep -q "HTTP/1.1 403" || fail "a wrong token was not refused"
display lane7-display-token-0001 | grep -q "HTTP/1.1 200 OK RFB 003.008" || fail "no RFB through the daemon"
PORT=$(( 20000 + RANDOM % 20000 ))
STOREVISOR_DISPLAY_TOKEN=lane7-display-token-0001 SV display pos-legacy --port "$PORT" --once &
CLI=$!
# The first connection is the viewer (--once): retry until the CLI listens, then read RFB.
python3 -c "
import socket, time
for _ in range(100):
    try:
        s = socket.create_connection(('127.0.0.1', $PORT)); break
    except OSError:
        time.sleep(0.1)
s.settimeout(10)
assert s.recv(12).startswith(b'RFB 003.008'), 'no RFB through storevisor display'" || fail "storevisor display"
wait "$CLI" || fail "storevisor display exited with an error"
CLI=""

echo "== kill -9 of the daemon: QEMU keeps running, the same pid is re-adopted"
qemu=$(pid_of pos-legacy)
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
kill -0 "$qemu" || fail "QEMU died with the daemon"
start_daemon
[ "$(pid_of pos-legacy)" = "$qemu" ] || fail "pid changed"
SV events | grep -q "adopted pid $qemu" || fail "no adoption event"
n=$(SV events | grep -c "qmp-stop" || true)
sleep 1  # the re-adopted listener connects on the supervisor's first tick
"$BIN/storevisor-legacy" pause --state-dir "$RUN" 2>/dev/null
"$BIN/storevisor-legacy" resume --state-dir "$RUN" 2>/dev/null
for _ in $(seq 30); do [ "$(SV events | grep -c qmp-stop)" -gt "$n" ] && break; sleep 0.1; done
[ "$(SV events | grep -c qmp-stop)" -gt "$n" ] || fail "no QMP events after re-adoption"

echo "== an empty profile powers it off and removes its tap"
tap=$(python3 -c "import json; print(json.load(open('$T/state/legacy/pos-legacy/vm.json'))['nics'][0]['tap'])")
ip link show "$tap" >/dev/null 2>&1 || fail "tap $tap missing while running"
SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
for _ in $(seq 100); do kill -0 "$qemu" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$qemu" 2>/dev/null || fail "QEMU still runs"
! ip link show "$tap" >/dev/null 2>&1 || fail "tap $tap left behind"
[ -z "${CG:-}" ] || [ ! -e "$CG" ] || fail "cgroup $CG left behind"
echo "e2e-legacy: all checks passed"
