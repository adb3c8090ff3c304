#!/usr/bin/env bash
# End-to-end through the CLI against a real storevisord: updates that cannot break what runs
# (issue 15, the checks before touching):
#  - a misspelled image tag, a microVM whose kernel is missing, both at once: apply is refused
#    at once with file:line: field for each, and nothing changes (same pids, same ps);
#  - `image rm` of an image the applied profile uses is refused naming the workloads (status
#    5) and the image stays; --force removes it with a warning;
#  - switching to a profile that moves everything to another network keeps the old bridge
#    while an `update: manual` container still runs on it (it still answers there), and
#    releases it once that container is replaced.
# Its own state dir, socket, nftables table, bridges (sv-e2eupa, sv-e2eupb), subnets and host
# port: it can run beside the other e2e tests. All traffic goes to loopback or its bridges.
set -euo pipefail
BIN="${1:?usage: e2e_update_checks_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (namespaces, bridges, nftables, cgroups, overlayfs)")
[ -d "$IMAGES/storevisor_inventory_1/rootfs" ] ||
  missing+=("demo image $IMAGES/storevisor_inventory_1/rootfs (scripts/setup.d/50-demo.sh)")
for tool in storevisord storevisor; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in ip nft curl python3; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED daemon.e2e_update_checks (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-upd-XXXXXX)"
SOCK="$T/sock"
TABLE="sv_e2e_update_checks"
STORE="$T/state/images"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DPID=""
start_daemon() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --vm-tool "" --nft-table "$TABLE" \
    >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 50); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  for br in sv-e2eupa sv-e2eupb; do ip link delete "$br" 2>/dev/null; done
  nft delete table inet "$TABLE" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- events"; SV events 2>&1 | tail -30; echo "--- daemon log"; tail -30 "$T/daemon.log"; exit 1; }
step() { echo "== [${SECONDS}s] $*"; }
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
# name pid state of every workload: what must not change when an apply is refused.
ps_line() { SV ps -o json | python3 -c "import json,sys; print(' '.join('%s:%s:%s' % (w['name'], w['pid'], w['state']) for w in json.load(sys.stdin)))"; }
wait_for() {
  local n=$(( $1 * 10 )); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  "$@"
}
alive() { [ -n "$1" ] && [ "$1" != 0 ] && kill -0 "$1" 2>/dev/null; }
line_of() { grep -n "name: $2\$" "$1" | head -1 | cut -d: -f1; }
# refused FILE STATUS MESSAGE: apply is refused with exactly that on stderr.
refused() {
  set +e
  SV apply -f "$1" > "$T/out.txt" 2> "$T/err.txt"; local rc=$?
  set -e
  [ "$rc" = "$2" ] || fail "$1: exit status $rc, want $2: $(cat "$T/err.txt")"
  [ "$(cat "$T/err.txt")" = "$3" ] || fail "$1: message
$(cat "$T/err.txt")
want
$3"
}

# profile NETWORK INVENTORY_IMAGE [EXTRA WORKLOAD YAML]
profile() {
  cat <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-update-checks}
spec:
  networks:
    - {name: $1, subnet: $( [ "$1" = e2eupa ] && echo 10.89.231.0/24 || echo 10.89.232.0/24 )}
  workloads:
    - name: updinv
      kind: container
      image: $2
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      networks: [$1]
      ports:
        - {host: $PORT, container: 8080}
      memory: 32Mi
      health: {http: {port: 8080, path: /inventory.json}, interval: 1s, timeout: 900ms}
    - name: updtill
      kind: container
      image: e2eupd/inv:1
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      networks: [$1]
      update: manual
      memory: 32Mi
YAML
  [ -z "${3:-}" ] || printf '%s\n' "$3"
}
POS="    - name: updpos
      kind: microvm
      kernel: $T/guest/vmlinuz
      memory: 256Mi"
profile e2eupa e2eupd/inv:1 > "$T/p1.yaml"
profile e2eupa e2eupd/inv:2 > "$T/tag.yaml"
profile e2eupa e2eupd/inv:1 "$POS" > "$T/kernel.yaml"
profile e2eupa e2eupd/inv:2 "$POS" > "$T/both.yaml"
profile e2eupb e2eupd/inv:1 > "$T/p2.yaml"
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-update-checks}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

start_daemon
# The image store the daemon resolves `image:` in (its default: STATE_DIR/images).
SV image --root "$STORE" build-from-dir "$IMAGES/storevisor_inventory_1/rootfs" \
  e2eupd/inv:1 > /dev/null 2>&1 || fail "build-from-dir"

step "apply converges"
SV apply -f "$T/p1.yaml" --timeout 60 > /dev/null || fail "apply p1"
INV=$(field_of updinv pid); TILL=$(field_of updtill pid)
alive "$INV" && alive "$TILL" || fail "not running: updinv $INV, updtill $TILL"
curl -sf -m 5 "http://127.0.0.1:$PORT/inventory.json" | grep -q '"store"' || fail "published port"
BEFORE=$(ps_line)

step "a misspelled image tag is refused at once, nothing touched"
INV_LINE=$(line_of "$T/tag.yaml" updinv)
refused "$T/tag.yaml" 2 "storevisor: $T/tag.yaml:$INV_LINE: spec.workloads[0].image: image e2eupd/inv:2 is not in the image store $STORE; import it (\`storevisor image import FILE e2eupd/inv:2\` or \`storevisor image build-from-dir DIR e2eupd/inv:2\`, see \`storevisor image ls\`); the demo images come from scripts/setup.d/50-demo.sh"
[ "$(ps_line)" = "$BEFORE" ] || fail "ps changed: $(ps_line), was $BEFORE"
alive "$INV" && [ "$(field_of updinv pid)" = "$INV" ] || fail "updinv was touched"
SV diff -f "$T/p1.yaml" | grep -q "no changes" || fail "a refused profile changed the desired state"

