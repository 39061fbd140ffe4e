#!/usr/bin/env bash
# Runs README.md's walkthrough exactly as written: the first ```sh block under
# "## Walkthrough", one command at a time, in a fresh directory with a fresh $HOME and the
# camseal binary first on the PATH. Each command gets empty standard input, except
# `viewer restore`, which is typed the passphrase that `viewer init` printed (as a person
# would). Stops at the first command that fails, naming it.
#
# Usage: scripts/readme-walkthrough.sh [PATH/TO/camseal]
#   default: $CARGO_TARGET_DIR (or ./target)/debug/camseal, built if missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/camseal}
if [[ ! -x $bin ]]; then
    cargo build -p camseal --bin camseal --manifest-path "$root/Cargo.toml"
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/home" "$scratch/work" "$scratch/bin"
ln -s "$bin" "$scratch/bin/camseal"

# The block's lines, with `\` continuations joined, comments and blank lines dropped.
mapfile -t commands < <(awk '
    /^## Walkthrough/ { section = 1; next }
    section && !inblock && /^```sh$/ { inblock = 1; next }
    inblock && /^```$/ { exit }
    inblock {
        if (sub(/\\$/, "")) { pending = pending $0; next }
        line = pending $0; pending = ""
        if (line ~ /^[[:space:]]*(#|$)/) next
        print line
    }' "$root/README.md")
if (( ${#commands[@]} < 10 )); then
    echo "readme-walkthrough: found only ${#commands[@]} commands in README.md's walkthrough" >&2
    exit 1
fi

cd "$scratch/work"
export HOME=$scratch/home PATH=$scratch/bin:$PATH
passphrase=$scratch/passphrase
: >"$passphrase"
n=0
for cmd in "${commands[@]}"; do
    n=$((n + 1))
    echo "+ $cmd"
    input=/dev/null
    if [[ $cmd == *"viewer restore"* ]]; then
        input=$passphrase
    fi
    if ! bash -c "$cmd" <"$input" >"$scratch/out" 2>"$scratch/err"; then
        cat "$scratch/out" "$scratch/err"
        echo "readme-walkthrough: command $n failed as written: $cmd" >&2
        exit 1
    fi
    if [[ $cmd == *"viewer init"* ]]; then
        # The passphrase is the indented line after "Recovery passphrase".
        awk '/^Recovery passphrase/ { grab = 1; next } grab && NF { sub(/^ +/, ""); print; exit }' \
            "$scratch/out" >"$passphrase"
    fi
done
echo "readme-walkthrough: all $n commands of README.md's walkthrough ran as written"
