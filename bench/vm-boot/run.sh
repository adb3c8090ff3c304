#!/usr/bin/env bash
# VM boot benchmark: our microvm cold boot vs QEMU's default `pc` machine (as a plain libvirt
# domain would start it), snapshot restore vs our cold boot, and idle QEMU RSS; same kernel,
# initrd and accelerator, alternating, N rounds (default 10). Prints medians and ratios.
# Usage: bash bench/vm-boot/run.sh [ROUNDS] [--ours-kernel vmlinux|vmlinuz]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ -x "$root/build/bin/vm_boot_bench" ] || cmake --build "$root/build" -j2 --target vm_boot_bench storevisor-vm
[ -s "$root/build/guest/vmlinux" ] || { echo "run scripts/setup.sh first (guest assets)"; exit 1; }
exec "$root/build/bin/vm_boot_bench" --guest "$root/build/guest" --rounds "${1:-10}" "${@:2}"
