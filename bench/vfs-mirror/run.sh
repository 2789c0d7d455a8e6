#!/usr/bin/env bash
# The mirror drive (`fsgate mount mirror`, with and without --passthrough) and the memory drive
# against native ext4 and tmpfs (the limits) and bindfs (Debian's, libfuse 3) over the same
# ext4 source, in one run. Every ext4-backed target (native ext4, bindfs's source, each mirror's
# source) gets its own freshly made ext4 image, so no target pays for the inodes another
# target's run deleted (ext4 scans recently deleted inodes when it allocates new ones). The
# floor (bench/tools/src/bin/floor.rs: a namespace-only filesystem straight on fuser,
# asking the kernel for what fsgate's drives ask) runs the namespace workload over /dev/fuse
# and over io_uring at idle priority (`floor`, `floor-idle`): the rate no FUSE drive can
# beat on this machine. The memory and mirror drives run three ways: over /dev/fuse (the
# default), over io_uring (`--config IoUringThreadsPerQueue=2`, targets `*-uring`; the
# script sets /sys/module/fuse/parameters/enable_uring for the run and restores it), and over
# io_uring with its threads at idle priority (also `IoUringIdlePriority=True`, `*-idle`).
# Workloads:
#   data:      fio sequential 1 MiB write (fsync at the end) and read, fio 4 KiB random read
#              (MiB/s, buffered I/O). Reads are cold: the file is laid out first, then every
#              cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before the read
#              job, on every target. fio's own --invalidate drops only the read file's pages,
#              which leaves a mirror's or passthrough's source file cached while native ext4
#              reads from its disk;
#   namespace: bench/tools/src/bin/nsbench.rs over 10,000 entries — create,
#              open+close, stat, listing, rename, delete, mkdir, rmdir (operations/s).
# Prints the table and the issue's goals as ratios with pass/miss, then the FUSE requests
# each namespace operation costs on each FUSE target (bench/fuse/roundtrips.py). On a VM
# whose idle vCPUs halt at once (cpuidle haltpoll with guest_halt_poll_ns=0, as here), it
# runs the namespace workload a second time with guest halt polling at HALT_POLL_NS (200 µs)
# and prints those figures and goals too; the setting is restored on exit.
#
# With BEFORE=REV (any git revision), the same fsgate built at REV serves three more targets in
# the same run (`memory-before`, `mirror-before`, `mirror-pt-before`, over /dev/fuse), and a
# last table gives each workload's after/before ratio for the memory drive, the mirror and the
# mirror with passthrough: how a change moved the figures, measured side by side.
#
# Usage (as root): bench/vfs-mirror/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SEQ_SIZE (default 256M), RAND_SIZE (64M),
# RAND_SECONDS (5), COUNT (10000), HALT_POLL_NS (200000; 0 skips the second pass), BEFORE
# (a revision to compare with; unset: no comparison), BEFORE_TARGET (where REV is built;
# default target/bench-before, kept between runs).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/vfs-mirror/run.sh: run as root (loop, tmpfs and FUSE mounts)" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need fio fio
need bindfs bindfs
need mkfs.ext4 e2fsprogs

SEQ_SIZE=${SEQ_SIZE:-256M}
RAND_SIZE=${RAND_SIZE:-64M}
RAND_SECONDS=${RAND_SECONDS:-5}
COUNT=${COUNT:-10000}
HALT_POLL_NS=${HALT_POLL_NS:-200000}
HALT_POLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns
HALT_POLL_BEFORE=""
URING=/sys/module/fuse/parameters/enable_uring
URING_BEFORE=""
TARGET=${CARGO_TARGET_DIR:-target}
BEFORE=${BEFORE:-}
BEFORE_TARGET=${BEFORE_TARGET:-$PWD/target/bench-before}

cargo build --release -q -p fsgate-cli
cargo build --release -q -p fsgate-bench-tools
FSGATE="$TARGET/release/fsgate"
NSBENCH="$TARGET/release/nsbench"
FLOOR="$TARGET/release/floor"

