#!/usr/bin/env bash
# Builds the camseal board images from ONE arm64 Debian bookworm root file system
# (docs/BOARD.md "Building the images"):
#
#   DIR/camseal-rk3588.img   GPT disk for an RK3588 board (Rock 5B): idbloader at sector 64 and
#                            u-boot.itb at sector 16384 (or u-boot-rockchip.bin at 64), a boot
#                            partition with extlinux/extlinux.conf, kernel, initrd and device
#                            tree, root file system slots A and B, and a data partition
#   DIR/camseal-virt.img     the same partitions for `qemu-system-aarch64 -M virt`
#   DIR/SHA256SUMS           both images' sha256
#
# The root holds Debian's systemd, kernel (linux-image-arm64) and rauc, and camseal's arm64
# package (cargo-deb, cross-built here unless --deb is given) with camseal.service enabled.
#
#   scripts/build-image.sh --out DIR [options]
#     --deb FILE              camseal's arm64 .deb (default: cross-build it with cargo-deb;
#                             CAMSEAL_DEB_PROFILE=deb-check builds it quicker, default release)
#     --idbloader FILE        vendor idbloader.img     (env CAMSEAL_IDBLOADER)
#     --uboot-itb FILE        vendor u-boot.itb        (env CAMSEAL_UBOOT_ITB)
#     --uboot-rockchip FILE   vendor u-boot-rockchip.bin, instead of the two above
#                             (env CAMSEAL_UBOOT_ROCKCHIP)
#     --dtb FILE              the board's device tree  (env CAMSEAL_DTB; default: the
#                             kernel's rockchip/rk3588-rock-5b.dtb, which bookworm's 6.1
#                             kernel does not have: then none, and U-Boot passes its own)
#     --rauc-cert FILE        the update signing certificate and its private key (env
#     --rauc-key FILE         CAMSEAL_RAUC_CERT, CAMSEAL_RAUC_KEY; a PKCS#11 URL works too)
#     --rauc-keyring FILE     the CA certificate(s) the image trusts for updates (env
#                             CAMSEAL_RAUC_KEYRING; default: the signing certificate).
#                             Without --rauc-cert a development key is made once with
#                             openssl in $CAMSEAL_CACHE/rauc-dev-key (never in the repo) and
#                             the build says so: such images accept that machine's bundles
#     --image-version V       the image and bundle version (env CAMSEAL_IMAGE_VERSION;
#                             default camseal's package version), in /etc/camseal-image-version
#     --overlay DIR           files copied over the root before it is sealed (site files:
#                             a provisioning unit, settings); part of the inputs
#
# Besides the images: DIR/camseal-rootfs.raucb, a RAUC bundle (signed, plain format) of the
# same root file system, for installing into the other slot of a running camera.
#
# Without vendor blobs the loader areas hold placeholders of the right size, written to
# DIR/PLACEHOLDER-*: such an rk3588 image does not boot by itself (the boot ROM finds no
# loader and tries the next medium); the build says so.
#
# Reproducible: the same inputs (package, blobs, cached root tarball, this script) and the
# same SOURCE_DATE_EPOCH (default: the last commit's time) give the same sha256 for both
# images. The Debian packages are those of the cached root tarball: the first build downloads
# them (mmdebstrap) and caches the tarball and the .debs under $CAMSEAL_CACHE (default
# ~/.cache/camseal), keyed by the recipe, so later builds use the same package set.
# CAMSEAL_DEBIAN_MIRROR picks the mirror (a snapshot.debian.org URL pins a date).
#
# Needs root (chroot, loop-free: file systems are made with mkfs.ext4 -d) and binfmt_misc
# with qemu-user-static for the arm64 maintainer scripts; CAMSEAL_SKIP_INSTALL=1 installs
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$SECONDS

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }

out="" deb=""
idbloader=${CAMSEAL_IDBLOADER:-}
uboot_itb=${CAMSEAL_UBOOT_ITB:-}
uboot_rockchip=${CAMSEAL_UBOOT_ROCKCHIP:-}
dtb=${CAMSEAL_DTB:-}
rauc_cert=${CAMSEAL_RAUC_CERT:-}
rauc_key=${CAMSEAL_RAUC_KEY:-}
rauc_keyring=${CAMSEAL_RAUC_KEYRING:-}
image_version=${CAMSEAL_IMAGE_VERSION:-}
overlay=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out takes a directory}; shift 2 ;;
    --deb) deb=${2:?--deb takes a file}; shift 2 ;;
    --idbloader) idbloader=${2:?}; shift 2 ;;
    --uboot-itb) uboot_itb=${2:?}; shift 2 ;;
    --uboot-rockchip) uboot_rockchip=${2:?}; shift 2 ;;
    --dtb) dtb=${2:?}; shift 2 ;;
    --rauc-cert) rauc_cert=${2:?}; shift 2 ;;
    --rauc-key) rauc_key=${2:?}; shift 2 ;;
    --rauc-keyring) rauc_keyring=${2:?}; shift 2 ;;
    --image-version) image_version=${2:?}; shift 2 ;;
    --overlay) overlay=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "build-image: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$out" ] || usage
