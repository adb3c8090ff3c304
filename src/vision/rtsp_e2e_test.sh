#!/usr/bin/env bash
# End to end: storevisor-vision reads a real RTSP camera. The camera is GStreamer's RTSP server
# (testdata/rtsp_camera.py) streaming a packaged photo with a face as Motion-JPEG over RTP on
# loopback; the service opens it through OpenCV's videoio (FFmpeg).
#  1. The pipeline opens the stream (source_open) and finds the face (face_seen, faces=1).
#  2. The camera disappears (killed): within seconds the pipeline reports source_lost or
#     source_error and is `reconnecting`; the service stays ready.
#  3. The camera comes back on the same port: the pipeline reopens it by itself and analyses
#     its frames again.
set -euo pipefail
BIN="${1:?usage: rtsp_e2e_test.sh BUILD_BIN_DIR}"
HERE="$(cd "$(dirname "$0")" && pwd)"
HOPPER=/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg
PY=/usr/bin/python3
if ! "$PY" -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null; then
  echo "SKIP: GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gi) is missing: run scripts/setup.sh"
  exit 77  # ctest: skipped
fi
T="$(mktemp -d /tmp/sv-vision-rtsp-XXXXXX)"
CPID=""
VPID=""
cleanup() {
  set +e
  [ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
  [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- vision pipelines"; curl -s -m 5 "http://127.0.0.1:${PORT:-0}/pipelines" || true
  echo; echo "--- vision log"; tail -20 "$T/vision.log"
  echo "--- camera log"; tail -20 "$T/camera.log"
  exit 1
}
wait_for() {  # $1: seconds, rest: a command that succeeds when done
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
start_camera() {  # $1: port (0 = any)
  "$PY" "$HERE/testdata/rtsp_camera.py" "$HOPPER" "$1" >"$T/camera.port" 2>>"$T/camera.log" &
  CPID=$!
  wait_for 20 test -s "$T/camera.port" || fail "the RTSP camera did not start"
  CAM_PORT="$(head -1 "$T/camera.port")"
}
# Counts the service's events of type $1 after sequence number $2.
count_events() {
  curl -s -m 5 "http://127.0.0.1:$PORT/events" | "$PY" -c '
import json, sys
kind, after = sys.argv[1], int(sys.argv[2])
n = 0
for e in json.load(sys.stdin)["events"]:
    if e["pipeline"] != "cam" or e["type"] != kind or e["seq"] <= after:
        continue
    if kind == "face_seen":
        assert e["detail"]["faces"] == 1, e
    if kind == "source_open":
        assert e["detail"]["source"].startswith("rtsp://127.0.0.1:"), e
    n += 1
print(n)' "$1" "$2"
}
last_seq() {
  curl -s -m 5 "http://127.0.0.1:$PORT/events" |
    "$PY" -c 'import json, sys; print(max([e["seq"] for e in json.load(sys.stdin)["events"]] or [0]))'
}
has_event() { [ "$(count_events "$1" "$2")" -ge 1 ]; }
lost_since() { has_event source_lost "$1" || has_event source_error "$1"; }
state() {
  curl -s -m 5 "http://127.0.0.1:$PORT/pipelines" |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["pipelines"][0]["state"])'
}
is_reconnecting() { [ "$(state)" = reconnecting ]; }

start_camera 0
cat >"$T/vision.yaml" <<YAML
pipelines:
  - name: cam
    source: {type: rtsp, path: "rtsp://127.0.0.1:$CAM_PORT/cam"}
    detectors: [faces]
    fps: 4
    placement: edge
YAML
"$BIN/storevisor-vision" serve --config "$T/vision.yaml" --port 0 >"$T/vision.port" 2>"$T/vision.log" &
VPID=$!
vision_started() { test -s "$T/vision.port" || ! kill -0 "$VPID" 2>/dev/null; }
wait_for 60 vision_started && test -s "$T/vision.port" || fail "storevisor-vision printed no port"
PORT="$(head -1 "$T/vision.port")"

echo "== the pipeline opens the RTSP stream and finds the face"
wait_for 30 has_event source_open 0 || fail "no source_open for the RTSP camera"
wait_for 30 has_event face_seen 0 || fail "no face_seen from the RTSP stream"
echo "camera on port $CAM_PORT: source_open, face_seen (1 face)"

echo "== the camera disappears: reported within seconds, the service stays up"
SEQ="$(last_seq)"
kill "$CPID"; wait "$CPID" 2>/dev/null || true; CPID=""
LOST_T0=$(date +%s%N)
wait_for 20 lost_since "$SEQ" || fail "no source_lost/source_error after the camera went away"
echo "lost reported after $(( ($(date +%s%N) - LOST_T0) / 1000000 )) ms"
wait_for 10 is_reconnecting || fail "pipeline is '$(state)', not reconnecting"
curl -sf -m 5 "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null || fail "service not ready without its camera"

echo "== the camera comes back: the pipeline reopens it by itself"
SEQ="$(last_seq)"
start_camera "$CAM_PORT"
wait_for 40 has_event source_open "$SEQ" || fail "the pipeline did not reopen the camera"
# face_seen fires when a face appears; the pipeline still holds the face it saw before the
# loss, so the proof of new analysis is its frame counter moving on from the reopened stream.
frames() {
  curl -s -m 5 "http://127.0.0.1:$PORT/pipelines" |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["pipelines"][0]["frames"])'
}
F0="$(frames)"
frames_moved() { [ "$(frames)" -ge $((F0 + 4)) ]; }
wait_for 30 frames_moved || fail "no frames analysed after the camera came back ($F0 -> $(frames))"
[ "$(state)" = running ] || fail "pipeline is '$(state)' after the camera came back"
echo "reopened: frames $F0 -> $(frames)"
echo "PASS"
