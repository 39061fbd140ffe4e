#!/usr/bin/env bash
# Generates the C header of libcamseal, pipeline/capi/include/camseal.h, with cbindgen
# (pinned below, installed once into a cache outside the repository).
#
#   scripts/capi-header.sh           rewrite the checked-in header
#   scripts/capi-header.sh --check   fail if the checked-in header is out of date
#   CAMSEAL_SKIP_INSTALL=1           do not install cbindgen; without it, skip (saying so),
#                                    except under CI=true, where that fails
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.29.4
CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
ROOT=$CACHE/cbindgen-$VERSION
HEADER=pipeline/capi/include/camseal.h

if [ ! -x "$ROOT/bin/cbindgen" ]; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ]; then
    if [ "${CI:-}" = true ]; then
      echo "cbindgen $VERSION is not installed and CI=true: cannot check $HEADER" >&2
      exit 1
    fi
    echo "cbindgen $VERSION is not installed (CAMSEAL_SKIP_INSTALL set): $HEADER not checked"
    exit 0
  fi
  echo "installing cbindgen $VERSION into $ROOT (once; cached)" >&2
  CARGO_TARGET_DIR="$CACHE/cbindgen-build" cargo install cbindgen --version "$VERSION" \
    --locked --root "$ROOT" >&2
  rm -rf "$CACHE/cbindgen-build"
fi

generated=$(mktemp "${TMPDIR:-/tmp}/camseal-h.XXXXXX")
trap 'rm -f "$generated"' EXIT
"$ROOT/bin/cbindgen" --quiet --config pipeline/capi/cbindgen.toml --crate camseal-capi \
  --output "$generated" pipeline/capi

if [ "${1:-}" = --check ]; then
  if ! diff -u "$HEADER" "$generated"; then
    echo "$HEADER is out of date: run scripts/capi-header.sh and commit the result" >&2
    exit 1
  fi
  echo "$HEADER is up to date"
else
  cp "$generated" "$HEADER"
  echo "wrote $HEADER"
fi
