#!/usr/bin/env bash
# End-to-end through the CLI against a real storevisord: generations on trial, committed
# or rolled back by themselves (issue 15, "Trial and commit"):
#  - a generation whose workloads stay healthy for commitAfter is committed (`apply --wait`
#    exits 0, `history` says committed);
#  - a container whose health check never passes, and one that exits at once: each generation
#    is rolled back by itself (`apply --wait` exits 30), the previous instance runs again with
#    the same volume data, the untouched workload keeps its pid, nothing is left of the failed
#    instance, and `events`, `history` and `apply` name the cause;
#  - kill -9 of the daemon during a trial (it resumes and commits) and during a failing one
#    (it rolls back when it comes back);
#  - `storevisor rollback GEN` applies an earlier generation again as a new one.
# Its own state dir, socket, nftables table, bridge (sv-e2etri), subnet and workload names:
# it can run beside the other e2e tests. All traffic stays on loopback and its bridge.
set -euo pipefail
BIN="${1:?usage: e2e_update_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (namespaces, bridges, nftables, cgroups, overlayfs)")
[ -d "$IMAGES/storevisor_inventory_1/rootfs" ] ||
  missing+=("demo image $IMAGES/storevisor_inventory_1/rootfs (scripts/setup.d/50-demo.sh)")
for tool in storevisord storevisor; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in ip nft python3 pgrep; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED daemon.e2e_update (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-trial-XXXXXX)"
SOCK="$T/sock"
TABLE="sv_e2e_update"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  ip link delete sv-e2etri 2>/dev/null
  nft delete table inet "$TABLE" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- history"; SV history 2>&1 | head; echo "--- events"; SV events 2>&1 | tail -30; echo "--- daemon log"; tail -30 "$T/daemon.log"; exit 1; }
step() { echo "== [${SECONDS}s] $*"; }
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
gen_field() { SV generation "$1" -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
alive() { [ -n "$1" ] && [ "$1" != 0 ] && kill -0 "$1" 2>/dev/null; }
wait_for() {
  local n=$(( $1 * 10 )); shift
  for _ in $(seq "$n"); do "$@" 2>/dev/null && return 0; sleep 0.1; done
  "$@"
}
outcome_is() { [ "$(gen_field "$1" outcome)" = "$2" ]; }
# apply_status FILE: apply --wait's exit status (its stderr in $T/err.txt).
apply_status() {
  set +e
  SV apply -f "$1" --wait --timeout 120 > "$T/out.txt" 2> "$T/err.txt"; local rc=$?
  set -e
  echo "$rc"
}

# profile TRINV_COMMAND_MARK [HEALTH] [RESTART]: trinv (changed by each generation) and
# trkeep (never changed). The mark (a sleep length) tells the instances apart in ps.
HEALTHY="{exec: [/bin/true], interval: 300ms, timeout: 250ms, retries: 2}"
profile() {
  cat <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-update}
spec:
  commitAfter: 2s
  networks:
    - {name: e2etri, subnet: 10.89.233.0/24}
  workloads:
    - name: trkeep
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "7171"]
      networks: [e2etri]
    - name: trinv
      kind: container
      image: storevisor/inventory:1
      command: [/bin/sleep, "$1"]
      networks: [e2etri]
      mounts: [{source: $T/data, target: /data}]
      restart: {policy: always, backoff: {initial: 100ms, max: 1s}}
      health: ${2:-$HEALTHY}
YAML
}
profile 7201 > "$T/v1.yaml"
profile 7202 "{exec: [/bin/false], interval: 300ms, timeout: 250ms, retries: 2}" > "$T/unhealthy.yaml"
sed 's|command: \[/bin/sleep, "7201"\]|command: [/bin/false]|' "$T/v1.yaml" > "$T/exits.yaml"
profile 7204 > "$T/v4.yaml"
profile 7205 "{exec: [/bin/false], interval: 300ms, timeout: 250ms, retries: 2}" > "$T/v5.yaml"
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-update}\nspec:\n  workloads: []\n' > "$T/empty.yaml"
# The daemon resolves storevisor/inventory:1 in the demo images' directory.
mkdir -p "$T/state" "$T/data"
start() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --vm-tool "" --nft-table "$TABLE" \
    --image-dir "$IMAGES" >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
start

