#!/usr/bin/env bash
# The file filter's overlay backend (`fsgate filter DIR`, a FUSE mirror mounted over DIR)
# against the bare directory and against the mirror drive, in one run. Every target works in
# a directory `d` on its own freshly made ext4 image, which also holds the same tree of other
# files (TREE files in 10 directories, one in ten named *.keep):
#   ext4          the bare directory (no filter)
#   overlay       `fsgate filter d --overlay`: the overlay with no rule at all
#   overlay-keep  `fsgate filter d --deny-delete '*.keep'`: a delete-protect rule, which
#                 matches none of the workload's own files (they are not *.keep)
#   mirror        `fsgate mount mirror d MNT` (its defaults: the kernel opens files itself)
#   mirror-pt     `fsgate mount mirror d MNT --passthrough` (every open reaches the drive and
#                 routes the file, as the overlay's do)
# Workloads:
#   data:      fio sequential 1 MiB write (fsync at the end) and read, fio 4 KiB random read
#              (MiB/s, buffered I/O, one job); reads are cold (`sync; echo 3 >
#              /proc/sys/vm/drop_caches` after laying the file out), on ext4 and the overlays;
#   namespace: bench/tools/src/bin/nsbench.rs over COUNT entries (create, open+close, stat,
#              listing, rename, delete, mkdir, rmdir; operations/s) in a fresh subdirectory.
# The machine is shared and noisy, so the whole set runs ROUNDS times, each round in a
# rotated target order, and each cell is the median of its rounds.
# Prints the table and the issue's goals as ratios with pass/miss:
#   overlay / ext4 on the fio workloads (goal >= 0.9x), overlay / mirror on each namespace
#   operation (goal >= 0.9x), and overlay-keep / overlay (the rule's cost; goal >= 0.9x).
#
# Usage (as root): bench/filter-overlay/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SEQ_SIZE (256M), RAND_SIZE (64M),
# RAND_SECONDS (5), COUNT (10000), TREE (2000), ROUNDS (3).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/filter-overlay/run.sh: run as root (loop and FUSE mounts)" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need fio fio
need mkfs.ext4 e2fsprogs

SEQ_SIZE=${SEQ_SIZE:-256M}
RAND_SIZE=${RAND_SIZE:-64M}
RAND_SECONDS=${RAND_SECONDS:-5}
COUNT=${COUNT:-10000}
TREE=${TREE:-2000}
ROUNDS=${ROUNDS:-3}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p fsgate-cli -p fsgate-bench-tools
FSGATE="$TARGET/release/fsgate"
NSBENCH="$TARGET/release/nsbench"

WORK=$(mktemp -d /tmp/fsgate-bench-overlay.XXXXXX)
SERVERS=()
LOOPDEVS=()
TARGETS="ext4 overlay overlay-keep mirror mirror-pt"
cleanup() {
    for pid in "${SERVERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for t in $TARGETS; do
        mountpoint -q "$WORK/$t-mnt" && umount -l "$WORK/$t-mnt"
        mountpoint -q "$WORK/$t/d" && umount -l "$WORK/$t/d"
        mountpoint -q "$WORK/$t" && umount "$WORK/$t"
    done
    for l in "${LOOPDEVS[@]}"; do losetup -d "$l" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for t in $TARGETS; do  # one fresh ext4 per target, with the same tree in `d`
    truncate -s 2G "$WORK/$t.img"
    mkfs.ext4 -q -F "$WORK/$t.img"
    LOOPDEVS+=("$(losetup --find --show "$WORK/$t.img")")
    mkdir "$WORK/$t"
    mount "${LOOPDEVS[-1]}" "$WORK/$t"
    mkdir "$WORK/$t/d"
    python3 - "$WORK/$t/d/tree" "$TREE" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    d = os.path.join(root, f"dir{i % 10}")
    os.makedirs(d, exist_ok=True)
    name = f"f{i:05}.keep" if i % 10 == 0 else f"f{i:05}.dat"
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"x" * 100)
PY
done

serve() {  # serve NAME PROGRAM ARGS... — start PROGRAM ARGS and wait for ready:
    local name=$1; shift
    "$@" 2>"$WORK/$name.err" >/dev/null &
    SERVERS+=($!)
    until grep -q '^ready:' "$WORK/$name.err"; do
        kill -0 "${SERVERS[-1]}" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    grep '^ready:' "$WORK/$name.err" >&2
}
mkdir "$WORK/mirror-mnt" "$WORK/mirror-pt-mnt"
serve overlay "$FSGATE" filter "$WORK/overlay/d" --overlay
serve overlay-keep "$FSGATE" filter "$WORK/overlay-keep/d" --deny-delete '*.keep'
serve mirror "$FSGATE" mount mirror "$WORK/mirror/d" "$WORK/mirror-mnt"
serve mirror-pt "$FSGATE" mount mirror "$WORK/mirror-pt/d" "$WORK/mirror-pt-mnt" --passthrough
# The rule is live: deleting a protected file of the tree is refused.
if rm -f "$WORK/overlay-keep/d/tree/dir0/f00000.keep" 2>/dev/null; then
    echo "the delete-protect rule did not hold" >&2; exit 1