WORK=$(mktemp -d /tmp/fsgate-bench-mirror.XXXXXX)
SERVERS=()
LOOPDEVS=()
EXT4S="native bindfs mirror mirror-uring mirror-idle mirror-pt"
BEFORE_TARGETS=""
if [ -n "$BEFORE" ]; then
    git worktree add -q --detach "$WORK/before-src" "$BEFORE"
    (cd "$WORK/before-src" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build --release -q -p fsgate-cli)
    FSGATE_BEFORE="$BEFORE_TARGET/release/fsgate"
    EXT4S="$EXT4S mirror-before mirror-pt-before"
    BEFORE_TARGETS="memory-before mirror-before mirror-pt-before"
fi
cleanup() {
    [ -n "$HALT_POLL_BEFORE" ] && echo "$HALT_POLL_BEFORE" >"$HALT_POLL"
    for pid in "${SERVERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for m in mirror mirror-uring mirror-idle mirror-pt memory memory-uring memory-idle bindfs floor floor-idle $BEFORE_TARGETS; do
        mountpoint -q "$WORK/$m" && umount -l "$WORK/$m"
    done
    # Connections already over io_uring keep it; only new mounts see the old setting.
    [ -n "$URING_BEFORE" ] && echo "$URING_BEFORE" >"$URING"
    mountpoint -q "$WORK/tmpfs" && umount "$WORK/tmpfs"
    for e in $EXT4S; do mountpoint -q "$WORK/ext4-$e" && umount "$WORK/ext4-$e"; done
    for l in "${LOOPDEVS[@]}"; do losetup -d "$l" 2>/dev/null; done
    [ -d "$WORK/before-src" ] && git worktree remove --force "$WORK/before-src"
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -w "$URING" ]; then
    URING_BEFORE=$(cat "$URING")
    echo Y >"$URING"
fi
mkdir "$WORK"/{tmpfs,bindfs,memory,memory-uring,memory-idle,mirror,mirror-uring,mirror-idle,mirror-pt,floor,floor-idle}
for t in $BEFORE_TARGETS; do mkdir "$WORK/$t"; done
for e in $EXT4S; do  # one fresh 3 GiB ext4 per target, each with a directory `d` to work in
    truncate -s 3G "$WORK/ext4-$e.img"
    mkfs.ext4 -q -F "$WORK/ext4-$e.img"
    LOOPDEVS+=("$(losetup --find --show "$WORK/ext4-$e.img")")
    mkdir "$WORK/ext4-$e"
    mount "${LOOPDEVS[-1]}" "$WORK/ext4-$e"
    mkdir "$WORK/ext4-$e/d"
done
mount -t tmpfs -o size=1G tmpfs "$WORK/tmpfs"

bindfs "$WORK/ext4-bindfs/d" "$WORK/bindfs"
serve() {  # serve NAME PROGRAM ARGS... — start PROGRAM ARGS and wait for ready:
    local name=$1; shift
    "$@" 2>"$WORK/$name.err" &
    SERVERS+=($!)
    until grep -q '^ready:' "$WORK/$name.err"; do
        kill -0 "${SERVERS[-1]}" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    grep '^ready:' "$WORK/$name.err" >&2
}
URING_CONFIG=(--config IoUringThreadsPerQueue=2)
IDLE_CONFIG=("${URING_CONFIG[@]}" --config IoUringIdlePriority=True)
serve floor "$FLOOR" "$WORK/floor"
serve floor-idle "$FLOOR" "$WORK/floor-idle" --io-uring --idle
serve memory "$FSGATE" mount memory "$WORK/memory"
serve memory-uring "$FSGATE" mount memory "$WORK/memory-uring" "${URING_CONFIG[@]}"
serve memory-idle "$FSGATE" mount memory "$WORK/memory-idle" "${IDLE_CONFIG[@]}"
serve mirror "$FSGATE" mount mirror "$WORK/ext4-mirror/d" "$WORK/mirror"
serve mirror-uring "$FSGATE" mount mirror "$WORK/ext4-mirror-uring/d" "$WORK/mirror-uring" "${URING_CONFIG[@]}"
serve mirror-idle "$FSGATE" mount mirror "$WORK/ext4-mirror-idle/d" "$WORK/mirror-idle" "${IDLE_CONFIG[@]}"
serve mirror-pt "$FSGATE" mount mirror "$WORK/ext4-mirror-pt/d" "$WORK/mirror-pt" --passthrough
if [ -n "$BEFORE" ]; then
    serve memory-before "$FSGATE_BEFORE" mount memory "$WORK/memory-before"
    serve mirror-before "$FSGATE_BEFORE" mount mirror "$WORK/ext4-mirror-before/d" "$WORK/mirror-before"
    serve mirror-pt-before "$FSGATE_BEFORE" mount mirror "$WORK/ext4-mirror-pt-before/d" "$WORK/mirror-pt-before" --passthrough
