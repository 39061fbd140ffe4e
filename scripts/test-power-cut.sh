#!/usr/bin/env bash
# Power cuts: `camseal run --spool` records onto an ext4 disk inside a QEMU guest (the V4L2
# test's kernel, scripts/v4l2-qemu), and QEMU is killed with SIGKILL at random moments, at
# least 20 times. After each cut the host checks the disk image with the project's own
# recovery and `verify`:
#   - every segment the guest reported durable before the cut is there, closed, and
#     byte-identical to what every earlier check saw of it;
#   - the chain verifies, and the only gaps are declared crashes;
#   - no plaintext is on the disk (the raw image holds none of the decrypted video's NALs).
# Then the guest boots again on the same image: its `run` recovers the cut and records on.
#
# What the cut loses, and why the disk is attached with cache=none (see docs/UPLOAD.md,
# "Power cuts"): QEMU keeps no write cache of its own for a raw image, so a SIGKILL loses
# what the guest had not yet written to its disk (its page cache, uncommitted journal) and
# the requests in flight, as a power cut does; writes the virtual disk completed stay in the
# image. With cache=none the guest sees a disk with a volatile write cache, as an SD card or
# eMMC is, so its kernel issues the same flushes on fsync as on a camera; O_DIRECT on the
# host keeps the host's page cache out of the picture. (The host filesystem must support
# O_DIRECT; when it does not, cache=writethrough is used and said so.)
#
#   CAMSEAL_SKIP_INSTALL=1      do not apt-get the prerequisites
#   CAMSEAL_CACHE=DIR           cache root (default ~/.cache/camseal)
#   CAMSEAL_POWER_CUT_SEED=N    the cut schedule's seed (printed by every run)
#   CAMSEAL_POWER_CUTS=N        how many cuts (default 20)
#   CAMSEAL_POWER_CUT_KEEP=1    keep the work directory (image, logs) for a post-mortem
#
# Prints one summary line: "test-power-cut: PASS ..." or "test-power-cut: FAIL ...".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

fail() {
  echo "test-power-cut: FAIL: $*"
  [ -n "${seed:-}" ] && echo "test-power-cut: reproduce with CAMSEAL_POWER_CUT_SEED=$seed" >&2
  exit 1
}
say() { echo "test-power-cut: $*" >&2; }

if [ -z "${CAMSEAL_SKIP_INSTALL:-}" ]; then
  missing=()
  for pkg in qemu-system-x86 busybox-static cpio e2fsprogs perl linux-source-6.1 flex bison libelf-dev bc make gcc libc6-dev; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
PATH="$PATH:/usr/sbin:/sbin"
for tool in qemu-system-x86_64 cpio gzip mkfs.ext4 e2fsck debugfs perl sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install qemu-system-x86 cpio e2fsprogs perl)"
done
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
  busybox=/bin/busybox
  [ -x "$busybox" ] || fail "a static busybox is needed (apt-get install busybox-static)"
fi

kernel=$(scripts/v4l2-qemu/build-kernel.sh) || fail "the test kernel did not build"

# A static camseal for the guest (and, being static, for the host side too). The target
# directory is the V4L2 test's: same flags and profile, so their common crates build once.
cache_root="${CAMSEAL_CACHE:-$HOME/.cache/camseal}"
target_dir="$cache_root/v4l2-qemu-target"
triple=$(rustc -vV | sed -n 's/^host: //p')
say "building the static camseal ($triple)"
camseal=$(RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked -p camseal \
  --bin camseal --target "$triple" --target-dir "$target_dir" \
  --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*camseal\)".*/\1/p' | tail -n 1)
[ -n "$camseal" ] && [ -x "$camseal" ] || fail "the static camseal did not build (run the cargo command above by hand)"

