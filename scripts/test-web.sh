#!/usr/bin/env bash
# Browser tests of the web viewer (`camseal view`, docs/VIEWER.md) in Debian's headless
# chromium, driven by chromedriver with python3-selenium (scripts/web_test.py): recorded
# footage plays and shows the test pattern, live view shows a frame within 2 s of joining,
# a wrong key and a tampered segment each show a visible error, and the page makes no
# request outside its own origin. Screenshots are kept under target/web-test/.
#
# Needs chromium, chromium-driver, python3-selenium and python3-pil (scripts/install-deps.sh).
# Missing tools fail the run under CI=true, and skip it elsewhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
t0=$SECONDS
py=/usr/bin/python3  # Debian's, which has python3-selenium and python3-pil

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
"$py" -c 'import selenium' 2>/dev/null || missing+=(python3-selenium)
"$py" -c 'import PIL' 2>/dev/null || missing+=(python3-pil)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-web: FAIL: missing ${missing[*]} (scripts/install-deps.sh installs them)"
    exit 1
  fi
  echo "test-web: SKIP: missing ${missing[*]} (scripts/install-deps.sh installs them)"
  exit 0
fi

web_root=$(scripts/build-web.sh | tail -n 1)
echo "test-web: building camseal" >&2
nice -n 5 cargo build --locked -p camseal --bin camseal >&2
out="$root/target/web-test"
rm -rf "$out"
mkdir -p "$out"
status=0
"$py" scripts/web_test.py target/debug/camseal "$web_root" "$out" || status=$?
echo "test-web: screenshots in target/web-test/; took $((SECONDS - t0)) s"
exit $status
