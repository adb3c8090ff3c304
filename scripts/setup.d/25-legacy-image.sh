#!/usr/bin/env bash
# Builds the legacy-vm test image into build/guest/legacy/ from Debian packages only:
#   legacy-pos.raw  a 64 MiB raw disk: MBR (syslinux mbr.bin), one active FAT16 partition of
#                   type 0xEF holding syslinux (BIOS), GRUB's EFI binary as \EFI\BOOT\BOOTX64.EFI
#                   (UEFI), Debian's cloud kernel and an initramfs whose init draws a text-mode
#                   POS screen on the VGA console. Boots under SeaBIOS and OVMF alike.
#   vmlinuz, initrd.img  the same kernel and initramfs, for direct-boot experiments.
# Nothing is mounted: mkfs.fat --offset, mtools (-i img@@offset) and syslinux --offset write
# into the image file. Cached: rebuilt only when this script, the init or the kernel changes.
source "$(dirname "$0")/../lib.sh"

out="$SV_ROOT/build/guest/legacy"
cache="$SV_ROOT/build/cache/legacy-debs"
init_src="$SV_ROOT/src/legacy/guest/init"
mkdir -p "$out" "$cache"

kernel_pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')"
[ -n "$kernel_pkg" ] || die "legacy image: cannot resolve linux-image-cloud-amd64 (run apt-get update)"
stamp="$( (cat "$0" "$init_src"; echo "$kernel_pkg") | sha256sum | cut -c1-16)"
if [ -f "$out/legacy-pos.raw" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "legacy image: up to date ($out/legacy-pos.raw, $kernel_pkg)" >&2
  exit 0
fi

deb="$(ls "$cache/${kernel_pkg}"_*.deb 2>/dev/null | head -1 || true)"
if [ -z "$deb" ]; then
  echo "legacy image: downloading $kernel_pkg" >&2
  (cd "$cache" && apt-get download -q "$kernel_pkg" 2>&1 | grep -v unsandboxed >&2 || true)
  deb="$(ls "$cache/${kernel_pkg}"_*.deb 2>/dev/null | head -1 || true)"
  [ -n "$deb" ] || die "legacy image: apt-get download $kernel_pkg failed"
fi

work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "legacy image: unpacking $(basename "$deb")" >&2
dpkg-deb -x "$deb" "$work/kernel"
kver="${kernel_pkg#linux-image-}"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"

echo "legacy image: assembling the initramfs" >&2
root="$work/initramfs"
mkdir -p "$root/bin" "$root/lib/modules" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
file "$root/bin/busybox" 2>/dev/null | grep -q 'statically linked' || ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' \
  || die "legacy image: /bin/busybox is not static (install busybox-static)"
for mod in drivers/acpi/button.ko drivers/input/evdev.ko; do
  cp "$work/kernel/lib/modules/$kver/kernel/$mod" "$root/lib/modules/"
done
install -m 0755 "$init_src" "$root/init"
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --reproducible) | gzip -9n > "$work/initrd.img"

cmdline="console=tty0 console=ttyS0,115200 consoleblank=0 loglevel=3 panic=-1"
cat > "$work/syslinux.cfg" <<CFG
DEFAULT pos
TIMEOUT 0
PROMPT 0
LABEL pos
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
CFG
cat > "$work/grub.cfg" <<CFG
set timeout=0
set default=0
# Not the POS title: a screen check for it must not match GRUB's "Booting ..." line.
menuentry "legacy image" {
  linux /vmlinuz $cmdline
  initrd /initrd.img
}
CFG

echo "legacy image: building GRUB's EFI binary" >&2
grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$work/BOOTX64.EFI" \
  part_msdos fat normal linux configfile echo efi_gop efi_uga all_video gzio test >/dev/null

echo "legacy image: writing the disk (MBR, FAT16 ESP, syslinux, GRUB EFI)" >&2
img="$work/legacy-pos.raw"
offset_sectors=2048
truncate -s 64M "$img"
printf 'label: dos\nstart=%s, type=ef, bootable\n' "$offset_sectors" | sfdisk -q "$img" >/dev/null
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
part_sectors=$(( 64 * 2048 - offset_sectors ))
mkfs.fat -F 16 -n POS --offset "$offset_sectors" "$img" $(( part_sectors / 2 )) >/dev/null
m="$img@@$(( offset_sectors * 512 ))"
export MTOOLS_SKIP_CHECK=1
mmd -i "$m" ::/EFI ::/EFI/BOOT ::/syslinux
mcopy -i "$m" "$work/vmlinuz" ::/vmlinuz
mcopy -i "$m" "$work/initrd.img" ::/initrd.img
mcopy -i "$m" "$work/syslinux.cfg" ::/syslinux/syslinux.cfg
mcopy -i "$m" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$m" "$work/grub.cfg" ::/EFI/BOOT/grub.cfg
syslinux --offset $(( offset_sectors * 512 )) --directory /syslinux --install "$img"

for f in legacy-pos.raw vmlinuz initrd.img; do mv -f "$work/$f" "$out/$f"; done
echo "$stamp" > "$out/.stamp"
echo "legacy image: built $out/legacy-pos.raw ($kernel_pkg)" >&2
