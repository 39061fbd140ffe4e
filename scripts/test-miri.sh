#!/usr/bin/env bash
# Runs the pure code's unit tests under Miri (undefined behaviour, out-of-bounds and
# uninitialised reads, in our code and in what it calls): the NAL parser (camseal-nal), and
# camseal's chunker (`chunk::`), SFrame (`seal::`) and segment codec (`segment::`: header,
# records, checkpoints, trailer, stream head, padding) modules. See docs/SECURITY_CHECKS.md
# for the tests skipped and why.
#
#   scripts/test-miri.sh          install the nightly miri component if missing, then run
#   CAMSEAL_SKIP_INSTALL=1        do not install; skip (saying so) when Miri is absent
#
# Tests Miri cannot run (files, FFI, wall clock) are `#[cfg_attr(miri, ignore)]` with the
# reason beside them. Proptests run a few cases only: Miri is ~1000x slower than native, and
# the property tests already run in full in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ]; then
    echo "Miri is not installed (CAMSEAL_SKIP_INSTALL set): Miri tests not run"
    exit 0
  fi
  rustup toolchain install nightly --profile minimal --component miri,rust-src
  rustup component add --toolchain nightly miri rust-src
fi

export PROPTEST_CASES=${PROPTEST_CASES:-4}
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1
# proptest looks for its regression files (getcwd): let that fail quietly instead of
# stopping the run; nothing else in these tests touches the host.
# Isolation hides the host's environment from the tests: forward the two proptest settings,
# or every property test runs its default 256 cases.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-isolation-error=warn-nobacktrace -Zmiri-env-forward=PROPTEST_CASES -Zmiri-env-forward=PROPTEST_DISABLE_FAILURE_PERSISTENCE}"

cargo +nightly miri test --locked -p camseal-nal --lib
# Test-name filters: only these modules' tests (the rest of camseal's unit tests touch files,
# threads or the clock).
cargo +nightly miri test --locked -p camseal --lib -- chunk:: seal:: segment::
