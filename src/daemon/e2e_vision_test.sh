#!/usr/bin/env bash
# End to end: the vision service as a store workload. storevisord runs `kind: vision` from the
# project's image storevisor/vision:1 (the real storevisor-vision binary, its libraries and
# models; scripts/setup.d/50-demo.sh) as a container on a profile network, with its port
# published on the host's loopback:
#  1. apply converges and the daemon's HTTP health check on /v2/health/ready passes;
#  2. through the published port: KServe v2 health and model metadata, and /detect finds the
#     one face in a packaged photo (none in a photo without people);
#  3. the service's pipeline (a packaged photo mounted into the container) pushes face_seen
#     events into the daemon through its unix socket, bind-mounted into the container;
#  4. the workload runs under the daemon's default seccomp profile; an empty profile removes
#     it, its cgroup and its network.
# A missing prerequisite exits 77 (CTest: skipped), naming it.
set -euo pipefail
BIN="${1:?usage: e2e_vision_test.sh BUILD_BIN_DIR}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGES="$ROOT/build/demo-images"
HOPPER=/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg
MESSI=/usr/share/doc/opencv-doc/examples/data/messi5.jpg
BOX=/usr/share/doc/opencv-doc/examples/data/box.png
missing=()
[ "$(id -u)" = 0 ] || missing+=("root")
for f in "$BIN/storevisord" "$BIN/storevisor" "$BIN/storevisor-vision" "$HOPPER" "$MESSI" "$BOX"; do
  [ -e "$f" ] || missing+=("$f")
done
command -v curl >/dev/null || missing+=("curl")
if [ "${#missing[@]}" -eq 0 ]; then
  # The image needs the build (the binary) and the models: made here when absent or stale.
  bash "$ROOT/scripts/setup.d/50-demo.sh" >/dev/null 2>&1 || true
  [ -x "$IMAGES/storevisor_vision_1/rootfs/usr/bin/storevisor-vision" ] ||
    missing+=("$IMAGES/storevisor_vision_1 (scripts/setup.d/50-demo.sh after the build)")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "SKIPPED: missing prerequisite(s): ${missing[*]}"
  exit 77
fi

