#!/usr/bin/env bash
# End to end: the shipped example profiles run on this machine, one after the other on the
# same daemon, as one box becomes another device by the profile it is given:
#   store-demo -> pos-lane -> kiosk -> self-checkout -> empty
# After each apply every declared workload runs and is healthy, and nothing of the previous
# profile is left (workloads, bridges). A missing prerequisite exits 77 (CTest: skipped).
set -euo pipefail
BIN="${1:?usage: e2e_examples_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
missing=()
[ "$(id -u)" = 0 ] || missing+=("root")
for f in "$BIN/storevisord" "$BIN/storevisor" "$BIN/storevisor-vm" "$ROOT/build/guest/vmlinuz" \
         "$ROOT/build/guest/initrd.img"; do
  [ -e "$f" ] || missing+=("$f")
done
if [ "${#missing[@]}" -eq 0 ]; then
  # self-checkout runs the vision image, made after the build.
  bash "$ROOT/scripts/setup.d/50-demo.sh" >/dev/null 2>&1 || true
  for img in storevisor_kv_1 storevisor_inventory_1 storevisor_vision_1; do
    [ -d "$IMAGES/$img/rootfs" ] || missing+=("$IMAGES/$img (scripts/setup.d/50-demo.sh)")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "SKIPPED: missing prerequisite(s): ${missing[*]}"
  exit 77
fi

T="$(mktemp -d /tmp/sv-e2e-examples-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
KSM_BEFORE="$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo)"
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  # The examples' microVMs may switch ksmd on; the test puts the host back.
  [ -n "$KSM_BEFORE" ] && echo "$KSM_BEFORE" > /sys/kernel/mm/ksm/run 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
# Written first: the cleanup applies it when a check fails half-way.
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: empty}\nspec:\n  workloads: []\n' > "$T/empty.yaml"
fail() { echo "FAIL: $*"; echo "--- events"; SV events 2>&1 | tail -20; echo "--- daemon log"; tail -20 "$T/daemon.log"; exit 1; }

"$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" \
  --vm-tool "$BIN/storevisor-vm" >> "$T/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do SV version >/dev/null 2>&1 && break; sleep 0.1; done
SV version >/dev/null 2>&1 || fail "daemon did not start"

# The profile's workload names and network bridges (from the YAML), one per line.
declared() {  # $1: profile, $2: workloads|networks
  python3 - "$1" "$2" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
for x in p["spec"].get(sys.argv[2], []) or []:
    print(("sv-" if sys.argv[2] == "networks" else "") + x["name"])
PY
}
# The workloads a profile declares with update: manual, one per line.
manual() {
  python3 - "$1" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
for x in p["spec"].get("workloads", []) or []:
    if x.get("update") == "manual":
        print(x["name"])
PY
}
prev_bridges=""
prev_workloads=""
for name in store-demo pos-lane kiosk self-checkout; do
  f="$ROOT/examples/$name.yaml"
  echo "== $name"
  start=$(date +%s%N)
  SV apply -f "$f" --timeout 240 >/dev/null || fail "apply $name"
  echo "$name: all healthy in $(( ($(date +%s%N) - start) / 1000000 )) ms"
  # An update: manual workload the previous profile ran under the same name keeps its old
  # instance (and the network it is on) until the operator restarts it, as an operator would.
  for m in $(manual "$f"); do
    grep -qx "$m" <<<"$prev_workloads" || continue
    SV restart "$m" >/dev/null || fail "$name: restart $m (update: manual)"
    SV apply -f "$f" --timeout 240 >/dev/null || fail "$name: $m did not come back healthy"
  done
  prev_workloads="$(declared "$f" workloads)"
  SV ps
  want="$(declared "$f" workloads | sort)"
  have="$(SV ps -o json | python3 -c '
import json, sys
for w in json.load(sys.stdin):
    print(w["name"])' | sort)"
  [ "$want" = "$have" ] || fail "$name: workloads are [$have], the profile declares [$want]"
  SV ps -o json | python3 -c '
import json, sys
bad = [w["name"] + ":" + w["state"] + "/" + w["health"] for w in json.load(sys.stdin)
       if w["state"] != "running" or w["health"] not in ("healthy", "none")]
sys.exit("not running and healthy: " + " ".join(bad) if bad else 0)' || fail "$name: not all healthy"
  bridges="$(declared "$f" networks)"
  for br in $bridges; do [ -e "/sys/class/net/$br" ] || fail "$name: bridge $br missing"; done
  for br in $prev_bridges; do
    grep -qx "$br" <<<"$bridges" && continue
    # A network kept for a manual instance goes at the next housekeeping (every 5 s).
    for _ in $(seq 100); do [ -e "/sys/class/net/$br" ] || break; sleep 0.1; done
    [ ! -e "/sys/class/net/$br" ] || fail "$name: bridge $br of the previous profile left"
  done
  prev_bridges="$bridges"
done

SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
[ "$(SV ps -o json)" = "[]" ] || fail "workloads left: $(SV ps -o json)"
for br in $prev_bridges; do [ ! -e "/sys/class/net/$br" ] || fail "bridge $br left"; done
echo "e2e-examples: all checks passed"
