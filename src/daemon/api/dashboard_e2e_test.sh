#!/usr/bin/env bash
# The dashboard in a real headless browser against a real storevisord; Debian's chromium driven
# by puppeteer-core. MODE "basic" (containers kv and inventory): web/test/dashboard.test.mjs;
# MODE "console" (a microVM, till): web/test/console.test.mjs; MODE "screen" (a legacy VM,
# lane): web/test/screen.test.mjs. Screenshots are kept under ARTEFACTS. Names distinct from
# the other e2e tests (bridges sv-e2edash, sv-e2edashc, sv-e2edashs, subnets 10.89.91-92.0/24
# and 10.89.122.0/24, nft tables storevisor-e2edash*, a free TCP port), so the modes can run
# beside them and each other. SV_DASHBOARD_WEB_DIR serves another web directory (e.g. the
# package's installed subset) to the same tests.
set -euo pipefail
BIN="${1:?usage: dashboard_e2e_test.sh BUILD_BIN_DIR ARTEFACTS_DIR}"
ART="${2:?usage: dashboard_e2e_test.sh BUILD_BIN_DIR ARTEFACTS_DIR [basic|console]}"
MODE="${3:-basic}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
GUEST="$ROOT/build/guest"
WEB="$ROOT/web"
CHROMIUM="${SV_CHROMIUM:-/usr/bin/chromium}"
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (namespaces, bridges, nftables, cgroups)")
if [ "$MODE" = screen ]; then
  [ -e "$GUEST/legacy/legacy-pos.raw" ] || missing+=("legacy image $GUEST/legacy/legacy-pos.raw (scripts/setup.d/25-legacy-image.sh)")
  [ -x "$BIN/storevisor-legacy" ] || missing+=("$BIN/storevisor-legacy (build it)")
  command -v qemu-system-x86_64 >/dev/null || missing+=("command qemu-system-x86_64 (scripts/setup.sh)")
  command -v tesseract >/dev/null || missing+=("command tesseract (scripts/deps/vision.txt)")
elif [ "$MODE" = console ]; then
  for f in vmlinuz initrd.img; do
    [ -e "$GUEST/$f" ] || missing+=("guest asset $GUEST/$f (scripts/setup.sh)")
  done
  [ -x "$BIN/storevisor-vm" ] || missing+=("$BIN/storevisor-vm (build it)")
  command -v qemu-system-x86_64 >/dev/null || missing+=("command qemu-system-x86_64 (scripts/setup.sh)")
else
  for img in storevisor_kv_1 storevisor_inventory_1; do
    [ -d "$IMAGES/$img/rootfs" ] || missing+=("demo image $IMAGES/$img/rootfs (scripts/setup.d/50-demo.sh)")
  done
fi
for tool in storevisord storevisor; do
  [ -x "$BIN/$tool" ] || missing+=("$BIN/$tool (build it)")
done
[ -x "$CHROMIUM" ] || missing+=("$CHROMIUM (apt-get install chromium: scripts/deps/dashboard.txt)")
command -v node >/dev/null || missing+=("node (scripts/deps/dashboard.txt)")
for pkg in puppeteer-core uplot @xterm/xterm @novnc/novnc; do
  [ -f "$WEB/node_modules/$pkg/package.json" ] || missing+=("$WEB/node_modules/$pkg (scripts/setup.d/45-dashboard.sh)")
