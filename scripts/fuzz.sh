#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (see fuzz/README.md), each from its committed seed
# corpus, for a short time. Fails if any target crashes; libFuzzer then prints the input it
# saved (under the scratch directory below) and how to rerun it.
#
#   scripts/fuzz.sh [--seconds N] [TARGET]   every target (or TARGET) for N s (default 20)
#   CAMSEAL_SKIP_INSTALL=1                   do not install cargo-fuzz or the nightly
#                                            toolchain; skip (saying so) when absent
#
# The committed corpus is not modified: each run copies it into a scratch corpus. Builds go
# to a cache outside the repository ($CACHE/fuzz-target).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
only=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) only=$1; shift ;;
  esac
done

VERSION=0.13.2
CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
ROOT=$CACHE/cargo-fuzz-$VERSION

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ]; then
    echo "no nightly toolchain (CAMSEAL_SKIP_INSTALL set): fuzz targets not run"
    exit 0
  fi
  rustup toolchain install nightly --profile minimal
fi
if [ ! -x "$ROOT/bin/cargo-fuzz" ]; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ]; then
    echo "cargo-fuzz $VERSION is not installed (CAMSEAL_SKIP_INSTALL set): fuzz targets not run"
    exit 0
  fi
  echo "installing cargo-fuzz $VERSION into $ROOT (once; cached)" >&2
  CARGO_TARGET_DIR="$CACHE/cargo-fuzz-build" cargo install cargo-fuzz --version "$VERSION" \
    --locked --root "$ROOT" >&2
  rm -rf "$CACHE/cargo-fuzz-build"
fi
export PATH=$ROOT/bin:$PATH
export CARGO_TARGET_DIR=$CACHE/fuzz-target

targets=$(cd fuzz && cargo +nightly fuzz list)
if [ -n "$only" ]; then
  echo "$targets" | grep -qx "$only" || { echo "no fuzz target $only (have: $targets)" >&2; exit 2; }
  targets=$only
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/camseal-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
(cd fuzz && cargo +nightly fuzz build)
failed=()
for t in $targets; do
  echo "==> fuzz target $t for ${seconds}s"
  mkdir -p "$scratch/corpus/$t" "$scratch/artifacts/$t"
  cp -r "fuzz/corpus/$t/." "$scratch/corpus/$t/"
  # -rss_limit_mb: the readers hold at most a record (16 MiB) and 64 MiB of unsigned
  # plaintext; 2 GiB catches a runaway allocation without tripping on those.
  if ! (cd fuzz && cargo +nightly fuzz run "$t" "$scratch/corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$scratch/artifacts/$t/"); then
    failed+=("$t")
    keep=fuzz/crash-artifacts/$t
    mkdir -p "$keep" && cp -r "$scratch/artifacts/$t/." "$keep/"
    echo "fuzz target $t crashed: inputs kept in $keep" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "scripts/fuzz.sh: every target ran ${seconds}s without a crash: $(echo $targets)"
