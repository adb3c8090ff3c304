#!/usr/bin/env bash
# bench/dashboard: the dashboard's figures against a real storevisord (containers kv and
# inventory) in Debian's headless chromium (puppeteer-core from web/node_modules):
#   - first load on loopback with a cold cache (a fresh browser context each time): from the
#     navigation to / until the page has read the box and the workloads (all assets loaded);
#   - bytes the page transfers (compressed, as on the wire) and uncompressed;
#   - change to shown: inventory's process killed (SIGKILL) until the page shows it;
#   - the daemon's RSS with five dashboards open (each live, logged in) against none.
# Usage (root): bench/dashboard/run.sh [BUILD_BIN_DIR]   Prints one JSON object.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:-$ROOT/build/bin}"
IMAGES="$ROOT/build/demo-images"
WEB="$ROOT/web"
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }
[ -f "$WEB/node_modules/puppeteer-core/package.json" ] || { echo "web/node_modules missing (scripts/setup.d/45-dashboard.sh)"; exit 1; }
T="$(mktemp -d /tmp/sv-bench-dash-XXXXXX)"
SOCK="$T/sock"
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="bench-$RANDOM-$RANDOM-$RANDOM"
printf '%s\n' "$TOKEN" > "$T/token"
DPID=""
cleanup() {
  set +e
  [ -n "$DPID" ] && SV apply -f "$T/empty.yaml" --timeout 30 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  ip link delete sv-benchdash 2>/dev/null
  nft delete table inet storevisor-benchdash 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: bench-dash}\nspec:\n  workloads: []\n' > "$T/empty.yaml"
cat > "$T/profile.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: bench-dash}
spec:
  networks:
    - {name: benchdash, subnet: 10.89.121.0/24}
  workloads:
    - name: kv
      kind: container
      image: storevisor/kv:1
      command: [/usr/bin/redis-server, --port, "6379", --save, "", --protected-mode, "no", --dir, /data]
      mounts: [{target: /data}]
      networks: [benchdash]
      health: {exec: [/usr/bin/redis-cli, ping], interval: 1s, timeout: 900ms}
    - name: inventory
      kind: container
      image: storevisor/inventory:1
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      networks: [benchdash]
      restart: {policy: always, backoff: {initial: 200ms, max: 2s}}
      health: {http: {port: 8080, path: /inventory.json}, interval: 1s, timeout: 900ms}
YAML
"$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" --vm-tool "" \
  --nft-table storevisor-benchdash --tcp "127.0.0.1:$PORT" --token-file "$T/token" \
  --web-dir "$WEB" >> "$T/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && SV version >/dev/null 2>&1 && break; sleep 0.1; done
SV apply -f "$T/profile.yaml" --timeout 120 >/dev/null
SV_URL="http://127.0.0.1:$PORT" SV_TOKEN="$TOKEN" SV_DAEMON_PID="$DPID" SV_CLI="$BIN/storevisor" \
  SV_SOCK="$SOCK" SV_WEB="$WEB" node "$ROOT/bench/dashboard/measure.mjs"
