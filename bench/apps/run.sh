#!/usr/bin/env bash
# Real applications on the drives, against the filesystems they stand in for, in one run.
#
# Targets: tmpfs and the memory drive (`fsgate mount memory`, release build, its defaults, and
# as `memory-uring` over FUSE-over-io_uring, `--config IoUringThreadsPerQueue=2`); the floor
# (bench/tools/src/bin/floor.rs: a FUSE filesystem straight on fuser that keeps files in one
# table and asks the kernel for what the memory drive asks, over /dev/fuse and as
# `floor-uring` over io_uring), which no drive negotiating the same can beat; ext4, bindfs
# over ext4 (Debian's, libfuse 3) and the mirror drive over ext4 (`fsgate mount mirror`, and
# as `mirror-pt` with `--passthrough`). Every ext4-backed target gets its own freshly made
# ext4 image.
# Workloads, each on every target:
#   sqlite-delete: SQLite single-row commits with the rollback journal (commits/s);
#   sqlite-wal:    the same in WAL mode (commits/s) — bench/apps/sqlite_commits.py;
#   git:           `git clone` of a local repository of REPO_COMMITS commits (made once with
#                  git fast-import, on a tmpfs of its own), then `git status` and `tar c` of
#                  the clone (seconds);
#   tar-x:         `tar x` of this checkout's crates/ and vendor/ (`git archive`) (seconds);
#   cargo:         `cargo build --offline` of a small crate that depends on bitflags, from
#                  the registry cache (seconds; skipped, `-`, when the cache lacks it).
# The workloads run ROUNDS times, the targets interleaved within each round, and each cell is
# the target's best round. Prints the table, the same with each target's median round, the
# ratios against the native filesystem (memory and the floor ÷ tmpfs, mirror and
# bindfs ÷ ext4; for seconds, native ÷ target, so higher is better everywhere) with the
# issue's goals, each memory goal beside what the floor reached (a goal the floor misses is
# out of reach of FUSE on this machine), then the FUSE requests each commit costs on each
# FUSE target.
#
# With BEFORE=REV (any git revision), fsgate built at REV serves three more targets in the same
# run (`memory-before`, `mirror-before`, `mirror-pt-before`), and a last table gives each
# workload's after/before ratio: how a change moved the figures, measured side by side.
# BEFORE_FSGATE=PATH does the same with an fsgate binary already built.
#
# The ext4 images live in /tmp, on the machine's disk, so every `fsync` on ext4 (and on the
# mirror) waits for that disk, and for everything else writing to it: on a shared machine the
# ext4-backed rows vary by up to 10x between rounds. IMAGES=tmpfs puts the images on a tmpfs
# of their own instead, which takes the disk out and leaves what the filesystems and FUSE cost.
#
# Usage (as root): bench/apps/run.sh
# Environment: CARGO_TARGET_DIR (default: target), COMMITS (2000), REPO_COMMITS (2700),
# ROUNDS (3), BEFORE (a revision to compare with), BEFORE_TARGET (where REV is built;
# default target/bench-before, kept between runs), BEFORE_FSGATE, IMAGES (disk or tmpfs).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/apps/run.sh: run as root (loop, tmpfs and FUSE mounts)" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need bindfs bindfs
need mkfs.ext4 e2fsprogs
need git git

COMMITS=${COMMITS:-2000}
ROUNDS=${ROUNDS:-3}
REPO_COMMITS=${REPO_COMMITS:-2700}
IMAGES=${IMAGES:-disk}
TARGET=${CARGO_TARGET_DIR:-target}
BEFORE=${BEFORE:-}
BEFORE_TARGET=${BEFORE_TARGET:-$PWD/target/bench-before}
FSGATE_BEFORE=${BEFORE_FSGATE:-}
cargo build --release -q -p fsgate-cli -p fsgate-bench-tools
FSGATE="$TARGET/release/fsgate"
FLOOR="$TARGET/release/floor"

