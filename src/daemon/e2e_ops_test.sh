#!/usr/bin/env bash
# End-to-end through the CLI against a real storevisord (containers, bridges, nftables): what
# an operator and the supervisor do beyond apply (e2e_test.sh covers apply, replace, crashes):
#  - a workload whose health check fails is restarted by the supervisor, and an event says why;
#  - network isolation: a container cannot reach one on another profile network, but can reach
#    one on its own network and one on a network whose `allow:` names its own;
#  - bad profiles (wrong type, a cycle in after:, CPU and memory over-commit) are refused with
#    their exact message and exit status, and change nothing;
#  - `storevisor stop|start|restart|rm NAME` do what they say; `logs -f` streams a new line;
#  - the TCP listener wants the bearer token (none or a wrong one: 401); the socket is 0660.
# All traffic goes to loopback or to the namespaces and bridges this test's daemon makes.
set -euo pipefail
BIN="${1:?usage: e2e_ops_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
# A missing prerequisite is a skip, not a pass: exit 77 (SKIP_RETURN_CODE in CMakeLists.txt),
# naming each one that is missing.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (namespaces, bridges, nftables, cgroups)")
[ -d "$IMAGES/storevisor_inventory_1/rootfs" ] ||
  missing+=("demo image $IMAGES/storevisor_inventory_1/rootfs (scripts/setup.d/50-demo.sh)")
for tool in storevisord storevisor; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in ip nft curl python3 stat; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED daemon.e2e_ops (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-ops-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
# A free loopback port for the daemon's TCP listener.
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="e2e-$RANDOM-$RANDOM-$RANDOM"
printf '%s\n' "$TOKEN" > "$T/token"
printf 'not-%s\n' "$TOKEN" > "$T/wrong-token"
DPID=""
BG=()  # background clients (reconciler kicks, logs -f) to stop on exit
start_daemon() {
  "$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" --vm-tool "" \
    --tcp "127.0.0.1:$PORT" --token-file "$T/token" >> "$T/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 50); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && return; sleep 0.1; done
  echo "daemon did not start"; cat "$T/daemon.log"; exit 1
}
cleanup() {
  set +e
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  for br in sv-e2eopa sv-e2eopb sv-e2eopc; do ip link delete "$br" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- events"; SV events 2>&1 | tail -30; echo "--- daemon log"; tail -30 "$T/daemon.log"; exit 1; }
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
# wait_for SECONDS CONDITION...: polls the condition every 0.1 s.
wait_for() {
  local n=$(( $1 * 10 )); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  "$@"
}
step() { echo "== [${SECONDS}s] $*"; }
is() { [ "$(field_of "$1" "$2")" = "$3" ]; }
alive() { [ -n "$1" ] && [ "$1" != 0 ] && kill -0 "$1" 2>/dev/null; }

httpd() {  # $1 name, $2 network: busybox httpd serving the demo inventory
  cat <<YAML
    - name: $1
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      networks: [$2]
      memory: 32Mi
      health: {http: {port: 8080, path: /inventory.json}, interval: 1s, timeout: 900ms}
YAML
}
{ cat <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-ops}
spec:
  rollback: never  # these tests watch retries; trials and rollbacks: e2e_update_test.sh
  networks:
    - {name: e2eopa, subnet: 10.89.81.0/24}
    - {name: e2eopb, subnet: 10.89.82.0/24}
    - {name: e2eopc, subnet: 10.89.83.0/24, allow: [e2eopa]}
  workloads:
YAML
  httpd a1 e2eopa; httpd a2 e2eopa; httpd b1 e2eopb; httpd c1 e2eopc
  cat <<YAML
    - name: sick
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, sh, -c, "echo ok > /data/ok && exec /bin/busybox httpd -f -p 8080 -h /data"]
      mounts: [{target: /data}]
      networks: [e2eopa]
      memory: 32Mi
      restart: {policy: always, backoff: {initial: 200ms, max: 1s}}
      health: {http: {port: 8080, path: /ok}, interval: 500ms, timeout: 400ms, retries: 2}
    - name: talker
      kind: container
      image: storevisor/inventory:1
      # PID 1 ignores an unhandled SIGTERM: the trap makes stop quick (not 5 s and SIGKILL).
      command: [/bin/busybox, sh, -c, "trap 'exit 0' TERM; echo talker up; while :; do if [ -f /data/say ]; then cat /data/say; rm -f /data/say; fi; sleep 0.1; done"]
      mounts: [{target: /data}]
      memory: 16Mi
YAML
} > "$T/ops.yaml"
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-ops}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

