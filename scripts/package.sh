#!/usr/bin/env bash
# Builds the Debian packages (debian/, dpkg-buildpackage with debhelper's cmake build) into
# build/pkg/: storevisor_VERSION_amd64.deb (daemon, CLI, engines, guest assets, demo images,
# examples, unit, config) and storevisor-vision_VERSION_amd64.deb. Runs set-up first (build
# dependencies, the guest assets and demo images the package ships) unless --no-setup.
# The build runs in a copy of the tree, build/pkg/storevisor-VERSION/ (dpkg-buildpackage
# writes its results beside the tree it builds); its debian/build is kept, so a second run
# compiles only what changed. Install: apt install ./build/pkg/storevisor_VERSION_amd64.deb
source "$(dirname "$0")/lib.sh"
setup=1
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    *) die "package.sh: unknown option $arg (known: --no-setup)" ;;
  esac
done
if [ "$setup" = 1 ]; then
  need_root
  bash "$SV_ROOT/scripts/setup.sh"
fi
WORK="${SV_PKG_WORK:-$SV_ROOT/build/pkg}"
version="$(dpkg-parsechangelog -l "$SV_ROOT/debian/changelog" -S Version)"
stage="$WORK/storevisor-$version"
step "dpkg-buildpackage in $stage (log: $WORK/dpkg-buildpackage.log)"
mkdir -p "$stage"
# Fresh sources (files keep their times, so ninja in the kept debian/build sees what changed).
find "$stage" -mindepth 1 -maxdepth 1 ! -name debian -exec rm -rf {} +
find "$stage/debian" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} + 2>/dev/null || true
rm -f "$WORK"/storevisor*_"$version"_*.deb "$WORK"/storevisor_"$version"_*.buildinfo \
  "$WORK"/storevisor_"$version"_*.changes
if git -C "$SV_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$SV_ROOT" ls-files -z --cached --others --exclude-standard |
    (cd "$SV_ROOT" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$SV_ROOT" --null -T - -cf - | tar -C "$stage" -xf -
else  # not a git checkout: everything but build trees and caches
  tar -C "$SV_ROOT" --exclude=./build --exclude='./build-*' --exclude=./.cache \
    --exclude=./third_party/npm/node_modules -cf - . | tar -C "$stage" -xf -
fi
if ! (cd "$stage" &&
      SV_GUEST_DIR="$SV_ROOT/build/guest" SV_DEMO_IMAGES_DIR="$SV_ROOT/build/demo-images" \
      DEB_BUILD_OPTIONS="noautodbgsym nocheck parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
      nice -n 5 dpkg-buildpackage -b -us -uc -nc > "$WORK/dpkg-buildpackage.log" 2>&1); then
  tail -40 "$WORK/dpkg-buildpackage.log" >&2
  die "dpkg-buildpackage failed (log: $WORK/dpkg-buildpackage.log)"
fi
for deb in "$WORK"/*_"$version"_*.deb; do
  printf '%s (%s, installed %s KiB)\n' "$deb" "$(du -h "$deb" | cut -f1)" \
    "$(dpkg-deb -f "$deb" Installed-Size)"
done
