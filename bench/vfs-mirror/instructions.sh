#!/usr/bin/env bash
# The drives' own work per operation, counted in instructions: the memory and mirror drives
# (release builds) run under `valgrind --tool=callgrind` while nsbench (bench/tools) creates,
# opens, stats, lists, renames and deletes COUNT entries on them, and once more with a single
# entry: the difference is the server's user-space instructions for the COUNT - 1 extra
# entries, without its startup and shutdown. Unlike wall-clock rates, the count
# repeats to within a fraction of a percent whatever else the machine is doing, so it shows
# a change's cost on a shared machine. With BEFORE=REV the same drives built at REV run too,
# and the ratios after/before are printed.
#
# Usage (as root): bench/vfs-mirror/instructions.sh
# Environment: CARGO_TARGET_DIR (default: target), COUNT (500), BEFORE (a revision),
# BEFORE_TARGET (where REV is built; default target/bench-before, kept between runs).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/vfs-mirror/instructions.sh: run as root (FUSE mounts)" >&2; exit 1; }
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
COUNT=${COUNT:-500}
TARGET=${CARGO_TARGET_DIR:-target}
BEFORE=${BEFORE:-}
BEFORE_TARGET=${BEFORE_TARGET:-$PWD/target/bench-before}
cargo build --release -q -p fsgate-cli -p fsgate-bench-tools
WORK=$(mktemp -d /tmp/fsgate-bench-instructions.XXXXXX)
cleanup() {
    for m in "$WORK"/m-*; do mountpoint -q "$m" && umount -l "$m"; done
    [ -d "$WORK/before-src" ] && git worktree remove --force "$WORK/before-src"
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "$BEFORE" ]; then
    git worktree add -q --detach "$WORK/before-src" "$BEFORE"
    (cd "$WORK/before-src" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build --release -q -p fsgate-cli)
fi

count() {  # count N NAME FSGATE DRIVE-ARGS... — the server's instruction total for N entries
    local n=$1 name=$2 bin=$3; shift 3
    mkdir -p "$WORK/m-$name"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.out" \
        "$bin" mount "$@" "$WORK/m-$name" 2>"$WORK/$name.err" &
    local pid=$!
    until grep -q '^ready:' "$WORK/$name.err"; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.2
    done
    mkdir "$WORK/m-$name/ns"
    "$TARGET/release/nsbench" "$WORK/m-$name/ns" "$n" >/dev/null
    rmdir "$WORK/m-$name/ns"
    kill -TERM "$pid"
    wait "$pid" || true
    grep -m1 '^summary:' "$WORK/$name.out" | cut -d' ' -f2
}

work() {  # work NAME FSGATE DRIVE-ARGS... — instructions for COUNT - 1 entries
    local many one
    many=$(count "$COUNT" "$@")
    one=$(count 1 "$1-one" "${@:2}")
    echo $((many - one))
}

mkdir -p "$WORK/src-memory" "$WORK/src-mirror" "$WORK/src-memory-before" "$WORK/src-mirror-before"
printf '%-10s %14s' drive instructions
[ -n "$BEFORE" ] && printf ' %14s %8s' "at $BEFORE" ratio
echo
for drive in memory mirror; do
    args=("$drive"); [ "$drive" = mirror ] && args+=("$WORK/src-mirror")
    after=$(work "$drive" "$TARGET/release/fsgate" "${args[@]}")
    printf '%-10s %14s' "$drive" "$after"
    if [ -n "$BEFORE" ]; then
        args=("$drive"); [ "$drive" = mirror ] && args+=("$WORK/src-mirror-before")
        before=$(work "$drive-before" "$BEFORE_TARGET/release/fsgate" "${args[@]}")
        printf ' %14s %7.3fx' "$before" "$(python3 -c "print($after / $before)")"
    fi
    echo
done
