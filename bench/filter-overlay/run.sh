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
#              ROUNDS rounds, each in a rotated target order;
#   namespace: bench/tools/src/bin/nsbench.rs over COUNT entries (create, open+close, stat,
#              listing, rename, delete, mkdir, rmdir; operations/s) in a fresh subdirectory;
#              NS_ROUNDS rounds, each one `nsbench --interleave` over all five targets: entry
#              i is created (renamed, ...) on every target in turn before entry i + 1, and
#              each call is timed on its own, so every target sees the same moments of the
#              machine and their ratios hold even when the machine's speed changes.
# The machine is shared and noisy: each cell is the median of its rounds, with the spread
# (the middle half of the rounds, 25th to 75th percentile) beside it. Ratios are the median
# of the per-round ratios (a namespace round measures its targets side by side), with
# their spread:
#   overlay / ext4 on the fio workloads (goal >= 0.9x), overlay / mirror on each namespace
#   operation (goal >= 0.9x), and overlay-keep / overlay (the rule's cost; goal >= 0.9x).
#
# Usage (as root): bench/filter-overlay/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SEQ_SIZE (256M), RAND_SIZE (64M),
# RAND_SECONDS (5), ROUNDS (3), COUNT (2000), NS_ROUNDS (15), TREE (2000).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/filter-overlay/run.sh: run as root (loop and FUSE mounts)" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need fio fio
need mkfs.ext4 e2fsprogs

SEQ_SIZE=${SEQ_SIZE:-256M}
RAND_SIZE=${RAND_SIZE:-64M}
RAND_SECONDS=${RAND_SECONDS:-5}
COUNT=${COUNT:-2000}
TREE=${TREE:-2000}
ROUNDS=${ROUNDS:-3}
NS_ROUNDS=${NS_ROUNDS:-15}
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
read -r -a ORDER <<<"$DATA_TARGETS"
for round in $(seq 1 "$ROUNDS"); do
    for t in "${ORDER[@]}"; do
        d=${DIR[$t]}
        echo "$round $t seqwrite $(fio_mibs "$d" write --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1)" >>"$RESULTS"
        drop_caches
        echo "$round $t seqread $(fio_mibs "$d" read --rw=read --bs=1M --size="$SEQ_SIZE")" >>"$RESULTS"
        rm -f "$d/bench.dat"
        fio_mibs "$d" write --rw=write --bs=1M --size="$RAND_SIZE" --end_fsync=1 >/dev/null
        drop_caches
        echo "$round $t randread $(fio_mibs "$d" read --rw=randread --bs=4k --size="$RAND_SIZE" \
            --runtime="$RAND_SECONDS" --time_based)" >>"$RESULTS"
        rm -f "$d/bench.dat"
    done
    echo "data round $round done" >&2
    ORDER=("${ORDER[@]:1}" "${ORDER[0]}")  # the next round starts with the next target
done

# Namespace rounds: nsbench runs every target at once, one entry at a time in turn (see its
# --interleave), so that all of them see the same moments of the shared machine.
for round in $(seq 1 "$NS_ROUNDS"); do
    dirs=()
    for t in $TARGETS; do
        mkdir "${DIR[$t]}/ns"
        dirs+=("${DIR[$t]}/ns")
    done
    "$NSBENCH" --interleave "$COUNT" "${dirs[@]}" | while read -r k op rate; do
        read -r -a names <<<"$TARGETS"
        echo "$round ${names[$k]} $op $rate"
    done >>"$RESULTS"
    for d in "${dirs[@]}"; do rmdir "$d"; done
    echo "namespace round $round done" >&2
done

python3 - "$RESULTS" "$COUNT" "$ROUNDS" "$NS_ROUNDS" <<'PY'
import statistics, sys
runs = {}  # workload -> target -> {round: value}
for line in open(sys.argv[1]):
    r, t, w, v = line.split()
    runs.setdefault(w, {}).setdefault(t, {})[int(r)] = float(v)
def spread(values):  # median, 25th and 75th percentile
    values = sorted(values)
    if len(values) < 4:
        return statistics.median(values), values[0], values[-1]
    q = statistics.quantiles(values, n=4)
    return q[1], q[0], q[2]
print(f"data: median of {sys.argv[3]} rounds; namespace ({sys.argv[2]} entries): median of "
      f"{sys.argv[4]} rounds; [25th-75th percentile]")
targets = ["ext4", "overlay", "overlay-keep", "mirror", "mirror-pt"]
names = {"seqwrite": "fio seq write 1 MiB (MiB/s)", "seqread": "fio seq read 1 MiB (MiB/s)",
         "randread": "fio rand read 4 KiB (MiB/s)", "create": "create (ops/s)",
         "open_close": "open+close (ops/s)", "stat": "stat (ops/s)",
         "list": "listing (entries/s)", "rename": "rename (ops/s)", "delete": "delete (ops/s)",
         "mkdir": "mkdir (ops/s)", "rmdir": "rmdir (ops/s)"}
def cell(w, t):
    if t not in runs[w]:
        return "-"
    m, lo, hi = spread(runs[w][t].values())
    return f"{m:.0f} [{lo:.0f}-{hi:.0f}]"
print(f"{'workload':28}" + "".join(f"{t:>24}" for t in targets))
for w, label in names.items():
    print(f"{label:28}" + "".join(f"{cell(w, t):>24}" for t in targets))
print()
print("goals (median of per-round ratios [25th-75th percentile], goal, result)")
def goal(label, w, a, b, target):
    pa, pb = runs[w][a], runs[w][b]
    m, lo, hi = spread([pa[r] / pb[r] for r in pa if r in pb])
    print(f"  {label:48} {m:6.2f}x [{lo:.2f}-{hi:.2f}]  >= {target:4.2f}x  "
          f"{'pass' if m >= target else 'MISS'}")
for w in ["seqwrite", "seqread", "randread"]:
    goal(f"overlay / ext4, {w}", w, "overlay", "ext4", 0.9)
ns = list(names)[3:]
for w in ns:
    goal(f"overlay / mirror, {w}", w, "overlay", "mirror", 0.9)
for w in ns:
    goal(f"overlay / mirror-pt, {w}", w, "overlay", "mirror-pt", 0.9)
for w in ["seqwrite", "seqread", "randread"] + ns:
    goal(f"overlay-keep / overlay (the rule's cost), {w}", w, "overlay-keep", "overlay", 0.9)
PY