fi

declare -A DIR=(
    [ext4]="$WORK/ext4/d" [overlay]="$WORK/overlay/d" [overlay-keep]="$WORK/overlay-keep/d"
    [mirror]="$WORK/mirror-mnt" [mirror-pt]="$WORK/mirror-pt-mnt"
)
DATA_TARGETS="ext4 overlay overlay-keep"

fio_mibs() {  # fio_mibs DIR read|write ARGS... → MiB/s
    local dir=$1 side=$2; shift 2
    fio --name=bench --directory="$dir" --filename=bench.dat --direct=0 --ioengine=psync \
        --numjobs=1 --output-format=json "$@" \
        | python3 -c "import json,sys; print(f\"{json.load(sys.stdin)['jobs'][0]['$side']['bw'] / 1024:.1f}\")"
}

drop_caches() {  # every page, dentry and inode cache of the machine: the next read is cold
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
read -r -a ORDER <<<"$TARGETS"
for round in $(seq 1 "$ROUNDS"); do
    for t in "${ORDER[@]}"; do
        d=${DIR[$t]}
        if [[ " $DATA_TARGETS " == *" $t "* ]]; then
            echo "$t seqwrite $(fio_mibs "$d" write --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1)" >>"$RESULTS"
            drop_caches
            echo "$t seqread $(fio_mibs "$d" read --rw=read --bs=1M --size="$SEQ_SIZE")" >>"$RESULTS"
            rm -f "$d/bench.dat"
            fio_mibs "$d" write --rw=write --bs=1M --size="$RAND_SIZE" --end_fsync=1 >/dev/null
            drop_caches
            echo "$t randread $(fio_mibs "$d" read --rw=randread --bs=4k --size="$RAND_SIZE" \
                --runtime="$RAND_SECONDS" --time_based)" >>"$RESULTS"
            rm -f "$d/bench.dat"
        fi
        mkdir "$d/ns"
        "$NSBENCH" "$d/ns" "$COUNT" | sed "s/^/$t /" >>"$RESULTS"
        rmdir "$d/ns"
        echo "round $round done: $t" >&2
    done
    ORDER=("${ORDER[@]:1}" "${ORDER[0]}")  # the next round starts with the next target
done

python3 - "$RESULTS" "$COUNT" "$ROUNDS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    t, w, v = line.split()
    runs.setdefault(w, {}).setdefault(t, []).append(float(v))
rows = {w: {t: statistics.median(v) for t, v in ts.items()} for w, ts in runs.items()}
print(f"median of {sys.argv[3]} rounds")
targets = ["ext4", "overlay", "overlay-keep", "mirror", "mirror-pt"]
names = {"seqwrite": "fio seq write 1 MiB (MiB/s)", "seqread": "fio seq read 1 MiB (MiB/s)",
         "randread": "fio rand read 4 KiB (MiB/s)", "create": "create (ops/s)",
         "open_close": "open+close (ops/s)", "stat": "stat (ops/s)",
         "list": "listing (entries/s)", "rename": "rename (ops/s)", "delete": "delete (ops/s)",
         "mkdir": "mkdir (ops/s)", "rmdir": "rmdir (ops/s)"}
print(f"{'workload (' + sys.argv[2] + ' entries)':34}" + "".join(f"{t:>14}" for t in targets))
for w, label in names.items():
    print(f"{label:34}" + "".join(f"{rows[w][t]:>14.0f}" if t in rows[w] else f"{'-':>14}"
                                  for t in targets))
print()
print("goals (ratio, goal, result)")
def goal(label, value, target):
    print(f"  {label:52} {value:7.2f}x  >= {target:4.2f}x  {'pass' if value >= target else 'MISS'}")
for w in ["seqwrite", "seqread", "randread"]:
    goal(f"overlay / ext4, {w}", rows[w]["overlay"] / rows[w]["ext4"], 0.9)
ns = list(names)[3:]
for w in ns:
    goal(f"overlay / mirror, {w}", rows[w]["overlay"] / rows[w]["mirror"], 0.9)
for w in ns:
    goal(f"overlay / mirror-pt, {w}", rows[w]["overlay"] / rows[w]["mirror-pt"], 0.9)
for w in ["seqwrite", "seqread", "randread"] + ns:
    goal(f"overlay-keep / overlay (the *.keep rule's cost), {w}",
         rows[w]["overlay-keep"] / rows[w]["overlay"], 0.9)
PY
