#!/usr/bin/env bash
# The README's main command: sets up the machine, builds, brings up the example store
# profile (examples/store-demo.yaml) under storevisord and shows it running.
source "$(dirname "$0")/lib.sh"
need_root
bash "$SV_ROOT/scripts/setup.sh"
bash "$SV_ROOT/scripts/build.sh"
if [ -x "$SV_ROOT/build/bin/storevisord" ] && [ -x "$SV_ROOT/build/bin/storevisor" ]; then
  exec bash "$SV_ROOT/scripts/run-demo-store.sh"
fi
die "storevisord is not built yet (issue 5); see docs/status.md for what runs today"
