#!/usr/bin/env bash
# The board image, booted: builds the images twice with scripts/build-image.sh (same cached
# package set, same SOURCE_DATE_EPOCH) and requires equal sha256 for both images, then boots
# a copy of camseal-virt.img with `qemu-system-aarch64 -M virt` (TCG) on Debian's arm64
# kernel and initrd taken from the image's boot partition, as its extlinux.conf says.
#
# Onto the copy the test provisions, as a firmware team would at the factory: a camera home
# (`camera init` + `camera trust` of a viewer made on the host with the real CLI) on the data
# partition, owned by the image's camseal user, and settings for the software source. The
# shipped camseal.service starts it under systemd; a test-only unit lets it seal for 30 s,
# writes who runs it to the serial console, stops it and powers off. The host then asserts:
#   - the guest shut down cleanly: "reboot: Power down" on the console, QEMU exited by itself,
#     and the root and data file systems are clean (no journal to replay);
#   - the service ran as the unprivileged camseal user (ps, /proc/PID/status: uid and no
#     capabilities) and the segments on the disk belong to that user;
#   - `camseal verify` accepts the segments from the guest's disk (ended cleanly, 20 s or
#     more between the first and last signed frame) and `camseal decrypt` gives H.264 that
#     ffprobe decodes to at least 20 s of frames.
#
#   CAMSEAL_SKIP_INSTALL=1       install nothing
#   CAMSEAL_QEMU_BOOT_KEEP=1     keep the work directory (images, console log)
#   CAMSEAL_CACHE=DIR            cache root (default ~/.cache/camseal)
#
# Under CI=true a missing tool fails the test; elsewhere it skips with a message.
# Prints one summary line: "qemu-boot-test: PASS ..." or "qemu-boot-test: FAIL ...".
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$SECONDS

fail() {
  echo "qemu-boot-test: FAIL: $*"
  exit 1
}
say() { echo "qemu-boot-test: $*" >&2; }
skip() {
  [ "${CI:-}" = true ] && fail "$* (CI=true: not skipped)"
  echo "qemu-boot-test: SKIP: $*"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (chroot, loop devices)"
if [ -z "${CAMSEAL_SKIP_INSTALL:-}" ]; then
  need=()
  command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
  command -v losetup >/dev/null || need+=(mount)
  command -v ffprobe >/dev/null || need+=(ffmpeg)
  command -v sgdisk >/dev/null || need+=(gdisk)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
fi
for t in qemu-system-aarch64 losetup ffprobe sgdisk dumpe2fs mmdebstrap; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/install-deps.sh)"
done

