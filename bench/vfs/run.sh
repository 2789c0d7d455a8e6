#!/usr/bin/env bash
# The memory drive (`fsgate mount memory`, FUSE) against tmpfs (the in-kernel limit), in one
# run: fio sequential 1 MiB write and read, fio 4 KiB random read (MiB/s, buffered I/O), and a
# create/stat/unlink loop over 10,000 files (files/s). Prints a table with memory/tmpfs ratios.
#
# Usage (as root): bench/vfs/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SEQ_SIZE (default 256M), RAND_SIZE
# (default 64M), RAND_SECONDS (default 10), FILES (default 10000).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/vfs/run.sh: run as root (mounts tmpfs and FUSE)" >&2; exit 1; }
command -v fio >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null; }

SEQ_SIZE=${SEQ_SIZE:-256M}
RAND_SIZE=${RAND_SIZE:-64M}
RAND_SECONDS=${RAND_SECONDS:-10}
FILES=${FILES:-10000}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p fsgate-cli
FSGATE="$TARGET/release/fsgate"

WORK=$(mktemp -d /tmp/fsgate-bench-vfs.XXXXXX)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    mountpoint -q "$WORK/tmpfs" && umount "$WORK/tmpfs"
    mountpoint -q "$WORK/memory" && umount -l "$WORK/memory"
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir "$WORK/tmpfs" "$WORK/memory"
mount -t tmpfs -o size=2G tmpfs "$WORK/tmpfs"
"$FSGATE" mount memory "$WORK/memory" 2>"$WORK/server.err" &
SERVER=$!
until grep -q '^ready:' "$WORK/server.err"; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.err" >&2; exit 1; }
    sleep 0.1
done

# fio JOB-ARGS... in DIR → MiB/s of the job's read or write side.
fio_mibs() {
    local dir=$1 side=$2; shift 2
    fio --name=bench --directory="$dir" --filename=bench.dat --direct=0 --ioengine=psync \
        --numjobs=1 --output-format=json "$@" \
        | python3 -c "import json,sys; print(f\"{json.load(sys.stdin)['jobs'][0]['$side']['bw'] / 1024:.1f}\")"
}

declare -A RESULT
for fs in tmpfs memory; do
    dir="$WORK/$fs"
    RESULT[$fs,seqwrite]=$(fio_mibs "$dir" write --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1)
    RESULT[$fs,seqread]=$(fio_mibs "$dir" read --rw=read --bs=1M --size="$SEQ_SIZE")
    rm -f "$dir/bench.dat"
    RESULT[$fs,randread]=$(fio_mibs "$dir" read --rw=randread --bs=4k --size="$RAND_SIZE" \
        --runtime="$RAND_SECONDS" --time_based)
    rm -f "$dir/bench.dat"
    mkdir "$dir/files"
    RESULT[$fs,files]=$(python3 bench/vfs/files.py "$dir/files" "$FILES")
    rmdir "$dir/files"
done

printf '%-36s %12s %14s %8s\n' workload tmpfs "memory drive" ratio
row() {
    printf '%-36s %12s %14s %8s\n' "$1" "${RESULT[tmpfs,$2]}" "${RESULT[memory,$2]}" \
        "$(python3 -c "print(f'{${RESULT[memory,$2]} / ${RESULT[tmpfs,$2]}:.3f}')")"
}
row "fio seq write 1 MiB (MiB/s)" seqwrite
row "fio seq read 1 MiB (MiB/s)" seqread
row "fio rand read 4 KiB (MiB/s)" randread
row "create/stat/unlink $FILES files (files/s)" files
