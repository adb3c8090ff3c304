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
# A missing prerequisite is a skip, not a pass: exit 77 (SKIP_RETURN_CODE in CMakeLists.txt),
# naming each one that is missing.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (namespaces, bridges, nftables, cgroups)")
for img in storevisor_kv_1 storevisor_inventory_1; do
  [ -d "$IMAGES/$img/rootfs" ] || missing+=("demo image $IMAGES/$img/rootfs (scripts/setup.d/50-demo.sh)")
done
for tool in storevisord storevisor storevisor-image; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in ip nft curl python3 findmnt; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED daemon.e2e (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
# Started from $T with relative paths, as an operator in a shell might: the daemon must
# resolve them where it starts (the runtime runs in the bundle's directory).
ln -s "$IMAGES" "$T/images"
start_daemon() {
  (cd "$T" && exec "$BIN/storevisord" --state-dir state --socket sock --image-dir ./images \
    --vm-tool "") >> "$T/daemon.log" 2>&1 &
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
# Each /storevisor or /storevisor/daemon folder, in any hierarchy, that has no child cgroup.
empty_cgroup_parents() {
  for d in /sys/fs/cgroup/storevisor /sys/fs/cgroup/storevisor/daemon \
           /sys/fs/cgroup/*/storevisor /sys/fs/cgroup/*/storevisor/daemon; do
    [ -d "$d" ] && [ -z "$(find "$d" -mindepth 1 -maxdepth 1 -type d -print -quit)" ] && echo "$d"
  done
  true
}
pid_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['pid'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }

profile() {  # $1: value of inventory's COLOUR
  cat <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e}
spec:
  rollback: never  # these tests watch retries; trials and rollbacks: e2e_update_test.sh
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

echo "== CPU and memory are the workload cgroup's: a busy exec (not the main process) counts"
SV exec inventory --timeout 20 -- /bin/busybox timeout 4 /bin/busybox sh -c 'while :; do :; done' >/dev/null 2>&1 &
BUSY=$!
usage=""
for _ in $(seq 40); do
  sleep 0.25
  usage="$(SV ps -o json | python3 -c "import json,sys; w=next(w for w in json.load(sys.stdin) if w['name']=='inventory'); print(w['cpuPercent'], w['memoryBytes'], w['usageSource'])")"
  python3 -c "import sys; c, m, s = sys.argv[1:]; sys.exit(0 if float(c) > 10 and int(m) > 0 and s == 'cgroup' else 1)" $usage && break
done
metric="$(curl -s --unix-socket "$SOCK" http://sv/metrics | awk '/^storevisor_workload_cpu_percent\{name="inventory"/{print $2}')"
wait "$BUSY" || true
python3 -c "import sys; c, m, s = sys.argv[1:4]; sys.exit(0 if float(c) > 10 and int(m) > 0 and s == 'cgroup' else 1)" $usage || fail "ps usage of inventory: $usage"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 10 else 1)" "${metric:-0}" || fail "metrics cpu of inventory: '$metric'"
# A few tries: kv's memory was missing from one scrape under load (seen once); the last
# scrape is shown if none has it.
for _ in 1 2 3 4 5; do
  curl -s --max-time 10 --unix-socket "$SOCK" http://sv/metrics > "$T/metrics.txt" || true
  grep -Eq '^storevisor_workload_memory_bytes\{name="kv",kind="container"\} [1-9]' "$T/metrics.txt" && break
  sleep 0.3
done
grep -Eq '^storevisor_workload_memory_bytes\{name="kv",kind="container"\} [1-9]' "$T/metrics.txt" ||
  fail "metrics memory of kv: $(grep -E '^storevisor_workload_(memory_bytes|up)' "$T/metrics.txt" | tr '\n' ' ') ($(wc -c < "$T/metrics.txt") bytes)"

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
# One ps snapshot per check: state, pid and restarts read from separate calls can straddle the
# moment the exit is noticed (state still "running" but pid already 0, restarts not yet counted).
kv_restarted() {
  SV ps -o json | python3 -c "
import json, sys
w = next((w for w in json.load(sys.stdin) if w['name'] == 'kv'), None)
sys.exit(0 if w and w['state'] == 'running' and w['pid'] not in (0, $kv_pid) and w['restarts'] >= 1 else 1)"
}
for _ in $(seq 150); do kv_restarted && break; sleep 0.1; done
kv_restarted || fail "kv not restarted: state $(field_of kv state), pid $(pid_of kv) (was $kv_pid), restarts $(field_of kv restarts)"
SV events | grep -q "kv restarts in 200 ms" || fail "no backoff event"

echo "== kill -9 of the daemon: workloads survive and are re-adopted"
kv_pid=$(pid_of kv); inv_pid=$(pid_of inventory)
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
kill -0 "$kv_pid" && kill -0 "$inv_pid" || fail "a workload died with the daemon"
start_daemon
[ "$(pid_of kv)" = "$kv_pid" ] && [ "$(pid_of inventory)" = "$inv_pid" ] || fail "pids changed"
SV events | grep -q "adopted pid $kv_pid" || fail "no adoption event"
curl -sf -m 5 http://127.0.0.1:18097/health >/dev/null || fail "port after restart"

echo "== kill -9 of the daemon mid-apply: same pids, no leftover, converged after restart"
# p3 = p2 + 'late' (after inventory). The daemon is killed at once and after 0.1/0.3 s: before,
# during and after the step that makes 'late'; the restarted daemon finishes the apply alone.
{ profile blue; cat <<YAML
    - name: late
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "4242"]
      after: [inventory]
      restart: never
YAML
} > "$T/p3.yaml"
for delay in 0 0.1 0.3; do
  kv_pid=$(pid_of kv); inv_pid=$(pid_of inventory)
  SV apply -f "$T/p3.yaml" --no-wait >/dev/null || fail "apply p3"
  sleep "$delay"
  kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
  start_daemon
  for _ in $(seq 150); do
    [ "$(SV ps -o json | python3 -c "import json,sys; l=json.load(sys.stdin); print(len(l)==3 and all(w['state']=='running' and w['health'] in ('healthy','none') for w in l))")" = True ] && break
    sleep 0.1
  done
  [ "$(field_of late state)" = running ] || fail "late not running after restart (delay $delay)"
  [ "$(pid_of kv)" = "$kv_pid" ] && [ "$(pid_of inventory)" = "$inv_pid" ] || fail "pids changed (delay $delay)"
  [ "$(pgrep -fc 'sleep 4242')" = 1 ] || fail "$(pgrep -fc 'sleep 4242') instances of late (delay $delay)"
  SV diff -f "$T/p3.yaml" | grep -q "no changes" || fail "not converged (delay $delay)"
  SV apply -f "$T/p2.yaml" --timeout 30 >/dev/null || fail "apply p2 back"
  [ "$(pgrep -fc 'sleep 4242')" = 0 ] || fail "late left running"
