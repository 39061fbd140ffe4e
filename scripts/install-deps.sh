#!/usr/bin/env bash
# Installs what building and testing camseal needs on a Debian machine. Idempotent: it
# skips what is already there, so a warm machine pays only for the checks.
set -euo pipefail

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# OpenH264 (the soft source) builds its x86 assembly only when nasm is present: about 2x
# faster encoding.
command -v nasm >/dev/null || need_apt+=(nasm)
# The uploader's clock-skew tests run the camera under libfaketime (tests/upload_strict.rs).
command -v faketime >/dev/null || need_apt+=(faketime)
# The uploader's TLS test makes a private CA with the openssl command.
command -v openssl >/dev/null || need_apt+=(openssl)
# The service unit's exposure rating (scripts/test-unit-security.sh) and the Debian package's
# install test in a fresh Debian root (scripts/test-deb.sh).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
