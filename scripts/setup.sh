#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine: the Debian packages
# listed in scripts/deps/*.txt, then each component's own set-up step in scripts/setup.d/
# (guest kernel and images, demo OCI images, vision models...). Idempotent and cached:
# a second run does only what is missing.
source "$(dirname "$0")/lib.sh"
need_root

mapfile -t wanted < <(cat "$SV_ROOT"/scripts/deps/*.txt | sed 's/#.*//' | awk 'NF{print $1}' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  step "Debian packages: all ${#wanted[@]} present"
fi

for hook in "$SV_ROOT"/scripts/setup.d/*.sh; do
  [ -e "$hook" ] || continue
  step "set-up: $(basename "$hook")"
  bash "$hook"
done