fi

declare -A DIR=(
    [ext4]="$WORK/ext4-native/d" [tmpfs]="$WORK/tmpfs" [bindfs]="$WORK/bindfs"
    [floor]="$WORK/floor" [floor-idle]="$WORK/floor-idle"
    [memory]="$WORK/memory" [memory-uring]="$WORK/memory-uring" [memory-idle]="$WORK/memory-idle"
    [mirror]="$WORK/mirror" [mirror-uring]="$WORK/mirror-uring" [mirror-idle]="$WORK/mirror-idle"
    [mirror-pt]="$WORK/mirror-pt"
    [memory-before]="$WORK/memory-before" [mirror-before]="$WORK/mirror-before"
    [mirror-pt-before]="$WORK/mirror-pt-before"
)
ORDER="ext4 tmpfs bindfs floor floor-idle memory memory-uring memory-idle mirror mirror-uring mirror-idle mirror-pt"
if [ -n "$BEFORE" ]; then
    # Each drive right after itself at REV, so that both meet the same machine.
    ORDER="ext4 tmpfs bindfs floor floor-idle memory memory-before memory-uring memory-idle mirror mirror-before mirror-uring mirror-idle mirror-pt mirror-pt-before"
fi
NAMESPACE_ONLY="floor floor-idle"

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
for t in $ORDER; do
    d=${DIR[$t]}
    if [[ " $NAMESPACE_ONLY " != *" $t "* ]]; then
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
    echo "done: $t" >&2
done

ROUNDTRIPS="$WORK/roundtrips.txt"
for t in bindfs floor memory mirror mirror-pt; do
    mkdir "${DIR[$t]}/rt"
    { echo "$t:"; python3 bench/fuse/roundtrips.py "${DIR[$t]}/rt" 1000 | sed 's/^/  /'; } >>"$ROUNDTRIPS"
    rmdir "${DIR[$t]}/rt"
done

if [ "$HALT_POLL_NS" != 0 ] && [ -w "$HALT_POLL" ] && [ "$(cat "$HALT_POLL")" = 0 ]; then
    HALT_POLL_BEFORE=0
    echo "$HALT_POLL_NS" >"$HALT_POLL"
    for t in $ORDER; do
        d=${DIR[$t]}
        mkdir "$d/ns"
        "$NSBENCH" "$d/ns" "$COUNT" | sed "s/^\([a-z_]*\)/$t \1@poll/" >>"$RESULTS"
        rmdir "$d/ns"
        echo "done with halt polling: $t" >&2
    done
    echo "$HALT_POLL_BEFORE" >"$HALT_POLL"
fi

python3 - "$RESULTS" "$COUNT" "$HALT_POLL_NS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    t, w, v = line.split()
    rows.setdefault(w, {})[t] = float(v)
targets = ["ext4", "tmpfs", "bindfs", "floor", "floor-idle", "memory", "memory-uring",
           "memory-idle", "mirror", "mirror-uring", "mirror-idle", "mirror-pt"]
names = {"seqwrite": "fio seq write 1 MiB (MiB/s)", "seqread": "fio seq read 1 MiB (MiB/s)",
         "randread": "fio rand read 4 KiB (MiB/s)", "create": "create (ops/s)",
         "open_close": "open+close (ops/s)", "stat": "stat (ops/s)",
         "list": "listing (entries/s)", "rename": "rename (ops/s)", "delete": "delete (ops/s)",
         "mkdir": "mkdir (ops/s)", "rmdir": "rmdir (ops/s)"}