start_daemon
step "the unix socket is mode 0660"
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "socket mode $(stat -c %a "$SOCK"), want 660"

step "the TCP listener: no token and a wrong token get 401, the right one works"
URL="http://127.0.0.1:$PORT/v1/version"
code=$(curl -s -o "$T/body" -w '%{http_code}' -m 5 "$URL")
[ "$code" = 401 ] || fail "no token: HTTP $code"
grep -q '"missing or wrong bearer token"' "$T/body" || fail "no token: body $(cat "$T/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer not-$TOKEN" "$URL")
[ "$code" = 401 ] || fail "wrong token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer ${TOKEN}x" "$URL")
[ "$code" = 401 ] || fail "token with a suffix: HTTP $code"
code=$(curl -s -o "$T/body" -w '%{http_code}' -m 5 -H "Authorization: Bearer $TOKEN" "$URL")
[ "$code" = 200 ] && grep -q '"version"' "$T/body" || fail "right token: HTTP $code $(cat "$T/body")"
# The CLI over TCP: the right token file works, a wrong one is refused (status 6).
"$BIN/storevisor" --endpoint "tcp:127.0.0.1:$PORT" --token-file "$T/token" version | grep -q '^storevisord ' ||
  fail "CLI over TCP with the token"
set +e
"$BIN/storevisor" --endpoint "tcp:127.0.0.1:$PORT" --token-file "$T/wrong-token" ps 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 6 ] && grep -qx "storevisor: missing or wrong bearer token" "$T/err.txt" ||
  fail "CLI with a wrong token: status $rc, $(cat "$T/err.txt")"
# The streaming commands too: the daemon's refusal goes to stderr with status 6, not into
# the stream on stdout.
for cmd in "logs a1" "logs -f a1" "events -f"; do
  set +e
  # shellcheck disable=SC2086
  "$BIN/storevisor" --endpoint "tcp:127.0.0.1:$PORT" --token-file "$T/wrong-token" $cmd \
    > "$T/out.txt" 2> "$T/err.txt"; rc=$?
  set -e
  [ "$rc" = 6 ] && [ ! -s "$T/out.txt" ] &&
    grep -qx "storevisor: missing or wrong bearer token" "$T/err.txt" ||
    fail "storevisor $cmd with a wrong token: status $rc, out '$(cat "$T/out.txt")', err '$(cat "$T/err.txt")'"
done

step "apply converges"
SV apply -f "$T/ops.yaml" --timeout 60 >/dev/null || fail "apply"
SV ps
for w in a1 a2 b1 c1 sick; do is "$w" health healthy || fail "$w is $(field_of "$w" health)"; done
# The same list over TCP with the token.
[ "$("$BIN/storevisor" --endpoint "tcp:127.0.0.1:$PORT" --token-file "$T/token" ps -o json |
     python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 6 ] || fail "ps over TCP"

step "network isolation: same network and allow: pass, another network does not"
A2=$(field_of a2 address); B1=$(field_of b1 address); C1=$(field_of c1 address)
[ -n "$A2" ] && [ -n "$B1" ] && [ -n "$C1" ] || fail "addresses: a2=$A2 b1=$B1 c1=$C1"
# from NAME ADDR [S]: NAME fetches ADDR's inventory, given S seconds (default 5). busybox
# timeout, not wget -T: the image's busybox wget crashes (SIGSEGV) with -T.
from() {
  SV exec "$1" --timeout 10 -- /bin/busybox timeout "${3:-5}" /bin/busybox wget -q -O - \
    "http://$2:8080/inventory.json" 2>/dev/null | grep -q '"store"'
}
from a1 "$A2" || fail "a1 cannot reach a2 ($A2) on the same network"
from a1 "$C1" || fail "a1 cannot reach c1 ($C1), whose network allows e2eopa"
from c1 "$(field_of a1 address)" || fail "c1 cannot reach a1 (allow: works both ways)"
# b1 answers (from the host, over its bridge), so what stops the others is the firewall. A
# dropped SYN gets no answer at all: 1 s tells.
curl -sf -m 2 "http://$B1:8080/inventory.json" | grep -q '"store"' || fail "b1 does not answer the host"
t0=$(date +%s%N)
! from a1 "$B1" 1 || fail "a1 reached b1 ($B1) on another network"
! from b1 "$A2" 1 || fail "b1 reached a2 ($A2) on another network"
! from b1 "$C1" 1 || fail "b1 reached c1 ($C1): c1's network allows only e2eopa"
echo "three refused connections in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
# (Into a file first: grep -q ending early would give nft a SIGPIPE, failing the pipeline.)
# The whole ruleset: the daemon's table is named after its state directory.
nft list ruleset > "$T/rules.txt"
grep -q 'iifname "sv-e2eopa" oifname "sv-e2eopb" drop' "$T/rules.txt" ||
  fail "no drop rule between sv-e2eopa and sv-e2eopb: $(cat "$T/rules.txt")"