done

echo "== a failed step is reported, the store stays consistent, the reconciler retries it"
{ profile blue; cat <<YAML
    - name: later
      kind: container
      rootfs: $T/later-rootfs
      command: [/bin/sleep, "4343"]
      restart: {policy: always, backoff: {initial: 200ms, max: 1s}}
YAML
} > "$T/p4.yaml"
SV apply -f "$T/p4.yaml" --no-wait >/dev/null || fail "apply p4"
# The retries (200 ms backoff) flip it between failed and creating: one sight is enough.
seen=""
for _ in $(seq 50); do [ "$(field_of later state)" = failed ] && { seen=1; break; }; sleep 0.1; done
[ -n "$seen" ] || fail "later is $(field_of later state), want failed"
field_of later lastError | grep -q "rootfs $T/later-rootfs does not exist" || fail "error: $(field_of later lastError)"
SV events | grep -q "create later failed: rootfs $T/later-rootfs does not exist; retrying in" || fail "no failed event"
[ "$(field_of kv state)" = running ] && [ "$(field_of inventory state)" = running ] || fail "others disturbed"
cp -a "$ROOT/build/demo-images/storevisor_inventory_1/rootfs" "$T/later-rootfs"
for _ in $(seq 100); do [ "$(field_of later state)" = running ] && break; sleep 0.1; done
[ "$(field_of later state)" = running ] || fail "later was not retried: $(field_of later state)"
SV apply -f "$T/p2.yaml" --timeout 30 >/dev/null || fail "apply p2 after p4"

echo "== images from the image store: an overlay bundle; a missing image refuses the apply"
"$BIN/storevisor-image" --root "$T/state/images" build-from-dir \
  "$IMAGES/storevisor_inventory_1/rootfs" e2e/inv:1 >/dev/null 2>&1 || fail "build-from-dir"
{ profile blue; cat <<YAML
    - {name: fromstore, kind: container, image: e2e/inv:1, command: [/bin/sleep, "4444"]}
    - {name: nostore, kind: container, image: e2e/missing:1, command: [/bin/true]}
YAML
} > "$T/p5.yaml"
# Checked before anything is touched (precheck.h): refused, nothing made.
set +e
SV apply -f "$T/p5.yaml" --no-wait > /dev/null 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "spec.workloads\[[0-9]*\].image: image e2e/missing:1 is not in the image store $T/state/images" "$T/err.txt" ||
  fail "missing image: status $rc, $(cat "$T/err.txt")"
