#!/bin/bash
# vision.eval_smoke: the harness end to end on a small subset (faces at the right/bottom
# edges, every symbology clean and at one damage level, labels at 16/32 px and 0/5 degrees).
# Fails when the service reads a code wrong or falls below a baseline on the subset.
set -euo pipefail
out=$1
bin=$2
for tool in zint zbarimg tesseract; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool missing (scripts/deps/vision.txt)"; exit 77; }
done
/usr/bin/python3 -c 'import cv2, skimage, PIL' 2>/dev/null ||
  { echo "SKIPPED: Debian's python3-opencv/python3-skimage/python3-pil missing"; exit 77; }
rm -rf "$out"
/usr/bin/python3 "$(dirname "$0")/make_sets.py" "$out" --smoke
/usr/bin/python3 "$(dirname "$0")/evaluate.py" "$out" "$bin" --check
