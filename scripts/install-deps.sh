#!/usr/bin/env bash
# Installs what building and testing camseal needs on a Debian machine. Idempotent: it
# skips what is already there, so a warm machine pays only for the checks.
set -euo pipefail

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# The C ABI test (scripts/test-capi.sh) builds the C example with gcc and make, checks it
# with readelf, and runs it under valgrind.
command -v gcc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
command -v readelf >/dev/null || need_apt+=(binutils)
command -v valgrind >/dev/null || need_apt+=(valgrind)
# OpenH264 (the soft source) builds its x86 assembly only when nasm is present: about 2x
# faster encoding.
command -v nasm >/dev/null || need_apt+=(nasm)
# The uploader's clock-skew tests run the camera under libfaketime (tests/upload_strict.rs).
command -v faketime >/dev/null || need_apt+=(faketime)
# The uploader's TLS test makes a private CA with the openssl command.
command -v openssl >/dev/null || need_apt+=(openssl)
# Pipe input is tested behind real encoders (tests/pipe_input.rs): ffmpeg with libx264, and
# gst-launch-1.0 with videotestsrc (base), x264enc (ugly) and h264parse (bad).
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v gst-launch-1.0 >/dev/null \
  || need_apt+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)
# The GStreamer element (pipeline/gst, scripts/test-gst.sh) builds against GStreamer's
# development files and is tested behind x265enc and h265parse (bad) too.
pkg-config --exists gstreamer-1.0 gstreamer-base-1.0 2>/dev/null \
  || need_apt+=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)
# `decrypt --format mp4` is judged by ffprobe and ffmpeg (tests/mp4_export_cli.rs).
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)  # (the same package as above)
# The progress bar is tested on a pseudo-terminal made by `script` (tests/progress_cli.rs).
command -v script >/dev/null || need_apt+=(bsdutils)
# The service unit's exposure rating (scripts/test-unit-security.sh) and the Debian package's
# install test in a fresh Debian root (scripts/test-deb.sh).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
# The web viewer's browser tests (scripts/test-web.sh): headless chromium (its WebCodecs
# decodes H.264), chromedriver, and Debian's python3 with selenium and PIL.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' 2>/dev/null || need_apt+=(python3-selenium)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need_apt+=(python3-pil)
# The board images (scripts/build-image.sh) and their boot test (scripts/qemu-boot-test.sh):
# an arm64 root made by mmdebstrap through qemu-user (binfmt_misc), GPT with sgdisk, ext4 with
# mkfs.ext4 -d, a RAUC bundle (rauc, mksquashfs), the arm64 cross compilers for the package,
# and QEMU's aarch64 system emulator.
command -v sgdisk >/dev/null || need_apt+=(gdisk)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v rauc >/dev/null || need_apt+=(rauc)
command -v mksquashfs >/dev/null || need_apt+=(squashfs-tools)
command -v arch-test >/dev/null || need_apt+=(arch-test)
command -v update-binfmts >/dev/null || need_apt+=(binfmt-support)
[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -e /usr/bin/qemu-aarch64-static ] \
  || need_apt+=(qemu-user-static)
command -v qemu-system-aarch64 >/dev/null || need_apt+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
command -v aarch64-linux-gnu-g++ >/dev/null || need_apt+=(g++-aarch64-linux-gnu)
[ -d /usr/aarch64-linux-gnu/lib ] || need_apt+=(libc6-dev-arm64-cross)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The browser viewer's core is built for WebAssembly (scripts/build-web.sh).
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown >/dev/null
