#!/usr/bin/env bash
# The Debian package, tested for real (CTest `package.deb`, label `package`; also run by hand:
# `bash packaging/test-package.sh`):
#   1. builds storevisor_*.deb (scripts/package.sh: dpkg-buildpackage in a copy of the tree),
#      and checks its contents and maintainer scripts;
#   2. makes a fresh Debian 12 root (debootstrap --variant=minbase bookworm, cached as a
#      tarball under build/cache/) and installs the .deb there with the root's own apt
#      (`apt install ./storevisor_*.deb`: dependencies come from Debian's archive);
#   3. runs every installed binary's --version and --help there, checks the man pages, the
#      group, the config file, bash completion and logrotate's reading of its file;
#   4. starts the installed storevisord in the root as the unit would (config file only, a
#      $NOTIFY_SOCKET to catch READY=1), and checks `storevisor ps` through the socket (as
#      root, as a member of the storevisor group, and refused to a non-member), the socket's
#      mode and group, the pidfile, and that a stop removes socket and pidfile;
#   5. checks the unit with `systemd-analyze verify` (systemd installed in the root) and that
#      it is enabled;
#   6. removes the package (state and config stay), then purges it (they go).
# Mounts in the root (proc, sys, dev) are undone and the daemon stopped even on failure.
# A missing prerequisite exits 77 (skipped), naming it.
# Environment: SV_PKG_WORK (default build/pkg), SV_PKG_CACHE (default build/cache),
# SV_PKG_KEEP=1 keeps the root for a look afterwards.
set -euo pipefail
SV_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${SV_PKG_WORK:-$SV_ROOT/build/pkg}"
CACHE="${SV_PKG_CACHE:-$SV_ROOT/build/cache}"
MIRROR="${SV_PKG_MIRROR:-http://deb.debian.org/debian}"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mounts)"
missing=()
for tool in dpkg-buildpackage:dpkg-dev dh:debhelper help2man:help2man debootstrap:debootstrap \
            systemd-analyze:systemd chroot:coreutils; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool%%:*} (apt package ${tool#*:})")
done
[ -x /usr/bin/python3 ] || missing+=("/usr/bin/python3 (apt package python3)")
[ "${#missing[@]}" = 0 ] || skip "missing: ${missing[*]}"
dpkg-checkbuilddeps "$SV_ROOT/debian/control" 2>/dev/null ||
  skip "build dependencies: $(dpkg-checkbuilddeps "$SV_ROOT/debian/control" 2>&1 | sed 's/.*Unmet build dependencies: //')"

version="$(dpkg-parsechangelog -l "$SV_ROOT/debian/changelog" -S Version)"
ROOT=""
daemon_pid=""
T="$(mktemp -d /tmp/sv-pkg-test.XXXXXX)"

cleanup() {
  local rc=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  if [ -n "$ROOT" ]; then
    for m in dev/pts dev sys proc; do
      mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m"
    done
    if [ "${SV_PKG_KEEP:-0}" = 1 ]; then
      echo "kept $ROOT (unmounted)"
    else
      # Only after every mount is gone, and never across a file-system boundary.
      mountpoint -q "$ROOT/proc" || rm -rf --one-file-system "$ROOT"
    fi
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT

# ---- 1. build the package --------------------------------------------------------------
step "building storevisor $version (scripts/package.sh --no-setup)"
SV_PKG_WORK="$WORK" bash "$SV_ROOT/scripts/package.sh" --no-setup || fail "scripts/package.sh failed"
deb="$(ls "$WORK"/storevisor_"$version"_*.deb)"
vision_deb="$(ls "$WORK"/storevisor-vision_"$version"_*.deb)"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1)), $(basename "$vision_deb")"

step "package contents and maintainer scripts"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$T/contents"
for path in /usr/bin/storevisor /usr/bin/storevisord /usr/bin/storevisor-runtime \
            /usr/bin/storevisor-vm /usr/bin/storevisor-legacy /usr/bin/storevisor-image \
            /lib/systemd/system/storevisord.service /etc/storevisor/storevisord.conf \
            /etc/logrotate.d/storevisor /usr/share/bash-completion/completions/storevisor \
            /usr/share/bash-completion/completions/storevisord \
            /usr/share/man/man8/storevisord.8.gz /usr/share/man/man1/storevisor.1.gz \
            /usr/share/storevisor/examples/store-demo.yaml /var/log/storevisor/; do
  grep -qx "$path" "$T/contents" || fail "the package lacks $path"
done
for bin in runtime vm legacy image; do
  grep -qx "/usr/share/man/man1/storevisor-$bin.1.gz" "$T/contents" || fail "no man page for storevisor-$bin"
done
dpkg-deb -c "$vision_deb" | grep -q '/usr/share/man/man1/storevisor-vision.1.gz' || fail "no man page for storevisor-vision"
if [ -s "$SV_ROOT/build/guest/vmlinuz" ]; then
  grep -qx /usr/share/storevisor/guest/vmlinuz "$T/contents" || fail "guest kernel not packaged"
  grep -qx /usr/share/storevisor/guest/initrd.img "$T/contents" || fail "guest initrd not packaged"
else
  echo "note: no build/guest/vmlinuz (set-up not run): the package has no guest assets"
fi
if grep -q '\.\./build/guest' <(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/storevisor/examples/store-demo.yaml); then
  fail "the installed store-demo.yaml still names ../build/guest"
fi
dpkg-deb -e "$deb" "$T/control"
grep -q 'groupadd --system storevisor' "$T/control/postinst" || fail "postinst makes no storevisor group"
grep -q "deb-systemd-helper.*enable.*storevisord.service" "$T/control/postinst" || fail "postinst does not enable the unit"
grep -q "deb-systemd-invoke.*stop.*storevisord.service" "$T/control/prerm" || fail "prerm does not stop the unit"
grep -q 'rm -rf --one-file-system /var/lib/storevisor' "$T/control/postrm" || fail "postrm purge keeps the state"
grep -qx '/etc/storevisor/storevisord.conf' "$T/control/conffiles" || fail "the config file is no conffile"
installed_kb="$(dpkg-deb -f "$deb" Installed-Size)"
echo "Installed-Size: $installed_kb KiB; Depends: $(dpkg-deb -f "$deb" Depends)"

# ---- 2. a fresh Debian 12 root with the package installed --------------------------------
base="$CACHE/debootstrap-bookworm-minbase.tar"
if [ ! -s "$base" ]; then
  step "debootstrap --variant=minbase bookworm (cached as $base)"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase bookworm "$T/bootstrap" "$MIRROR" > "$T/debootstrap.log" 2>&1 ||
    { tail -20 "$T/debootstrap.log"; skip "debootstrap failed (is $MIRROR reachable?)"; }
  tar -C "$T/bootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf --one-file-system "$T/bootstrap"
fi
ROOT="$WORK/root"
step "fresh root $ROOT from $base"
if [ -d "$ROOT" ]; then
  for m in dev/pts dev sys proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
  rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$base"
mount -t proc proc "$ROOT/proc"
mount --bind /sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The same Debian 12 suites as this host (updates and security as well as the release).
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  rm -f "$ROOT/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/"
fi
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
in_root dpkg -s sudo >/dev/null 2>&1 && fail "the fresh root has sudo: not the machine the README means"
cp "$deb" "$ROOT/tmp/"
in_root apt-get update -q > "$T/apt.log" 2>&1 || { cat "$T/apt.log"; fail "apt-get update in the root"; }

step "apt install ./$(basename "$deb") in the fresh root"
(cd "$ROOT/tmp" && in_root sh -c "cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ./$(basename "$deb")") \
  > "$T/install.log" 2>&1 || { tail -30 "$T/install.log"; fail "apt install of the package failed"; }
grep -E '^(Setting up|Unpacking) storevisor' "$T/install.log"

# ---- 3. installed files and binaries ----------------------------------------------------
step "installed binaries: --version and --help"
for bin in storevisor storevisord storevisor-runtime storevisor-vm storevisor-legacy storevisor-image; do
  out="$(in_root "/usr/bin/$bin" --version 2>&1)" || fail "$bin --version exited $?: $out"
  grep -q "$version" <<< "$out" || fail "$bin --version says '$out', not $version"
  in_root "/usr/bin/$bin" --help > "$T/help" 2>&1 || fail "$bin --help exited non-zero: $(head -3 "$T/help")"
  [ -s "$T/help" ] || fail "$bin --help printed nothing"
  echo "$bin: $(head -1 <<< "$out")"
done
for page in man1/storevisor.1 man8/storevisord.8 man1/storevisor-runtime.1 man1/storevisor-vm.1 \
            man1/storevisor-legacy.1 man1/storevisor-image.1; do
  zcat "$ROOT/usr/share/man/$page.gz" | grep -q '^\.SH DESCRIPTION' || fail "man page $page has no DESCRIPTION"
done
in_root getent group storevisor > /dev/null || fail "no storevisor group after install"
grep -q '^socket-group = "storevisor"' "$ROOT/etc/storevisor/storevisord.conf" || fail "config lacks socket-group"
bash -n "$ROOT/usr/share/bash-completion/completions/storevisor" || fail "bash completion has a syntax error"
[ -d "$ROOT/var/log/storevisor" ] || fail "no /var/log/storevisor"

# ---- 4. the installed daemon ------------------------------------------------------------
step "storevisord in the root, as the unit starts it (config file, NOTIFY_SOCKET)"
/usr/bin/python3 - "$ROOT/run/sv-notify.sock" "$T/notify.txt" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            msg = s.recv(4096).decode()
            out.write(msg + "\n---\n")
            out.flush()
            if "READY=1" in msg:
                break
    except socket.timeout:
        pass
EOF
listener=$!
for _ in $(seq 50); do [ -S "$ROOT/run/sv-notify.sock" ] && break; sleep 0.1; done
mkdir -p "$ROOT/run/storevisor"   # the unit's RuntimeDirectory=
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET=/run/sv-notify.sock \
  /usr/bin/storevisord > "$T/daemon.log" 2>&1 &
daemon_pid=$!
wait "$listener" || true
grep -q "READY=1" "$T/notify.txt" 2>/dev/null || { cat "$T/daemon.log"; fail "no READY=1 on NOTIFY_SOCKET within 60 s"; }
grep -q "MAINPID=$daemon_pid" "$T/notify.txt" || fail "READY without MAINPID=$daemon_pid: $(cat "$T/notify.txt")"
echo "notify: $(tr '\n' ' ' < "$T/notify.txt")"
sock="$ROOT/run/storevisor/storevisord.sock"
[ -S "$sock" ] || fail "no socket at /run/storevisor/storevisord.sock after READY"
[ "$(stat -c '%a' "$sock")" = 660 ] || fail "socket mode $(stat -c '%a' "$sock"), want 660"
[ "$(in_root stat -c '%G' /run/storevisor/storevisord.sock)" = storevisor ] || fail "socket group is not storevisor"
[ "$(cat "$ROOT/run/storevisor/storevisord.pid")" = "$daemon_pid" ] || fail "pidfile does not hold $daemon_pid"
in_root storevisor ps > "$T/ps.txt" 2>&1 || fail "storevisor ps as root: $(cat "$T/ps.txt")"
echo "storevisor ps (root):"; cat "$T/ps.txt"
in_root storevisor version | grep -q "storevisord $version" || fail "storevisor version does not reach the daemon"
in_root useradd --no-create-home --groups storevisor operator1
in_root useradd --no-create-home outsider1
# Numeric ids: the names live in the root's /etc/passwd, not the host's.
op_uid="$(in_root id -u operator1)"; op_gid="$(in_root id -g operator1)"; out_uid="$(in_root id -u outsider1)"
out_gid="$(in_root id -g outsider1)"; sv_gid="$(in_root getent group storevisor | cut -d: -f3)"
chroot --userspec="$op_uid:$op_gid" --groups="$sv_gid" "$ROOT" env -i PATH=/usr/bin:/bin \
  storevisor ps > "$T/ps-op.txt" 2>&1 ||
  fail "storevisor ps as a member of the storevisor group: $(cat "$T/ps-op.txt")"
if chroot --userspec="$out_uid:$out_gid" --groups="$out_gid" "$ROOT" env -i PATH=/usr/bin:/bin \
  storevisor ps > "$T/ps-out.txt" 2>&1; then
  fail "a user outside the storevisor group used the socket"
fi
echo "group member: ps ok; non-member refused: $(head -1 "$T/ps-out.txt")"
# A second daemon on the same runtime directory is refused by the pidfile's lock.
if in_root /usr/bin/storevisord --state-dir /tmp/second > "$T/second.log" 2>&1; then
  fail "a second storevisord started beside the first"
fi
grep -q "another storevisord (pid $daemon_pid)" "$T/second.log" || fail "second daemon's refusal: $(cat "$T/second.log")"
[ -S "$sock" ] || fail "the refused second daemon removed the first one's socket"
kill -TERM "$daemon_pid"
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "storevisord did not stop on SIGTERM within 10 s"
wait "$daemon_pid" || fail "storevisord exited $? on SIGTERM"
daemon_pid=""
[ ! -e "$sock" ] || fail "the socket stayed after the daemon stopped"
[ ! -e "$ROOT/run/storevisor/storevisord.pid" ] || fail "the pidfile stayed after the daemon stopped"
echo "stopped: socket and pidfile removed"

# ---- 5. the unit ------------------------------------------------------------------------
step "systemd-analyze verify storevisord.service (systemd and logrotate installed in the root)"
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd logrotate" \
  > "$T/systemd.log" 2>&1 || { tail -20 "$T/systemd.log"; fail "installing systemd in the root"; }
in_root systemd-analyze verify --man=no /lib/systemd/system/storevisord.service > "$T/verify.txt" 2>&1 ||
  { cat "$T/verify.txt"; fail "systemd-analyze verify"; }
if grep -i 'storevisord' "$T/verify.txt"; then fail "systemd-analyze verify has remarks on the unit"; fi
echo "verify: clean"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/storevisord.service" ] ||
  fail "the unit is not enabled (no multi-user.target.wants link)"
state="$(in_root systemctl is-enabled storevisord.service 2>&1 || true)"
[ "$state" = enabled ] || fail "systemctl is-enabled: $state"
echo "enabled at boot"
in_root logrotate --debug /etc/logrotate.d/storevisor > "$T/logrotate.txt" 2>&1 ||
  { cat "$T/logrotate.txt"; fail "logrotate does not read /etc/logrotate.d/storevisor"; }
grep -q '/var/log/storevisor/storevisord.log' "$T/logrotate.txt" || fail "logrotate ignores the daemon's log"

# ---- 6. remove, then purge --------------------------------------------------------------
step "apt remove storevisor: state and config stay"
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q storevisor" > "$T/remove.log" 2>&1 ||
  { tail -20 "$T/remove.log"; fail "apt remove"; }
[ ! -e "$ROOT/usr/bin/storevisord" ] || fail "storevisord stayed after remove"
[ -d "$ROOT/var/lib/storevisor" ] || fail "remove deleted the state directory"
[ -f "$ROOT/etc/storevisor/storevisord.conf" ] || fail "remove deleted the config file"
in_root getent group storevisor > /dev/null || fail "remove deleted the group"
step "apt purge storevisor: state, log and config go"
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q storevisor" > "$T/purge.log" 2>&1 ||
  { tail -20 "$T/purge.log"; fail "apt purge"; }
for gone in /var/lib/storevisor /var/log/storevisor /etc/storevisor \
            /etc/systemd/system/multi-user.target.wants/storevisord.service; do
  [ ! -e "$ROOT$gone" ] || fail "$gone stayed after purge"
done
echo "package test passed: $(basename "$deb"), Installed-Size $installed_kb KiB"