WORK=$(mktemp -d /tmp/fsgate-bench-apps.XXXXXX)
SERVERS=()
LOOPDEVS=()
EXT4S="native bindfs mirror mirror-pt"
BEFORE_TARGETS=""
cleanup() {
    for pid in "${SERVERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for m in memory memory-uring floor floor-uring mirror mirror-pt bindfs $BEFORE_TARGETS; do mountpoint -q "$WORK/$m" && umount -l "$WORK/$m"; done
    for m in tmpfs src; do mountpoint -q "$WORK/$m" && umount "$WORK/$m"; done
    for e in $EXT4S; do mountpoint -q "$WORK/ext4-$e" && umount "$WORK/ext4-$e"; done
    for l in "${LOOPDEVS[@]}"; do losetup -d "$l" 2>/dev/null; done
    mountpoint -q "$WORK/images" && umount "$WORK/images"
    [ -d "$WORK/before-src" ] && git worktree remove --force "$WORK/before-src"
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "$BEFORE" ] && [ -z "$FSGATE_BEFORE" ]; then
    git worktree add -q --detach "$WORK/before-src" "$BEFORE"
    (cd "$WORK/before-src" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build --release -q -p fsgate-cli)
    FSGATE_BEFORE="$BEFORE_TARGET/release/fsgate"
fi
if [ -n "$FSGATE_BEFORE" ]; then
    EXT4S="$EXT4S mirror-before mirror-pt-before"
    BEFORE_TARGETS="memory-before mirror-before mirror-pt-before"
fi

mkdir "$WORK"/{tmpfs,src,memory,memory-uring,floor,floor-uring,mirror,mirror-pt,bindfs,images}
for t in $BEFORE_TARGETS; do mkdir "$WORK/$t"; done
[ "$IMAGES" = tmpfs ] && mount -t tmpfs -o size=20G tmpfs "$WORK/images"
for e in $EXT4S; do
    truncate -s 4G "$WORK/images/ext4-$e.img"
    mkfs.ext4 -q -F "$WORK/images/ext4-$e.img"
    LOOPDEVS+=("$(losetup --find --show "$WORK/images/ext4-$e.img")")
    mkdir "$WORK/ext4-$e"
    mount "${LOOPDEVS[-1]}" "$WORK/ext4-$e"
    mkdir "$WORK/ext4-$e/d"
done
mount -t tmpfs -o size=2G tmpfs "$WORK/tmpfs"
mount -t tmpfs -o size=1G tmpfs "$WORK/src"
bindfs "$WORK/ext4-bindfs/d" "$WORK/bindfs"
serve() {  # serve NAME COMMAND ARGS... — start COMMAND ARGS and wait for its ready line
    local name=$1; shift
    "$@" 2>"$WORK/$name.err" &
    SERVERS+=($!)
    until grep -qs '^ready:' "$WORK/$name.err"; do
        kill -0 "${SERVERS[-1]}" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.1
    done
}
serve memory "$FSGATE" mount memory "$WORK/memory"
serve memory-uring "$FSGATE" mount memory --config IoUringThreadsPerQueue=2 "$WORK/memory-uring"
serve floor "$FLOOR" "$WORK/floor"
serve floor-uring "$FLOOR" "$WORK/floor-uring" --io-uring
serve mirror "$FSGATE" mount mirror "$WORK/ext4-mirror/d" "$WORK/mirror"
serve mirror-pt "$FSGATE" mount mirror --passthrough "$WORK/ext4-mirror-pt/d" "$WORK/mirror-pt"
# A kernel without FUSE-over-io_uring serves these over /dev/fuse; their ready lines say which.
grep -h '^ready:' "$WORK/memory-uring.err" "$WORK/floor-uring.err" >&2
if [ -n "$FSGATE_BEFORE" ]; then
    serve memory-before "$FSGATE_BEFORE" mount memory "$WORK/memory-before"
    serve mirror-before "$FSGATE_BEFORE" mount mirror "$WORK/ext4-mirror-before/d" "$WORK/mirror-before"
    serve mirror-pt-before "$FSGATE_BEFORE" mount mirror --passthrough "$WORK/ext4-mirror-pt-before/d" "$WORK/mirror-pt-before"
fi

declare -A DIR=(
    [tmpfs]="$WORK/tmpfs" [memory]="$WORK/memory" [memory-uring]="$WORK/memory-uring"
    [floor]="$WORK/floor" [floor-uring]="$WORK/floor-uring"
    [ext4]="$WORK/ext4-native/d" [bindfs]="$WORK/bindfs" [mirror]="$WORK/mirror"
    [mirror-pt]="$WORK/mirror-pt"
)
ORDER="tmpfs memory memory-uring floor floor-uring ext4 bindfs mirror mirror-pt"
for t in $BEFORE_TARGETS; do DIR[$t]="$WORK/$t"; ORDER="$ORDER $t"; done