order = list(names)
print(f"{'workload (' + sys.argv[2] + ' entries)':34}" + "".join(f"{t:>13}" for t in targets))
for w in order:
    print(f"{names[w]:34}" + "".join(f"{rows[w][t]:>13.0f}" if t in rows[w] else f"{'-':>13}"
                                      for t in targets))
print()
print("goals (ratio, goal, result)")
def goal(label, value, target):
    print(f"  {label:64} {value:7.2f}x  >= {target:5.2f}x  {'pass' if value >= target else 'MISS'}")
for w in ["seqread", "seqwrite"]:
    goal(f"mirror --passthrough / ext4, {w}", rows[w]["mirror-pt"] / rows[w]["ext4"], 0.9)
mirrors = ["mirror", "mirror-uring", "mirror-idle"]
memories = ["memory", "memory-uring", "memory-idle"]
for w in ["seqread", "seqwrite"]:
    for d in mirrors:
        goal(f"{d} / bindfs, {w}", rows[w][d] / rows[w]["bindfs"], 2.0)
ns = order[3:]
for w in ns:
    for d in mirrors:
        need = min(5 * rows[w]["bindfs"], 0.8 * rows[w]["ext4"])
        goal(f"{d} {w} vs min(5x bindfs, 0.8x ext4) (x of that)", rows[w][d] / need, 1.0)
for w in ns:
    for d in memories:
        goal(f"{d} / ext4, {w}", rows[w][d] / rows[w]["ext4"], 0.5)
print()
print("the floor: the best rate any FUSE drive reached here, and fsgate's share of what is left")
print(f"  {'operation':12} {'floor/ext4':>11} {'floor-idle/ext4':>16} {'memory-idle/floor-idle':>23}")
for w in ns:
    r = rows[w]
    print(f"  {w:12} {r['floor'] / r['ext4']:10.2f}x {r['floor-idle'] / r['ext4']:15.2f}x"
          f" {r['memory-idle'] / r['floor-idle']:22.2f}x")
print()
print("could any FUSE drive meet the namespace goals here? (the faster floor, x of each goal;")
print("below 1 the goal is out of reach of a filesystem that does nothing, let alone a drive)")
for w in ns:
    r = rows[w]
    best = max(r["floor"], r["floor-idle"])
    mirror_goal = min(5 * r["bindfs"], 0.8 * r["ext4"])
    print(f"  {w:12} mirror goal {best / mirror_goal:6.2f}x   memory goal {best / (0.5 * r['ext4']):6.2f}x")
if "memory-before" in rows["create"]:
    print()
    print("after / before, each drive against itself built at the BEFORE revision (below 0.95: slower)")
    pairs = [("memory", "memory-before"), ("mirror", "mirror-before"), ("mirror-pt", "mirror-pt-before")]
    print(f"{'workload':34}" + "".join(f"{a:>16}" for a, _ in pairs))
    for w in order:
        cells = []
        for a, b in pairs:
            if a in rows[w] and b in rows[w]:
                r = rows[w][a] / rows[w][b]
                cells.append(f"{r:>15.2f}x" if r >= 0.95 else f"{r:>9.2f}x SLOW")
            else:
                cells.append(f"{'-':>16}")
        print(f"{names[w]:34}" + "".join(cells))
if "create@poll" in rows:
    print()
    print(f"namespace again, guest halt polling at {int(sys.argv[3]) // 1000} us")
    for w in ns:
        print(f"{names[w]:34}" + "".join(f"{rows[w + '@poll'][t]:>13.0f}" for t in targets))
    print()
    print("goals with halt polling (ratio, goal, result)")
    for w in ns:
        p = rows[w + "@poll"]
        for d in mirrors:
            need = min(5 * p["bindfs"], 0.8 * p["ext4"])
            goal(f"{d} {w} vs min(5x bindfs, 0.8x ext4) (x of that)", p[d] / need, 1.0)
    for w in ns:
        for d in memories:
            goal(f"{d} / ext4, {w}", rows[w + "@poll"][d] / rows[w + "@poll"]["ext4"], 0.5)
PY
echo
echo "FUSE requests per operation (sync: requests the caller waits for), 1000 entries"
cat "$ROUNDTRIPS"
