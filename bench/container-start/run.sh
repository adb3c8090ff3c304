#!/usr/bin/env bash
# Runs bench/container-start: builds a busybox bundle in a temp dir, then the bench binary.
# Usage: bash bench/container-start/run.sh [RUNS]   (needs root, crun, runc, busybox-static)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-30}"
bin="$root/build/bin/container_start_bench"
[ -x "$bin" ] || cmake --build "$root/build" -j 2 --target container_start_bench storevisor-runtime
work="$(mktemp -d /tmp/sv-bench-XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,tmp} "$work/state"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
"$root/build/bin/storevisor-runtime" spec --bundle "$work/bundle"
# Non-interactive /bin/true; everything else is the runc-style default spec.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' "$work/bundle/config.json"
grep -q '"/bin/true"' "$work/bundle/config.json" || { echo "could not set args" >&2; exit 1; }
"$bin" "$work/bundle" "$work/state" "$root/build/bin/storevisor-runtime" "$runs"
