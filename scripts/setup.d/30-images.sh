#!/usr/bin/env bash
# Demo OCI images for containers, built with the project's own image store from busybox-static
# (always) and from a debootstrap'ed Debian minbase (when SV_DEBOOTSTRAP=1; cached, ~25 s and
# ~200 MB the first time). Idempotent: an image already in the store is not rebuilt.
source "$(dirname "$0")/../lib.sh"
store_root="${SV_IMAGE_ROOT:-/var/lib/storevisor/images}"
cache="${SV_CACHE:-$SV_ROOT/build/cache}/images"
image_bin="$SV_ROOT/build/bin/storevisor-image"
if [ ! -x "$image_bin" ]; then
  step "images: building storevisor-image first"
  cmake -S "$SV_ROOT" -B "$SV_ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$SV_ROOT/build" -j 2 --target storevisor-image
fi
have() { "$image_bin" --root "$store_root" ls --json | grep -q "\"ref\":\"$1\""; }
mkdir -p "$cache"

if have "storevisor/busybox:latest"; then
  echo "  images: storevisor/busybox:latest already in $store_root"
else
  echo "  images: building storevisor/busybox:latest from busybox-static"
  rootfs="$cache/busybox-rootfs"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,var/log}
  cp /bin/busybox "$rootfs/bin/busybox"
  for app in $("$rootfs/bin/busybox" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$rootfs/bin/$app"
  done
  echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
  echo "root:x:0:" > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  "$image_bin" --root "$store_root" build-from-dir --cmd /bin/sh "$rootfs" storevisor/busybox:latest
fi

if [ "${SV_DEBOOTSTRAP:-0}" = 1 ]; then
  if have "storevisor/debian:bookworm"; then
    echo "  images: storevisor/debian:bookworm already in $store_root"
  else
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
    rootfs="$cache/debian-rootfs"
    if [ ! -x "$rootfs/bin/bash" ]; then
      echo "  images: debootstrap --variant=minbase bookworm (cached in $rootfs)"
      rm -rf "$rootfs"
      debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
    fi
    "$image_bin" --root "$store_root" build-from-dir --cmd /bin/bash "$rootfs" storevisor/debian:bookworm
  fi
fi
