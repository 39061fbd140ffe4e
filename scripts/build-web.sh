#!/usr/bin/env bash
# Builds the browser viewer's files (docs/VIEWER.md) into target/share/camseal/web/: the
# page (pipeline/web/static) and the reader core compiled to WebAssembly with its
# wasm-bindgen glue (pkg/). `camseal view` finds them there by default when it runs as
# target/{debug,release}/camseal (`<exe>/../share/camseal/web`); elsewhere pass --web-root.
#
# Installs what it needs: the wasm32-unknown-unknown target (rustup), and wasm-bindgen-cli
# of exactly the version of the wasm-bindgen crate in Cargo.lock (the two must match), built
# once into ${XDG_CACHE_HOME:-~/.cache}/camseal/wasm-bindgen-cli-VERSION.
#
#   CAMSEAL_WEB_OUT=DIR   where the files go (default target/share/camseal/web)
#
# Prints the output directory on its last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${CAMSEAL_WEB_OUT:-$root/target/share/camseal/web}"

say() { echo "build-web: $*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >&2
fi

# The wasm-bindgen crate version Cargo.lock holds.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { say "no wasm-bindgen in Cargo.lock"; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/camseal/wasm-bindgen-cli-$version"
bindgen="$cache/bin/wasm-bindgen"
if [ ! -x "$bindgen" ] || [ "$("$bindgen" --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  say "installing wasm-bindgen-cli $version into $cache (once; a few minutes)"
  rm -rf "$cache.tmp"
  # --locked first: the tool's own tested dependency set. A registry mirror that lacks one
  # of those exact versions makes it fail; then the newest compatible versions are used.
  if ! nice -n 5 cargo install --quiet --locked wasm-bindgen-cli --version "$version" --root "$cache.tmp" >&2; then
    say "--locked install failed; installing with the newest compatible dependencies"
    nice -n 5 cargo install --quiet wasm-bindgen-cli --version "$version" --root "$cache.tmp" >&2
  fi
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
fi

say "building pipeline/web for wasm32-unknown-unknown"
nice -n 5 cargo build --locked --release -p camseal-web --target wasm32-unknown-unknown >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg"
"$bindgen" --target web --no-typescript --out-dir "$out.tmp/pkg" \
  target/wasm32-unknown-unknown/release/camseal_web.wasm
cp pipeline/web/static/* "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
