#!/usr/bin/env bash
# Builds the VM guest assets into build/guest/ from Debian packages only:
#   vmlinuz      Debian's linux-image-cloud-amd64 kernel (downloaded, never installed here)
#   vmlinux      the same kernel, decompressed: an ELF with the PVH entry note that
#                `-M microvm` boots directly, skipping the LZ4 decompressor (faster under TCG)
#   initrd.img   busybox-static, the virtio modules with their dependencies, and our own
#                static sv-init (src/guest/, sv-agent built in), as an uncompressed cpio
#   rootfs.ext4  a debootstrap minbase Debian with qemu-guest-agent, made by mkfs.ext4 -d
# Idempotent: each asset is rebuilt only when the digest of its inputs changed.
source "$(dirname "$0")/../lib.sh"
need_root
out="$SV_ROOT/build/guest"
cache="$SV_ROOT/.cache/guest"
mkdir -p "$out" "$cache"
say() { printf '    guest: %s\n' "$*" >&2; }

kpkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')"
[ -n "$kpkg" ] || { apt-get update -q >/dev/null; kpkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')"; }
[ -n "$kpkg" ] || die "cannot resolve linux-image-cloud-amd64 (apt-get update?)"
kver="$(apt-cache policy "$kpkg" | awk '/Candidate:/{print $2}')"
bbver="$(apt-cache policy busybox-static | awk '/Candidate:/{print $2}')"
gaver="$(apt-cache policy qemu-guest-agent | awk '/Candidate:/{print $2}')"
# The agent shares the host's JSON framer (src/common/json_stream.*, which needs error.*).
common_src=("$SV_ROOT"/src/common/json_stream.cc "$SV_ROOT"/src/common/error.cc)
guest_src="$(cat "$SV_ROOT"/src/guest/*.cc "$SV_ROOT"/src/guest/*.h "${common_src[@]}" \
  "$SV_ROOT"/src/common/json_stream.h "$SV_ROOT"/src/common/error.h "$0" | sha256sum | cut -c1-16)"

# fetch PKG DIR: downloads PKG's .deb into the cache (once) and unpacks it into DIR.
fetch() {
  local pkg="$1" dir="$2"
  local deb
  deb="$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$deb" ]; then
    say "downloading $pkg"
    (cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    deb="$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)"
    [ -n "$deb" ] || die "apt-get download $pkg failed"
  fi
  rm -rf "$dir" && mkdir -p "$dir" && dpkg-deb -x "$deb" "$dir"
}

# --- kernel: vmlinuz and the PVH vmlinux ---
kdigest="$kpkg=$kver"
if [ "$(cat "$out/.kernel.stamp" 2>/dev/null)" != "$kdigest" ] || [ ! -s "$out/vmlinux" ]; then
  rm -f "$cache"/linux-image-*.deb
  fetch "$kpkg" "$cache/kernel"
  krel="$(ls "$cache/kernel/lib/modules")"
  say "depmod for $krel"
  depmod -b "$cache/kernel" "$krel"
  cp "$cache/kernel/boot/vmlinuz-$krel" "$out/vmlinuz"
  # The bzImage's payload: setup_sects at 0x1f1, payload_offset/length at 0x248/0x24c.
  setup_sects="$(od -An -tu1 -j $((0x1f1)) -N1 "$out/vmlinuz" | tr -d ' ')"
  [ "$setup_sects" = 0 ] && setup_sects=4
  poff="$(od -An -tu4 -j $((0x248)) -N4 "$out/vmlinuz" | tr -d ' ')"
  plen="$(od -An -tu4 -j $((0x24c)) -N4 "$out/vmlinuz" | tr -d ' ')"
  start=$(( (setup_sects + 1) * 512 + poff ))
  say "extracting the PVH vmlinux (LZ4 payload at $start, $plen bytes)"
  dd if="$out/vmlinuz" of="$cache/payload.lz4" iflag=skip_bytes,count_bytes skip="$start" count="$plen" status=none
  lz4 -dcq "$cache/payload.lz4" > "$out/vmlinux.tmp" 2>/dev/null || true
  [ "$(od -An -c -j1 -N3 "$out/vmlinux.tmp" | tr -d ' ')" = ELF ] || die "vmlinux extraction failed: not an ELF"
  mv "$out/vmlinux.tmp" "$out/vmlinux"
  rm -f "$cache/payload.lz4"
  echo "$krel" > "$out/kernel-release"
  echo "$kdigest" > "$out/.kernel.stamp"
  rm -f "$out/.initrd.stamp"
else
  say "kernel $kpkg $kver: cached"
fi
krel="$(cat "$out/kernel-release")"

# --- guest binaries (static) ---
# One multi-call binary: sv-init, and sv-agent when run under that name (one static C++
# runtime in the initramfs instead of two). -Os and section GC: the initramfs stays in
# guest memory for the VM's life.
build_guest_bins() {
  local bin="$cache/bin"
  mkdir -p "$bin"
  local flags=(-std=c++20 -Os -ffunction-sections -fdata-sections -Wl,--gc-sections -static
    -Wall -Wextra -Werror -I"$SV_ROOT/src")
  say "compiling sv-init (with sv-agent; static)"
  rm -f "$bin/sv-agent"
  g++ "${flags[@]}" -o "$bin/sv-init" "$SV_ROOT/src/guest/init_main.cc" "$SV_ROOT/src/guest/agent_main.cc" \
    "$SV_ROOT/src/guest/agent.cc" "${common_src[@]}"
  strip "$bin/sv-init"
}

# --- initrd.img ---
# pvpanic-mmio binds to the ACPI QEMU0001 device of `-device pvpanic` (a panic becomes
# a GUEST_PANICKED event on the host).
# The agent's virtio_console comes first after the transports, so its port is being set
# up while the rest load. Drivers of optional virtio devices are marked virtio:ID: and
# loaded by sv-init only when such a device exists (1 net, 2 block, 4 rng, 5 balloon).
# Drivers marked late: (and the dependencies only they bring) load after the agent has
# started: nothing before readiness needs them, and their load and probe (~0.1 s under
# TCG) no longer delays it. Not pvpanic: a panic right after readiness must still be told
# from a reset.
modules=(virtio_mmio virtio_pci virtio_console virtio_blk virtio_net virtio-rng virtio_balloon button evdev pvpanic-mmio)
declare -A virtio_id=([virtio_net]=1 [virtio_blk]=2 [virtio-rng]=4 [virtio_balloon]=5)
declare -A late=([virtio-rng]=1 [virtio_balloon]=1 [button]=1 [evdev]=1)
idigest="$kdigest busybox=$bbver src=$guest_src mods=${modules[*]}"
if [ "$(cat "$out/.initrd.stamp" 2>/dev/null)" != "$idigest" ] || [ ! -s "$out/initrd.img" ]; then
  [ -d "$cache/kernel/lib/modules/$krel" ] || { fetch "$kpkg" "$cache/kernel"; depmod -b "$cache/kernel" "$krel"; }
  build_guest_bins
  fetch busybox-static "$cache/busybox"
  root="$cache/initrd-root"
  rm -rf "$root" && mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,newroot,lib/modules/"$krel"}
  cp "$cache/busybox/bin/busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  cp "$cache/bin/sv-init" "$root/init"
  ln -s ../init "$root/sbin/sv-agent"
  # Modules in load order: each one's dependencies (modprobe --show-depends) first.
  : > "$root/etc/sv-modules"
  for m in "${modules[@]}"; do
    modprobe -d "$cache/kernel" -S "$krel" --show-depends "$m" | awk '$1=="insmod"{print $2}' |
    while read -r ko; do
      rel="${ko#"$cache/kernel"}"
      grep -q ":\?$rel\$" "$root/etc/sv-modules" && continue
      mkdir -p "$root$(dirname "$rel")"
      cp "$ko" "$root$rel"
      # virtio_pci and its own helpers load only on PCI machines (sv-init checks).
      case "$m:$(basename "$ko")" in virtio_pci:virtio_pci*) rel="pci:$rel" ;; esac
      # A device driver and the dependencies only it brings (failover for virtio_net).
      case "$(basename "$ko")" in virtio.ko|virtio_ring.ko|virtio_mmio.ko) ;;
        *) [ -n "${virtio_id[$m]:-}" ] && rel="virtio:${virtio_id[$m]}:$rel" ;; esac
      [ -n "${late[$m]:-}" ] && rel="late:$rel"
      echo "$rel" >> "$root/etc/sv-modules"
    done
  done
  say "initrd modules: $(wc -l < "$root/etc/sv-modules") ($(tr '\n' ' ' < "$root/etc/sv-modules" | sed 's#/lib/modules/[^ ]*/##g'))"
  printf 'ID=storevisor-initrd\nNAME="Storevisor initramfs"\nPRETTY_NAME="Storevisor initramfs (busybox)"\nVERSION_ID=1\n' > "$root/etc/os-release"
  # Uncompressed: under TCG unpacking is cheaper than decompressing.
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$out/initrd.img.tmp"
  mv "$out/initrd.img.tmp" "$out/initrd.img"
  echo "$idigest" > "$out/.initrd.stamp"
  say "initrd.img: $(du -h "$out/initrd.img" | cut -f1)"
