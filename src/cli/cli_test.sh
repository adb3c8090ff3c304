#!/usr/bin/env bash
# The CLI without a daemon: validated -o (a usage error, status 2), `image` in --help, no
# daemon (status 9: "is it running?"), a user who may not open the socket (status 6:
# permission denied, not "is it running?"), and `image rm` without a daemon (removed, with a
# note: nothing can be running on it). Usage: cli_test.sh BIN_DIR
set -euo pipefail
BIN=$1
SV=$BIN/storevisor
T=$(mktemp -d)
LISTENER=
cleanup() { [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { set +e; "$@" > "$T/out" 2> "$T/err"; echo $?; set -e; }

[ "$(status "$SV" --socket "$T/none.sock" ps -o bogus)" = 2 ] || fail "-o bogus: not status 2"
grep -q "bogus" "$T/err" || fail "-o bogus: the message does not name it: $(cat "$T/err")"
[ "$(status "$SV" --socket "$T/none.sock" events -o wide)" = 2 ] || fail "events -o wide accepted"
"$SV" --help | grep -q '^  image' || fail "image is missing from --help"

[ "$(status "$SV" --socket "$T/none.sock" ps)" = 9 ] || fail "no daemon: not status 9"
grep -q "is it running?" "$T/err" || fail "no daemon: $(cat "$T/err")"

mkdir "$T/dir" && echo hi > "$T/dir/file"
"$SV" image --root "$T/images" build-from-dir "$T/dir" cli/x:1 > /dev/null 2>&1 || fail "build-from-dir"
[ "$(status "$SV" --socket "$T/none.sock" image --root "$T/images" rm cli/x:1)" = 0 ] ||
  fail "image rm without a daemon: $(cat "$T/err")"
grep -qx "storevisor image: note: storevisord is not running ($T/none.sock): no workload can be using cli/x:1" "$T/err" ||
  fail "image rm without a daemon: no note: $(cat "$T/err")"
[ "$(status "$SV" --socket "$T/none.sock" image --root "$T/images" rm cli/x:1)" = 3 ] ||
  fail "image rm of an absent image: not status 3: $(cat "$T/err")"
[ "$(status "$SV" image rm)" = 2 ] || fail "image rm without a name: not status 2"

if [ "$(id -u)" = 0 ] && command -v python3 > /dev/null && command -v setpriv > /dev/null; then
  mkdir -m 0755 "$T/run"
  python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); time.sleep(60)' "$T/run/sv.sock" &
  LISTENER=$!
  for _ in $(seq 50); do [ -S "$T/run/sv.sock" ] && break; sleep 0.1; done
  chmod 0660 "$T/run/sv.sock"
  rc=$(status setpriv --reuid=65534 --regid=65534 --clear-groups "$SV" --socket "$T/run/sv.sock" ps)
  [ "$rc" = 6 ] || fail "non-root user: status $rc, want 6: $(cat "$T/err")"
  grep -q "permission denied" "$T/err" || fail "non-root user: $(cat "$T/err")"
  ! grep -q "is it running" "$T/err" || fail "non-root user told 'is it running?'"
else
  echo "SKIPPED: the permission check needs root, python3 and setpriv"
fi
echo "cli: all checks passed"