step "a microVM whose kernel is missing is refused, nothing touched"
POS_LINE=$(line_of "$T/kernel.yaml" updpos)
refused "$T/kernel.yaml" 2 "storevisor: $T/kernel.yaml:$POS_LINE: spec.workloads[2].kernel: $T/guest/vmlinuz: No such file or directory"
[ "$(ps_line)" = "$BEFORE" ] || fail "ps changed: $(ps_line), was $BEFORE"

step "both at once: every failure is reported"
set +e
SV apply -f "$T/both.yaml" > /dev/null 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && [ "$(wc -l < "$T/err.txt")" = 2 ] &&
  grep -q "^storevisor: $T/both.yaml:$INV_LINE: spec.workloads\[0\].image: image e2eupd/inv:2 is not in" "$T/err.txt" &&
  grep -qx "$T/both.yaml:$POS_LINE: spec.workloads\[2\].kernel: $T/guest/vmlinuz: No such file or directory" "$T/err.txt" ||
  fail "both: status $rc, $(cat "$T/err.txt")"
[ "$(ps_line)" = "$BEFORE" ] || fail "ps changed: $(ps_line), was $BEFORE"

step "image rm of an image in use is refused, naming the workloads"
set +e
SV image --root "$STORE" rm e2eupd/inv:1 > /dev/null 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 5 ] || fail "image rm in use: status $rc, want 5: $(cat "$T/err.txt")"
[ "$(cat "$T/err.txt")" = "storevisor image: e2eupd/inv:1 is in use by workload(s) updinv, updtill of the applied profile; apply a profile without it first, or --force to remove it anyway" ] ||
  fail "image rm in use: $(cat "$T/err.txt")"
SV image --root "$STORE" ls | grep -q '^e2eupd/inv:1 ' || fail "the image was removed"
step "image rm --force removes it and says what it breaks"
SV image --root "$STORE" rm --force e2eupd/inv:1 > /dev/null 2> "$T/err.txt" ||
  fail "image rm --force: $(cat "$T/err.txt")"
[ "$(cat "$T/err.txt")" = "storevisor image: warning: removing e2eupd/inv:1, which workload(s) updinv, updtill use: their next start, restart or re-creation fails until the image is back" ] ||
  fail "image rm --force: $(cat "$T/err.txt")"
! SV image --root "$STORE" ls | grep -q '^e2eupd/inv:1 ' || fail "the image is still there"
[ "$(ps_line)" = "$BEFORE" ] || fail "ps changed: $(ps_line), was $BEFORE"
# Back for the rest.
SV image --root "$STORE" build-from-dir "$IMAGES/storevisor_inventory_1/rootfs" \
  e2eupd/inv:1 > /dev/null 2>&1 || fail "build-from-dir again"

step "update: manual keeps its network while its instance runs"
TILL_ADDR=$(field_of updtill address)
[ -n "$TILL_ADDR" ] || fail "updtill has no address"
SV apply -f "$T/p2.yaml" --timeout 60 > "$T/out.txt" || fail "apply p2: $(cat "$T/out.txt")"
NEW_INV=$(field_of updinv pid)
[ "$NEW_INV" != "$INV" ] && alive "$NEW_INV" || fail "updinv was not replaced ($INV -> $NEW_INV)"
[ "$(field_of updtill pid)" = "$TILL" ] && alive "$TILL" || fail "updtill (update: manual) was replaced"
[ -e /sys/class/net/sv-e2eupb ] || fail "no bridge for the new network"
[ -e /sys/class/net/sv-e2eupa ] || fail "the bridge updtill is on was deleted"
curl -sf -m 5 "http://$TILL_ADDR:8080/inventory.json" | grep -q '"store"' ||
  fail "updtill ($TILL_ADDR) does not answer on its network"
curl -sf -m 5 "http://127.0.0.1:$PORT/inventory.json" | grep -q '"store"' || fail "published port after p2"
nft list table inet "$TABLE" > "$T/rules.txt"
grep -q 'sv-e2eupa' "$T/rules.txt" || fail "the kept network's rules are gone: $(cat "$T/rules.txt")"

step "once updtill is replaced, its old network goes"
SV restart updtill || fail "restart updtill"
[ "$(field_of updtill pid)" != "$TILL" ] || fail "updtill not replaced"
case "$(field_of updtill address)" in 10.89.232.*) ;; *) fail "updtill's new address: $(field_of updtill address)" ;; esac
wait_for 15 test ! -e /sys/class/net/sv-e2eupa || fail "sv-e2eupa left after updtill was replaced"
nft list table inet "$TABLE" > "$T/rules.txt"
! grep -q 'sv-e2eupa' "$T/rules.txt" || fail "sv-e2eupa's rules left"

step "an empty profile removes everything"
SV apply -f "$T/empty.yaml" --timeout 30 > /dev/null || fail "apply empty"
[ "$(SV ps -o json)" = "[]" ] || fail "workloads left"
for br in sv-e2eupa sv-e2eupb; do [ ! -e "/sys/class/net/$br" ] || fail "bridge $br left"; done
echo "e2e-update-checks: all checks passed in ${SECONDS} s"
