#!/usr/bin/env bash
# The test command: installs what the tests need (when it can), then runs formatting, lints
# and every test. `.ci/run` calls exactly this; a developer runs it the same way.
#
#   scripts/test.sh            everything
#   CAMSEAL_SKIP_INSTALL=1     do not apt-get/rustup anything (offline machines)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Each step's wall time goes to target/test-timings.txt (printed at the end, also when a step
# fails), so the CI budget in DEVELOPERS.md can be watched step by step.
mkdir -p target
timings=target/test-timings.txt
: > "$timings"
started=$SECONDS
step() {
  local title=$1 t0=$SECONDS
  shift
  log "$title"
  "$@"
  printf '%6ds  %s\n' $((SECONDS - t0)) "$title" >> "$timings"
}
print_timings() {
  echo
  echo "step timings (target/test-timings.txt), $((SECONDS - started)) s in all:"
  cat "$timings"
}

if [ -z "${CAMSEAL_SKIP_INSTALL:-}" ]; then
  step "installing test prerequisites" scripts/install-deps.sh
  step "installing the local S3 server" scripts/s3-server.sh install
fi

# The uploader tests talk to a real S3-protocol server on loopback.
if [ -x "$(scripts/s3-server.sh bin)" ]; then
  log "starting the local S3 server (scripts/s3-server.sh)"
  eval "$(scripts/s3-server.sh start "${CAMSEAL_TEST_S3_PORT:-39000}")"
  trap 'scripts/s3-server.sh stop "${CAMSEAL_TEST_S3_PORT:-39000}"; print_timings' EXIT
else
  trap print_timings EXIT
  echo "s3s-fs is not installed (CAMSEAL_SKIP_INSTALL set?): the S3 upload tests will skip (and fail under CI=true)"
fi

step "cargo fmt --check" cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)" cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace" cargo test --workspace --all-targets --locked

step "doc tests" cargo test --workspace --doc --locked

step "C ABI: header, install, the C example under ASan and valgrind (scripts/test-capi.sh)" scripts/test-capi.sh
step "GStreamer element camsealsink: round trips, state stress (scripts/test-gst.sh)" scripts/test-gst.sh

step "web viewer in headless chromium: playback, live, errors, origins (scripts/test-web.sh)" scripts/test-web.sh

step "README walkthrough, every command as written (scripts/readme-walkthrough.sh)" scripts/readme-walkthrough.sh

step "aarch64 under QEMU (scripts/test-aarch64.sh)" scripts/test-aarch64.sh

step "V4L2 backends on vivid/vicodec under QEMU (scripts/test-v4l2-qemu.sh)" scripts/test-v4l2-qemu.sh

step "dependency policy: cargo deny check licenses bans sources (scripts/test-deny.sh)" scripts/test-deny.sh

step "Miri on the pure crates' unit tests (scripts/test-miri.sh)" scripts/test-miri.sh

step "fuzz targets, about 10 s each (scripts/fuzz.sh)" scripts/fuzz.sh --seconds "${CAMSEAL_FUZZ_SECONDS:-10}"

step "power cuts of a spooling camera under QEMU (scripts/test-power-cut.sh)" scripts/test-power-cut.sh

step "the service unit's systemd exposure rating, at most 2.0 (scripts/test-unit-security.sh)" scripts/test-unit-security.sh

step "the Debian package installed in a fresh Debian root (scripts/test-deb.sh)" scripts/test-deb.sh

step "board images built twice (equal sha256), booted in QEMU, RAUC A/B update (scripts/qemu-boot-test.sh)" scripts/qemu-boot-test.sh

echo
echo "scripts/test.sh: all checks passed"
