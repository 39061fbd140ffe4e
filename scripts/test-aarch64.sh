#!/usr/bin/env bash
# Cross-builds camseal for aarch64-unknown-linux-gnu with Debian's gcc-aarch64-linux-gnu and
# runs, under `qemu-aarch64 -cpu max` (the runner in .cargo/config.toml), the kernels' tests
# (every path this CPU model has: AES+PMULL and portable) and the segment format round-trip
# tests. Then the same for 32-bit ARM (armv7-unknown-linux-gnueabihf, Debian's
# gcc-arm-linux-gnueabihf, under qemu-arm): the kernels' tests (portable path) and footage
# sealed there opened here and the other way round. scripts/test.sh calls it; it also runs
# on its own.
#
#   scripts/test-aarch64.sh
#   CAMSEAL_SKIP_INSTALL=1     do not apt-get/rustup anything (offline machines)
#
# Installing is idempotent: apt-get runs only when a tool is missing. Under emulation the
# long differential tests shrink (CAMSEAL_TEST_EMULATED), which keeps this to a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
ARMV7=armv7-unknown-linux-gnueabihf
log() { printf '\n==> %s\n' "$*"; }

if [ -z "${CAMSEAL_SKIP_INSTALL:-}" ]; then
  log "installing the aarch64 cross toolchain and QEMU (skips what exists)"
  need_apt=()
  command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
  # OpenH264 (built by camseal-hal for the soft encoder) is C++.
  command -v aarch64-linux-gnu-g++ >/dev/null || need_apt+=(g++-aarch64-linux-gnu)
  [ -d /usr/aarch64-linux-gnu/lib ] || need_apt+=(libc6-dev-arm64-cross)
  command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
  command -v arm-linux-gnueabihf-gcc >/dev/null || need_apt+=(gcc-arm-linux-gnueabihf)
  command -v arm-linux-gnueabihf-g++ >/dev/null || need_apt+=(g++-arm-linux-gnueabihf)
  [ -d /usr/arm-linux-gnueabihf/lib ] || need_apt+=(libc6-dev-armhf-cross)
  if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  fi
  for t in "$TARGET" "$ARMV7"; do
    if ! rustup target list --installed | grep -qx "$t"; then
      rustup target add "$t"
    fi
  done
fi

for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64 \
  arm-linux-gnueabihf-gcc arm-linux-gnueabihf-g++ qemu-arm; do
  command -v "$tool" >/dev/null || {
    echo "scripts/test-aarch64.sh: $tool is missing (unset CAMSEAL_SKIP_INSTALL to install it)" >&2
    exit 1
  }
done

# The C parts (OpenH264 in camseal-hal) are built by the cc crate with the cross compiler.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export CXX_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-g++
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
export CAMSEAL_TEST_EMULATED=1
# QEMU runs unoptimised test code very slowly (the segment tests' Ed25519/HPKE/SHA-256 work
# takes twice as long at opt-level 0); this only affects the aarch64 target directory, not
# the host build (build scripts keep their own profile).
export CARGO_PROFILE_DEV_OPT_LEVEL=1

log "aarch64: cargo test -p camseal-kernels (under qemu-aarch64 -cpu max)"
cargo test --locked --target "$TARGET" -p camseal-kernels

log "aarch64: segment format round-trip tests (under qemu-aarch64 -cpu max)"
cargo test --locked --target "$TARGET" -p camseal \
  --test segment_format --test sframe_vectors --test format_vectors

# Footage sealed on aarch64 (the ARMv8 AES/PMULL kernels and the aarch64 BLAKE3 build, under
# QEMU) must verify and decrypt byte for byte on this x86-64 host, with format v2's
# signatures, checkpoints and records digest, and the other way round.
log "aarch64 seals, x86-64 verifies and decrypts (and back)"
# The host binary with the host's own profile (the one `cargo test` just built), not the
# opt-level override above, which would rebuild every host crate.
env -u CARGO_PROFILE_DEV_OPT_LEVEL cargo build --locked -p camseal --bin camseal
cargo build --locked --target "$TARGET" -p camseal --bin camseal
host=target/debug/camseal
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=pipeline/tests/data/streams/h264-high-bframes-slices-640x360.h264
"$host" viewer init --home "$work/viewer" >/dev/null
"$host" viewer recipients --home "$work/viewer" --out "$work/list.csrl" >/dev/null

# Seals on one side and verifies and decrypts on the other, both ways. $1 names the emulated
# side; the rest is the command that runs its camseal.
cross_check() {
  local name=$1
  shift
  local emulated=("$@") side seal open
  for side in "$name" host; do
    if [ "$side" = host ]; then seal=("$host"); open=("${emulated[@]}"); else seal=("${emulated[@]}"); open=("$host"); fi
    local tag="$name-$side"
    "${seal[@]}" camera init --home "$work/cam-$tag" >/dev/null
    "${seal[@]}" camera trust --home "$work/cam-$tag" "$work/list.csrl" >/dev/null
    "${seal[@]}" run --home "$work/cam-$tag" --source "file:$input" --segment-seconds 1 \
      --checkpoint-ms 250 --out "$work/seg-$tag" >/dev/null 2>&1
    "${open[@]}" verify --camera "$work/cam-$tag/camera.pub" "$work/seg-$tag" >/dev/null
    "${open[@]}" decrypt --home "$work/viewer" --camera "$work/cam-$tag/camera.pub" \
      --out "$work/out-$tag.h264" "$work/seg-$tag" >/dev/null 2>&1
    cmp "$input" "$work/out-$tag.h264"
    echo "sealed on $side, opened on the other side ($name/host): byte-identical"
  done
}
cross_check aarch64 qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "target/$TARGET/debug/camseal"

# 32-bit ARM: no AES instructions in the armv7 baseline, so the portable kernels run; usize
# is 4 bytes, and the V4L2 and MPP structs take their ILP32 layouts (asserted when compiled).
log "armv7: cargo test -p camseal-kernels (under qemu-arm)"
cargo test --locked --target "$ARMV7" -p camseal-kernels
log "armv7: the whole workspace compiles, tests included"
# Except the GStreamer element: it links the target's GStreamer (pkg-config), which a
# cross build here does not have; the crate holds no code that depends on the target.
cargo check --locked --target "$ARMV7" --workspace --all-targets --exclude camseal-gst
log "armv7 seals, x86-64 verifies and decrypts (and back)"
cargo build --locked --target "$ARMV7" -p camseal --bin camseal
cross_check armv7 qemu-arm -L /usr/arm-linux-gnueabihf "target/$ARMV7/debug/camseal"

echo
echo "scripts/test-aarch64.sh: aarch64 and armv7 checks passed"
