#!/usr/bin/env bash
# Brings up examples/store-demo.yaml under storevisord: starts the daemon if none answers on
# its socket, applies the profile, waits until every workload runs and is healthy, and
# prints `storevisor ps`. Called by scripts/demo.sh (the README's first command).
source "$(dirname "$0")/lib.sh"
need_root
BIN="$SV_ROOT/build/bin"
SOCK="${STOREVISOR_SOCKET:-/run/storevisor/storevisord.sock}"
STATE="${STOREVISOR_STATE_DIR:-/var/lib/storevisor}"
export STOREVISOR_SOCKET="$SOCK"
# Demo images built and in the image store (idempotent: present images are kept).
STOREVISOR_STATE_DIR="$STATE" bash "$SV_ROOT/scripts/setup.d/50-demo.sh"

if ! "$BIN/storevisor" version >/dev/null 2>&1; then
  step "starting storevisord (state $STATE, socket $SOCK, log $STATE/storevisord.log)"
  mkdir -p "$STATE"
  setsid "$BIN/storevisord" --state-dir "$STATE" --socket "$SOCK" \
    >> "$STATE/storevisord.log" 2>&1 < /dev/null &
  for _ in $(seq 100); do "$BIN/storevisor" version >/dev/null 2>&1 && break; sleep 0.1; done
  "$BIN/storevisor" version >/dev/null || die "storevisord did not start; see $STATE/storevisord.log"
fi

step "applying examples/store-demo.yaml"
"$BIN/storevisor" apply -f "$SV_ROOT/examples/store-demo.yaml" --timeout 300
step "storevisor ps"
"$BIN/storevisor" ps
cat <<EOT

The inventory service answers on the host: curl http://127.0.0.1:18080/inventory.json
Try: $BIN/storevisor logs kv | $BIN/storevisor events | $BIN/storevisor exec kv -- /usr/bin/redis-cli ping
Remove it all: $BIN/storevisor apply -f <a profile with workloads: []>
Stop this daemon (workloads keep running; it re-adopts them when started again):
  kill \$(cat $(dirname "$SOCK")/storevisord.pid)
EOT