step "a healthy generation is committed after commitAfter"
rc=$(apply_status "$T/v1.yaml")
[ "$rc" = 0 ] || fail "apply --wait of v1: status $rc: $(cat "$T/err.txt")"
grep -q "generation 1 committed" "$T/err.txt" || fail "no commit said: $(cat "$T/err.txt")"
outcome_is 1 committed || fail "generation 1 is $(gen_field 1 outcome)"
SV history | grep -E "^1\* .* committed" >/dev/null || fail "history: $(SV history)"
KEEP=$(field_of trkeep pid); alive "$KEEP" || fail "trkeep not running"
SV exec trinv -- /bin/busybox sh -c 'echo v1-data > /data/mark' || fail "exec write"

step "a health check that never passes: rolled back by itself, the previous instance again"
rc=$(apply_status "$T/unhealthy.yaml")
[ "$rc" = 30 ] || fail "apply --wait: status $rc, want 30: $(cat "$T/err.txt")"
grep -q "generation 2 was rolled back: trinv failed 2 health checks" "$T/err.txt" ||
  fail "apply did not say why: $(cat "$T/err.txt")"
outcome_is 2 rolled-back || fail "generation 2 is $(gen_field 2 outcome)"
[[ "$(gen_field 2 reason)" == "trinv failed 2 health checks: "* ]] || fail "reason: $(gen_field 2 reason)"
SV events | grep -q "generation 2 rolled back to generation 1: trinv failed 2 health checks" ||
  fail "no rolled-back event"
wait_for 30 pgrep -f "^/bin/sleep 7201$" >/dev/null || fail "v1's instance is not running again"
! pgrep -f "^/bin/sleep 7202$" >/dev/null || fail "the failed instance is left running"
[ "$(field_of trkeep pid)" = "$KEEP" ] || fail "trkeep was touched: $(field_of trkeep pid), was $KEEP"
wait_for 30 test "$(field_of trinv health)" = healthy || fail "trinv is $(field_of trinv health)"
[ "$(SV exec trinv -- /bin/busybox cat /data/mark)" = v1-data ] || fail "the volume's data is gone"
SV history | grep -E "^1\* " >/dev/null || fail "generation 1 is not the current one: $(SV history)"
SV ps | grep -q "^generation 1: committed; generation 2 rolled back: trinv failed 2 health checks" ||
  fail "ps does not say it: $(SV ps)"

step "a container that exits at once: rolled back by itself"
rc=$(apply_status "$T/exits.yaml")
[ "$rc" = 30 ] || fail "apply --wait: status $rc, want 30: $(cat "$T/err.txt")"
grep -q "generation 3 was rolled back: trinv exited with status 1" "$T/err.txt" ||
  fail "apply did not say why: $(cat "$T/err.txt")"
wait_for 30 pgrep -f "^/bin/sleep 7201$" >/dev/null || fail "v1's instance is not running again"
[ "$(field_of trkeep pid)" = "$KEEP" ] || fail "trkeep was touched"

step "kill -9 of the daemon during a trial: it resumes the trial and commits"
SV apply -f "$T/v4.yaml" --timeout 60 > /dev/null || fail "apply v4"
outcome_is 4 trial || fail "generation 4 is $(gen_field 4 outcome) right after its apply"
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
start
wait_for 30 outcome_is 4 committed || fail "generation 4 is $(gen_field 4 outcome)"
SV events | grep -q "generation 4 is on trial again" || fail "no trial-resumed event"
[ "$(field_of trkeep pid)" = "$KEEP" ] || fail "trkeep was touched by the restart"

step "kill -9 of the daemon during a failing trial: it rolls back when it comes back"
SV apply -f "$T/v5.yaml" --no-wait > /dev/null || fail "apply v5"
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
start
wait_for 60 outcome_is 5 rolled-back || fail "generation 5 is $(gen_field 5 outcome)"
wait_for 30 pgrep -f "^/bin/sleep 7204$" >/dev/null || fail "v4's instance is not running again"
! pgrep -f "^/bin/sleep 7205$" >/dev/null || fail "the failed instance is left running"

step "storevisor rollback GEN applies an earlier generation again"
SV rollback 1 --wait --timeout 120 > /dev/null 2> "$T/err.txt" || fail "rollback 1: $(cat "$T/err.txt")"
[ "$(gen_field 6 restores)" = 1 ] || fail "generation 6 restores $(gen_field 6 restores)"
outcome_is 6 committed || fail "generation 6 is $(gen_field 6 outcome)"
pgrep -f "^/bin/sleep 7201$" >/dev/null || fail "generation 1's instance is not running"
SV history | grep -E "^6\* .*rollback to 1" >/dev/null || fail "history: $(SV history)"
echo "PASS"