[ "$(id -u)" = 0 ] || die "needs root (chroot and file ownership in the images)"
if [ -n "$uboot_rockchip" ] && { [ -n "$idbloader" ] || [ -n "$uboot_itb" ]; }; then
  die "--uboot-rockchip replaces --idbloader and --uboot-itb: give one or the other"
fi
for f in "$deb" "$idbloader" "$uboot_itb" "$uboot_rockchip" "$dtb" "$rauc_cert" "$rauc_key" \
  "$rauc_keyring"; do
  [ -z "$f" ] || [[ "$f" == pkcs11:* ]] || [ -f "$f" ] || die "$f: no such file"
done
[ -z "$overlay" ] || [ -d "$overlay" ] || die "$overlay: no such directory"
{ [ -n "$rauc_cert" ] && [ -n "$rauc_key" ]; } || { [ -z "$rauc_cert" ] && [ -z "$rauc_key" ]; } \
  || die "--rauc-cert and --rauc-key go together"

SDE=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH=$SDE
CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
MIRROR=${CAMSEAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# The root's packages. Everything the image needs comes from here; camseal's package is
# installed on top at each build. Changing this list changes the cache key.
# rauc-service is RAUC's D-Bus service, which `rauc install` talks to.
PACKAGES=systemd,systemd-sysv,udev,procps,kmod,initramfs-tools,linux-image-arm64,rauc,rauc-service,e2fsprogs
RECIPE="v1 arm64 $SUITE minbase $PACKAGES"
DEB_VERSION=3.8.0
CARGO_DEB=$CACHE/cargo-deb-$DEB_VERSION/bin/cargo-deb

# Disk layout, in 512-byte sectors (docs/BOARD.md). The loader area is Rockchip's: idbloader
# at 64, u-boot.itb at 16384, the first partition at 32768 (16 MiB).
IDB_SECTOR=64
ITB_SECTOR=16384
FIRST_SECTOR=32768
BOOT_MIB=128
ROOT_MIB=1024
DATA_MIB=64

# Fixed identities (a hash of a name, so they are stable and documented by the name): the
# root= of extlinux and RAUC's slots refer to partitions by PARTUUID.
uuid_of() {
  local h
  h=$(printf 'camseal %s' "$1" | sha256sum | cut -c1-32)
  echo "${h:0:8}-${h:8:4}-4${h:13:3}-8${h:17:3}-${h:20:12}"
}

install_tools() {
  local need=()
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  command -v sgdisk >/dev/null || need+=(gdisk)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  command -v rauc >/dev/null || need+=(rauc)
  command -v mksquashfs >/dev/null || need+=(squashfs-tools)
  command -v openssl >/dev/null || need+=(openssl)
  [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -e /usr/bin/qemu-aarch64-static ] \
    || need+=(qemu-user-static)
  command -v update-binfmts >/dev/null || need+=(binfmt-support)
  # mmdebstrap checks that the foreign architecture runs with arch-test.
  command -v arch-test >/dev/null || need+=(arch-test)
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
  [ -d /usr/aarch64-linux-gnu/lib ] || need+=(libc6-dev-arm64-cross)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
  rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
    || rustup target add aarch64-unknown-linux-gnu >&2
}

# arm64 programs (maintainer scripts in the chroot) run through qemu-user, registered with
# binfmt_misc. Idempotent.
enable_binfmt() {
  mountpoint -q /proc/sys/fs/binfmt_misc \
    || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || die "cannot mount binfmt_misc"
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >&2 || true
  grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
    || die "qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support)"
}

[ -n "${CAMSEAL_SKIP_INSTALL:-}" ] || install_tools
for t in mmdebstrap sgdisk mkfs.ext4 rauc mksquashfs openssl; do
  command -v "$t" >/dev/null || die "$t is missing (scripts/install-deps.sh)"
done
enable_binfmt

work=$(mktemp -d)
root=$work/root
cleanup() {
  for m in proc dev/pts dev sys; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out" "$CACHE"

# --- the root tarball, once per recipe --------------------------------------------------
key=$(printf '%s' "$RECIPE" | sha256sum | cut -c1-16)
tarball=$CACHE/image-root-$key.tar
debs=$CACHE/image-debs-$key
if [ ! -f "$tarball" ]; then
  say "mmdebstrap arm64 $SUITE (once, slow under qemu-user; cached as $tarball)"
  mkdir -p "$debs"
  mmdebstrap --quiet --architectures=arm64 --variant=minbase --include="$PACKAGES" \
    --mode=root --format=tar --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    "$SUITE" "$tarball.partial.tar" "$MIRROR" >&2
  mv "$tarball.partial.tar" "$tarball"
fi

# --- camseal's arm64 package -----------------------------------------------------------
if [ -z "$deb" ]; then
  if [ ! -x "$CARGO_DEB" ]; then
    [ -z "${CAMSEAL_SKIP_INSTALL:-}" ] || die "cargo-deb $DEB_VERSION is missing (CAMSEAL_SKIP_INSTALL set)"
    say "installing cargo-deb $DEB_VERSION into $CACHE (once)"
    CARGO_TARGET_DIR="$CACHE/cargo-deb-build" cargo install cargo-deb --version "$DEB_VERSION" \
      --locked --root "$CACHE/cargo-deb-$DEB_VERSION" >&2
    rm -rf "$CACHE/cargo-deb-build"
  fi
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  profile=${CAMSEAL_DEB_PROFILE:-release}
  say "cargo deb --target aarch64-unknown-linux-gnu (profile $profile)"
  deb=$work/camseal_arm64.deb
  "$CARGO_DEB" -p camseal --profile "$profile" --locked --target aarch64-unknown-linux-gnu \
    --output "$deb" >&2
fi
[ "$(dpkg-deb --field "$deb" Architecture)" = arm64 ] || die "$deb is not an arm64 package"

# --- the root: tarball + camseal ---------------------------------------------------------
say "assembling the root (SOURCE_DATE_EPOCH=$SDE)"
mkdir "$root"
tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball"
mount -t proc proc "$root/proc"
# Nothing is started in the chroot; the package enables its unit (deb-systemd-helper), and
# its maintainer scripts act on units as on a booted system.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/run/systemd/system"
cp "$deb" "$root/tmp/camseal.deb"
chroot "$root" env SOURCE_DATE_EPOCH="$SDE" DEBIAN_FRONTEND=noninteractive \
  dpkg -i /tmp/camseal.deb >&2
[ -L "$root/etc/systemd/system/multi-user.target.wants/camseal.service" ] \
  || die "camseal.service is not enabled in the root"
camseal_ids=$(chroot "$root" getent passwd camseal | cut -d: -f3,4)
[ -n "$camseal_ids" ] || die "the package made no camseal user"
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d" "$root/tmp/camseal.deb"

# The image's own settings.
[ -n "$image_version" ] || image_version=$(dpkg-deb --field "$deb" Version)
echo "$image_version" >"$root/etc/camseal-image-version"
echo camseal >"$root/etc/hostname"
cat >"$root/etc/fstab" <<EOF
# The root is the slot the kernel was given (root=PARTUUID=...); the camera's state lives
# on the data partition, shared by both slots so an update keeps the camera's identity.
# The boot partition holds the kernel, extlinux.conf and the board's RAUC system.conf.
PARTLABEL=data  /var/lib/camseal  ext4  defaults,nodev,nosuid,noexec  0  2
PARTLABEL=boot  /boot/firmware    ext4  defaults,nodev,nosuid,noexec  0  2
EOF
mkdir -p "$root/boot/firmware" "$root/etc/rauc" "$root/usr/lib/camseal"
ln -sfn /boot/firmware/system.conf "$root/etc/rauc/system.conf"
install -m 755 board/rk3588/rauc/rauc-boot-file "$root/usr/lib/camseal/rauc-boot-file"

# RAUC's keys: the signing pair given, or a development pair made once on this machine.
if [ -z "$rauc_cert" ]; then
  devkey=$CACHE/rauc-dev-key
  if [ ! -f "$devkey/cert.pem" ]; then
    mkdir -p "$devkey"
    chmod 700 "$devkey"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/O=camseal development/CN=camseal DEVELOPMENT update key (not for products)" \
      -keyout "$devkey/key.pem.partial" -out "$devkey/cert.pem.partial" 2>/dev/null
    mv "$devkey/key.pem.partial" "$devkey/key.pem"
    mv "$devkey/cert.pem.partial" "$devkey/cert.pem"
  fi
  rauc_cert=$devkey/cert.pem rauc_key=$devkey/key.pem
  say "DEVELOPMENT KEY: the update bundle is signed with $devkey (made on this machine) and the images trust only it; give --rauc-cert/--rauc-key/--rauc-keyring for a product (docs/BOARD.md)"
fi
install -m 644 "${rauc_keyring:-$rauc_cert}" "$root/etc/rauc/keyring.pem"

if [ -n "$overlay" ]; then
  say "overlay $overlay"
  cp -a --no-preserve=ownership "$overlay/." "$root/"
fi

# A camera boots unattended: no first-boot questions on the console.
if [ -e "$root/lib/systemd/system/systemd-firstboot.service" ]; then
  ln -sfn /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
fi

# What would differ between two builds, or must not be shared between cameras: the machine
# id (systemd makes one at first boot), caches, logs, apt lists, backup files.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_* \
  "$root/var/cache/ldconfig/aux-cache" "$root"/etc/*- "$root"/var/lib/dpkg/*-old \
  "$root"/var/cache/debconf/*-old "$root"/var/cache/apt/*.bin
rm -rf "$root"/var/log/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb \
  "$root"/tmp/* "$root"/var/tmp/* "$root"/run/*
mkdir -p "$root/var/lib/apt/lists/partial" "$root/var/cache/apt/archives/partial"
# sysusers stamps the day it made the user into /etc/shadow: use SOURCE_DATE_EPOCH's day.
sed -i "s/^\(camseal:[^:]*:\)[0-9]*:/\1$((SDE / 86400)):/" "$root/etc/shadow"

# The camera's state directory is the data partition's root: owned by the service user.
mkdir -m 700 "$work/data"

# Every file's time is SOURCE_DATE_EPOCH.
find "$root" "$work/data" -exec touch --no-dereference --date="@$SDE" {} +

# --- file systems ----------------------------------------------------------------------
# mkfs.ext4 -d copies a directory in; its UUID, hash seed and times are pinned so the bytes
# depend only on the tree.
mkext4() { # label size_mib dir out [root_owner]
  local u
  u=$(uuid_of "fs $1")
  E2FSPROGS_FAKE_TIME=$SDE mkfs.ext4 -q -F -L "$1" -U "$u" -T default -b 4096 -I 256 \
    -E "hash_seed=$u,root_owner=${5:-0:0},lazy_itable_init=0,nodiscard" -d "$3" "$4" "${2}M" >&2
  pin_times "$4" "$3"
}

# mke2fs 1.47.0's -d copies each file's ctime, which is when this build unpacked the file;
# touch cannot set a ctime, so two builds differed in every inode (seen: qemu-boot-test's
# sha256 check). Atimes move too: reading a directory after the touch (a glob, mke2fs's own
# walk) stamps it with the time of the read (seen: two directories differed). So every used
# inode's atime, ctime and mtime are set to SOURCE_DATE_EPOCH with debugfs. Inodes are
# found from the group bitmaps (dumpe2fs "Free inodes:"), not from paths: some names in the
# root (systemd's \x2d units) are not safe to quote in a debugfs command file. The root
# directory also takes the source directory's mode: mke2fs 1.47.0 makes it 0755 whatever -d
# gives (seen: the data partition's root, /var/lib/camseal, came out 0755, not 0700).
pin_times() { # ext4-image source-dir
  local root_mode
  root_mode=$(printf '0%o' "0x$(stat -c %f "$2")")
  dumpe2fs "$1" 2>/dev/null | awk -v t="$SDE" -v root_mode="$root_mode" '
    /^Inodes per group:/ { ipg = $4 }
    /^Group [0-9]+:/ { g = $2 + 0 }
    /^  Free inodes:/ {
      lo = g * ipg + 1; hi = (g + 1) * ipg
      for (i = lo; i <= hi; i++) used[i] = 1
      sub(/^  Free inodes: */, "")
      n = split($0, parts, /, */)
      for (k = 1; k <= n; k++) {
        if (parts[k] == "") continue
        m = split(parts[k], r, "-")
        a = r[1] + 0; b = (m > 1 ? r[2] : r[1]) + 0
        for (i = a; i <= b; i++) delete used[i]
      }
      # 2 is the root directory; 1 and 3-10 are reserved and left as mke2fs wrote them.
      for (i = lo; i <= hi; i++) if ((i in used) && (i == 2 || i >= 11)) {
        print "sif <" i "> ctime @" t; print "sif <" i "> atime @" t; print "sif <" i "> mtime @" t
      }
      delete used
    }
    END { print "sif <2> mode " root_mode }' >"$1.times"
  grep -q "> ctime @" "$1.times" || die "pin_times: no used inodes found in $1"
  E2FSPROGS_FAKE_TIME=$SDE debugfs -w -f "$1.times" "$1" >/dev/null 2>"$1.times.err" \
    || { cat "$1.times.err" >&2; die "debugfs could not pin the times in $1"; }
  if grep -v '^debugfs ' "$1.times.err" | grep -q .; then
    cat "$1.times.err" >&2
    die "debugfs reported errors pinning the times in $1"
  fi
  rm -f "$1.times" "$1.times.err"
}

kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -n1)")
[ -f "$root/boot/vmlinuz-$kver" ] && [ -f "$root/boot/initrd.img-$kver" ] \
  || die "the root has no kernel and initrd for $kver"
say "kernel $kver"
mkext4 rootfs "$ROOT_MIB" "$root" "$work/rootfs.ext4"
mkext4 data "$DATA_MIB" "$work/data" "$work/data.ext4" "$camseal_ids"

PART_BOOT=boot PART_ROOT_A=rootfs-a PART_ROOT_B=rootfs-b PART_DATA=data

# A boot partition for one board: kernel, initrd, extlinux.conf naming slot A's PARTUUID.
make_boot() { # image-name console dtb-or-empty rauc-system.conf
  local dir=$work/boot-$1
  mkdir -p "$dir/extlinux"
  cp "$root/boot/vmlinuz-$kver" "$dir/vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$dir/initrd.img"
  local fdt=""
  if [ -n "${3:-}" ]; then
    mkdir -p "$dir/dtbs"
    cp "$3" "$dir/dtbs/board.dtb"
    fdt="  fdt /dtbs/board.dtb"
  fi
  {
    echo "# camseal $1 image; slot A. RAUC's boot backend switches slots (docs/BOARD.md)."
    echo "default camseal"
    echo "timeout 1"
    echo "label camseal"
    echo "  kernel /vmlinuz"
    echo "  initrd /initrd.img"
    [ -z "$fdt" ] || echo "$fdt"
    echo "  append root=PARTUUID=$(uuid_of "$1 part $PART_ROOT_A") rw rootwait console=$2 rauc.slot=A"
  } >"$dir/extlinux/extlinux.conf"
  # RAUC's view of this board: its slots and boot loader backend (board/rk3588/rauc).
  cp "$4" "$dir/system.conf"
  # The primary slot, for the QEMU stand-in backend (rauc-boot-file); U-Boot keeps its own.
  echo A >"$dir/primary"
  find "$dir" -exec touch --no-dereference --date="@$SDE" {} +
  mkext4 "boot" "$BOOT_MIB" "$dir" "$work/boot-$1.ext4"
}

