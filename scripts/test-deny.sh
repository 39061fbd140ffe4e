#!/usr/bin/env bash
# Dependency policy: licences, bans and sources of everything in Cargo.lock, against
# deny.toml. Offline: advisories need the RustSec database (docs/SECURITY_CHECKS.md).
#
#   scripts/test-deny.sh        install cargo-deny (pinned, cached) if missing, then check
#   CAMSEAL_SKIP_INSTALL=1      do not install; skip (saying so) when cargo-deny is absent
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.20.2
CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
ROOT=$CACHE/cargo-deny-$VERSION

if [ ! -x "$ROOT/bin/cargo-deny" ]; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ]; then
    echo "cargo-deny $VERSION is not installed (CAMSEAL_SKIP_INSTALL set): dependency policy not checked"
    exit 0
  fi
  echo "installing cargo-deny $VERSION into $ROOT (once; cached)" >&2
  CARGO_TARGET_DIR="$CACHE/cargo-deny-build" cargo install cargo-deny --version "$VERSION" \
    --locked --root "$ROOT" >&2
  rm -rf "$CACHE/cargo-deny-build"
fi

# cargo deny reads every platform's crates (macOS and Windows ones included) from the local
# registry: fetch the ones a build on this host never downloaded. Offline, whatever is
# still missing is reported by cargo deny itself.
cargo fetch --locked >/dev/null 2>&1 || true
PATH=$ROOT/bin:$PATH cargo deny --offline check licenses bans sources
