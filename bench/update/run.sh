#!/usr/bin/env bash
# bench/update (issue 15): updates of the demo's inventory container under load (GETs at
# 200/s on its published port): a new image tag with recreate, two failing updates that roll
# back by themselves, start-first (measured once the daemon has it; today a row saying it is
# not implemented), and the peer in the same run: podman stop + rm + run of the new tag.
# Prints medians and maxima per scenario and writes a CSV (build/bench-update/results.csv).
# A private storevisord (own state dir, socket, nftables table sv_bench_update, bridge
# sv-bnchupd on 10.89.240.0/24, port 28471) and a private podman store and network (bridge
# sv-bupodman on 10.89.241.0/24, port 28472): it runs beside the demo and the e2e tests.
# Everything it made is removed on exit, failed or not.
# Usage: bash bench/update/run.sh [--rounds N] [--commit-after 5s]   (root)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/update"
rounds=5
commit_after=5s
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --commit-after) commit_after="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--commit-after DURATION]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/update needs root (bridges, nftables, namespaces)"; exit 1; }
bin="$root/build/bin"
for tool in storevisord storevisor storevisor-runtime storevisor-image; do
  [ -x "$bin/$tool" ] && continue
  nice -n 5 cmake --build "$root/build" -j2 --target storevisord storevisor storevisor-runtime \
    storevisor-image >/dev/null
  break
done
demo="$root/build/demo-images/storevisor_inventory_1/rootfs"
[ -x "$demo/bin/busybox" ] || bash "$root/scripts/setup.d/50-demo.sh"
command -v podman >/dev/null || { echo "podman is missing (scripts/deps/daemon.txt)"; exit 1; }
command -v runc >/dev/null || { echo "runc is missing (podman's runtime here)"; exit 1; }

# Names of this bench only (the workload is not called `inventory`: a container's network
# namespace is named after its workload alone, host-wide, so it would clash with the demo's).
work="$(mktemp -d /tmp/sv-bench-update-XXXXXX)"
sock="$work/sock"
table=sv_bench_update
network=bnchupd
subnet=10.89.240.0/24
port=28471
peer_port=28472
peer_name=sv-bench-update-peer
peer_net=svbenchupdate
peer_bridge=sv-bupodman
peer_subnet=10.89.241.0/24
workload=buinventory
out="$root/build/bench-update"
podman_cmd="podman --root $work/podman/root --runroot $work/podman/run --network-config-dir \
$work/podman/net --cgroup-manager=cgroupfs --events-backend=file --runtime runc"
dpid=""

# The daemon runs in a session of its own, so a Ctrl-C of the bench does not stop it before
# it has removed its workloads (a stopped storevisord leaves them running).
start_daemon() {
  setsid "$bin/storevisord" --state-dir "$work/state" --socket "$sock" --vm-tool "" \
    --nft-table "$table" >> "$work/storevisord.log" 2>&1 &
  dpid=$!
  for _ in $(seq 100); do
    "$bin/storevisor" --socket "$sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  set +e
  # A daemon that died (or was stopped) with its workloads running is started again on the
  # same state to remove them.
  if [ -n "$dpid" ] && ! kill -0 "$dpid" 2>/dev/null && [ -n "$(ls -A "$work/state/containers" 2>/dev/null)" ]; then
    start_daemon
  fi
  if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
    printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: bench-update}\nspec:\n  workloads: []\n' \
      > "$work/empty.yaml"
    "$bin/storevisor" --socket "$sock" apply -f "$work/empty.yaml" --timeout 30 >/dev/null 2>&1
    kill "$dpid"; wait "$dpid" 2>/dev/null
  fi
  if [ -d "$work/podman" ]; then
    $podman_cmd rm -f -t 0 "$peer_name" >/dev/null 2>&1
    $podman_cmd network rm -f "$peer_net" >/dev/null 2>&1
    $podman_cmd rmi -a -f >/dev/null 2>&1
    # podman's overlay driver leaves its store's overlay dir mounted on itself.
    umount -l "$work/podman/root/overlay" 2>/dev/null
  fi
  rm -rf "/var/lib/cni/networks/$peer_net"
  ip link delete "$peer_bridge" 2>/dev/null
  ip link delete "sv-$network" 2>/dev/null
  nft delete table inet "$table" 2>/dev/null
  # Anything of the daemon's still mounted under the work dir (a daemon killed mid-apply).
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== images: storevisor/inventory:1 (the demo's), :2 (inventory.json says \"version\":2),"
echo "   :3 (no /srv/www: httpd exits at once), :4 (no inventory.json: its health check fails)"
rm -rf "$out"; mkdir -p "$work/state" "$work/podman/net" "$out"
for tag in 2 3 4; do cp -a "$demo" "$work/rootfs$tag"; done
sed -i 's/"store":"store-0042"/"store":"store-0042","version":2/' "$work/rootfs2/srv/www/inventory.json"
grep -q '"version":2' "$work/rootfs2/srv/www/inventory.json" || { echo "could not make tag 2"; exit 1; }
rm -rf "$work/rootfs3/srv/www"
rm -f "$work/rootfs4/srv/www/inventory.json"
img() { "$bin/storevisor-image" --root "$work/state/images" build-from-dir "$1" "$2" >/dev/null; }
img "$demo" storevisor/inventory:1
for tag in 2 3 4; do img "$work/rootfs$tag" "storevisor/inventory:$tag"; done
for tag in 1 2; do
  src="$demo"; [ "$tag" = 1 ] || src="$work/rootfs$tag"
  tar -C "$src" -cf "$work/inventory$tag.tar" .
  $podman_cmd import -q "$work/inventory$tag.tar" "localhost/storevisor/inventory:$tag" >/dev/null
done
# A podman network of its own (podman 4.3 with CNI names bridges itself: renamed in the
# config, so cleanup knows it and it cannot clash with another podman network).
$podman_cmd network create --disable-dns --subnet "$peer_subnet" "$peer_net" >/dev/null
sed -i "s/\"bridge\": \"[^\"]*\"/\"bridge\": \"$peer_bridge\"/" "$work/podman/net/$peer_net.conflist"

echo "== storevisord (state $work/state)"
start_daemon || { cat "$work/storevisord.log"; exit 1; }

set +e
/usr/bin/python3 "$here/update_bench.py" --bin "$bin" --work "$work" --rounds "$rounds" \
  --port "$port" --peer-port "$peer_port" --podman "$podman_cmd" --peer-name "$peer_name" \
  --peer-network "$peer_net" --workload "$workload" --network "$network" --subnet "$subnet" \
  --commit-after "$commit_after" --keep "$out"
rc=$?
set -e
cp "$work/storevisord.log" "$out/storevisord.log"
if [ "$rc" != 0 ]; then
  echo "--- storevisord log (last 30 lines)"; tail -30 "$work/storevisord.log"
fi
exit "$rc"