# The GPT disk: the partitions from sector 32768, each file system written in place.
make_disk() { # image-name out-file
  local img=$2 disk=$1 s=$FIRST_SECTOR
  local total=$((FIRST_SECTOR + (BOOT_MIB + 2 * ROOT_MIB + DATA_MIB) * 2048 + 2048))
  rm -f "$img"
  truncate -s $((total * 512)) "$img"
  local args=(--clear --disk-guid="$(uuid_of "$disk disk")")
  local n=1 name mib
  for name in $PART_BOOT $PART_ROOT_A $PART_ROOT_B $PART_DATA; do
    case $name in
      boot) mib=$BOOT_MIB ;; data) mib=$DATA_MIB ;; *) mib=$ROOT_MIB ;;
    esac
    args+=(--new="$n:$s:$((s + mib * 2048 - 1))" --change-name="$n:$name"
      --partition-guid="$n:$(uuid_of "$disk part $name")")
    case $name in
      boot) args+=(--typecode="$n:8300" --attributes="$n:set:2") ;; # legacy-bootable: U-Boot's extlinux scan
      rootfs-*) args+=(--typecode="$n:8305") ;;                        # Linux ARM64 root
      data) args+=(--typecode="$n:8300") ;;
    esac
    eval "off_$n=$s"
    s=$((s + mib * 2048))
    n=$((n + 1))
  done
  sgdisk "${args[@]}" "$img" >/dev/null
  dd if="$work/boot-$disk.ext4" of="$img" bs=512 seek="$off_1" conv=notrunc,sparse status=none
  dd if="$work/rootfs.ext4" of="$img" bs=512 seek="$off_2" conv=notrunc,sparse status=none
  dd if="$work/data.ext4" of="$img" bs=512 seek="$off_4" conv=notrunc,sparse status=none
}

