#!/usr/bin/env bash
# Rates the service unit's sandbox with systemd's own scorer and fails above an exposure of
# 2.0 ("OK" or better). Offline: no running systemd is needed (systemd 250 or newer).
#
#   scripts/test-unit-security.sh [UNIT]      default board/rk3588/camseal.service
set -euo pipefail
cd "$(dirname "$0")/.."
unit=${1:-board/rk3588/camseal.service}
limit=2.0

if ! command -v systemd-analyze >/dev/null; then
  if [ -n "${CAMSEAL_SKIP_INSTALL:-}" ] && [ "${CI:-}" != true ]; then
    echo "systemd-analyze is not installed (CAMSEAL_SKIP_INSTALL set): unit not rated"
    exit 0
  fi
  echo "systemd-analyze is missing (scripts/install-deps.sh installs systemd)" >&2
  exit 1
fi

report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || {
  echo "$report" >&2
  echo "systemd-analyze could not rate $unit" >&2
  exit 1
}
# The last line: "→ Overall exposure level for camseal.service: 1.6 OK 🙂"
exposure=$(echo "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' | tail -n1)
if [ -z "$exposure" ]; then
  echo "$report" >&2
  echo "no exposure level in systemd-analyze's report" >&2
  exit 1
fi
echo "$report" | grep '✗' || true
if awk -v e="$exposure" -v l="$limit" 'BEGIN { exit !(e > l) }'; then
  echo "$unit: exposure $exposure is above $limit" >&2
  exit 1
fi
echo "$unit: exposure $exposure (at most $limit)"