work=$(mktemp -d)
mnt=$work/mnt
loops=()
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  if [ -n "${CAMSEAL_QEMU_BOOT_KEEP:-}" ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$mnt"

# --- two builds, one sha256 ------------------------------------------------------------
# The package is built once, quickly (the deb-check profile), and given to both builds: the
# second build then repeats only the image assembly, which is what must be reproducible.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export CAMSEAL_DEB_PROFILE=${CAMSEAL_DEB_PROFILE:-deb-check}
say "build 1 (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
scripts/build-image.sh --out "$work/build1" >"$work/build1.log" 2>&1 \
  || { tail -n 40 "$work/build1.log"; fail "build-image.sh (build 1) failed"; }
grep -q "PLACEHOLDER" "$work/build1.log" || fail "without vendor blobs the build did not say it used placeholders"
say "build 2"
scripts/build-image.sh --out "$work/build2" >"$work/build2.log" 2>&1 \
  || { tail -n 40 "$work/build2.log"; fail "build-image.sh (build 2) failed"; }
for img in camseal-rk3588.img camseal-virt.img; do
  a=$(sha256sum <"$work/build1/$img" | cut -d' ' -f1)
  b=$(sha256sum <"$work/build2/$img" | cut -d' ' -f1)
  [ "$a" = "$b" ] || fail "$img differs between two builds: $a vs $b"
  say "$img: sha256 $a in both builds"
done

# The rk3588 layout, checked from outside: the loader areas hold what the build was given
# (here the placeholders) at Rockchip's sectors, and the partitions start after them.
rk=$work/build1/camseal-rk3588.img
cmp -s -n "$(stat -c %s "$work/build1/PLACEHOLDER-idbloader.img")" --ignore-initial=0:$((64 * 512)) \
  "$work/build1/PLACEHOLDER-idbloader.img" "$rk" || fail "rk3588: the idbloader is not at sector 64"
cmp -s -n "$(stat -c %s "$work/build1/PLACEHOLDER-u-boot.itb")" --ignore-initial=0:$((16384 * 512)) \
  "$work/build1/PLACEHOLDER-u-boot.itb" "$rk" || fail "rk3588: u-boot.itb is not at sector 16384"
rm -rf "$work/build2"

# --- the test harness: settings for the soft source and a unit that reports ----------------
# The same files go onto slot A of the disk booted first (provisioned by hand, below) and,
# through build-image.sh --overlay, into the newer bundle's root file system.
harness=$work/harness
mkdir -p "$harness/etc/camseal" "$harness/usr/local/sbin" \
  "$harness/etc/systemd/system/multi-user.target.wants"
# The shipped settings, with the software source at a size TCG encodes in real time and
# segments to a directory on the data partition.
grep -q '^source = ' board/rk3588/camseal.toml || fail "board/rk3588/camseal.toml has no source line"
sed -e 's|^source = .*|source = "soft:160x120@10"|' -e '/^spool = /d' board/rk3588/camseal.toml \
  >"$harness/etc/camseal/camseal.toml"
cat >>"$harness/etc/camseal/camseal.toml" <<'EOF'
# qemu-boot-test
# The soft source stops after 10 s unless told a duration (seen: the service had finished
# before the check looked); an hour outlasts the test, which stops the service itself.
duration = 3600
out = "/var/lib/camseal/segments"
realtime = true
bitrate = "200k"
segment_seconds = 4
EOF
cat >"$harness/usr/local/sbin/camseal-qemu-check" <<'EOF'
#!/bin/sh
# qemu-boot-test: let camseal.service seal, report who runs it, stop it; on the first boot
# install the update bundle from the second disk; power off. The mode and how long to seal
# come from the kernel command line (camseal.qemu_test=install|report, camseal.qemu_seal=S).
say() { echo "QEMU-CHECK $*"; }
mode=$(sed -n 's/.*camseal\.qemu_test=\([a-z]*\).*/\1/p' /proc/cmdline)
seal=$(sed -n 's/.*camseal\.qemu_seal=\([0-9]*\).*/\1/p' /proc/cmdline)
say "start mode ${mode:-none}, up $(cut -d' ' -f1 /proc/uptime) s"
eval "$(rauc status --output-format=shell 2>/dev/null | grep '^RAUC_SYSTEM_BOOTED_BOOTNAME=')"
say "booted slot ${RAUC_SYSTEM_BOOTED_BOOTNAME:-unknown} version $(cat /etc/camseal-image-version)"
i=0
until [ "$(systemctl is-active camseal.service)" = active ] || [ $i -ge 300 ]; do sleep 1; i=$((i + 1)); done
say "camseal.service $(systemctl is-active camseal.service) after ${i} s"
sleep "${seal:-30}"
pid=$(systemctl show -p MainPID --value camseal.service)
say "main-pid $pid user $(ps -o user= -p "$pid") exe $(readlink /proc/"$pid"/exe)"
say "status $(grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs):' /proc/"$pid"/status | tr -s '\t\n' '  ')"
say "ps-camseal $(ps -o user= -C camseal | sort -u | tr '\n' ' ')"
systemctl stop camseal.service
say "stopped: result $(systemctl show -p Result --value camseal.service)"
journalctl -u camseal.service --no-pager -o cat | tail -n 12 | sed 's/^/QEMU-LOG /'
if [ "$mode" = install ]; then
  mkdir -p /run/update
  mount -o ro LABEL=update /run/update && say "update disk mounted"
  rauc install /run/update/camseal-rootfs.raucb 2>&1 | tail -n 5 | sed 's/^/QEMU-LOG rauc: /'
  say "rauc-install done; primary $(/usr/lib/camseal/rauc-boot-file get-primary)"
  rauc status 2>&1 | sed 's/^/QEMU-LOG rauc: /'
fi
say "done"
systemctl poweroff
EOF
chmod 755 "$harness/usr/local/sbin/camseal-qemu-check"
cat >"$harness/etc/systemd/system/camseal-qemu-check.service" <<'EOF'
[Unit]
Description=qemu-boot-test: seal, report, update, power off
After=camseal.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/camseal-qemu-check
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/camseal-qemu-check.service \
  "$harness/etc/systemd/system/multi-user.target.wants/camseal-qemu-check.service"

# The newer bundle: the same sources with a bumped version, and the harness, signed with the
# same (development) key. Only its bundle is used.
v1=$(sed -n 's/.* (version \([^,]*\), kernel .*/\1/p' "$work/build1.log")
[ -n "$v1" ] || fail "build-image.sh did not say the image's version"
v2="$v1+qemu-update"
say "build 3: the update bundle, version $v2"
scripts/build-image.sh --out "$work/build3" --overlay "$harness" --image-version "$v2" \
  >"$work/build3.log" 2>&1 || { tail -n 40 "$work/build3.log"; fail "build-image.sh (build 3) failed"; }
mkdir "$work/update"
mv "$work/build3/camseal-rootfs.raucb" "$work/update/"
rm -rf "$work/build3"
bundle_mib=$(($(stat -c %s "$work/update/camseal-rootfs.raucb") / 1048576 + 64))
mkfs.ext4 -q -F -L update -d "$work/update" "$work/update.img" "${bundle_mib}M"

# --- the disk to boot: a copy, provisioned -------------------------------------------------
disk=$work/disk.img
cp --sparse=always "$work/build1/camseal-virt.img" "$disk"
rm -rf "$work/build1"
part() { # name field(1 start, 2 end) -> sector
  sgdisk -p "$disk" | awk -v n="$1" -v f="$2" '$1 ~ /^[0-9]+$/ && $NF == n { print $(f + 1) }'
}
attach() { # partition name -> loop device
  local s e l
  s=$(part "$1" 1)
  e=$(part "$1" 2)
  [ -n "$s" ] || fail "no partition $1 on the image"
  l=$(losetup --find --show --offset $((s * 512)) --sizelimit $(((e - s + 1) * 512)) "$disk")
  loops+=("$l")
  echo "$l"
}
detach() { losetup -d "$1"; }
partuuid() { # name
  local n
  n=$(sgdisk -p "$disk" | awk -v n="$1" '$1 ~ /^[0-9]+$/ && $NF == n { print $1 }')
  sgdisk -i "$n" "$disk" | sed -n 's/^Partition unique GUID: //p' | tr 'A-F' 'a-f'
}

# The camera and viewer, made on the host with the real CLI.
say "building camseal for the host"
cargo build --locked -p camseal --bin camseal >&2
camseal=target/debug/camseal
"$camseal" viewer init --home "$work/viewer" >/dev/null 2>&1 || fail "viewer init"
"$camseal" viewer recipients --home "$work/viewer" --out "$work/recipients.list" >/dev/null 2>&1 \
  || fail "viewer recipients"
"$camseal" camera init --home "$work/camera" >/dev/null 2>&1 || fail "camera init"
"$camseal" camera trust --home "$work/camera" "$work/recipients.list" >/dev/null 2>&1 || fail "camera trust"
cp "$work/camera/camera.pub" "$work/camera.pub"

# What the image says: the kernel and initrd, slot A's command line.
boot_loop=$(attach boot)
mount -o ro "$boot_loop" "$mnt"
cp "$mnt/vmlinuz" "$mnt/initrd.img" "$work/"
append=$(sed -n 's/^ *append //p' "$mnt/extlinux/extlinux.conf")
[ "$(cat "$mnt/primary")" = A ] || fail "a new image's primary slot is not A"
umount "$mnt"
detach "$boot_loop"
[ -n "$append" ] || fail "no append line in the boot partition's extlinux.conf"
echo "$append" | grep -q "root=PARTUUID=$(partuuid rootfs-a) " || fail "extlinux.conf does not boot slot A: $append"

root_loop=$(attach rootfs-a)
mount "$root_loop" "$mnt"
ids=$(awk -F: '$1 == "camseal" { print $3 ":" $4 }' "$mnt/etc/passwd")
[ -n "$ids" ] || fail "the image has no camseal user"
[ -L "$mnt/etc/systemd/system/multi-user.target.wants/camseal.service" ] || fail "camseal.service is not enabled in the image"
[ ! -s "$mnt/etc/machine-id" ] || fail "the image has a machine id"
cp -a --no-preserve=ownership "$harness/." "$mnt/"
umount "$mnt"
detach "$root_loop"

data_loop=$(attach data)
mount "$data_loop" "$mnt"
[ "$(stat -c '%u:%g %a' "$mnt")" = "$ids 700" ] \
  || fail "the data partition's root (/var/lib/camseal) is $(stat -c '%u:%g %a' "$mnt"), not $ids 700"
cp -a "$work/camera" "$mnt/camera"
chown -R "$ids" "$mnt/camera"
umount "$mnt"
detach "$data_loop"

# --- boot ----------------------------------------------------------------------------------
# boot N APPEND: one QEMU run to power-off; the console in $work/consoleN.txt.
boot() {
  local n=$1 cmdline=$2 t0=$SECONDS rc
  say "boot $n: $cmdline"
  set +e
  timeout 1200 qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 2 -m 1024 \
    -nographic -no-reboot -nic none \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -append "$cmdline" \
    -drive if=none,id=disk,file="$disk",format=raw,cache=unsafe -device virtio-blk-pci,drive=disk \
    -drive if=none,id=update,file="$work/update.img",format=raw,readonly=on \
    -device virtio-blk-pci,drive=update -device virtio-rng-pci \
    >"$work/console$n.log" 2>&1 </dev/null
  rc=$?
  set -e
  tr -d '\r' <"$work/console$n.log" >"$work/console$n.txt"
  grep -E 'QEMU-(CHECK|LOG)' "$work/console$n.txt" | tail -n 40 >&2 || true
  say "boot $n: QEMU exited with $rc after $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || { tail -n 60 "$work/console$n.txt" >&2; fail "boot $n: QEMU exited with $rc (124: the guest did not power off in time)"; }
  grep -q "QEMU-CHECK done" "$work/console$n.txt" || { tail -n 60 "$work/console$n.txt" >&2; fail "boot $n: the guest's check did not finish"; }
  grep -q "reboot: Power down" "$work/console$n.txt" || fail "boot $n: no clean power-off on the console"
  grep -q "QEMU-CHECK camseal.service active" "$work/console$n.txt" || fail "boot $n: camseal.service did not become active"
  # The service's user, as the guest saw it.
  local uid=${ids%%:*}
  grep -q "QEMU-CHECK main-pid [0-9]* user camseal exe /usr/bin/camseal" "$work/console$n.txt" \
    || fail "boot $n: the service's main process is not /usr/bin/camseal run by user camseal"
  grep -Eq "QEMU-CHECK status Uid: $uid $uid $uid $uid Gid: [0-9 ]*CapEff: 0+ CapBnd: 0+ NoNewPrivs: 1" \
    "$work/console$n.txt" || fail "boot $n: the service's process is not uid $uid with no capabilities and no new privileges"
  # (The console drops the line's trailing space.)
  grep -Eq "QEMU-CHECK ps-camseal camseal ?$" "$work/console$n.txt" || fail "boot $n: a camseal process ran as another user"
  grep -q "QEMU-CHECK stopped: result success" "$work/console$n.txt" || fail "boot $n: camseal.service did not stop cleanly"
}
clean_fs() { # partition...
  local p l state
  for p in "$@"; do
    l=$(attach "$p")
    if dumpe2fs -h "$l" 2>/dev/null | grep -q needs_recovery; then fail "$p was not unmounted cleanly"; fi
    state=$(dumpe2fs -h "$l" 2>/dev/null | sed -n 's/^Filesystem state: *//p')
    [ "$state" = clean ] || fail "$p: file system state $state"
    detach "$l"
  done
}
primary() {
  local l p
  l=$(attach boot)
  mount -o ro "$l" "$mnt"
  p=$(cat "$mnt/primary")
  umount "$mnt"
  detach "$l"
  echo "$p"
}

t_boot=$SECONDS
boot 1 "$append camseal.qemu_test=install camseal.qemu_seal=30"
grep -q "QEMU-CHECK booted slot A version $v1\$" "$work/console1.txt" || fail "boot 1: not slot A, version $v1"
clean_fs rootfs-a data boot

# --- RAUC: the bundle went into slot B and made it primary; boot what the harness chooses ---
[ "$(primary)" = B ] || fail "after rauc install the primary slot is $(primary), not B"
grep -q "QEMU-CHECK rauc-install done; primary B" "$work/console1.txt" || fail "rauc install did not make B primary"
append_b=$(echo "$append" | sed -e "s/root=PARTUUID=[^ ]*/root=PARTUUID=$(partuuid rootfs-b)/" \
  -e 's/rauc\.slot=A/rauc.slot=B/')
boot 2 "$append_b camseal.qemu_test=report camseal.qemu_seal=8"
grep -q "QEMU-CHECK booted slot B version $v2\$" "$work/console2.txt" \
  || fail "boot 2: RAUC does not report slot B with the bundle's version $v2"
clean_fs rootfs-b data boot
say "QEMU: two boots in $((SECONDS - t_boot)) s"

# --- the footage of both boots, checked on the host --------------------------------------------
data_loop=$(attach data)
mount -o ro "$data_loop" "$mnt"
mkdir "$work/segments"
cp -a "$mnt/segments/." "$work/segments/"
owners=$(find "$mnt/segments" -type f -printf '%U:%G\n' | sort -u | tr '\n' ' ')
umount "$mnt"
detach "$data_loop"
n=$(find "$work/segments" -name '*.cseg' | wc -l)
[ "$n" -ge 4 ] || fail "only $n segments on the guest's disk"
[ "$owners" = "$ids " ] || fail "segments owned by $owners, not the camseal user ($ids)"

"$camseal" verify --camera "$work/camera.pub" --json "$work/verdict.json" "$work/segments" >"$work/verify.log" 2>&1 \
  || { cat "$work/verify.log" >&2; fail "camseal verify rejected the guest's segments"; }
python3 - "$work/verdict.json" <<'PY' || fail "the verdict is not a clean stream of 20 s or more"
import datetime, json, sys
v = json.load(open(sys.argv[1]))
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
span = (t(v["last_time"]) - t(v["first_time"])).total_seconds()
print(f"qemu-boot-test: verify: seqs {v['first_seq']}..{v['last_seq']}, ended {v['ended']}, {span:.1f} s signed, {v['result']}", file=sys.stderr)
sys.exit(0 if v["result"] == "ok" and v["ended"] == "clean" and span >= 20 else 1)
PY
"$camseal" decrypt --home "$work/viewer" --camera "$work/camera.pub" --out "$work/clip.h264" "$work/segments" \
  >"$work/decrypt.log" 2>&1 || { cat "$work/decrypt.log" >&2; fail "camseal decrypt failed"; }
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
  -of csv=p=0 "$work/clip.h264")
# 30 s at 10 frames per second were sealed on the first boot (and 8 s on the second): at
# least 20 s of frames must decode.
[ "${frames:-0}" -ge 200 ] || fail "the decrypted video has ${frames:-0} frames, fewer than 200 (20 s at 10 fps)"

echo "qemu-boot-test: PASS (two builds with equal sha256; camseal.service sealed as user camseal in QEMU; $n segments, $frames frames verified and decrypted on the host; RAUC installed $v2 into slot B and it booted; clean power-offs) in $((SECONDS - t_start)) s"
