#!/bin/bash
# OCI runtime conformance: opencontainers/runtime-tools' validation/ programs (pinned in
# third_party/runtime-tools, built offline here) run against one runtime through the suite's
# RUNTIME variable. Each program prints TAP; a case is "<program>: <description>".
#
#   run.sh --runtime PATH [--work DIR] [--baseline FILE] [--expected-failures FILE]
#          [--record FILE] [--only REGEX] [--reparse]
#
# --reparse: judge the TAP files of the last run in --work again, without running anything.
# --baseline: the cases runc passes on this machine (one a line); the run fails when the
#   runtime fails one of them. Without it, the run fails on any failure.
# --expected-failures: cases never required, one a line with "  # reason" (races in the
#   suite itself that runc loses too). --record writes the passed cases (to refresh a baseline).
# Closes with "N passed, N failed[, N skipped]". Exit 0, 1 (a required case failed), or 77
# (a prerequisite is missing, named on stderr).
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)/third_party/runtime-tools
runtime="" work="" baseline="" expected="" record="" only="." rerun=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --expected-failures) expected=$2; shift 2 ;;
    --record) record=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --reparse) rerun=0; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
skip() { echo "SKIPPED: $*" >&2; exit 77; }
[ -n "$runtime" ] || { echo "run.sh: --runtime is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || skip "root is needed to run containers"
[ -x "$runtime" ] || runtime=$(command -v "$runtime") || skip "runtime $runtime not found"
command -v go >/dev/null || skip "go (Debian package golang-go) is not installed"
[ -f "$src/go.mod" ] || skip "third_party/runtime-tools is missing"
[ -n "$work" ] || work=$(mktemp -d /tmp/sv-conformance.XXXXXX)
bin="$work/bin"
mkdir -p "$bin" "$work/tap"

# Build offline from the vendored tree (cached in the work dir's Go cache).
export GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$work/gocache" GOPATH="$work/gopath"
export CGO_ENABLED=0
programs=()
for dir in "$src"/validation/*/; do
  name=$(basename "$dir")
  [ "$name" = util ] && continue
  [[ "$name" =~ $only ]] || continue
  programs+=("$name")
done
if [ "$rerun" = 1 ]; then
  (cd "$src" && go build -tags "netgo osusergo" -o "$bin/runtimetest" ./cmd/runtimetest) ||
    { echo "run.sh: building runtimetest failed" >&2; exit 1; }
  for name in "${programs[@]}"; do
    [ "$bin/$name.t" -nt "$src/validation/$name/$name.go" ] && continue
    (cd "$src" && go build -o "$bin/$name.t" "./validation/$name") ||
      { echo "run.sh: building validation/$name failed" >&2; exit 1; }
  done
  cp -f "$src/rootfs-amd64.tar.gz" "$bin/"
fi

# Run each program from the directory holding runtimetest and the rootfs tarball (the suite
# looks for both in its working directory).
results="$work/raw.txt"
: >"$results"
: >"$work/why.txt"
for name in "${programs[@]}"; do
  tap="$work/tap/$name.tap"
  if [ "$rerun" = 1 ]; then
    (cd "$bin" && RUNTIME="$runtime" timeout -k 5 180 "./$name.t" >"$tap" 2>"$work/tap/$name.err")
    echo $? >"$work/tap/$name.status"
  fi
  status=$(cat "$work/tap/$name.status" 2>/dev/null || echo 1)
  # "ok N - text" / "not ok N - text" (a "# SKIP" directive counts as skipped). A case is
  # "<program>: text", not its number: some programs walk Go maps, so their order (and
  # numbering) changes from run to run. A text repeated in one program is one case, failed
  # if any of its occurrences failed.
  cases=$(grep -E '^(not )?ok [0-9]+' "$tap" || true)
  if [ -z "$cases" ]; then
    # Programs that check one rule print only "1..0" (or nothing), plus a YAML "error" or
    # a non-zero exit when it broke.
    err=$(grep -m1 '"error":' "$tap" | sed -E 's/^ *"error": *//' | cut -c1-200)
    if [ -n "$err" ] || [ "$status" -ne 0 ]; then
      echo "fail $name: the program's check failed" >>"$results"
      echo "  $name: ${err:-(no TAP; exit $status) $(head -c 300 "$work/tap/$name.err" | tr '\n' ' ')}" >>"$work/why.txt"
    else
      echo "pass $name: the program's check passed" >>"$results"
    fi
    continue
  fi
  while IFS= read -r line; do
    verdict=pass
    [[ "$line" == "not ok"* ]] && verdict=fail
    [[ "$line" == *"# SKIP"* || "$line" == *"# skip"* ]] && verdict=skip
    text=$(sed -E 's/^(not )?ok [0-9]+ ?-? ?//; s/^# (SKIP|skip) ?//; s/ *# (SKIP|skip).*$//' <<<"$line")
    echo "$verdict $name: $text" >>"$results"
  done <<<"$cases"
  # A program that dies after some cases: its exit status is a failure of its own.
  if [ "$status" -ne 0 ]; then
    echo "fail $name: the program exited with a failure" >>"$results"
    echo "  $name: exit status $status $(head -c 200 "$work/tap/$name.err" | tr '\n' ' ')" >>"$work/why.txt"
  fi
done

# One verdict per case: fail beats pass beats skip.
awk '{ v = $1; $1 = ""; k = substr($0, 2); r = (v == "fail") ? 3 : (v == "pass") ? 2 : 1;
       if (r > best[k]) best[k] = r }
     END { for (k in best) print (best[k] == 3 ? "fail" : best[k] == 2 ? "pass" : "skip") " " k }' \
  "$results" | sort >"$work/results.txt"
