#!/usr/bin/env bash
# The dashboard's assets: installs web/'s npm packages (noVNC, xterm.js, uPlot; puppeteer-core
# for the browser test) from the committed package-lock.json, so every machine serves the same
# bytes. Idempotent: skips npm when node_modules already matches the lock file.
source "$(dirname "$0")/../lib.sh"
dir="$SV_ROOT/web"
stamp="$dir/node_modules/.storevisor-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"

if ! command -v npm >/dev/null 2>&1; then
  step "dashboard: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "dashboard: npm packages up to date"
else
  step "dashboard: npm ci in web/ (noVNC, xterm.js, uPlot, puppeteer-core)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

for f in @novnc/novnc/core/rfb.js @xterm/xterm/lib/xterm.mjs uplot/dist/uPlot.esm.js; do
  [ -s "$dir/node_modules/$f" ] || die "dashboard: web/node_modules/$f missing after npm ci"
done
echo "dashboard: assets ready ($(du -sh "$dir/node_modules" | cut -f1) in web/node_modules)"
