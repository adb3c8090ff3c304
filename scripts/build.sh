#!/usr/bin/env bash
# Builds the project. build/ is the gcc RelWithDebInfo tree users run (binaries in build/bin);
# with --asan also build-asan/: clang with ASan+UBSan and the libFuzzer targets.
source "$(dirname "$0")/lib.sh"
asan=0
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;
    *) die "build.sh: unknown option $arg (known: --asan)" ;;
  esac
done
jobs="$(nproc)"
step "building build/ (gcc, RelWithDebInfo)"
cmake -S "$SV_ROOT" -B "$SV_ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SV_ROOT/build" -j "$jobs"
if [ "$asan" = 1 ]; then
  step "building build-asan/ (clang, ASan+UBSan, libFuzzer targets)"
  CC=clang CXX=clang++ cmake -S "$SV_ROOT" -B "$SV_ROOT/build-asan" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug -DSV_SANITIZE=ON -DSV_FUZZ=ON >/dev/null
  cmake --build "$SV_ROOT/build-asan" -j "$jobs"
fi
