#!/usr/bin/env bash
# bench/legacy-boot: time from `storevisor-legacy run` to the POS screen visible (OCR reads
# "STOREVISOR POS" in a screendump), and QEMU's RSS once it is, for SeaBIOS (pc) and OVMF
# (q35), alternating, RUNS times each (default 3). Also the time at which the guest printed
# its ready marker on the serial port, to show how much of the figure is OCR polling.
# Prints medians and the OVMF/SeaBIOS ratio (the peer measured in the same run). There is
# no target yet: these are the baseline future work must beat.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="$root/build/bin/storevisor-legacy"
image="$root/build/guest/legacy/legacy-pos.raw"
runs="${RUNS:-3}"
[ -x "$cli" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }
[ -f "$image" ] || { echo "build the image first: bash scripts/setup.sh" >&2; exit 1; }
work="$(mktemp -d /tmp/sv-legacy-bench.XXXXXX)"
cleanup() {
  for d in "$work"/state-*; do [ -d "$d" ] && "$cli" stop --state-dir "$d" --timeout 0 >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

write_config() {  # name machine firmware bus
  cat > "$work/$1.json" <<JSON
{"name":"bench-$1","machine":"$2","firmware":"$3","memory_mib":256,
 "disks":[{"path":"$image","format":"raw","bus":"$4","overlay":true}],
 "vga":"std","vnc":{"listen":"unix"}}
JSON
}
write_config seabios pc seabios ide
write_config ovmf q35 ovmf virtio

now_ms() { date +%s%3N; }
declare -A screen serial rss
one_boot() {  # kind iteration
  local kind="$1" i="$2" state="$work/state-$1-$2"
  local t0 t1 out pid marker_ms="" watcher
  t0="$(now_ms)"
  # Host-side time at which the guest's ready marker reaches the serial log (50 ms polls).
  ( for _ in $(seq 1 4000); do
      if grep -qs STOREVISOR-POS-READY "$state/serial.log"; then now_ms > "$work/marker-$kind-$i"; exit 0; fi
      sleep 0.05
    done ) &
  watcher=$!
  out="$("$cli" run --config "$work/$kind.json" --detach --state-dir "$state" \
           --wait-text "STOREVISOR POS" --timeout 180 -o json 2>/dev/null)"
  t1="$(now_ms)"
  wait "$watcher" || true
  [ -f "$work/marker-$kind-$i" ] && marker_ms="$(( $(cat "$work/marker-$kind-$i") - t0 ))"
  pid="$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$out")"
  local rss_kib; rss_kib="$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")"
  "$cli" stop --state-dir "$state" --timeout 30 >/dev/null 2>&1
  screen[$kind]+="$((t1 - t0)) "
  rss[$kind]+="$((rss_kib / 1024)) "
  serial[$kind]+="${marker_ms:-0} "
  printf '%-8s run %d: POS screen after %5d ms (serial marker at %s ms), QEMU RSS %4d MiB\n' \
    "$kind" "$i" "$((t1 - t0))" "${marker_ms:-?}" "$((rss_kib / 1024))"
}

median() { tr ' ' '\n' | awk 'NF' | sort -n | awk '{a[NR]=$1} END{if(NR%2){print a[(NR+1)/2]}else{print int((a[NR/2]+a[NR/2+1])/2)}}'; }

echo "legacy-boot: $runs runs each, alternating; accelerator as storevisor-legacy reports it"
for i in $(seq 1 "$runs"); do
  one_boot seabios "$i"
  one_boot ovmf "$i"
done
s_screen="$(median <<<"${screen[seabios]}")"; o_screen="$(median <<<"${screen[ovmf]}")"
s_mark="$(median <<<"${serial[seabios]}")"; o_mark="$(median <<<"${serial[ovmf]}")"
s_rss="$(median <<<"${rss[seabios]}")"; o_rss="$(median <<<"${rss[ovmf]}")"
echo
printf '%-28s %10s %10s %14s\n' "median" "SeaBIOS" "OVMF" "OVMF/SeaBIOS"
printf '%-28s %8d ms %8d ms %14s\n' "start -> POS screen (OCR)" "$s_screen" "$o_screen" \
  "$(awk -v a="$o_screen" -v b="$s_screen" 'BEGIN{printf "%.2fx", a/b}')"
printf '%-28s %8d ms %8d ms %14s\n' "start -> serial ready marker" "$s_mark" "$o_mark" \
  "$(awk -v a="$o_mark" -v b="$s_mark" 'BEGIN{printf "%.2fx", a/b}')"
printf '%-28s %7d MiB %7d MiB %14s\n' "QEMU RSS at POS screen" "$s_rss" "$o_rss" \
  "$(awk -v a="$o_rss" -v b="$s_rss" 'BEGIN{printf "%.2fx", a/b}')"