# The material, on a tmpfs of its own so that reading it costs every target the same.
python3 - "$REPO_COMMITS" <<'PY' | (cd "$WORK/src" && git init -q repo && cd repo && git fast-import --quiet && git checkout -q main)
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
files = {}
for i in range(n):
    path = f"dir{i % 30:02}/file{i % 300:03}.txt"
    files[path] = files.get(path, b"") + f"line {i} of {path}\n".encode()
    data = files[path]
    msg = f"commit {i}\n".encode()
    out.write(b"commit refs/heads/main\n")
    out.write(f"committer bench <bench@example.invalid> {1700000000 + i} +0000\n".encode())
    out.write(b"data %d\n%s" % (len(msg), msg))
    out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
PY
git archive --format=tar HEAD crates vendor >"$WORK/src/tree.tar"
mkdir -p "$WORK/src/crate/src"
cat >"$WORK/src/crate/Cargo.toml" <<'TOML'
[package]
name = "bench-crate"
version = "0.1.0"
edition = "2021"

[dependencies]
bitflags = "2"
TOML
cat >"$WORK/src/crate/src/main.rs" <<'RS'
bitflags::bitflags! {
    #[derive(Debug)]
    struct Flags: u8 {
        const A = 1;
    }
}

fn main() {
    println!("{:?}", Flags::A);
}
RS
CARGO_OK=1
(cd "$WORK/src/crate" && CARGO_TARGET_DIR="$WORK/src/crate-target" cargo generate-lockfile --offline -q 2>/dev/null) || CARGO_OK=0

