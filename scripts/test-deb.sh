#!/usr/bin/env bash
# Builds camseal's Debian package with cargo-deb and installs it with `dpkg -i` into a
# fresh Debian root, then checks what the package promises (docs/BOARD.md): its files, the
# default settings as a conffile that the binary accepts, the `camseal` system user and its
# state directory, the unit enabled but not started, `camseal --version`, and a clean purge.
#
#   scripts/test-deb.sh                  amd64: build, install, check
#   scripts/test-deb.sh --arch arm64     also cross-build the arm64 package and check its
#                                        control fields and binary (not installed here)
#   CAMSEAL_DEB_PROFILE=release          the package as shipped (fat LTO: slow); default
#                                        deb-check, the same package built quicker
#
# Needs root (a chroot) and the Debian mirror once: the root file system is made by
# mmdebstrap and cached as a tarball under $CACHE, keyed by its recipe; cargo-deb is
# installed once into $CACHE, keyed by its version.
set -euo pipefail
cd "$(dirname "$0")/.."

arm64=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ "${2:-}" = arm64 ] || { echo "--arch takes arm64" >&2; exit 2; }; arm64=1; shift 2 ;;
    *) echo "usage: scripts/test-deb.sh [--arch arm64]" >&2; exit 2 ;;
  esac
done

CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
DEB_VERSION=3.8.0
CARGO_DEB=$CACHE/cargo-deb-$DEB_VERSION/bin/cargo-deb
PROFILE=${CAMSEAL_DEB_PROFILE:-deb-check}
SUITE=bookworm
MIRROR=${CAMSEAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the root holds: systemd brings systemd-sysusers, systemctl and deb-systemd-helper.
RECIPE="$SUITE minbase systemd"

skip() {
  if [ "${CI:-}" = true ]; then echo "scripts/test-deb.sh: $*" >&2; exit 1; fi
  echo "scripts/test-deb.sh: $*: package not tested"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "not root (the install test needs a chroot)"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (scripts/install-deps.sh)"
if [ ! -x "$CARGO_DEB" ]; then
  [ -z "${CAMSEAL_SKIP_INSTALL:-}" ] || skip "cargo-deb $DEB_VERSION is not installed (CAMSEAL_SKIP_INSTALL set)"
  echo "installing cargo-deb $DEB_VERSION into $CACHE (once; cached)" >&2
  CARGO_TARGET_DIR="$CACHE/cargo-deb-build" cargo install cargo-deb --version "$DEB_VERSION" \
    --locked --root "$CACHE/cargo-deb-$DEB_VERSION"
  rm -rf "$CACHE/cargo-deb-build"
fi

work=$(mktemp -d)
root=$work/root
cleanup() {
  for m in proc dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> cargo deb (profile $PROFILE)"
"$CARGO_DEB" -p camseal --profile "$PROFILE" --locked --output "$work/amd64.deb"
if [ -n "$arm64" ]; then
  echo "==> cargo deb --target aarch64-unknown-linux-gnu (profile $PROFILE)"
  "$CARGO_DEB" -p camseal --profile "$PROFILE" --locked --target aarch64-unknown-linux-gnu \
    --output "$work/arm64.deb"
  arch=$(dpkg-deb --field "$work/arm64.deb" Architecture)
  [ "$arch" = arm64 ] || { echo "arm64 package says Architecture: $arch" >&2; exit 1; }
  mkdir "$work/arm64"
  dpkg-deb --extract "$work/arm64.deb" "$work/arm64"
  file -b "$work/arm64/usr/bin/camseal" 2>/dev/null | grep -q aarch64 \
    || od -An -tx1 -j18 -N2 "$work/arm64/usr/bin/camseal" | grep -q "b7 00" \
    || { echo "the arm64 package's binary is not an aarch64 ELF" >&2; exit 1; }
  echo "arm64 package: $(dpkg-deb --field "$work/arm64.deb" Package Version Architecture | tr '\n' ' ')"
fi

key=$(printf '%s' "$RECIPE" | sha256sum | cut -c1-16)
tarball=$CACHE/debian-root-$key.tar
if [ ! -f "$tarball" ]; then
  echo "==> mmdebstrap $RECIPE (once; cached as $tarball)"
  mkdir -p "$CACHE"
  # The name must end in .tar: mmdebstrap picks its output format from it.
  mmdebstrap --quiet --variant=minbase --include=systemd --mode=root --format=tar \
    "$SUITE" "$tarball.partial.tar" "$MIRROR"
  mv "$tarball.partial.tar" "$tarball"
fi
mkdir "$root"
tar -C "$root" -xf "$tarball"
mount -t proc proc "$root/proc"

# Anything the maintainer scripts would start is recorded here instead of being run.
cat >"$root/usr/sbin/policy-rc.d" <<'SH'
#!/bin/sh
echo "policy-rc.d $*" >>/tmp/starts
exit 101
SH
chmod 755 "$root/usr/sbin/policy-rc.d"
mv "$root/usr/bin/deb-systemd-invoke" "$root/usr/bin/deb-systemd-invoke.real"
cat >"$root/usr/bin/deb-systemd-invoke" <<'SH'
#!/bin/sh
echo "deb-systemd-invoke $*" >>/tmp/starts
SH
chmod 755 "$root/usr/bin/deb-systemd-invoke"
touch "$root/tmp/starts"
# As on a booted system: the maintainer scripts act on units only when systemd runs.
mkdir -p "$root/run/systemd/system"

fail() { echo "scripts/test-deb.sh: $*" >&2; exit 1; }
in_root() { chroot "$root" "$@"; }

echo "==> dpkg -i"
cp "$work/amd64.deb" "$root/tmp/camseal.deb"
in_root dpkg -i /tmp/camseal.deb
in_root dpkg -s camseal | grep -q '^Status: install ok installed' || fail "not installed"

echo "==> files"
for f in /usr/bin/camseal /etc/camseal/camseal.toml /usr/lib/udev/rules.d/60-camseal.rules \
  /usr/lib/sysusers.d/camseal.conf /usr/share/doc/camseal/BOARD.md \
  /usr/share/doc/camseal/CONFIG.md; do
  [ -f "$root$f" ] || fail "$f is missing"
done
unit=$(in_root dpkg -L camseal | grep '/systemd/system/camseal.service$') || fail "no unit in the package"
cmp "$root$unit" board/rk3588/camseal.service || fail "$unit differs from board/rk3588/camseal.service"
grep -qx /etc/camseal/camseal.toml "$root/var/lib/dpkg/info/camseal.conffiles" \
  || fail "/etc/camseal/camseal.toml is not a conffile"

echo "==> the user"
entry=$(in_root getent passwd camseal) || fail "no camseal user"
IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
[ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "camseal is not a system user: $entry"
[ "$home" = /var/lib/camseal ] && [ "$shell" = /usr/sbin/nologin ] || fail "camseal: $entry"
in_root getent group camseal >/dev/null || fail "no camseal group"
[ "$(in_root stat -c '%U:%G %a' /var/lib/camseal)" = "camseal:camseal 700" ] \
  || fail "/var/lib/camseal: $(in_root stat -c '%U:%G %a' /var/lib/camseal)"

echo "==> enabled, not started"
[ "$(systemctl --root="$root" is-enabled camseal.service)" = enabled ] || fail "the unit is not enabled"
[ -L "$root/etc/systemd/system/multi-user.target.wants/camseal.service" ] || fail "no wants link"
if grep -E ' (start|restart|try-restart|reload-or-restart)( |$)' "$root/tmp/starts"; then
  fail "the package asked to start the unit"
fi

echo "==> camseal in the root"
version=$(in_root camseal --version)
[ "$version" = "camseal $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" ] \
  || fail "camseal --version: $version"
# The installed settings are accepted (a settings error exits 2); what stops this run is
# the missing camera home, as the unit's conditions expect.
set +e
out=$(in_root runuser -u camseal -- camseal run --config /etc/camseal/camseal.toml 2>&1)
code=$?
set -e
[ "$code" = 1 ] && echo "$out" | grep -q /var/lib/camseal/camera \
  || fail "run --config /etc/camseal/camseal.toml as camseal: exit $code: $out"

echo "==> dpkg --purge"
in_root dpkg --purge camseal
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/camseal.service" ] || fail "the wants link outlived the purge"
[ ! -e "$root/etc/camseal/camseal.toml" ] || fail "the conffile outlived the purge"
[ ! -e "$root/usr/bin/camseal" ] || fail "the binary outlived the purge"

echo "scripts/test-deb.sh: the package installs, sets up the user and an enabled, unstarted unit, and purges"
