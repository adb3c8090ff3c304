#!/usr/bin/env bash
# The overhead benchmark's image (bench/overhead/image.sh: debootstrap minbase + hpcc, pixz,
# sockperf, iperf3, fio; a directory image, an ext4 root disk for the VMs and a podman image),
# which the bench-smoke CTest needs. ~1-2 min and ~1.2 GB the first time; SV_BENCH_IMAGE=0
# leaves it out.
source "$(dirname "$0")/../lib.sh"
[ "${SV_BENCH_IMAGE:-1}" = 1 ] || { echo "  bench image: skipped (SV_BENCH_IMAGE=0)"; exit 0; }
need_root
bash "$SV_ROOT/bench/overhead/image.sh"
