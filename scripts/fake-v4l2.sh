#!/usr/bin/env bash
# Builds the V4L2 encoder stand-in (hal/fake-v4l2, an LD_PRELOAD shim) and prints the absolute
# path of the shared object:
#
#   LD_PRELOAD=$(scripts/fake-v4l2.sh) FAKE_V4L2_PROFILE=venus-old \
#     camseal run --home C --source v4l2-m2m:/dev/fake-v4l2-enc:640x360@30 --out D
#
# FAKE_V4L2_PROFILE=bcm2835|venus-old|mediatek picks the driver modelled (default bcm2835),
# FAKE_V4L2_DEVICE the fake node's path (default /dev/fake-v4l2-enc), FAKE_V4L2_FAULT faults
# (error:N, reorder:N; see hal/fake-v4l2/src/faults.rs).
#
# It builds into its own target directory (under CARGO_TARGET_DIR, or target/), so it can run
# while another cargo command holds the main one, e.g. from inside `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/fake-v4l2"
cargo build --quiet --locked --manifest-path "$root/Cargo.toml" -p camseal-fake-v4l2 \
  --target-dir "$target" >&2
lib="$target/debug/libfake_v4l2.so"
[ -f "$lib" ] || { echo "fake-v4l2.sh: $lib was not built" >&2; exit 1; }
echo "$lib"
