#!/usr/bin/env bash
# Builds libcamseal, the C ABI of camseal (pipeline/capi), and installs it under PREFIX:
#
#   PREFIX/include/camseal.h
#   PREFIX/lib/libcamseal.a                  static library
#   PREFIX/lib/libcamseal.so.0, libcamseal.so  shared library (soname libcamseal.so.0)
#   PREFIX/lib/pkgconfig/camseal.pc          `pkg-config --cflags --libs camseal`
#   PREFIX/lib/gstreamer-1.0/libgstcamseal.so  the `camsealsink` GStreamer element
#
#   scripts/install-capi.sh PREFIX
#
# The library is built with the workspace's `capi` profile (optimised, panics unwind so
# that they come back to C as CAMSEAL_ERR_PANIC). Honours CARGO_TARGET_DIR.
set -euo pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
# pkg-config files name absolute directories.
prefix=$(realpath -m "$1")
cd "$(dirname "$0")/.."

cargo build --locked -p camseal-capi --profile capi
# The GStreamer plugin (pipeline/gst) needs GStreamer's development files
# (libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev); without them it is left out,
# saying so.
gst=false
if pkg-config --exists 'gstreamer-1.0 >= 1.22' gstreamer-base-1.0 2>/dev/null; then
  cargo build --locked -p camseal-gst --lib --profile capi
  gst=true
else
  echo "install-capi: no GStreamer 1.22+ development files: the camsealsink plugin is not built" >&2
fi
built=${CARGO_TARGET_DIR:-target}/capi
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
# What the Rust standard library needs from the system when the static library is linked
# (what `rustc --print native-static-libs` reports for glibc Linux; -lstdc++ is for the
# OpenH264 software encoder the HAL links in).
libs_private="-lstdc++ -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc"

install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 pipeline/capi/include/camseal.h "$prefix/include/camseal.h"
install -m 0644 "$built/libcamseal.a" "$prefix/lib/libcamseal.a"
install -m 0755 "$built/libcamseal.so" "$prefix/lib/libcamseal.so.0"
ln -sfn libcamseal.so.0 "$prefix/lib/libcamseal.so"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" \
  pipeline/capi/camseal.pc.in >"$prefix/lib/pkgconfig/camseal.pc"

# GST_PLUGIN_PATH=$prefix/lib/gstreamer-1.0 makes `gst-inspect-1.0 camsealsink` find it
# (with PREFIX=/usr, the system's plugin directory is $prefix/lib/<triplet>/gstreamer-1.0:
# copy or link it there).
if [ "$gst" = true ]; then
  install -d "$prefix/lib/gstreamer-1.0"
  install -m 0755 "$built/libgstcamseal.so" "$prefix/lib/gstreamer-1.0/libgstcamseal.so"
fi

echo "installed libcamseal $version into $prefix"
