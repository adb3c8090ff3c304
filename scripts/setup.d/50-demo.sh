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

# The same images in the image store, where storevisord resolves `image:` (its
# --image-root, default STATE_DIR/images). Needs build/bin/storevisor-image: on a first
# set-up that runs before the build, scripts/run-demo-store.sh calls this script again.
STORE="${STOREVISOR_STATE_DIR:-/var/lib/storevisor}/images"
IMAGE_TOOL="$ROOT/build/bin/storevisor-image"
if [ -x "$IMAGE_TOOL" ]; then
  for ref in storevisor/inventory:1 storevisor/kv:1; do
    flat="${ref//[\/:]/_}"
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