done
for cmd in ip nft curl python3; do
  command -v "$cmd" >/dev/null || missing+=("command $cmd (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
  { echo "######## SKIPPED dashboard.e2e ($MODE, exit 77): missing prerequisite(s):"
    printf '########   - %s\n' "${missing[@]}"; }
  exit 77
fi
T="$(mktemp -d /tmp/sv-e2e-dash-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="dash-$RANDOM-$RANDOM-$RANDOM-$RANDOM"
# inventory's published port (basic mode), free now.
HPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf '%s\n' "$TOKEN" > "$T/token"
DPID=""
NET=e2edash
[ "$MODE" = console ] && NET=e2edashc
[ "$MODE" = screen ] && NET=e2edashs
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  ip link delete "sv-$NET" 2>/dev/null
  nft delete table inet "storevisor-$NET" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- events"; SV events 2>&1 | tail -30; echo "--- daemon log"; tail -30 "$T/daemon.log"; exit 1; }

printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: dash-e2e}\nspec:\n  workloads: []\n' > "$T/empty.yaml"
VNC_PASSWORD="p$RANDOM"
if [ "$MODE" = screen ]; then
  cat > "$T/profile.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: dash-e2e}
spec:
  networks:
    - {name: $NET, subnet: 10.89.122.0/24}
  workloads:
    - name: lane
      kind: legacy-vm
      machine: pc
      firmware: seabios
      devices: emulated
      vga: std
      vnc: {listen: unix, password: $VNC_PASSWORD}
      cpus: 1
      memory: 256Mi
      networks: [$NET]
      disks:
        - {path: $GUEST/legacy/legacy-pos.raw, format: raw, overlay: true}
YAML
  VMTOOL=""
  SCRIPT="$WEB/test/screen.test.mjs"
elif [ "$MODE" = console ]; then
  cat > "$T/profile.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: dash-e2e}
spec:
  networks:
    - {name: $NET, subnet: 10.89.92.0/24}
  workloads:
    - name: till
      kind: microvm
      kernel: $GUEST/vmlinuz
      initrd: $GUEST/initrd.img
      memory: 256Mi
      networks: [$NET]
      health: {exec: [/bin/true], interval: 2s, timeout: 1500ms, retries: 5}
YAML
  VMTOOL="$BIN/storevisor-vm"
  SCRIPT="$WEB/test/console.test.mjs"
else
  cat > "$T/profile.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: dash-e2e}
spec:
  networks:
    - {name: $NET, subnet: 10.89.91.0/24}
  workloads:
    - name: kv
      kind: container
      image: storevisor/kv:1
      command: [/usr/bin/redis-server, --port, "6379", --save, "", --protected-mode, "no", --dir, /data]
      mounts: [{target: /data}]
      networks: [$NET]
      memory: 64Mi
      health: {exec: [/usr/bin/redis-cli, ping], interval: 1s, timeout: 900ms}
    - name: inventory
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      networks: [$NET]
      ports: [{host: $HPORT, container: 8080}]
      after: [kv]
      health: {http: {port: 8080, path: /inventory.json}, interval: 1s, timeout: 900ms}
YAML
  VMTOOL=""
  SCRIPT="$WEB/test/dashboard.test.mjs"
  # Applied from the page: one more workload.
  { cat "$T/profile.yaml"; cat <<YAML
    - name: extra
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, httpd, -f, -p, "8081", -h, /srv/www]
      networks: [$NET]
YAML
  } > "$T/profile2.yaml"
fi

"$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" --vm-tool "$VMTOOL" \
  --nft-table "storevisor-$NET" --tcp "127.0.0.1:$PORT" --token-file "$T/token" \
  --web-dir "${SV_DASHBOARD_WEB_DIR:-$WEB}" >> "$T/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && break; sleep 0.1; done
SV version >/dev/null 2>&1 || fail "daemon did not start"
SV apply -f "$T/profile.yaml" --timeout 240 || fail "apply"

rm -rf "$ART" && mkdir -p "$ART"
SV_PORT="$HPORT" SV_PROFILE2="$T/profile2.yaml" SV_VNC_PASSWORD="$VNC_PASSWORD" SV_URL="http://127.0.0.1:$PORT" SV_TOKEN="$TOKEN" SV_ARTEFACTS="$ART" SV_CHROMIUM="$CHROMIUM" \
  node "$SCRIPT" || fail "the browser test (screenshots in $ART)"
echo "screenshots: $ART"