# --- rk3588 -----------------------------------------------------------------------------
board_dtb=$dtb
if [ -z "$board_dtb" ]; then
  board_dtb=$(ls "$root"/usr/lib/linux-image-"$kver"/rockchip/rk3588-rock-5b.dtb 2>/dev/null || true)
  [ -n "$board_dtb" ] \
    || say "NOTE: Debian's kernel $kver has no rockchip/rk3588-rock-5b.dtb: the rk3588 image has no fdt line (U-Boot passes its own device tree); give --dtb FILE for the board's"
fi
make_boot rk3588 ttyS2,1500000n8 "$board_dtb" board/rk3588/rauc/system.conf
make_disk rk3588 "$work/camseal-rk3588.img"
rm -f "$out"/PLACEHOLDER-*
put_blob() { # file sector max-bytes what
  local size
  size=$(stat -c %s "$1")
  [ "$size" -le "$3" ] || die "$4 $1 is $size bytes; at most $3 fit before the next area"
  dd if="$1" of="$work/camseal-rk3588.img" bs=512 seek="$2" conv=notrunc status=none
}
placeholder() { # name size
  local f=$out/PLACEHOLDER-$1
  { printf 'CAMSEAL PLACEHOLDER %s: NOT A BOOTLOADER. Give the vendor blob to scripts/build-image.sh (docs/BOARD.md).\n' "$1"
    head -c "$2" /dev/zero; } | head -c "$2" >"$f"
  touch --date="@$SDE" "$f"
  say "PLACEHOLDER: no vendor $1 given; wrote $f ($2 bytes) in its place: this rk3588 image does not boot by itself"
  echo "$f"
}
if [ -n "$uboot_rockchip" ]; then
  put_blob "$uboot_rockchip" $IDB_SECTOR $(((FIRST_SECTOR - IDB_SECTOR) * 512)) u-boot-rockchip.bin
