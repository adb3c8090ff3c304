#!/usr/bin/env bash
# bench/apply: `storevisor apply` of the demo profile to all workloads healthy (microVM from
# its snapshot) against the sum of starting the same workloads one by one with plain QEMU
# (default `pc` machine, cold boot) and podman, in the same run; `storevisor ps` latency with
# 50 workloads against `podman ps` with 50; storevisord's idle RSS against podman's API
# service. Prints medians and ratios. Needs root; do not run it beside the demo (same bridges).
# Then (net_setup_bench) one container's network set-up, ip/nft processes as before against
# netlink + libnftables, median of 50, in a network namespace of its own.
# Usage: sudo bash bench/apply/run.sh [ROUNDS] [--no-ps]
#        sudo bash bench/apply/run.sh net [ROUNDS]   (the network figure only)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "bench/apply needs root (bridges, namespaces, QEMU taps)"; exit 1; }
if [ "${1:-}" = net ]; then
  cmake --build "$root/build" -j2 --target net_setup_bench >/dev/null
  exec "$root/build/bin/net_setup_bench" --rounds "${2:-50}"
fi
cmake --build "$root/build" -j2 --target apply_bench net_setup_bench storevisord storevisor storevisor-vm storevisor-image storevisor-runtime >/dev/null
[ -s "$root/build/guest/vmlinuz" ] || { echo "run scripts/setup.sh first (guest assets)"; exit 1; }
[ -d "$root/build/demo-images/storevisor_kv_1/rootfs" ] || bash "$root/scripts/setup.d/50-demo.sh"
command -v podman >/dev/null || { echo "podman is missing (scripts/deps/daemon.txt)"; exit 1; }
rounds="${1:-5}"
"$root/build/bin/apply_bench" --root "$root" --rounds "$rounds" "${@:2}"
exec "$root/build/bin/net_setup_bench" --rounds 50
