# Shared helpers for the scripts in this folder. Sourced, not run.
set -euo pipefail
SV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SV_ROOT
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root (it installs packages and creates namespaces, cgroups and VMs)"; }
