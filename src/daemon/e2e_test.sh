#!/usr/bin/env bash
# End-to-end test through the CLI against a real storevisord with real containers (runc or
# storevisor-runtime), bridges and nftables: apply and converge; a published port answers;
# changing one workload replaces only it; a killed container is restarted with backoff;
# kill -9 of the daemon keeps every workload (same pids) and they are re-adopted; a bad
# profile is refused with the exact message; an empty profile removes everything.
set -euo pipefail
BIN="${1:?usage: e2e_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
if [ ! -d "$IMAGES/storevisor_kv_1/rootfs" ]; then
  echo "SKIPPED: demo images missing (run scripts/setup.d/50-demo.sh)"; exit 0
fi
T="$(mktemp -d /tmp/sv-e2e-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
start_daemon() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" --vm-tool "" \
    >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 50); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  ip link delete sv-e2e 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- events"; SV events 2>&1 | tail -30; echo "--- daemon log"; tail -30 "$T/daemon.log"; exit 1; }
pid_of() { SV ps -o json | python3 -c "import json,sys; print([w['pid'] for w in json.load(sys.stdin) if w['name']=='$1'][0])"; }
field_of() { SV ps -o json | python3 -c "import json,sys; print([w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'][0])"; }

profile() {  # $1: value of inventory's COLOUR
  cat <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e}
spec:
  networks:
    - {name: e2e, subnet: 10.89.77.0/24}
  workloads:
    - name: kv
      kind: container
      image: storevisor/kv:1
      command: [/usr/bin/redis-server, --port, "6379", --save, "", --protected-mode, "no", --dir, /data]
      mounts: [{target: /data}]
      networks: [e2e]
      memory: 64Mi
      restart: {policy: always, backoff: {initial: 200ms, max: 2s}}
      health: {exec: [/usr/bin/redis-cli, ping], interval: 1s, timeout: 900ms}
    - name: inventory
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      env: {COLOUR: $1}
      networks: [e2e]
      ports: [{host: 18097, container: 8080}]
      after: [kv]
      health: {http: {port: 8080, path: /inventory.json}, interval: 1s, timeout: 900ms}
YAML
}
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e}\nspec:\n  workloads: []\n' > "$T/empty.yaml"
profile red > "$T/p1.yaml"
profile blue > "$T/p2.yaml"

start_daemon
echo "== apply converges, ps shows both healthy"
SV apply -f "$T/p1.yaml" --timeout 60 || fail "apply"
SV ps
[ "$(field_of kv health)" = healthy ] && [ "$(field_of inventory health)" = healthy ] || fail "not healthy"

echo "== the published port answers"
curl -sf -m 5 http://127.0.0.1:18097/inventory.json | grep -q '"store"' || fail "port 18097"

echo "== exec runs in the container"
[ "$(SV exec kv -- /usr/bin/redis-cli ping)" = PONG ] || fail "exec"

echo "== changing one workload's env replaces only it"
SV diff -f "$T/p2.yaml" | tee "$T/diff.txt"
grep -q "replace  inventory" "$T/diff.txt" && ! grep -q " kv " "$T/diff.txt" || fail "diff"
kv_pid=$(pid_of kv); inv_pid=$(pid_of inventory)
SV apply -f "$T/p2.yaml" --timeout 60 >/dev/null || fail "apply 2"
[ "$(pid_of kv)" = "$kv_pid" ] || fail "kv was touched"
[ "$(pid_of inventory)" != "$inv_pid" ] || fail "inventory was not replaced"

echo "== a killed container is restarted with backoff"
kv_pid=$(pid_of kv)
kill -9 "$kv_pid"
for _ in $(seq 100); do
  [ "$(field_of kv state)" = running ] && [ "$(pid_of kv)" != "$kv_pid" ] && break; sleep 0.1
done
[ "$(pid_of kv)" != "$kv_pid" ] && [ "$(field_of kv restarts)" -ge 1 ] || fail "kv not restarted"
SV events | grep -q "kv restarts in 200 ms" || fail "no backoff event"

echo "== kill -9 of the daemon: workloads survive and are re-adopted"
kv_pid=$(pid_of kv); inv_pid=$(pid_of inventory)
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
kill -0 "$kv_pid" && kill -0 "$inv_pid" || fail "a workload died with the daemon"
start_daemon
[ "$(pid_of kv)" = "$kv_pid" ] && [ "$(pid_of inventory)" = "$inv_pid" ] || fail "pids changed"
SV events | grep -q "adopted pid $kv_pid" || fail "no adoption event"
curl -sf -m 5 http://127.0.0.1:18097/health >/dev/null || fail "port after restart"

echo "== a bad profile is refused with the exact message"
sed 's/^    - name: kv/    - name: kv\n      imagee: x/' "$T/p1.yaml" > "$T/bad.yaml"
set +e
SV apply -f "$T/bad.yaml" 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] || fail "exit status $rc, want 2"
grep -q "bad.yaml:9: spec.workloads\[0\].imagee: unknown field; expected one of:" "$T/err.txt" || fail "message: $(cat "$T/err.txt")"

echo "== an empty profile removes workloads, bridge and rules"
SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null || fail "apply empty"
[ "$(SV ps -o json)" = "[]" ] || fail "workloads left"
[ ! -e /sys/class/net/sv-e2e ] || fail "bridge left"
! nft list table ip storevisor-nat >/dev/null 2>&1 || fail "nat table left"
echo "e2e: all checks passed"
