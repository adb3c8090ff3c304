#!/usr/bin/env bash
# bench/overhead: native vs Storevisor container vs Storevisor microVM (both placed by a store
# profile through a private storevisord), with a podman container and a plain QEMU `pc` guest
# as peers in the same run. Builds what it needs, makes the bench image (image.sh), then runs
# overhead.py (all its options pass through). Needs root. See docs/overhead.md.
# Usage: bash bench/overhead/run.sh [--runs N] [--skip microvm,pc,...] [--tiny] [--out DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "bench/overhead needs root (bridges, nftables, cgroups, QEMU taps)"; exit 1; }
if [ ! -x "$root/build/bin/storevisord" ] || [ ! -x "$root/build/bin/storevisor-vm" ]; then
  cmake --build "$root/build" -j2 --target storevisord storevisor storevisor-vm storevisor-runtime >/dev/null
fi
case " $* " in
  *" --skip "*microvm*pc*|*" --skip "*pc*microvm*) ;;
  *) [ -s "$root/build/guest/vmlinux" ] || { echo "run scripts/setup.sh first (guest assets), or --skip microvm,pc"; exit 1; } ;;
esac
bash "$root/bench/overhead/image.sh"
exec /usr/bin/python3 "$root/bench/overhead/overhead.py" "$@"