step "a failing health check makes the supervisor restart the workload"
sick_pid=$(field_of sick pid); sick_restarts=$(field_of sick restarts)
SV exec sick -- /bin/busybox rm /data/ok || fail "exec rm"
# Meanwhile applies of the same profile kick the reconciler again and again until the
# restart is seen: none of its plans, made while the restart is under way, may create sick a
# second time (it did, one restart in two, before reconcile.cc re-checked under the lock).
( for _ in $(seq 300); do
    [ -e "$T/restarted" ] && break
    SV apply -f "$T/ops.yaml" --no-wait >/dev/null 2>&1; sleep 0.05
  done ) &
KICK=$!
BG+=("$KICK")
restarted() { [ "$(field_of sick restarts)" -gt "$sick_restarts" ] && is sick health healthy; }
wait_for 15 restarted || fail "sick not restarted: restarts $(field_of sick restarts), health $(field_of sick health)"
touch "$T/restarted"; wait "$KICK" 2>/dev/null || true
new_pid=$(field_of sick pid)
[ "$new_pid" != "$sick_pid" ] && alive "$new_pid" || fail "sick pid $sick_pid -> $new_pid"
! alive "$sick_pid" || fail "the unhealthy instance ($sick_pid) still runs"
SV events > "$T/events.txt"
grep -q "sick failed 2 health checks in a row: HTTP GET /ok: status 404" "$T/events.txt" ||
  fail "no event saying why: $(grep sick "$T/events.txt")"
grep -q "sick restarts in 200 ms" "$T/events.txt" || fail "no backoff event"
# Exactly one new instance: the reconciler (kicked above, and its 1 s tick) must not create
# sick again while the supervisor's restart is under way, nor after it (give it a tick).
sleep 1.2
SV events > "$T/events.txt"
[ "$(grep -c ' sick  *sick restarted (pid' "$T/events.txt")" = 1 ] &&
  [ "$(grep -c ' sick  *sick created (pid' "$T/events.txt")" = 1 ] ||
  fail "more than one new instance of sick: $(grep ' sick ' "$T/events.txt")"
[ "$(field_of sick pid)" = "$new_pid" ] && alive "$new_pid" || fail "sick's pid changed again: $new_pid -> $(field_of sick pid)"

step "logs -f streams a line written after it started"
SV logs -f talker > "$T/follow.txt" 2>&1 &
BG+=($!)
wait_for 5 grep -q '^talker up' "$T/follow.txt" || fail "logs -f showed no earlier output: $(cat "$T/follow.txt")"
LINE="said-after-follow-$RANDOM$RANDOM"
! grep -q "$LINE" "$T/follow.txt" || fail "the line is there before it was written"
SV exec talker -- /bin/busybox sh -c "echo $LINE > /data/say" || fail "exec echo"
wait_for 5 grep -qx "$LINE" "$T/follow.txt" || fail "logs -f did not stream the new line: $(cat "$T/follow.txt")"
FOLLOW=${BG[-1]}
kill "$FOLLOW"; wait "$FOLLOW" 2>/dev/null || true
SV logs talker > "$T/logs.txt"; grep -qx "$LINE" "$T/logs.txt" || fail "the line is not in logs: $(cat "$T/logs.txt")"

step "a workload's stdout log is capped: rotated to .1 at 1 MiB"
SV exec talker -- /bin/busybox sh -c \
  "/bin/busybox yes 0123456789abcdef | /bin/busybox head -c 2600000 > /data/big && /bin/busybox mv /data/big /data/say" ||
  fail "exec big output"
