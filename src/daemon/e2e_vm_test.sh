#!/usr/bin/env bash
# End-to-end for the microvm kind: storevisord drives the VM engine (storevisor-vm) to boot a
# microVM, the guest-agent exec health check turns it healthy, `storevisor exec` runs in the
# guest, kill -9 of the daemon leaves QEMU running and it is re-adopted with the same pid, and
# an empty profile stops it.
set -euo pipefail
BIN="${1:?usage: e2e_vm_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GUEST="$ROOT/build/guest"
# A missing prerequisite is a skip, not a pass: exit 77 (SKIP_RETURN_CODE in CMakeLists.txt),
# naming each one that is missing.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (bridges, taps, cgroups, KSM)")
for f in vmlinuz initrd.img; do
  [ -e "$GUEST/$f" ] || missing+=("guest asset $GUEST/$f (scripts/setup.sh)")
done
for tool in storevisord storevisor storevisor-vm; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in qemu-system-x86_64 ip python3 curl; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED daemon.e2e_vm (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
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
KSM_BEFORE="$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo)"
cleanup() {
  set +e
  # The daemon leaves ksmd on once a VM asked for it; the test puts the host back.
  [ -n "$KSM_BEFORE" ] && echo "$KSM_BEFORE" > /sys/kernel/mm/ksm/run
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; SV events 2>&1 | tail -20; tail -20 "$T/daemon.log"; exit 1; }
pid_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['pid'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
# console_says LINE WANT: types LINE into the guest's serial console (its shell on ttyS0)
# through `storevisor console` without a terminal and waits up to 20 s for WANT to come back.
console_says() {
  rm -f "$T/in" && mkfifo "$T/in"
  SV console pos --tail 0 --linger 200 < "$T/in" > "$T/console.out" 2>&1 &
  local cpid=$! ok=1
  exec 3> "$T/in"
  printf '%s\n' "$1" >&3
  for _ in $(seq 200); do grep -q -- "$2" "$T/console.out" && { ok=0; break; }; sleep 0.1; done
  exec 3>&-
  wait "$cpid" || ok=1
  return $ok
}
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }
cat > "$T/vm.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-vm}
spec:
  rollback: never  # these tests watch retries; trials and rollbacks: e2e_update_test.sh
  networks:
    - {name: e2evm, subnet: 10.89.78.0/24}
  workloads:
    - name: pos
      kind: microvm
      kernel: $GUEST/vmlinuz
      initrd: $GUEST/initrd.img
      memory: 256Mi
      cpuset: "0"
      snapshot: true
      ksm: true
      networks: [e2evm]
      health: {exec: [/bin/true], interval: 2s, timeout: 1500ms, retries: 5}
YAML
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-vm}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

start_daemon
echo "== a microVM boots and its agent health check passes"
SV apply -f "$T/vm.yaml" --timeout 120 || fail "apply"
SV ps
[ -n "$(SV exec pos -- /bin/uname -r)" ] || fail "exec in the guest"
echo "== the guest has its IPAM address, QEMU is in its cgroup, the snapshot is cached"
[ "$(field_of pos address)" = 10.89.78.2 ] || fail "ps address: $(field_of pos address)"
SV exec pos -- /bin/ip -4 addr show eth0 | grep -q "inet 10.89.78.2/24" || fail "guest address"
SV exec pos -- /bin/ping -c 1 -W 3 10.89.78.1 >/dev/null || fail "the guest cannot reach its gateway"
qemu=$(pid_of pos)
if [ -d /sys/fs/cgroup/memory ]; then cg=/sys/fs/cgroup/memory/storevisor/daemon/pos; lim=memory.limit_in_bytes
else cg=/sys/fs/cgroup/storevisor/daemon/pos; lim=memory.max; fi
grep -qx "$qemu" "$cg/cgroup.procs" || fail "QEMU $qemu not in $cg"
[ "$(cat "$cg/$lim")" = 536870912 ] || fail "memory limit $(cat "$cg/$lim")"
[ -e /sys/fs/cgroup/cpuset ] && { [ "$(cat /sys/fs/cgroup/cpuset/storevisor/daemon/pos/cpuset.cpus)" = 0 ] || fail "cpuset"; }
[ "$(cat /sys/kernel/mm/ksm/run)" = 1 ] || fail "KSM not switched on"
[ "$(field_of pos usageSource)" = cgroup ] && [ "$(field_of pos memoryBytes)" -gt 0 ] || fail "usage of pos: $(field_of pos usageSource) $(field_of pos memoryBytes)"
ls -d "$T"/state/snapshots/pos-* >/dev/null || fail "no snapshot"
boot1=$(SV exec pos -- /bin/cat /proc/sys/kernel/random/boot_id)
echo "== /metrics: the VM's accelerator, QEMU's counters (storevisor-vm status) and its state"
accel=$("$BIN/storevisor-vm" status --state-dir "$T/state/vms/pos/run" -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["accel"])')
curl -s --unix-socket "$SOCK" http://sv/metrics > "$T/metrics.txt"
echo "accelerator: $accel"
mfail() { fail "/metrics has no $1: $(grep 'name="pos"' "$T/metrics.txt")"; }
grep -qx "storevisor_vm_accelerator{name=\"pos\",accel=\"$accel\"} 1" "$T/metrics.txt" || mfail "accelerator $accel"
grep -Eq '^storevisor_vm_vcpu_seconds_total\{name="pos",vcpu="0"\} [0-9][0-9.e+-]*$' "$T/metrics.txt" || mfail "vCPU time"
grep -qx 'storevisor_vm_guest_memory_bytes{name="pos"} 268435456' "$T/metrics.txt" || mfail "guest memory"
grep -Eq '^storevisor_vm_balloon_actual_bytes\{name="pos"\} [1-9][0-9]*$' "$T/metrics.txt" || mfail "balloon"
grep -Eq '^storevisor_vm_qemu_rss_bytes\{name="pos"\} [1-9][0-9]*$' "$T/metrics.txt" || mfail "QEMU RSS"
if [ "$accel" = tcg ]; then  # x-query-jit's counters under TCG, KVM's own stats under KVM
  grep -Eq '^storevisor_vm_tcg_translation_blocks\{name="pos"\} [1-9][0-9]*$' "$T/metrics.txt" || mfail "TCG blocks"
