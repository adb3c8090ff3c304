#!/usr/bin/env bash
# bench/legacy-boot/apply.sh: the issue's figure measured through the daemon. For SeaBIOS
# (pc, IDE) and OVMF (q35, virtio), alternating, RUNS times each (default 3):
#   apply -> POS screen   from `storevisor apply --no-wait` until `storevisor screenshot` +
#                         tesseract read "STOREVISOR POS" (polled back to back);
#   apply -> healthy      until the daemon's own `screen` health check (interval 1s) passed;
#   QEMU RSS              of the workload's QEMU once the screen was read.
# Then the same image started without the daemon (`storevisor-legacy run --wait-text`, the
# standalone figure of run.sh) once per run as the peer. Prints medians and ratios. A private
# storevisord on a temporary state dir and socket; everything is removed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/build/bin"
image="$root/build/guest/legacy/legacy-pos.raw"
runs="${RUNS:-3}"
for b in storevisord storevisor storevisor-legacy; do
  [ -x "$bin/$b" ] || { echo "build first: bash scripts/build.sh ($b missing)" >&2; exit 1; }
done
[ -f "$image" ] || { echo "build the image first: bash scripts/setup.sh" >&2; exit 1; }
command -v tesseract >/dev/null || { echo "tesseract missing (scripts/setup.sh)" >&2; exit 1; }
work="$(mktemp -d /tmp/sv-legacy-apply-bench.XXXXXX)"
sock="$work/sock"
SV() { "$bin/storevisor" --socket "$sock" "$@"; }
dpid=""
cleanup() {
  set +e
  [ -n "$dpid" ] && SV apply -f "$work/empty.yaml" --timeout 60 >/dev/null 2>&1
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  for d in "$work"/state/legacy/*/run "$work"/alone-*; do
    [ -d "$d" ] && "$bin/storevisor-legacy" stop --state-dir "$d" --timeout 1 >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT

profile() {  # kind machine firmware devices
  cat > "$work/$1.yaml" <<YAML
apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: legacy-bench}
spec:
  workloads:
    - name: pos-$1
      kind: legacy-vm
      machine: $2
      firmware: $3
      devices: $4
      memory: 256Mi
      vnc: {listen: unix}
      disks: [{path: $image, overlay: true}]
      restart: never
      health: {screen: {contains: STOREVISOR POS}, interval: 1s, timeout: 1s, retries: 100}
YAML
  cat > "$work/alone-$1.json" <<JSON
{"name":"alone-$1","machine":"$2","firmware":"$3","memory_mib":256,
 "disks":[{"path":"$image","format":"raw","bus":"$([ "$4" = emulated ] && echo ide || echo virtio)","overlay":true}],
 "vga":"std","vnc":{"listen":"unix"}}
JSON
}
profile seabios pc seabios emulated
profile ovmf q35 ovmf virtio
printf 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: legacy-bench}\nspec:\n  workloads: []\n' > "$work/empty.yaml"

"$bin/storevisord" --state-dir "$work/state" --socket "$sock" \
  --legacy-tool "$bin/storevisor-legacy" > "$work/daemon.log" 2>&1 &
dpid=$!
for _ in $(seq 50); do SV version >/dev/null 2>&1 && break; sleep 0.1; done

now_ms() { date +%s%3N; }
declare -A screen healthy rss alone
state_of() {  # name -> state and health
  SV ps -o json | python3 -c "import json,sys; w=[w for w in json.load(sys.stdin) if w['name']=='$1']; print((w[0]['state']+' '+w[0]['health']+' '+str(w[0]['pid'])) if w else 'none none 0')"
}
one_apply() {  # kind iteration
  local kind="$1" i="$2" name="pos-$1" t0 t_screen="" t_healthy="" pid=0 st
  t0="$(now_ms)"
  SV apply -f "$work/$kind.yaml" --no-wait -o json >/dev/null
  while [ $(( $(now_ms) - t0 )) -lt 240000 ]; do
    read -r s h p <<<"$(state_of "$name")"
    [ -z "$t_healthy" ] && [ "$h" = healthy ] && t_healthy="$(now_ms)"
    if [ -z "$t_screen" ] && [ "$s" = running ] && SV screenshot "$name" "$work/s.png" 2>/dev/null &&
       tesseract "$work/s.png" - --psm 6 -c thresholding_method=2 2>/dev/null | tr -d ' ' |
         tr 'a-z' 'A-Z' | grep -q STOREVISORPOS; then
      t_screen="$(now_ms)"; pid="$p"
      rss[$kind]+="$(( $(awk '/^VmRSS/{print $2}' "/proc/$pid/status") / 1024 )) "
    fi
    [ -n "$t_screen" ] && [ -n "$t_healthy" ] && break
    sleep 0.1
  done
  [ -n "$t_screen" ] && [ -n "$t_healthy" ] || { echo "run $i $kind: no POS screen in 240 s" >&2; tail -5 "$work/daemon.log" >&2; exit 1; }
  screen[$kind]+="$((t_screen - t0)) "
  healthy[$kind]+="$((t_healthy - t0)) "
  SV apply -f "$work/empty.yaml" --timeout 60 >/dev/null 2>&1
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  local t1; t1="$(now_ms)"
  "$bin/storevisor-legacy" run --config "$work/alone-$kind.json" --detach --state-dir "$work/alone-$kind-$i" \
    --wait-text "STOREVISOR POS" --timeout 180 -o json >/dev/null 2>&1
  alone[$kind]+="$(( $(now_ms) - t1 )) "
  "$bin/storevisor-legacy" stop --state-dir "$work/alone-$kind-$i" --timeout 30 >/dev/null 2>&1 || true
  printf '%-8s run %d: apply -> POS screen %6d ms, -> healthy %6d ms, RSS %4d MiB; standalone %6d ms\n' \
    "$kind" "$i" "$((t_screen - t0))" "$((t_healthy - t0))" "$(awk '{print $NF}' <<<"${rss[$kind]}")" \
    "$(awk '{print $NF}' <<<"${alone[$kind]}")"
}
median() { tr ' ' '\n' | awk 'NF' | sort -n | awk '{a[NR]=$1} END{if(NR%2){print a[(NR+1)/2]}else{print int((a[NR/2]+a[NR/2+1])/2)}}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }

echo "legacy-boot (through storevisord): $runs runs each, alternating; TCG on this machine"
for i in $(seq 1 "$runs"); do one_apply seabios "$i"; one_apply ovmf "$i"; done
for k in seabios ovmf; do
  eval "m_screen_$k=$(median <<<"${screen[$k]}")"; eval "m_healthy_$k=$(median <<<"${healthy[$k]}")"
  eval "m_rss_$k=$(median <<<"${rss[$k]}")"; eval "m_alone_$k=$(median <<<"${alone[$k]}")"
done
echo
printf '%-34s %10s %10s %14s\n' "median" "SeaBIOS" "OVMF" "OVMF/SeaBIOS"
printf '%-34s %8d ms %8d ms %14s\n' "apply -> POS screen (screenshot+OCR)" "$m_screen_seabios" "$m_screen_ovmf" "$(ratio "$m_screen_ovmf" "$m_screen_seabios")"
printf '%-34s %8d ms %8d ms %14s\n' "apply -> healthy (screen check)" "$m_healthy_seabios" "$m_healthy_ovmf" "$(ratio "$m_healthy_ovmf" "$m_healthy_seabios")"
printf '%-34s %8d ms %8d ms %14s\n' "standalone run -> POS screen" "$m_alone_seabios" "$m_alone_ovmf" "$(ratio "$m_alone_ovmf" "$m_alone_seabios")"
printf '%-34s %7d MiB %7d MiB %14s\n' "QEMU RSS at the POS screen" "$m_rss_seabios" "$m_rss_ovmf" "$(ratio "$m_rss_ovmf" "$m_rss_seabios")"
printf '%-34s %10s %10s\n' "through daemon / standalone" "$(ratio "$m_screen_seabios" "$m_alone_seabios")" "$(ratio "$m_screen_ovmf" "$m_alone_ovmf")"
