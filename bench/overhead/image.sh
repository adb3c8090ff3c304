#!/usr/bin/env bash
# Builds the overhead benchmark's software, the same files for every environment, from
# Debian's archive only, into build/overhead/ (idempotent: kept while its stamp matches):
#   rootfs/                         debootstrap minbase bookworm + the workloads' packages
#                                   (hpcc with Open MPI, pixz, sockperf, iperf3, fio) and
#                                   qemu-guest-agent + iproute2 for the VMs, plus
#                                   /bench/input.tar: the fixed xz input (24 MiB)
#   images/storevisor_bench_1/rootfs -> rootfs: a directory image (storevisord --image-dir)
#   rootfs.ext4                     the same tree as an ext4 disk (mkfs.ext4 -d, no mount):
#                                   the microVM's and the QEMU pc peer's root (sv.root=/dev/vda)
#   podman/                         the bench's own podman store (--root/--runroot, as
#                                   bench/apply does), holding localhost/storevisor-bench:1
#                                   imported from the same tree
# Usage: bash bench/overhead/image.sh   (root; ~1-2 min and ~600 MB the first time)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${SV_BENCH_DIR:-$root/build/overhead}"
pkgs=(hpcc openmpi-bin pixz xz-utils sockperf iperf3 fio qemu-guest-agent iproute2 procps)
stamp="bookworm minbase ${pkgs[*]} input=24MiB v1"
say() { printf '  bench image: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "bench/overhead/image.sh needs root (debootstrap)" >&2; exit 1; }
mkdir -p "$out"
if [ "$(cat "$out/.rootfs.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$out/rootfs.ext4" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [ -n "$mirror" ] || mirror="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }
  tmp="$out/rootfs.tmp"
  rm -rf "$out/rootfs"
  # A finished debootstrap of the same packages is kept when a later step failed.
  if [ "$(cat "$tmp/.debootstrap.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$tmp"
    say "debootstrap minbase bookworm + ${pkgs[*]} (log: $out/debootstrap.log)"
    include="$(IFS=,; echo "${pkgs[*]}")"
    debootstrap --variant=minbase --include="$include" bookworm "$tmp" "$mirror" \
      > "$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
    echo "$stamp" > "$tmp/.debootstrap.stamp"
  fi
  # The fixed xz input: the image's own /usr as a sorted tar (binaries, libraries and text,
  # as compressible as real data), cut at 24 MiB: the same bytes in every environment.
  mkdir -p "$tmp/bench" "$tmp/vol"
  { tar -C "$tmp" --sort=name --mtime=@0 --owner=0 --group=0 -cf - usr 2>/dev/null || true; } |
    head -c $((24 << 20)) > "$tmp/bench/input.tar"
  [ "$(stat -c %s "$tmp/bench/input.tar")" = $((24 << 20)) ] || { echo "input.tar is short" >&2; exit 1; }
  # qemu-ga's guest-shutdown runs /sbin/shutdown; minbase has none: ask sv-init (PID 1).
  printf '#!/bin/sh\ncase "$*" in *-r*) kill -TERM 1 ;; *) kill -USR2 1 ;; esac\n' > "$tmp/sbin/shutdown"
  chmod 755 "$tmp/sbin/shutdown"
  chroot "$tmp" /usr/bin/hpcc --help >/dev/null 2>&1 || true
  for b in hpcc mpirun pixz sockperf iperf3 fio qemu-ga ip; do
    chroot "$tmp" sh -c "command -v $b" >/dev/null || { echo "$b missing in the bench rootfs" >&2; exit 1; }
  done
  rm -f "$tmp/.debootstrap.stamp"
  mv "$tmp" "$out/rootfs"
  say "mkfs.ext4 -d (no mount)"
  size_mb=$(( $(du -sm "$out/rootfs" | cut -f1) + 512 ))
  rm -f "$out/rootfs.ext4.tmp"
  mkfs.ext4 -q -F -L sv-bench -d "$out/rootfs" "$out/rootfs.ext4.tmp" "${size_mb}M" >/dev/null
  mv "$out/rootfs.ext4.tmp" "$out/rootfs.ext4"
  mkdir -p "$out/images/storevisor_bench_1"
  ln -sfn ../../rootfs "$out/images/storevisor_bench_1/rootfs"
  rm -rf "$out/podman"
  echo "$stamp" > "$out/.rootfs.stamp"
  say "rootfs $(du -sh "$out/rootfs" | cut -f1), rootfs.ext4 ${size_mb} MB"
else
  say "cached in $out"
fi
pm=(podman --root "$out/podman/root" --runroot "$out/podman/run" --cgroup-manager=cgroupfs
  --events-backend=file)
if command -v podman >/dev/null && ! "${pm[@]}" image exists localhost/storevisor-bench:1 2>/dev/null; then
  say "podman import (localhost/storevisor-bench:1)"
  tar -C "$out/rootfs" -cf - . | "${pm[@]}" import - localhost/storevisor-bench:1 >/dev/null
fi
