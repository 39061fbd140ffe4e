#!/usr/bin/env bash
# Builds (once) the small x86-64 kernel the V4L2 and power-cut QEMU tests boot, and prints the
# path of its bzImage. The build is cached outside the repository, keyed by the config recipe, this
# script and the linux-source package version, so a warm cache costs nothing.
#
#   CAMSEAL_CACHE   cache root (default ~/.cache/camseal)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${CAMSEAL_CACHE:-$HOME/.cache/camseal}"

src_tar=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
if [ -z "$src_tar" ]; then
  echo "build-kernel.sh: /usr/src/linux-source-6.1.tar.xz is missing (apt-get install linux-source-6.1)" >&2
  exit 1
fi
src_version=$(dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$src_tar")
key=$( { cat "$here/kernel-config.txt" "$here/build-kernel.sh"; echo "$src_version"; } | sha256sum | cut -c1-16)
out="$cache_root/qemu-kernel/$key"
if [ -s "$out/bzImage" ]; then
  echo "$out/bzImage"
  exit 0
fi

mkdir -p "$cache_root/qemu-kernel"
work=$(mktemp -d "$cache_root/qemu-kernel/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-kernel.sh: building the test kernel in $work (about 10 minutes on 2 cores)" >&2
tar -xJf "$src_tar" -C "$work"
cd "$work"/linux-source-6.1
make -s tinyconfig >&2
# shellcheck disable=SC2046 # word splitting of the option list is the point
scripts/config $(grep -v '^#' "$here/kernel-config.txt" | tr -s ' \n' '\n' | sed '/^$/d;s/^/-e /') >&2
make -s olddefconfig >&2
for opt in VIDEO_VICODEC VIDEO_VIVID DMABUF_HEAPS_SYSTEM DEVTMPFS BLK_DEV_INITRD VIRTIO_PCI VIRTIO_BLK EXT4_FS RTC_DRV_CMOS; do
  grep -q "^CONFIG_$opt=y" .config || { echo "build-kernel.sh: CONFIG_$opt did not stick" >&2; exit 1; }
done
make -s -j"$(nproc)" bzImage >&2
mkdir -p "$out.tmp"
cp arch/x86/boot/bzImage .config "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/bzImage"
