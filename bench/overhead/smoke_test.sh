#!/usr/bin/env bash
# bench-smoke: bench/overhead natively and in a Storevisor container (placed by a profile
# through a private storevisord), tiny sizes, 2 runs; passes when results.csv has a row for
# every metric of both environments and every number in it parses, and the run left no
# bridge, nft table or daemon behind. The figures themselves are not judged (a bench, not a
# test). Exit 77 (skipped) when a prerequisite is missing.
set -euo pipefail
BIN="${1:?usage: smoke_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="${SV_BENCH_DIR:-$ROOT/build/overhead}"
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (bridges, nftables, cgroups)")
for tool in storevisord storevisor; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
for cmd in hpcc mpirun pixz sockperf iperf3 fio ip nft; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/deps/bench.txt)")
done
[ -x /usr/bin/python3 ] || missing+=("/usr/bin/python3")
[ -s "$BENCH/rootfs/bench/input.tar" ] ||
  missing+=("the bench image $BENCH/rootfs (bash bench/overhead/image.sh, or scripts/setup.d/60-bench.sh)")
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED bench.overhead_smoke (exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
OUT="$(mktemp -d /tmp/sv-ovh-smoke-XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
/usr/bin/python3 "$ROOT/bench/overhead/overhead.py" --tiny --runs 2 --skip microvm,pc,podman \
  --bin "$BIN" --bench-dir "$BENCH" --out "$OUT" --check
for f in table.md results.csv samples.csv plots/hpl.png plots/hpl.svg; do
  [ -s "$OUT/$f" ] || { echo "FAIL: $f was not written"; exit 1; }
done
! ip link show sv-ovh >/dev/null 2>&1 || { echo "FAIL: bridge sv-ovh left behind"; exit 1; }
! nft list table inet sv-ovh-bench >/dev/null 2>&1 || { echo "FAIL: nft table left behind"; exit 1; }
[ ! -e "$BENCH/run" ] || { echo "FAIL: $BENCH/run left behind"; exit 1; }
echo "bench-smoke: OK"