[ -z "$(field_of fromstore state)" ] || fail "a refused apply made fromstore"
grep -v nostore "$T/p5.yaml" > "$T/p5b.yaml"
SV apply -f "$T/p5b.yaml" --no-wait >/dev/null || fail "apply p5b"
for _ in $(seq 100); do [ "$(field_of fromstore state)" = running ] && break; sleep 0.1; done
[ "$(field_of fromstore state)" = running ] || fail "fromstore: $(field_of fromstore state) $(field_of fromstore lastError)"
findmnt -n -t overlay "$T/state/containers/fromstore/image/rootfs" >/dev/null || fail "no overlay rootfs"
SV apply -f "$T/p2.yaml" --timeout 30 >/dev/null || fail "apply p2 after p5"
! findmnt "$T/state/containers/fromstore/image/rootfs" >/dev/null || fail "overlay left mounted"

echo "== after: conditions: started lets a dependant start before health; holds: health gates it"
# 'slow' passes its check only once /data/ready exists; 'lane' (holds: health) and 'early'
# (condition: started) must run before that, 'lane' stays starting until slow is healthy.
{ profile blue; cat <<YAML
    - name: slow
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "4545"]
      mounts: [{target: /data}]
      health: {exec: [/bin/busybox, test, -f, /data/ready], interval: 5s, timeout: 2s}
    - name: lane
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "4646"]
      after: [{name: slow, holds: health}]
      health: {exec: [/bin/true], interval: 1s, timeout: 900ms}
    - name: early
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "4747"]
      after: [{name: slow, condition: started}]
YAML
} > "$T/p6.yaml"
SV apply -f "$T/p6.yaml" --no-wait >/dev/null || fail "apply p6"
for _ in $(seq 100); do
  [ "$(field_of lane state)" = running ] && [ "$(field_of early state)" = running ] && break; sleep 0.1
done
[ "$(field_of lane state)" = running ] && [ "$(field_of early state)" = running ] || fail "lane/early did not start before slow was healthy"
sleep 0.5  # lane's own check (/bin/true) has passed by now; slow's has not
[ "$(field_of slow health)" = starting ] || fail "slow is $(field_of slow health), want starting"
[ "$(field_of lane health)" = starting ] || fail "lane is $(field_of lane health) before slow is healthy"
SV exec slow -- /bin/busybox touch /data/ready || fail "exec touch"
SV apply -f "$T/p6.yaml" --timeout 20 >/dev/null || fail "p6 did not converge once slow was ready"
[ "$(field_of lane health)" = healthy ] || fail "lane is $(field_of lane health)"
SV apply -f "$T/p2.yaml" --timeout 30 >/dev/null || fail "apply p2 after p6"

echo "== posted events are validated, stored and streamed"
SV events -f > "$T/sse.txt" 2>&1 & SSE=$!
sleep 0.3
curl -sf --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
  -d '{"source":"vision","type":"shelf.empty","time":"2026-11-25T12:00:00Z","data":{"shelf":"A3"}}' \
  http://sv/v1/events | grep -q '"id"' || fail "POST /v1/events"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST \
  -d '{"source":"vision","type":"x","time":"yesterday","data":{}}' http://sv/v1/events)
[ "$code" = 400 ] || fail "bad event: HTTP $code"
sleep 0.5; kill "$SSE" 2>/dev/null; wait "$SSE" 2>/dev/null || true
grep -q '^event: shelf.empty' "$T/sse.txt" && grep -q '"shelf":"A3"' "$T/sse.txt" || fail "event not streamed: $(cat "$T/sse.txt")"
SV events | grep -q 'shelf.empty vision' || fail "events list"

echo "== top prints a table"
SV top -n 1 | grep -q "^kv " || fail "top"

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
nft list ruleset > "$T/rules.txt"
! grep -q '"sv-e2e"' "$T/rules.txt" || fail "rules left: $(grep '"sv-e2e"' "$T/rules.txt")"
# The last workload gone, /storevisor/daemon and /storevisor are pruned in every hierarchy
# unless something else still has a cgroup under them (another daemon, the runtime).
left="$(empty_cgroup_parents)"
[ -z "$left" ] || fail "empty parent cgroups left: $left"
echo "e2e: all checks passed"