results="$work/results.txt"
passed=$(grep -c '^pass ' "$results")
failed=$(grep -c '^fail ' "$results")
skipped=$(grep -c '^skip ' "$results")
[ -n "$record" ] && sed -n 's/^pass //p' "$results" >"$record"

# Failures that matter: with a baseline, cases runc passes; without, any not expected.
is_expected() {
  [ -n "$expected" ] && grep -qxF "$1" <(grep -v '^#' "$expected" | sed -E 's/  # .*$//')
}
required=0
while IFS= read -r case; do
  [ -z "$case" ] && continue
  if is_expected "$case"; then
    echo "expected failure: $case"; continue
  fi
  if [ -n "$baseline" ]; then
    grep -qxF "$case" "$baseline" || { echo "not required (runc fails it too): $case"; continue; }
  fi
  echo "FAILED: $case"
  required=$((required + 1))
done < <(sed -n 's/^fail //p' "$results")
if [ -n "$baseline" ]; then
  # Baseline cases this run printed neither as passed nor failed, except in programs whose
  # one check passed here (they expect create to fail, say, so print none of the incidental
  # cases the baseline runtime went on to print) and the expected failures.
  grep -v '^#' "$baseline" | grep -v '^$' | sort -u >"$work/baseline.txt"
  sed -E 's/^(pass|fail|skip) //' "$results" | sort -u >"$work/seen.txt"
  sed -n "s/^pass \(.*\): the program's check passed$/\1/p" "$results" >"$work/whole.txt"
  { [ -n "$expected" ] && grep -v '^#' "$expected" | sed -E 's/  # .*$//'; } >"$work/expected.txt"
  while IFS= read -r case; do
    prog=${case%%:*}
    [[ "$prog" =~ $only ]] || continue
    grep -qxF "$prog" "$work/whole.txt" && continue
    grep -qxF "$case" "$work/expected.txt" && continue
    echo "FAILED (missing from this run): $case"
    required=$((required + 1))
  done < <(comm -23 "$work/baseline.txt" "$work/seen.txt")
fi
echo "results: $results (why programs failed: $work/why.txt; TAP per program: $work/tap)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$required" -eq 0 ]