T="$(mktemp -d /tmp/sv-e2e-vision-XXXXXX)"
chmod 755 "$T"
SOCK="$T/run/sock"
PORT=18611
SV() { "$BIN/storevisor" --socket "$SOCK" "$@"; }
DPID=""
cleanup() {
  set +e
  [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  ip link delete sv-e2evis 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- events"; SV events 2>&1 | tail -20
  echo "--- vision logs"; SV logs vision 2>&1 | tail -20
  echo "--- daemon log"; tail -20 "$T/daemon.log"
  exit 1
}
wait_for() {  # $1: seconds, rest: a command that succeeds when done
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
field_of() { SV ps -o json | python3 -c "import json,sys; print(next((w['$2'] for w in json.load(sys.stdin) if w['name']=='$1'), ''))"; }

mkdir -p "$T/run" "$T/share/photos"
cp "$HOPPER" "$T/share/photos/1-face.jpg"
cat > "$T/share/vision.yaml" <<'YAML'
pipelines:
  - name: door
    source: {type: images, path: /share/photos, loop: true}
    detectors: [faces]
    fps: 2
    placement: edge
YAML
cat > "$T/vision.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: e2e-vision}
spec:
  networks:
    - {name: e2evis, subnet: 10.89.79.0/24}
  workloads:
    - name: vision
      kind: vision
      image: storevisor/vision:1
      command: [/usr/bin/storevisor-vision, serve, --models, /models, --host, 0.0.0.0,
                --port, "8000", --config, /share/vision.yaml, --events-url, "unix:/run/sv/sock"]
      mounts:
        - {source: $T/share, target: /share, readOnly: true}
        - {source: $T/run, target: /run/sv}
      networks: [e2evis]
      ports:
        - {host: $PORT, container: 8000}
      cpus: 1
      memory: 512Mi
      health:
        http: {port: 8000, path: /v2/health/ready}
        interval: 1s
        timeout: 900ms
        retries: 30
YAML
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: e2e-vision}\nspec:\n  workloads: []\n' > "$T/empty.yaml"

"$BIN/storevisord" --state-dir "$T/state" --socket "$SOCK" --image-dir "$IMAGES" --vm-tool "" \
  >> "$T/daemon.log" 2>&1 &
DPID=$!
wait_for 10 SV version >/dev/null 2>&1 || fail "daemon did not start"

echo "== the vision service runs as a kind: vision container and passes its health check"
start=$(date +%s%N)
SV apply -f "$T/vision.yaml" --timeout 120 || fail "apply"
echo "healthy in $(( ($(date +%s%N) - start) / 1000000 )) ms"
SV ps
[ "$(field_of vision kind)" = container ] && [ "$(field_of vision role)" = vision ] ||
  fail "ps kind/role: $(field_of vision kind)/$(field_of vision role)"
SV ps | grep -Eq '^vision +vision +running' || fail "ps does not show the vision role"
[ "$(field_of vision health)" = healthy ] || fail "ps health: $(field_of vision health)"
pid="$(field_of vision pid)"
[ -n "$pid" ] && [ -d "/proc/$pid" ] || fail "no process for vision"
# The service runs in the container's root (the image, with its stamp file), not the host's.
[ -f "/proc/$pid/root/etc/storevisor-vision.stamp" ] && [ ! -e /etc/storevisor-vision.stamp ] ||
  fail "vision does not run in its image's root"
grep -q 'storevisor-vision' "/proc/$pid/cmdline" || fail "pid $pid is not storevisor-vision"

echo "== KServe v2 and /detect through the published port"
URL="http://127.0.0.1:$PORT"
curl -sf -m 5 "$URL/v2/health/live" >/dev/null || fail "/v2/health/live"
curl -sf -m 5 "$URL/v2/health/ready" >/dev/null || fail "/v2/health/ready"
curl -sf -m 5 "$URL/v2" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["name"], d' ||
  fail "/v2 server metadata"
faces_in() {  # $1: image file; prints the number of faces /detect found
  curl -sf -m 30 --data-binary "@$1" -H 'Content-Type: application/octet-stream' "$URL/detect" |
    python3 -c '
import json, sys
d = json.load(sys.stdin)
dets = d.get("detections", d) if isinstance(d, dict) else d
print(sum(1 for x in dets if x.get("kind", x.get("type", "")) in ("face", "faces")))'
}
[ "$(faces_in "$MESSI")" = 1 ] || fail "/detect on messi5.jpg: $(faces_in "$MESSI") faces"
[ "$(faces_in "$BOX")" = 0 ] || fail "/detect on box.png: $(faces_in "$BOX") faces"

echo "== its pipeline's face_seen events reach storevisord through the mounted socket"
has_face() { SV events -o json | python3 -c '
import json, sys
sys.exit(0 if any(e.get("type") == "face_seen" and e.get("source") == "door"
                  for e in json.load(sys.stdin)) else 1)'; }
wait_for 60 has_face || fail "no face_seen event from the vision container"
SV events | grep face_seen | head -1

echo "== the container runs under the default seccomp profile"
grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || fail "vision runs without seccomp: $(grep Seccomp "/proc/$pid/status")"

echo "== an empty profile removes it"
SV apply -f "$T/empty.yaml" --timeout 60 >/dev/null || fail "apply empty"
wait_for 10 test ! -d "/proc/$pid" || fail "vision still runs"
curl -s -m 2 "$URL/v2/health/live" >/dev/null 2>&1 && fail "the published port still answers"
[ ! -e /sys/class/net/sv-e2evis ] || fail "bridge left"
echo "e2e-vision: all checks passed"
