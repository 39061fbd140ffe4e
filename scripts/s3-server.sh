#!/usr/bin/env bash
# A local S3-protocol server for the uploader tests: s3s-fs from crates.io, which checks
# SigV4 signatures. Loopback only.
#
#   scripts/s3-server.sh install        cargo install s3s-fs into a cache outside the repo
#                                       (keyed by version; skipped when already there)
#   scripts/s3-server.sh start [PORT]   start it on 127.0.0.1:PORT (default 9000) with a
#                                       bucket `camseal-test`; prints `export` lines for the
#                                       tests (eval them)
#   scripts/s3-server.sh stop [PORT]    stop the server this script started on PORT (default 9000)
#   scripts/s3-server.sh bin            print the server binary's path
#
# The tests read CAMSEAL_TEST_S3_ENDPOINT (and _BUCKET, _ACCESS_KEY, _SECRET_KEY, _BIN);
# without it they skip, saying why.
#
# State (objects, pid, log) lives in CAMSEAL_S3_STATE if set, else in a directory keyed by
# user and port, so servers on two ports (two checkouts testing at once) neither share
# objects nor stop each other.
set -euo pipefail

VERSION=0.14.1
CACHE=${CAMSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camseal}
ROOT=$CACHE/s3s-fs-$VERSION
BIN=$ROOT/bin/s3s-fs

# The state directory of the server on port $1.
state_dir() {
  echo "${CAMSEAL_S3_STATE:-${TMPDIR:-/tmp}/camseal-s3-$(id -u)-$1}"
}
ACCESS_KEY=camseal-test
SECRET_KEY=camseal-test-secret
BUCKET=camseal-test

install() {
  if [ -x "$BIN" ]; then
    return 0
  fi
  echo "installing s3s-fs $VERSION into $ROOT (once; cached)" >&2
  CARGO_TARGET_DIR="$CACHE/s3s-build" cargo install s3s-fs --version "$VERSION" --locked \
    --features binary --root "$ROOT" >&2
  rm -rf "$CACHE/s3s-build"
}

wait_port() {
  local port=$1 STATE
  STATE=$(state_dir "$port")
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "s3s-fs did not start on 127.0.0.1:$port (log: $STATE/server.log)" >&2
  return 1
}

start() {
  local port=${1:-9000} STATE
  STATE=$(state_dir "$port")
  [ -x "$BIN" ] || { echo "s3s-fs is not installed: run $0 install" >&2; exit 1; }
  stop "$port"
  mkdir -p "$STATE/data/$BUCKET"
  nohup "$BIN" --host 127.0.0.1 --port "$port" --access-key "$ACCESS_KEY" \
    --secret-key "$SECRET_KEY" "$STATE/data" >"$STATE/server.log" 2>&1 &
  echo $! >"$STATE/pid"
  wait_port "$port"
  echo "export CAMSEAL_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
  echo "export CAMSEAL_TEST_S3_BUCKET=$BUCKET"
  echo "export CAMSEAL_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
  echo "export CAMSEAL_TEST_S3_SECRET_KEY=$SECRET_KEY"
  echo "export CAMSEAL_TEST_S3_BIN=$BIN"
}

stop() {
  local STATE
  STATE=$(state_dir "${1:-9000}")
  if [ -f "$STATE/pid" ]; then
    local pid
    pid=$(cat "$STATE/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$STATE/pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  bin) echo "$BIN" ;;
  *) echo "usage: $0 install|start [PORT]|stop [PORT]|bin" >&2; exit 2 ;;
esac
