#!/usr/bin/env bash
# Tests libcamseal as a C program uses it (scripts/test.sh runs this):
#   1. the checked-in camseal.h is what cbindgen generates (scripts/capi-header.sh --check);
#   2. scripts/install-capi.sh installs into a temporary PREFIX, and
#      `pkg-config --cflags --libs camseal` names that PREFIX;
#   3. examples/c/seal_file.c builds with gcc against the installed header and libraries, and
#      seals H.264 and H.265 fixtures (a) under AddressSanitizer, linked with the static
#      library, and (b) under valgrind --error-exitcode=1 --leak-check=full, linked with the
#      shared library;
#   4. `camseal decrypt` of each output is byte-identical to its input.
#
# Needs gcc, make, pkg-config, readelf and valgrind (scripts/install-deps.sh); a missing
# one skips the test, saying so, except under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

missing=()
for tool in gcc make pkg-config readelf valgrind; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-capi: missing ${missing[*]} (scripts/install-deps.sh installs them)" >&2
    exit 1
  fi
  echo "test-capi: missing ${missing[*]}: the C ABI test is skipped"
  exit 0
fi

scripts/capi-header.sh --check

work=$(mktemp -d "${TMPDIR:-/tmp}/camseal-capi.XXXXXX")
trap '[ -n "${CAMSEAL_KEEP_CAPI:-}" ] || rm -rf "$work"' EXIT
prefix=$work/prefix
scripts/install-capi.sh "$prefix"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=$(pkg-config --cflags camseal | xargs)
libs=$(pkg-config --libs camseal | xargs)
echo "pkg-config --cflags --libs camseal: $cflags $libs"
[ "$cflags" = "-I$prefix/include" ] || { echo "unexpected --cflags: $cflags" >&2; exit 1; }
[ "$libs" = "-L$prefix/lib -lcamseal" ] || { echo "unexpected --libs: $libs" >&2; exit 1; }

cd "$root/examples/c"
# (a) AddressSanitizer: the example and its use of the API are instrumented; the Rust side
# is the static library linked in as is (its heap goes through ASan's malloc, so a release
# callback that frees a buffer camseal still reads shows up). LeakSanitizer stays on.
make -s clean
make -s STATIC=1 CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address -fno-omit-frame-pointer" \
  LDFLAGS=-fsanitize=address
mv seal_file "$work/seal_file_asan"
# (b) valgrind: the example linked with the shared library.
make -s clean
make -s CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Werror"
mv seal_file "$work/seal_file_shared"
cd "$root"
if readelf -d "$work/seal_file_shared" | grep -q 'NEEDED.*libcamseal.so.0'; then :; else
  echo "seal_file_shared is not linked with libcamseal.so.0" >&2
  exit 1
fi
if readelf -d "$work/seal_file_asan" | grep -q 'libcamseal'; then
  echo "seal_file_asan should be linked with the static library" >&2
  exit 1
fi

cargo build --locked -q -p camseal --bin camseal
camseal=${CARGO_TARGET_DIR:-target}/debug/camseal
viewer=$work/viewer
camera=$work/camera
"$camseal" viewer init --home "$viewer" >/dev/null
"$camseal" viewer recipients --home "$viewer" --out "$work/recipients.list" >/dev/null
"$camseal" camera init --home "$camera" >/dev/null
"$camseal" camera trust --home "$camera" "$work/recipients.list" >/dev/null
"$camseal" viewer cameras add --home "$viewer" "$camera/camera.pub" >/dev/null

streams=pipeline/tests/data/streams
# Each run records its own camera stream, so each output directory is a whole stream.
check() {
  local name=$1 input=$2 stream=$3
  shift 3
  local out=$work/out-$name
  echo "==> $name: $*"
  "$@" --stream "$stream" "$camera" "$input" "$out"
  "$camseal" decrypt --home "$viewer" --out "$work/$name.plain" "$out" >/dev/null
  if ! cmp "$input" "$work/$name.plain"; then
    echo "$name: decrypted output differs from $input" >&2
    exit 1
  fi
  echo "$name: decrypts byte-identical to $(basename "$input")"
}

ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  check asan-h264 "$streams/h264-baseline-320x240.h264" 1 "$work/seal_file_asan" --fps 25
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  check asan-h265 "$streams/h265-main-640x360.h265" 2 "$work/seal_file_asan" --h265 --fps 25
check valgrind-h264 "$streams/h264-baseline-320x240.h264" 3 \
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
  --suppressions=scripts/capi-valgrind.supp \
  "$work/seal_file_shared" --fps 25
echo "test-capi: all checks passed"
