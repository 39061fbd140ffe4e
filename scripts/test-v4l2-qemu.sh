#!/usr/bin/env bash
# V4L2 backends on real kernel drivers: boots a small x86-64 kernel with vivid, vicodec and
# the DMA-buf heaps under QEMU (TCG, no KVM needed) and runs hal/tests/v4l2_qemu.rs inside
# it, built as a static binary in a busybox initramfs. Two boots: single-planar drivers, then
# multi-planar ones (vicodec.multiplanar=1, vivid.multiplanar=2).
#
# The kernel is built once from Debian's linux-source-6.1 (about 10 minutes on 2 cores) and
# cached under ~/.cache/camseal (see scripts/v4l2-qemu/build-kernel.sh); with a warm cache
# the whole script takes well under a minute plus the test binary's build.
#
#   CAMSEAL_SKIP_INSTALL=1   do not apt-get the prerequisites
#   CAMSEAL_CACHE=DIR        cache root (default ~/.cache/camseal)
#
# Prints one summary line: "test-v4l2-qemu: PASS ..." or "test-v4l2-qemu: FAIL ...".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

fail() {
  echo "test-v4l2-qemu: FAIL: $*"
  exit 1
}

if [ -z "${CAMSEAL_SKIP_INSTALL:-}" ]; then
  missing=()
  for pkg in qemu-system-x86 busybox-static cpio xz-utils linux-source-6.1 flex bison libelf-dev bc make gcc libc6-dev; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "test-v4l2-qemu: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
for tool in qemu-system-x86_64 cpio gzip; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install qemu-system-x86 cpio)"
done
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
  busybox=/bin/busybox
  [ -x "$busybox" ] || fail "a static busybox is needed (apt-get install busybox-static)"
fi

kernel=$(scripts/v4l2-qemu/build-kernel.sh) || fail "the test kernel did not build"

# The test binary, static so the initramfs needs no libc. Its own target directory, in the
# cache next to the kernel, keeps the static flags from invalidating the normal build and
# survives fresh clones (CI), so a warm run only rebuilds what changed.
cache_root="${CAMSEAL_CACHE:-$HOME/.cache/camseal}"
target_dir="$cache_root/v4l2-qemu-target"
triple=$(rustc -vV | sed -n 's/^host: //p')
echo "test-v4l2-qemu: building the static test binary ($triple)" >&2
exe=$(RUSTFLAGS="-C target-feature=+crt-static" cargo test --locked -p camseal-hal \
  --test v4l2_qemu --no-run --target "$triple" --target-dir "$target_dir" \
  --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -n "$exe" ] && [ -x "$exe" ] || fail "the static test binary did not build (run the cargo command above by hand)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc" "$work/root/sys" "$work/root/tmp"
cp "$busybox" "$work/root/bin/busybox"
cp "$exe" "$work/root/v4l2_qemu"
cat >"$work/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "V4L2-QEMU-START $(uname -r) $(cat /proc/cmdline)"
dmesg | grep -o "vivid-000: using .* format API"
ls /sys/class/video4linux | while read n; do echo "node /dev/$n: $(cat /sys/class/video4linux/$n/name)"; done
DMESG_LINES=$(cat /proc/cmdline | sed -n "s/.*dmesg=\([0-9]*\).*/\1/p")
TMPDIR=/tmp /v4l2_qemu --ignored --test-threads=1 --nocapture $(cat /proc/cmdline | sed -n 's/.*only=\([^ ]*\).*/\1/p')
rc=$?
[ $rc = 0 ] || { echo "--- kernel log"; dmesg | tail -n ${DMESG_LINES:-25}; }
echo "V4L2-QEMU-RESULT rc=$rc"
reboot -f
EOF
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initramfs.cpio.gz")

passed=0
for mode in single multi; do
  extra=""
  [ "$mode" = multi ] && extra="vicodec.multiplanar=1 vivid.multiplanar=2"
  # V4L2_QEMU_ONLY=NAME runs only the tests whose names contain NAME (for debugging).
  [ -n "${V4L2_QEMU_ONLY:-}" ] && extra="$extra only=$V4L2_QEMU_ONLY"
  extra="$extra ${V4L2_QEMU_APPEND:-}"
  log="$work/$mode.log"
  echo "test-v4l2-qemu: booting ($mode-planar)" >&2
  started=$(date +%s)
  timeout 300 qemu-system-x86_64 -accel tcg -cpu max -M pc -smp 2 -m 512 -nographic \
    -no-reboot -nic none -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet $extra" >"$log" 2>&1 || true
  took=$(($(date +%s) - started))
  tr -d '\r' <"$log" | sed -n '/V4L2-QEMU-START/,/V4L2-QEMU-RESULT/p' >&2
  if ! grep -q "V4L2-QEMU-RESULT rc=0" "$log"; then
    tail -n 40 "$log" >&2
    fail "$mode-planar boot: the tests failed or did not finish (${took}s)"
  fi
  n=$(tr -d '\r' <"$log" | sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' | tail -n 1)
  [ "${n:-0}" -ge 4 ] || fail "$mode-planar boot: only ${n:-0} tests ran"
  passed=$((passed + n))
  echo "test-v4l2-qemu: $mode-planar: $n tests passed in ${took}s" >&2
done
echo "test-v4l2-qemu: PASS ($passed V4L2 tests on vivid/vicodec in 2 QEMU boots)"