LOG="$T/state/logs/talker.log"  # storevisord's STATE_DIR/logs
[ -f "$LOG" ] || fail "no $LOG"
wait_for 15 test -s "$LOG.1" || fail "talker.log was not rotated ($(stat -c %s "$LOG") bytes)"
sleep 1  # the rest of the 2.6 MB reaches the log
for f in "$LOG" "$LOG.1"; do
  size=$(stat -c %s "$f")
  [ "$size" -le 1048576 ] || fail "$f holds $size bytes, over the 1 MiB cap"
done
[ "$(ls "$LOG"* | wc -l)" -le 2 ] || fail "more than one rotated file: $(ls "$LOG"*)"
SV logs talker --tail 5 | grep -q 0123456789abcdef || fail "logs after the rotation"

step "stop, start, restart and rm do what they say"
pid=$(field_of talker pid); restarts=$(field_of talker restarts)
SV stop talker || fail "stop"
is talker state stopped || fail "after stop: $(field_of talker state)"
[ "$(field_of talker pid)" = 0 ] && ! alive "$pid" || fail "stopped talker still runs ($pid)"
sleep 1  # the supervisor (200 ms tick) must not bring it back
is talker state stopped || fail "stopped talker came back: $(field_of talker state)"
# /metrics says so too, each metric family in one group (several workloads here).
curl -s --unix-socket "$SOCK" http://sv/metrics > "$T/metrics.txt"
grep -qx 'storevisor_workload_state{name="talker",kind="container",state="stopped"} 1' "$T/metrics.txt" &&
  grep -qx 'storevisor_workload_state{name="talker",kind="container",state="running"} 0' "$T/metrics.txt" &&
  grep -qx 'storevisor_workload_state{name="a1",kind="container",state="running"} 1' "$T/metrics.txt" ||
  fail "state in /metrics: $(grep '^storevisor_workload_state' "$T/metrics.txt")"
split=$(awk '!/^#/ { n = $0; sub(/[{ ].*/, "", n); if (n != last) { if (seen[n]++) print n; last = n } }' "$T/metrics.txt")
[ -z "$split" ] || fail "metric families not in one group: $split"
SV start talker || fail "start"
is talker state running && alive "$(field_of talker pid)" || fail "after start: $(field_of talker state)"
set +e
SV start talker 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 5 ] && grep -qx "storevisor: talker is already running" "$T/err.txt" ||
  fail "start of a running workload: status $rc, $(cat "$T/err.txt")"
pid=$(field_of talker pid)
SV restart talker || fail "restart"
new_pid=$(field_of talker pid)
is talker state running && alive "$new_pid" && [ "$new_pid" != "$pid" ] && ! alive "$pid" ||
  fail "restart: pid $pid -> $new_pid, $(field_of talker state)"
[ "$(field_of talker restarts)" = $((restarts + 1)) ] || fail "restarts $(field_of talker restarts), want $((restarts + 1))"
SV rm talker || fail "rm"
is talker state removed && [ "$(field_of talker pid)" = 0 ] && ! alive "$new_pid" ||
  fail "after rm: $(field_of talker state), pid $(field_of talker pid)"
SV diff -f "$T/ops.yaml" | grep -q "held     talker: removed by the operator" ||
  fail "diff does not show talker held: $(SV diff -f "$T/ops.yaml")"
SV apply -f "$T/ops.yaml" --timeout 30 >/dev/null || fail "apply after rm"
is talker state running || fail "the next apply did not bring talker back: $(field_of talker state)"
set +e
SV stop nosuch 2> "$T/err.txt"; rc=$?
set -e
[ "$rc" = 3 ] && grep -qx "storevisor: no workload named 'nosuch'" "$T/err.txt" ||
  fail "stop of an unknown workload: status $rc, $(cat "$T/err.txt")"

