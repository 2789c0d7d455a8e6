#!/usr/bin/env bash
# The dispatcher's fast path on the memory drive: nsbench (10,000 entries) with one FUSE
# reader thread (every event handed to a worker) against the default four (idle files'
# events run on the reader that received them), interleaved over ROUNDS rounds; prints each
# round and the ratio of the medians.
#
# Usage (as root): bench/vfs/fastpath.sh    Environment: CARGO_TARGET_DIR, ROUNDS (3), COUNT (10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/vfs/fastpath.sh: run as root (FUSE mounts)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-10000}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p fsgate-cli
cargo build --release -q -p fsgate-bench-tools
FSGATE="$TARGET/release/fsgate"
NSBENCH="$TARGET/release/nsbench"
WORK=$(mktemp -d /tmp/fsgate-bench-fastpath.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && { kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
    mountpoint -q "$WORK/m" && umount -l "$WORK/m"
    rm -rf "$WORK"
}
trap cleanup EXIT

# run LABEL READERS: one nsbench pass on a fresh memory drive; prints "LABEL op rate ...".
run() {
    mkdir -p "$WORK/m"
    "$FSGATE" mount memory "$WORK/m" --config "FuseReaderThreadCount=$2" 2>"$WORK/err" &
    SERVER=$!
    until grep -q '^ready:' "$WORK/err"; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/err" >&2; exit 1; }
        sleep 0.1
    done
    mkdir "$WORK/m/ns"
    echo "$1 $("$NSBENCH" "$WORK/m/ns" "$COUNT" | tr '\n' ' ')"
    kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
}

for round in $(seq "$ROUNDS"); do
    run workers 1
    run inline 4
done | tee "$WORK/rates"
python3 - "$WORK/rates" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    label, *rest = line.split()
    for op, value in zip(rest[::2], rest[1::2]):
        rates.setdefault((label, op), []).append(float(value))
ops = [op for (label, op) in rates if label == "workers"]
print(f"{'operation':12} {'workers (1 reader)':>20} {'inline (4 readers)':>20} {'ratio':>7}")
for op in ops:
    w, i = statistics.median(rates[("workers", op)]), statistics.median(rates[("inline", op)])
    print(f"{op:12} {w:20.0f} {i:20.0f} {i / w:7.2f}")
PY
