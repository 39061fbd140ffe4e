#!/usr/bin/env bash
# Builds the fake Rockchip MPP library (hal/fake-mpp) and prints the absolute path of the
# shared object, for CAMSEAL_MPP_LIB:
#
#   CAMSEAL_MPP_LIB=$(scripts/fake-mpp.sh) FAKE_MPP_STREAM=in.h264 \
#     camseal run --home C --source rkmpp:1280x720@30 --out D
#
# It builds into its own target directory (under CARGO_TARGET_DIR, or target/), so it can run
# while another cargo command holds the main one, e.g. from inside `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/fake-mpp"
cargo build --quiet --locked --manifest-path "$root/Cargo.toml" -p camseal-fake-mpp \
  --target-dir "$target" >&2
lib="$target/debug/libfake_rockchip_mpp.so"
[ -f "$lib" ] || { echo "fake-mpp.sh: $lib was not built" >&2; exit 1; }
echo "$lib"
