#!/usr/bin/env bash
# Screenshots of the built site in headless Chromium: the home page and one run report.
# Usage: tools/screenshots.sh [SITE_DIR=_docs] [OUT_DIR=_docs/screenshots]
# Needs Debian's chromium (apt-get install -y chromium).
set -euo pipefail
site=$(cd "${1:-_docs}" && pwd); out=${2:-$site/screenshots}; mkdir -p "$out"
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }
shot() {  # shot PAGE PNG [HEIGHT]
  "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars \
    --window-size=1400,${3:-2000} --virtual-time-budget=5000 --screenshot="$2" "file://$1" 2>/dev/null
  echo "$2"
}
shot "$site/index.html" "$out/home.png"
report=$(ls "$site"/runs/track*/08_report.html 2>/dev/null | head -1 || true)
[ -n "$report" ] || report=$(ls "$site"/runs/track*/*.html 2>/dev/null | head -1 || true)
if [ -n "$report" ]; then shot "$report" "$out/run_report.png" 4200; else echo "no run report in $site/runs (run the pipeline first)" >&2; fi