else
  grep -Eq '^storevisor_vm_qemu_stat\{name="pos",provider="kvm",stat="[a-z_]+"\} [0-9]' "$T/metrics.txt" || mfail "KVM stats"
fi
grep -qx 'storevisor_workload_state{name="pos",kind="microvm",state="running"} 1' "$T/metrics.txt" || mfail "state running"
grep -qx 'storevisor_workload_state{name="pos",kind="microvm",state="stopped"} 0' "$T/metrics.txt" || mfail "state stopped 0"
echo "== console input: a line typed into the guest's serial shell is answered, and logged"
# The echo of the typed line shows $((6*7)) unexpanded: only the shell's answer has 42.
console_says 'echo sv-console-$((6*7))' 'sv-console-42' || fail "no answer on the console: $(cat "$T/console.out")"
SV logs pos | grep -q '^sv-console-42' || fail "the answer is not in the console log"
timeout 10 "$BIN/storevisor" --socket "$SOCK" console pos --tail 50 < /dev/null > "$T/console.txt" || fail "console without input"
grep -q '^sv-console-42' "$T/console.txt" || fail "console --tail does not show earlier output: $(cat "$T/console.txt")"
rm -f "$T/hold" && mkfifo "$T/hold"
# The earlier consoles logged "attached" too: wait for one more attach than before, not any.
attached_before=$(grep -c "console of pos attached" "$T/daemon.log" || true)
SV console pos --tail 0 < "$T/hold" > /dev/null 2>&1 &
HOLD=$!
exec 4> "$T/hold"
for _ in $(seq 100); do
  [ "$(grep -c "console of pos attached" "$T/daemon.log" || true)" -gt "$attached_before" ] && break
  sleep 0.1
done
[ "$(grep -c "console of pos attached" "$T/daemon.log" || true)" -gt "$attached_before" ] \
  || fail "the first console client did not attach within 10 s"
set +e
SV console pos --tail 0 < /dev/null > /dev/null 2> "$T/err.txt"; rc=$?
set -e
exec 4>&-
wait "$HOLD" || true
[ "$rc" = 5 ] && grep -q "in use by another client" "$T/err.txt" || fail "second console client: status $rc, $(cat "$T/err.txt")"
echo "== a second start restores the same snapshot (same boot)"
SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
start=$(date +%s%N)
SV apply -f "$T/vm.yaml" --timeout 120 >/dev/null || fail "apply again"
echo "restored and healthy in $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ "$(SV exec pos -- /bin/cat /proc/sys/kernel/random/boot_id)" = "$boot1" ] || fail "not restored from the snapshot"
[ "$(field_of pos address)" = 10.89.78.2 ] || fail "address after restore"
echo "== kill -9 of the daemon: QEMU keeps running and is re-adopted"
qemu=$(pid_of pos)
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
kill -0 "$qemu" || fail "QEMU died with the daemon"
start_daemon
[ "$(pid_of pos)" = "$qemu" ] || fail "pid changed"
SV events | grep -q "adopted pid $qemu" || fail "no adoption event"
console_says 'echo after-restart-$((5+5))' 'after-restart-10' || fail "console after the daemon's restart: $(cat "$T/console.out")"
echo "== an empty profile stops it"
SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
for _ in $(seq 50); do kill -0 "$qemu" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$qemu" 2>/dev/null || fail "QEMU still runs"
[ ! -e "$cg" ] || fail "cgroup $cg left"
[ ! -e /sys/class/net/sv-e2evm ] || fail "bridge left"
echo "e2e-vm: all checks passed"