step "bad profiles are refused with the exact message and status, and change nothing"
bad() {  # $1 file name, $2 workloads (YAML lines), $3 spec lines before networks (optional)
  { printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-ops}\nspec:\n  rollback: never\n'
    [ -n "${3:-}" ] && printf '%s\n' "$3"
    printf '  workloads:\n%s\n' "$2"; } > "$T/$1"
}
# refused FILE STATUS MESSAGE: apply is refused with exactly that (one line on stderr).
refused() {
  set +e
  SV apply -f "$T/$1" > "$T/out.txt" 2> "$T/err.txt"; local rc=$?
  set -e
  [ "$rc" = "$2" ] || fail "$1: exit status $rc, want $2: $(cat "$T/err.txt")"
  [ "$(cat "$T/err.txt")" = "storevisor: $3" ] || fail "$1: message '$(cat "$T/err.txt")', want 'storevisor: $3'"
}
bad type.yaml '    - {name: a, kind: container, image: storevisor/inventory:1, cpus: [1]}'
refused type.yaml 2 "$T/type.yaml:6: spec.workloads[0].cpus: expected a single value, got a list or mapping"
bad size.yaml '    - {name: a, kind: container, image: storevisor/inventory:1, memory: lots}'
refused size.yaml 2 "$T/size.yaml:6: spec.workloads[0].memory: expected a size such as 256Mi, 1Gi or 512M, got 'lots'"
bad cycle.yaml '    - {name: a, kind: container, image: storevisor/inventory:1, after: [c]}
    - {name: b, kind: container, image: storevisor/inventory:1, after: [a]}
    - {name: c, kind: container, image: storevisor/inventory:1, after: [b]}'
refused cycle.yaml 2 "$T/cycle.yaml:6: spec.workloads[0].after: start order has a cycle: a -> c -> b -> a"
bad cpu.yaml '    - {name: a, kind: container, image: storevisor/inventory:1, cpus: 1, cpuset: "0"}
    - {name: b, kind: container, image: storevisor/inventory:1, cpus: 0.5, cpuset: "0"}'
refused cpu.yaml 7 "$T/cpu.yaml: pinned CPU 0 is asked for 1.50 CPUs, 0.50 more than the allowed 1.00 (spec.limits.cpuOvercommit); lower cpus or spread the cpusets"
# Twice the host's memory, with a ratio of 1.5: over by half the host.
host_mib=$(awk '/^MemTotal:/{printf "%.0f", $2 * 1024 / 1048576}' /proc/meminfo)
bad mem.yaml "    - {name: a, kind: container, image: storevisor/inventory:1, memory: $(( host_mib * 2 ))Mi}" \
  '  limits: {memoryOvercommit: 1.5}'
want=$(python3 -c "
import sys; kb = int(next(l for l in open('/proc/meminfo') if l.startswith('MemTotal:')).split()[1])
host = kb * 1024 / 1048576; ask = $(( host_mib * 2 )); allowed = kb * 1024 * 1.5 / 1048576
print('%.0f MiB of memory, %.0f MiB more than the allowed %.0f MiB (host %.0f MiB x spec.limits.memoryOvercommit 1.50)' % (ask, ask - allowed, allowed, host))")
refused mem.yaml 7 "$T/mem.yaml: workloads ask for $want"
SV diff -f "$T/ops.yaml" | grep -q "no changes" || fail "a refused profile changed the desired state"
[ "$(SV ps -o json | python3 -c 'import json,sys; print(sorted(w["name"] for w in json.load(sys.stdin)))')" = \
  "['a1', 'a2', 'b1', 'c1', 'sick', 'talker']" ] || fail "workloads changed: $(SV ps)"

# One instance per operator action: created (apply), started, restarted, created (apply after
# rm); a create step of the reconciler planned during a start or restart must not add one.
SV events > "$T/events.txt"
for ev in "created 2" "started 1" "restarted 1" "stopped 1" "removed 1"; do
  set -- $ev
  [ "$(grep -c " talker  *talker $1" "$T/events.txt")" = "$2" ] ||
    fail "talker: want $2 '$1' event(s): $(grep ' talker ' "$T/events.txt")"
done

step "an empty profile removes workloads and bridges"
SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null || fail "apply empty"
[ "$(SV ps -o json)" = "[]" ] || fail "workloads left"
for br in sv-e2eopa sv-e2eopb sv-e2eopc; do [ ! -e "/sys/class/net/$br" ] || fail "bridge $br left"; done
nft list ruleset > "$T/rules.txt"
! grep -q 'sv-e2eop' "$T/rules.txt" || fail "rules left: $(grep 'sv-e2eop' "$T/rules.txt")"
echo "e2e-ops: all checks passed in ${SECONDS} s"