seconds() {  # seconds CMD... — runs CMD, prints its wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
git_work() {  # git_work DIR — clone, status, tar c
    git clone -q --no-hardlinks "$WORK/src/repo" "$1/clone"
    git -C "$1/clone" status --short
    tar cf - -C "$1" clone >/dev/null
}
cargo_work() {  # cargo_work DIR
    cp -r "$WORK/src/crate" "$1/crate"
    (cd "$1/crate" && CARGO_TARGET_DIR="$1/crate/target" cargo build --offline -q)
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
for t in $ORDER; do
    d=${DIR[$t]}
    sync
    echo "$t sqlite-delete $(python3 bench/apps/sqlite_commits.py "$d" delete "$COMMITS")" >>"$RESULTS"
    echo "$t sqlite-wal $(python3 bench/apps/sqlite_commits.py "$d" wal "$COMMITS")" >>"$RESULTS"
    echo "$t git $(seconds git_work "$d")" >>"$RESULTS"
    rm -rf "$d/clone"
    mkdir "$d/tree"
    echo "$t tar-x $(seconds tar xf "$WORK/src/tree.tar" -C "$d/tree")" >>"$RESULTS"
    rm -rf "$d/tree"
    if [ "$CARGO_OK" = 1 ]; then
        echo "$t cargo $(seconds cargo_work "$d")" >>"$RESULTS"
        rm -rf "$d/crate"
    fi
    echo "done: $t (round $round of $ROUNDS)" >&2
done
done

REQUESTS="$WORK/requests.txt"
for t in bindfs memory memory-uring floor floor-uring mirror mirror-pt $BEFORE_TARGETS; do
    for mode in delete wal; do
        echo "$t $mode $(python3 bench/apps/sqlite_commits.py "${DIR[$t]}" "$mode" 200 --requests)" >>"$REQUESTS"
    done
done

echo "best of $ROUNDS interleaved rounds, then each target's median round"
python3 - "$RESULTS" "$COMMITS" "$REPO_COMMITS" <<'PY'
import statistics
import sys
runs = {}
seconds = {"git", "tar-x", "cargo"}
for line in open(sys.argv[1]):
    t, w, v = line.split()
    runs.setdefault(w, {}).setdefault(t, []).append(float(v))
# The best round is the one the rest of the machine disturbed least; the median says how
# typical it was.
best = {w: {t: (min(v) if w in seconds else max(v)) for t, v in r.items()} for w, r in runs.items()}
median = {w: {t: statistics.median(v) for t, v in r.items()} for w, r in runs.items()}
targets = [t for t in ["tmpfs", "memory", "memory-uring", "floor", "floor-uring", "ext4", "bindfs",
                       "mirror", "mirror-pt", "memory-before",
                       "mirror-before", "mirror-pt-before"] if t in runs["sqlite-delete"]]
names = {"sqlite-delete": f"SQLite commits/s, rollback journal", "sqlite-wal": "SQLite commits/s, WAL",
         "git": f"git clone+status+tar c, {sys.argv[3]} commits (s)", "tar-x": "tar x of crates/ and vendor/ (s)",
         "cargo": "cargo build of a small crate (s)"}
width = {t: max(11, len(t) + 2) for t in targets}
def table(rows, label):
    print(f"{'workload (' + sys.argv[2] + ' commits), ' + label:46}" + "".join(f"{t:>{width[t]}}" for t in targets))
    for w in names:
        if w in rows:
            print(f"{names[w]:46}" + "".join(f"{rows[w][t]:>{width[t]}.3f}" if w in seconds
                                              else f"{rows[w][t]:>{width[t]}.0f}" for t in targets))
    print()
table(best, "best")
table(median, "median")
rows = best
def ratio(w, a, b):
    r = rows[w]
    return r[b] / r[a] if w in seconds else r[a] / r[b]
print("ratios against the native filesystem (higher is better), goals")
columns = [("memory", "tmpfs"), ("memory-uring", "tmpfs"), ("floor", "tmpfs"), ("floor-uring", "tmpfs"),
           ("mirror", "ext4"), ("mirror-pt", "ext4"), ("bindfs", "ext4")]
print(f"  {'workload':14}" + "".join(f"{a + '/' + b:>{len(a + b) + 3}}" for a, b in columns))
for w in names:
    if w in rows:
        print(f"  {w:14}" + "".join(f"{ratio(w, a, b):>{len(a + b) + 2}.2f}x" for a, b in columns))
def goal(label, value, target, floor=None):
    line = f"  {label:44} {value:6.2f}x >= {target:4.2f}x  {'pass' if value >= target else 'MISS'}"
    if floor is not None:
        # What no drive asking the kernel for the same things can beat here.
        line += f"  (floor {ratio(floor, 'floor', 'tmpfs'):.2f}x, over io_uring {ratio(floor, 'floor-uring', 'tmpfs'):.2f}x)"
    print(line)
print()
goal("memory / tmpfs, rollback journal", ratio("sqlite-delete", "memory", "tmpfs"), 0.25, "sqlite-delete")
goal("memory / tmpfs, WAL", ratio("sqlite-wal", "memory", "tmpfs"), 0.30, "sqlite-wal")
for m in ["mirror", "mirror-pt"]:
    for w in ["sqlite-delete", "sqlite-wal"]:
        goal(f"{m} / ext4, {w}", ratio(w, m, "ext4"), 0.9)
for w in ["git", "tar-x"]:
    goal(f"memory / tmpfs, {w}", ratio(w, "memory", "tmpfs"), 0.6, w)
    for m in ["mirror", "mirror-pt"]:
        goal(f"{m} / ext4, {w}", ratio(w, m, "ext4"), 0.6)
for m in ["mirror", "mirror-pt"]:
    for w in names:
        if w in rows:
            goal(f"{m} ahead of bindfs, {w} ({m} / bindfs)", ratio(w, m, "bindfs"), 1.0)
if "memory-before" in targets:
    print()
    print("after / before, best and median rounds (higher is better)")
    print(f"  {'workload':14}" + "".join(f"{m + ' best':>17}{'median':>8}" for m in ["memory", "mirror", "mirror-pt"]))
    for w in names:
        if w in rows:
            cells = ""
            for m in ["memory", "mirror", "mirror-pt"]:
                for r in (best, median):
                    a, b = r[w][m], r[w][m + "-before"]
                    cells += f"{(b / a if w in seconds else a / b):>{16 if r is best else 7}.2f}x"
            print(f"  {w:14}{cells}")
PY
echo
echo "FUSE requests per commit (200 commits): total, then by opcode"
cat "$REQUESTS"