else
  say "initrd.img: cached"
fi

# --- rootfs.ext4 ---
rdigest="bookworm minbase qemu-guest-agent=$gaver src=$guest_src"
if [ "$(cat "$out/.rootfs.stamp" 2>/dev/null)" != "$rdigest" ] || [ ! -s "$out/rootfs.ext4" ]; then
  [ -x "$cache/bin/sv-init" ] || build_guest_bins
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [ -n "$mirror" ] || mirror="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$mirror" ] || die "no Debian mirror found in the apt sources"
  rdir="$cache/rootfs"
  rm -rf "$rdir"
  say "debootstrap minbase bookworm + qemu-guest-agent (about 30 s)"
  debootstrap --variant=minbase --include=qemu-guest-agent bookworm "$rdir" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
  cp "$cache/bin/sv-init" "$rdir/sbin/sv-init"
  # qemu-ga's guest-shutdown runs /sbin/shutdown; minbase has none: ask sv-init (PID 1).
  printf '#!/bin/sh\ncase "$*" in *-r*) kill -TERM 1 ;; *) kill -USR2 1 ;; esac\n' > "$rdir/sbin/shutdown"
  chmod 755 "$rdir/sbin/shutdown"
  rm -rf "$rdir"/var/cache/apt/archives/*.deb "$rdir"/var/lib/apt/lists/*
  say "mkfs.ext4 -d (no mount)"
  rm -f "$out/rootfs.ext4.tmp"
  mkfs.ext4 -q -F -L sv-root -d "$rdir" "$out/rootfs.ext4.tmp" 512M >/dev/null
  mv "$out/rootfs.ext4.tmp" "$out/rootfs.ext4"
  rm -rf "$rdir"
  echo "$rdigest" > "$out/.rootfs.stamp"
  say "rootfs.ext4: $(du -h --apparent-size "$out/rootfs.ext4" | cut -f1) ($(du -h "$out/rootfs.ext4" | cut -f1) used)"
else
  say "rootfs.ext4: cached"
fi
say "assets ready in $out"