else
  [ -n "$idbloader" ] || idbloader=$(placeholder idbloader.img $(((ITB_SECTOR - IDB_SECTOR) * 512)))
  [ -n "$uboot_itb" ] || uboot_itb=$(placeholder u-boot.itb $(((FIRST_SECTOR - ITB_SECTOR) * 512)))
  put_blob "$idbloader" $IDB_SECTOR $(((ITB_SECTOR - IDB_SECTOR) * 512)) idbloader
  put_blob "$uboot_itb" $ITB_SECTOR $(((FIRST_SECTOR - ITB_SECTOR) * 512)) u-boot.itb
fi

# --- virt ---------------------------------------------------------------------------------
make_boot virt ttyAMA0 "" board/rk3588/rauc/system-qemu.conf
make_disk virt "$work/camseal-virt.img"

# --- the update bundle: the same root file system, signed ------------------------------------
mkdir "$work/bundle"
cat >"$work/bundle/manifest.raucm" <<EOF
[update]
compatible=camseal-arm64
version=$image_version

[bundle]
format=plain

[image.rootfs]
filename=rootfs.ext4
EOF
mv "$work/rootfs.ext4" "$work/bundle/rootfs.ext4"
rm -f "$out/camseal-rootfs.raucb"
rauc --cert "$rauc_cert" --key "$rauc_key" bundle "$work/bundle" "$out/camseal-rootfs.raucb" >&2 \
  || die "rauc bundle failed"
# What a camera will check before installing: the signature against the image's keyring.
rauc --keyring "$root/etc/rauc/keyring.pem" info "$out/camseal-rootfs.raucb" >/dev/null 2>&1 \
  || die "the bundle's signer is not trusted by the image's keyring (--rauc-keyring)"

mv "$work/camseal-rk3588.img" "$work/camseal-virt.img" "$out/"
(cd "$out" && sha256sum camseal-rk3588.img camseal-virt.img >SHA256SUMS)
say "wrote $out/camseal-rk3588.img, $out/camseal-virt.img and $out/camseal-rootfs.raucb (version $image_version, kernel $kver, package $(dpkg-deb --field "$deb" Version)) in $((SECONDS - t_start)) s"
cat "$out/SHA256SUMS"