cuts=${CAMSEAL_POWER_CUTS:-20}
seed=${CAMSEAL_POWER_CUT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$seed
# The soft encoder at a size the guest encodes in real time under TCG, 1 s segments (one
# keyframe a second): a cut lands anywhere in a segment's life within a few seconds.
fps=10
source_spec="soft:320x240@$fps"
segment_seconds=1
say "seed $seed ($cuts cuts; CAMSEAL_POWER_CUT_SEED=$seed repeats the schedule)"

work=$(mktemp -d)
if [ -n "${CAMSEAL_POWER_CUT_KEEP:-}" ]; then
  trap 'say "work directory kept: $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi

# The camera home (with its trusted list) and the viewer, made on the host. The home goes
# onto the disk with the spool: its chain state must survive the cuts as the segments do.
"$camseal" viewer init --home "$work/viewer" >/dev/null 2>&1 || fail "viewer init"
"$camseal" viewer recipients --home "$work/viewer" --out "$work/recipients.list" >/dev/null 2>&1 ||
  fail "viewer recipients"
mkdir -p "$work/disk"
"$camseal" camera init --home "$work/disk/home" >/dev/null 2>&1 || fail "camera init"
"$camseal" camera trust --home "$work/disk/home" "$work/recipients.list" >/dev/null 2>&1 ||
  fail "camera trust"
cp "$work/disk/home/camera.pub" "$work/camera.pub"
"$camseal" viewer cameras add --home "$work/viewer" "$work/camera.pub" >/dev/null 2>&1 ||
  fail "viewer cameras add"
mkdir -p "$work/disk/spool"
image="$work/disk.img"
mkfs.ext4 -q -F -L camseal -d "$work/disk" "$image" 64M >&2 || fail "mkfs.ext4 -d"

cache_mode="cache=none,aio=threads"
if ! dd if=/dev/zero of="$work/direct-probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
  cache_mode="cache=writethrough"
  say "the host filesystem under $work has no O_DIRECT: the disk uses $cache_mode"
fi
rm -f "$work/direct-probe"

mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc" "$work/root/sys" "$work/root/mnt"
cp "$busybox" "$work/root/bin/busybox"
cp "$camseal" "$work/root/camseal"
cat >"$work/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "POWER-CUT-BOOT \$(date -u +%H:%M:%S)"
# Mounting replays the journal of the cut disk, as a camera's boot would.
mount -t ext4 /dev/vda /mnt || { echo "POWER-CUT-MOUNT-FAILED"; dmesg | tail -n 20; reboot -f; }
echo "POWER-CUT-MOUNTED"
# "sealed segment N (...)" on standard error is printed only once segment N is published:
# trailer fsynced, renamed to .cseg, directory fsynced. The host cuts after the first one.
/camseal run --home /mnt/home --spool /mnt/spool --source $source_spec --realtime \
  --duration 3600 --segment-seconds $segment_seconds --bitrate 300000 --workers 1 2>&1
echo "POWER-CUT-RUN-EXIT rc=\$?"
reboot -f
EOF
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initramfs.cpio.gz")

# Host-side checks of one cut image. Uses a copy: the guest boots on the cut image as is.
#   $1 cut number, $2 stamped console log of the boot.
declare -A durable_sha=() # segment file -> sha256 when first seen after its report
declare -a lost_ms=()
durable_total=0
check_cut() {
  local n=$1 log=$2 c="$work/check"
  rm -rf "$c"
  mkdir -p "$c"
  cp --sparse=always "$image" "$c/disk.img"
  # Journal replay only (what the guest's mount does), then a read-only full check: the
  # filesystem itself must be consistent after the cut, not repaired.
  e2fsck -E journal_only -y "$c/disk.img" >"$c/fsck.log" 2>&1 || true
  e2fsck -fn "$c/disk.img" >>"$c/fsck.log" 2>&1 || {
    cat "$c/fsck.log" >&2
    fail "cut $n: the filesystem is inconsistent after the journal replay"
  }
  mkdir -p "$c/fs"
  debugfs -R "rdump /home /spool $c/fs" "$c/disk.img" >"$c/debugfs.log" 2>&1
  [ -d "$c/fs/spool" ] && [ -d "$c/fs/home" ] || {
    cat "$c/debugfs.log" >&2
    fail "cut $n: debugfs could not copy the spool out of the image"
  }
  # Every segment reported durable in this boot: closed, its size as reported, and never
  # changed afterwards (earlier boots' segments are checked again at every cut).
  local line seq bytes path name
  while read -r _ _ _ seq _ _ bytes _ _ _ path; do
    name=${path##*/}
    bytes=${bytes%,*}
    durable_sha[$name]=pending:$bytes
  done < <(grep -a '^[0-9.]* sealed segment [0-9]* (' "$log" | tr -d '\r' |
    sed 's/[(),]/ /g; s/  */ /g')
  for name in "${!durable_sha[@]}"; do
    local f="$c/fs/spool/$name" want=${durable_sha[$name]}
    [ -f "$f" ] || fail "cut $n: segment $name was reported durable and is missing"
    if [ "${want%%:*}" = pending ]; then
      [ "$(stat -c %s "$f")" = "${want#pending:}" ] ||
        fail "cut $n: segment $name is $(stat -c %s "$f") bytes, reported ${want#pending:}"
      durable_sha[$name]=$(sha256sum <"$f" | cut -c1-64)
    else
      [ "$(sha256sum <"$f" | cut -c1-64)" = "$want" ] || fail "cut $n: durable segment $name changed"
    fi
  done
  durable_total=${#durable_sha[@]}
  # The project's recovery: `run` recovers the spool before it records (closing a whole
  # open segment, cutting a torn one back to its last whole record, declaring the crash).
  # A short recording on the copy then carries the signed crash gap.
  "$camseal" run --home "$c/fs/home" --spool "$c/fs/spool" --source "$source_spec" \
    --duration 0.3 --segment-seconds 1 --bitrate 300000 >"$c/recover.log" 2>&1 || {
    cat "$c/recover.log" >&2
    fail "cut $n: recovery (camseal run) failed on the cut spool"
  }
  "$camseal" verify --camera "$work/camera.pub" "$c/fs/spool"/*.cseg >"$c/verify.log" 2>&1 || {
    tail -n 30 "$c/verify.log" >&2
    fail "cut $n: camseal verify failed on the recovered spool"
  }
  grep -q "^chain: OK" "$c/verify.log" || fail "cut $n: verify did not report the chain OK"
  # Every gap must be a crash the camera declared; any other hole is a loss.
  local other
  other=$(grep -E '^ +seq +[0-9]+ ' "$c/verify.log" | grep -v 'crash' || true)
  [ -z "$other" ] || {
    echo "$other" >&2
    fail "cut $n: verify shows gaps that are not declared crashes"
  }
  # No plaintext on the raw image: the decrypted video (crash tails salvaged) gives the NAL
  # units the encoder produced; none may appear anywhere on the disk.
  "$camseal" decrypt --home "$work/viewer" --allow-incomplete --out "$c/video.h264" \
    "$c/fs/spool"/*.cseg >"$c/decrypt.log" 2>&1 || {
    tail -n 20 "$c/decrypt.log" >&2
    fail "cut $n: decrypt of the recovered spool failed"
  }
  # The search must find the video where it is (else it proves nothing), and not on the disk.
  ! perl "$root/scripts/power-cut/find-plaintext.pl" "$c/video.h264" "$c/video.h264" >/dev/null 2>&1 ||
    fail "cut $n: the plaintext search does not find the video in the video itself"
  perl "$root/scripts/power-cut/find-plaintext.pl" "$c/video.h264" "$image" >"$c/plain.log" 2>&1 || {
    cat "$c/plain.log" >&2
    fail "cut $n: plaintext found on the disk image"
  }
  plain_checked=$(sed -n 's/^markers \([0-9]*\).*/\1/p' "$c/plain.log")
}

started_all=$(date +%s)
for n in $(seq 1 "$cuts"); do
  log="$work/boot-$n.log"
  rm -f "$work/console"
  mkfifo "$work/console"
  # Each console line with the host's time, to time the cut against the durable reports.
  (while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done <"$work/console" >"$log") &
  stamper=$!
  qemu-system-x86_64 -accel tcg -cpu max -M pc -smp 2 -m 512 -nographic -no-reboot \
    -nic none -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
    -drive "file=$image,format=raw,if=virtio,$cache_mode" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet" >"$work/console" 2>&1 &
  qemu=$!
  # Wait for the first durable segment of this boot (at most 120 s).
  deadline=$(($(date +%s) + 120))
  first=""
  while [ -z "$first" ]; do
    first=$(grep -a -m1 ' sealed segment ' "$log" 2>/dev/null | cut -d' ' -f1 || true)
    [ -n "$first" ] && break
    if ! kill -0 "$qemu" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      kill -9 "$qemu" 2>/dev/null || true
      wait "$qemu" 2>/dev/null || true
      wait "$stamper" 2>/dev/null || true
      tr -d '\r' <"$log" | tail -n 40 >&2
      fail "boot $n: no durable segment was reported"
    fi
    sleep 0.05
  done
  # The cut: a random moment 0 to 2.5 segments after the first durable report, so cuts land
  # in every phase of a segment's life (appending, fsync, close, rename, the next open).
  delay_ms=$((RANDOM % (2500 * segment_seconds)))
  target=$(awk -v f="$first" -v d="$delay_ms" 'BEGIN { printf "%.6f", f + d / 1000 }')
  while awk -v t="$target" -v now="$EPOCHREALTIME" 'BEGIN { exit !(now < t) }'; do
    sleep 0.01
  done
  cut_at=$EPOCHREALTIME
  kill -9 "$qemu"
  wait "$qemu" 2>/dev/null || true
  wait "$stamper" 2>/dev/null || true
  grep -aq "POWER-CUT-RUN-EXIT" "$log" && {
    tr -d '\r' <"$log" | tail -n 30 >&2
    fail "boot $n: camseal run stopped before the cut"
  }
  check_cut "$n" "$log"
  # What the cut cost, in seconds of video: the time from the last durable report to the cut
  # (the guest records in real time), less the crash tail recovery salvaged of it.
  last=$(grep -a ' sealed segment ' "$log" | tail -n 1 | cut -d' ' -f1)
  # Records kept in the salvaged tail (one per frame at this size) count as recovered.
  tail_frames=$(sed -n 's/.*kept its \([0-9]*\) whole records.*/\1/p' "$work/check/recover.log" | tail -n 1)
  tail_frames=${tail_frames:-0}
  ms=$(awk -v c="$cut_at" -v l="$last" -v k="$tail_frames" -v fps="$fps" \
    'BEGIN { v = (c - l) * 1000 - k * 1000 / fps; if (v < 0) v = 0; printf "%d", v }')
  lost_ms+=("$ms")
  say "cut $n: ${delay_ms} ms after the first durable segment; $durable_total durable segments intact; tail salvaged $tail_frames frames; lost ${ms} ms of video; $plain_checked plaintext markers absent"
done
took=$(($(date +%s) - started_all))
stats=$(printf '%s\n' "${lost_ms[@]}" | sort -n | awk '
  { v[NR] = $1; s += $1 }
  END { printf "video lost per cut: median %.2f s, mean %.2f s, max %.2f s", v[int((NR + 1) / 2)] / 1000, s / NR / 1000, v[NR] / 1000 }')
echo "test-power-cut: PASS ($cuts power cuts in ${took}s, $durable_total durable segments intact, chain verified with declared crashes only, no plaintext on the disk; $stats; seed $seed)"
