#!/usr/bin/env bash
# Builds the project. build/ is the gcc RelWithDebInfo tree users run (binaries in build/bin);
# with --asan also build-asan/: clang with ASan+UBSan and the libFuzzer targets.
source "$(dirname "$0")/lib.sh"
asan=0
tsan=0
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;
    --tsan) tsan=1 ;;
    *) die "build.sh: unknown option $arg (known: --asan, --tsan)" ;;
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
if [ "$tsan" = 1 ]; then
  # Only the daemon under ThreadSanitizer: its unit tests and the storevisord/storevisor
  # binaries one end-to-end test runs (the engines it calls come from build/bin).
  step "building build-tsan/ (clang, ThreadSanitizer: the daemon)"
  CC=clang CXX=clang++ cmake -S "$SV_ROOT" -B "$SV_ROOT/build-tsan" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSV_TSAN=ON >/dev/null
  cmake --build "$SV_ROOT/build-tsan" -j "$jobs" --target storevisord storevisor \
    daemon_core_test daemon_simulation_test daemon_owner_test daemon_api_test
  for engine in storevisor-runtime storevisor-vm storevisor-legacy storevisor-image; do
    if [ -e "$SV_ROOT/build/bin/$engine" ]; then
      ln -sf "$SV_ROOT/build/bin/$engine" "$SV_ROOT/build-tsan/bin/$engine"
    fi
  done
fi
